"""Tests: simulator."""
