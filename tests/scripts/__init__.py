"""Tests: the development scripts (scripts/develop and its helpers)."""
