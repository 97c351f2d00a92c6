"""Two-way SMS: what patients text back (opt-outs, help, relief-check answers), what it causes."""
