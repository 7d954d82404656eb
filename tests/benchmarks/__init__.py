"""Tests that keep the benchmarks running."""
