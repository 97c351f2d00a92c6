"""The `reminders` command line: a thin layer over the plan, enrollment, store and dispatch code."""
