"""Power bounds: the inclusion range and the exclusion zone of a component or pool.

The Microgrid API sends bounds as a list of allowed ranges; an exclusion zone is the
gap between two ranges, e.g. ``[(-5000, -100), (100, 5000)]`` means "anything from
-5000 W to 5000 W except strictly between -100 W and 100 W (0 W is always allowed)".
The engine works with the SDK's four-number form because every algorithm (matryoshka,
SoC balancing) is written against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
import itertools
import math


@dataclass(frozen=True, slots=True)
class Bounds:
    """A closed interval that an actor proposes; `None` leaves that side open."""

    lower: float | None = None
    upper: float | None = None

    def is_empty(self) -> bool:
        """Return whether the interval admits no value (lower above upper)."""
        return (
            self.lower is not None
            and self.upper is not None
            and self.lower > self.upper
        )


@dataclass(frozen=True, slots=True)
class PowerBounds:
    """Inclusion range minus the open exclusion zone; 0 W is always allowed.

    Allowed: ``[inclusion_lower, inclusion_upper]`` without the open interval
    ``(exclusion_lower, exclusion_upper)``, except that 0 W is always allowed.

    An exclusion zone of ``(0, 0)`` means "no exclusion zone".
    """

    inclusion_lower: float
    inclusion_upper: float
    exclusion_lower: float = 0.0
    exclusion_upper: float = 0.0

    @classmethod
    def zero(cls) -> PowerBounds:
        """Bounds that allow only 0 W (e.g. a component that is not working)."""
        return cls(0.0, 0.0, 0.0, 0.0)

    @classmethod
    def from_ranges(
        cls, ranges: Iterable[tuple[float | None, float | None]]
    ) -> PowerBounds:
        """Build bounds from the API's list of allowed ranges.

        The inclusion range spans from the lowest lower bound to the highest upper
        bound; the exclusion zone is the gap that contains 0 W between the range
        ending at or below 0 and the range starting at or above 0 (the only kind of
        gap the API sends). Missing sides are unbounded (``±inf``).
        """
        normalised = sorted(
            (
                -math.inf if lo is None else lo,
                math.inf if hi is None else hi,
            )
            for lo, hi in ranges
        )
        if not normalised:
            return cls.zero()
        inclusion_lower = normalised[0][0]
        inclusion_upper = max(hi for _, hi in normalised)
        exclusion_lower = 0.0
        exclusion_upper = 0.0
        for (_, hi_a), (lo_b, _) in itertools.pairwise(normalised):
            if hi_a < lo_b and hi_a <= 0.0 <= lo_b:
                exclusion_lower, exclusion_upper = hi_a, lo_b
        return cls(inclusion_lower, inclusion_upper, exclusion_lower, exclusion_upper)

    def to_ranges(self) -> list[tuple[float, float]]:
        """Return the API's list-of-ranges form of these bounds."""
        if self.exclusion_lower == self.exclusion_upper == 0.0:
            return [(self.inclusion_lower, self.inclusion_upper)]
        ranges: list[tuple[float, float]] = []
        if self.inclusion_lower <= self.exclusion_lower:
            ranges.append((self.inclusion_lower, self.exclusion_lower))
        if self.exclusion_upper <= self.inclusion_upper:
            ranges.append((self.exclusion_upper, self.inclusion_upper))
        return ranges

    def as_dict(self) -> dict[str, float]:
        """Return the JSON-ready form of these bounds.

        The one shape of power bounds in action responses, distribution results
        and diagnostics, so an automation reads them the same way everywhere.
        """
        return {
            "inclusion_lower": self.inclusion_lower,
            "exclusion_lower": self.exclusion_lower,
            "exclusion_upper": self.exclusion_upper,
            "inclusion_upper": self.inclusion_upper,
        }

    @property
    def has_exclusion(self) -> bool:
        """Whether there is a non-empty exclusion zone."""
        return self.exclusion_lower < self.exclusion_upper

    def allows(self, power: float, *, tolerance: float = 1e-6) -> bool:
        """Return whether `power` is a safe setpoint under these bounds.

        Safe means inside the inclusion range and not strictly inside the exclusion
        zone; 0 W is always allowed (it is how a component is released).
        """
        if power == 0.0:
            return True
        if math.isnan(power):
            return False
        if (
            power < self.inclusion_lower - tolerance
            or power > self.inclusion_upper + tolerance
        ):
            return False
        return not (
            self.exclusion_lower + tolerance < power < self.exclusion_upper - tolerance
        )

    def clamp(self, power: float) -> float:
        """Return the allowed value nearest to `power`.

        Clamped into the inclusion range first; a value strictly inside the exclusion
        zone (other than 0 W) snaps to the nearer edge, ties going to the edge with the
        request's sign.
        """
        value = min(max(power, self.inclusion_lower), self.inclusion_upper)
        if value == 0.0 or not (self.exclusion_lower < value < self.exclusion_upper):
            return value
        if value - self.exclusion_lower < self.exclusion_upper - value:
            return self.exclusion_lower
        if value - self.exclusion_lower > self.exclusion_upper - value:
            return self.exclusion_upper
        return self.exclusion_lower if value < 0 else self.exclusion_upper


