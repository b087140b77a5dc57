"""Benchmarks: figures and ratios printed by `make bench`, never asserted in tests."""
