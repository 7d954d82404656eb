"""Physical overloads: per-phase current above a fuse or circuit rating.

The simulator judges this on its own, from the currents its physics carried —
not from anything a client computed. A setpoint can be within its component's
bounds while the sum of several overloads a shared fuse; this is where that shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ac import PhasePowers

TOLERANCE_A = 0.01
"""Excess current below this (10 mA) is rounding, not an overload."""


@dataclass(slots=True)
class OverloadRecord:
    """What a rated meter (or the grid connection point) carried, against its rating."""

    rating_a: float
    """The fuse or circuit rating per phase (A)."""
    peak_a: float = 0.0
    """The largest per-phase current it carried for any time (A)."""
    ampere_seconds: float = 0.0
    """Excess current over the rating, summed over phases and time (A·s)."""
    seconds: float = 0.0
    """Simulated time with at least one phase above the rating (s)."""

    def carry(self, phases: PhasePowers, duration_s: float) -> None:
        """Account for carrying `phases` for `duration_s` simulated seconds."""
        if duration_s <= 0.0:
            return
        currents = [abs(current) for current in phases.currents()]
        self.peak_a = max(self.peak_a, *currents)
        excess = sum(max(0.0, current - self.rating_a) for current in currents)
        if excess > TOLERANCE_A:
            self.ampere_seconds += excess * duration_s
            self.seconds += duration_s
