"""The simulator's own rule for a safe setpoint, on the bounds as it advertises them.

Deliberately independent of the integration's code: if the integration's idea of
"allowed" were wrong, a shared rule would hide it on both sides. Here the rule is
read straight off the API's form — a list of allowed ranges.
"""

from __future__ import annotations

from collections.abc import Iterable
import math

TOLERANCE_W = 1e-6
"""Rounding a setpoint may carry beyond a range's edge (W)."""


def setpoint_allowed(power_w: float, ranges: Iterable[tuple[float, float]]) -> bool:
    """Whether `power_w` is 0 W (always allowed) or inside one allowed range."""
    if power_w == 0.0:
        return True
    if not math.isfinite(power_w):
        return False
    return any(
        lower - TOLERANCE_W <= power_w <= upper + TOLERANCE_W for lower, upper in ranges
    )
