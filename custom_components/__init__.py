"""Custom integrations (this repository ships one: frequenz_microgrid)."""
