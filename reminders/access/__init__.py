"""Who may do what: staff users, roles, sessions, API key scopes, and the audit trail."""
