"""Tests of the Frequenz Microgrid integration."""
