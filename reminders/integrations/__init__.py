"""Enrollment from the clinic's scheduling system: HL7 v2 SIU over MLLP and FHIR R4 Appointment.

Both feeds turn what they receive into one `AppointmentEvent`; `AppointmentService` maps it to a
plan with the clinic's mapping file and enrolls, reschedules or cancels through the same
`EnrollmentService` as the CLI, CSV import and API.
"""
