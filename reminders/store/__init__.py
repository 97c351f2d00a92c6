"""Storage: every database read and write of the service goes through `Store`."""
