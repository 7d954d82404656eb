"""Inverters: a battery inverter follows a setpoint, a PV inverter produces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math

from ...engine.bounds import PowerBounds
from .ac import PhasePowers
from .battery import BatteryState


@dataclass(frozen=True, slots=True)
class InverterParams:
    """Rated power (W) and the optional exclusion zone (±W around 0 W)."""

    rated_power_w: float
    exclusion_w: float = 0.0
    phase: int | None = None
    """The line a single-phase inverter is wired to (1–3); `None`: three-phase."""

    def __post_init__(self) -> None:
        """Refuse a line that does not exist."""
        if self.phase is not None and self.phase not in (1, 2, 3):
            raise ValueError(f"an inverter's phase is 1, 2 or 3, not {self.phase}")

    def phase_powers(self, total_w: float) -> PhasePowers:
        """How `total_w` spreads over L1–L3: evenly, or all on its one line."""
        if self.phase is None:
            return PhasePowers.balanced(total_w)
        fractions = tuple(1.0 if line == self.phase else 0.0 for line in (1, 2, 3))
        return PhasePowers.split(total_w, (fractions[0], fractions[1], fractions[2]))

    def rated_bounds(self) -> PowerBounds:
        """Its own AC bounds: ±rated power, minus the exclusion zone if any."""
        return PowerBounds(
            -self.rated_power_w,
            self.rated_power_w,
            -self.exclusion_w,
            self.exclusion_w,
        )


def share_among_batteries(
    power_w: float, batteries: Sequence[BatteryState]
) -> list[float]:
    """Split an inverter's DC power over its batteries in proportion to their room.

    Each battery gets a share of `power_w` proportional to how much it may still
    charge (or discharge), so no battery is pushed past its own bounds as long as
    the total respects the sum of their bounds.
    """
    bounds = [b.power_bounds() for b in batteries]
    limits = [b.inclusion_upper if power_w >= 0 else b.inclusion_lower for b in bounds]
    total = sum(limits)
    if total == 0:
        return [0.0 for _ in batteries]
    return [power_w * limit / total for limit in limits]


def daylight_factor(time_of_day_s: float) -> float:
    """Fraction of peak PV output at a time of day: a sine from 06:00 to 20:00."""
    hour = (time_of_day_s / 3600.0) % 24.0
    sunrise, sunset = 6.0, 20.0
    if not sunrise < hour < sunset:
        return 0.0
    return math.sin(math.pi * (hour - sunrise) / (sunset - sunrise))


def pv_output_w(peak_w: float, time_of_day_s: float, limit_w: float | None) -> float:
    """PV AC power (≤ 0 W): the daylight curve, curtailed by a setpoint if one is set.

    In the passive sign convention production is negative; a setpoint of
    -3000 W means "produce at most 3000 W", and 0 W switches production off.
    """
    available = -peak_w * daylight_factor(time_of_day_s)
    if limit_w is None:
        return available
    return max(available, min(limit_w, 0.0))
