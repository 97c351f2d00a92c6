"""FHIR R4: Appointment in (enroll, move, cancel), the patient's reminders out."""
