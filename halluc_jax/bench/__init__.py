"""Benchmarks that print figures (never run by the tests)."""
