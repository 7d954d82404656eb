"""Benchmarks: one script per figure, one output line per result."""
