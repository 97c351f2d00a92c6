"""Storage: every database read and write goes through one repository per aggregate.

`Storage` holds the one `Database` handle and the repositories: patients and enrollments,
the outbox, inbound SMS, outcomes and flags, and access (API keys).
"""
