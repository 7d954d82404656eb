"""A forecast as the planner reads it: values over periods, in time order.

Price and PV forecasts arrive in many shapes (Nord Pool's ``raw_today`` rows,
Forecast.Solar's ``wh_period``, Solcast's ``detailedForecast``, a simulator
series); the Home Assistant layer (`forecast_sources`) turns each into one
`TimeSeries`: half-open periods ``[start, end)`` in POSIX seconds with one value
each (a price per kWh, or a mean power in W). The planner then asks for the
mean over a planning slot, and a slot the forecast does not cover has no value
(`None`): the planner never invents a price or a PV yield.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
import math


@dataclass(frozen=True, slots=True)
class ForecastPoint:
    """One value over ``[start, end)`` (POSIX seconds)."""

    start: float
    end: float
    value: float


def _start(point: ForecastPoint) -> float:
    return point.start


@dataclass(frozen=True, slots=True)
class TimeSeries:
    """Forecast points sorted by start, not overlapping, all finite.

    Build it with `TimeSeries.of`, which drops what cannot be used (non-finite,
    empty or overlapping periods) instead of failing: a forecast with one bad
    row is still worth planning with.
    """

    points: tuple[ForecastPoint, ...] = ()

    @classmethod
    def of(cls, points: Iterable[ForecastPoint]) -> TimeSeries:
        """The usable points in time order (an overlap keeps the earlier point)."""
        usable = sorted(
            (
                p
                for p in points
                if math.isfinite(p.start)
                and math.isfinite(p.end)
                and math.isfinite(p.value)
                and p.end > p.start
            ),
            key=lambda p: p.start,
        )
        kept: list[ForecastPoint] = []
        for point in usable:
            if kept and point.start < kept[-1].end:
                continue
            kept.append(point)
        return cls(tuple(kept))

    def __bool__(self) -> bool:
        """Whether the series has any point."""
        return bool(self.points)

    @property
    def end(self) -> float | None:
        """The end of the last point (`None` when empty)."""
        return self.points[-1].end if self.points else None

    def mean(self, start: float, end: float) -> float | None:
        """The time-weighted mean over the covered part of ``[start, end)``.

        `None` when no point covers any of it.
        """
        if not self.points or end <= start:
            return None
        index = max(0, bisect_right(self.points, start, key=_start) - 1)
        weighted = 0.0
        covered = 0.0
        for point in self.points[index:]:
            if point.start >= end:
                break
            overlap = min(end, point.end) - max(start, point.start)
            if overlap > 0.0:
                weighted += point.value * overlap
                covered += overlap
        return weighted / covered if covered > 0.0 else None

    def slot_means(self, start: float, slot_s: float, count: int) -> list[float | None]:
        """`mean` over `count` slots of `slot_s` from `start`, in one walk."""
        means: list[float | None] = []
        index = 0
        points = self.points
        for slot in range(count):
            slot_start = start + slot * slot_s
            slot_end = slot_start + slot_s
            while index < len(points) and points[index].end <= slot_start:
                index += 1
            weighted = 0.0
            covered = 0.0
            for point in points[index:]:
                if point.start >= slot_end:
                    break
                overlap = min(slot_end, point.end) - max(slot_start, point.start)
                if overlap > 0.0:
                    weighted += point.value * overlap
                    covered += overlap
            means.append(weighted / covered if covered > 0.0 else None)
        return means

    def as_list(self) -> list[dict[str, float]]:
        """A JSON-able form (diagnostics, action responses)."""
        return [{"start": p.start, "end": p.end, "value": p.value} for p in self.points]
