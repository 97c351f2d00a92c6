"""Fakes that behave like the real services, for the project's tests and benchmarks."""
