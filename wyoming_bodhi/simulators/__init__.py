"""Faithful local servers per engine, for tests, benchmarks and ``--demo``."""