def sum_bounds(bounds: Sequence[PowerBounds]) -> PowerBounds:
    """Aggregate the bounds of components that work in parallel (a pool).

    Inclusion ranges add up, and so do the exclusion edges: the pool cannot go
    below the sum of its members' smallest non-zero powers.
    """
    if not bounds:
        return PowerBounds.zero()
    return PowerBounds(
        inclusion_lower=sum(b.inclusion_lower for b in bounds),
        inclusion_upper=sum(b.inclusion_upper for b in bounds),
        exclusion_lower=sum(b.exclusion_lower for b in bounds),
        exclusion_upper=sum(b.exclusion_upper for b in bounds),
    )


def sum_switchable_bounds(bounds: Sequence[PowerBounds]) -> PowerBounds:
    """Aggregate the bounds of a pool whose members are switched on one by one.

    Inclusion ranges add up; the exclusion zone is the narrowest member's, not
    the sum: the EV allocator runs only the EVs whose minimum fits and holds the
    others at 0 W, so any power from one EV's minimum up can be placed. Summed
    edges made a 5 kW budget for two EVs (4.14 kW minimum each) snap to 8.28 kW.
    """
    if not bounds:
        return PowerBounds.zero()
    summed = sum_bounds(bounds)
    return PowerBounds(
        inclusion_lower=summed.inclusion_lower,
        inclusion_upper=summed.inclusion_upper,
        exclusion_lower=max(b.exclusion_lower for b in bounds),
        exclusion_upper=min(b.exclusion_upper for b in bounds),
    )


def intersect_pair(battery: PowerBounds, inverter: PowerBounds) -> PowerBounds:
    """Bounds of a battery and the inverter in front of it, seen as one unit.

    The unit may only do what both allow: inclusion lower = max, upper = min;
    exclusion lower = min, upper = max (spec §5).
    """
    return PowerBounds(
        inclusion_lower=max(battery.inclusion_lower, inverter.inclusion_lower),
        inclusion_upper=min(battery.inclusion_upper, inverter.inclusion_upper),
        exclusion_lower=min(battery.exclusion_lower, inverter.exclusion_lower),
        exclusion_upper=max(battery.exclusion_upper, inverter.exclusion_upper),
    )


def aggregate_batteries_behind_inverter(bounds: Sequence[PowerBounds]) -> PowerBounds:
    """Bounds of several batteries behind one inverter, as the SDK aggregates them.

    Inclusion bounds add up; the exclusion zone is the widest member's, times the
    number of batteries (the inverter splits its power evenly among them).
    """
    count = len(bounds)
    return PowerBounds(
        inclusion_lower=sum(b.inclusion_lower for b in bounds),
        inclusion_upper=sum(b.inclusion_upper for b in bounds),
        exclusion_lower=min(b.exclusion_lower for b in bounds) * count,
        exclusion_upper=max(b.exclusion_upper for b in bounds) * count,
    )
