"""Distribution algorithms: pure functions from a target to per-component setpoints."""
