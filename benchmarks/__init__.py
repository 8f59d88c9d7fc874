"""Benchmarks for wyoming-bodhi: ``python -m benchmarks [--quick] [--out DIR]``.

Not part of the test suite; see ``benchmarks/README.md`` for what each section measures.
"""
