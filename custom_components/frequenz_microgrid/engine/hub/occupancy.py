"""Occupancy: how many chargers have an EV plugged in, now and over a period.

datafev's `query_actual_occupation` counts the chargers with a connected EV; here
that is the chargers with an open session (a charger that went silent with an EV
plugged in still counts as occupied: silence is not an unplug). Utilisation is the
share of charger-time occupied over a period, e.g. since local midnight.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .sessions import ChargingSession, SessionTracker


@dataclass(frozen=True, slots=True)
class Occupancy:
    """Chargers occupied and free right now."""

    occupied: int
    total: int

    @property
    def free(self) -> int:
        """Chargers without an EV plugged in."""
        return self.total - self.occupied


def actual_occupation(tracker: SessionTracker) -> Occupancy:
    """The chargers occupied now (datafev's `query_actual_occupation`)."""
    occupied = sum(
        1 for charger_id in tracker.charger_ids if charger_id in tracker.open
    )
    return Occupancy(occupied=occupied, total=len(tracker.charger_ids))


def occupied_time(
    session: ChargingSession, start: datetime, end: datetime, now: datetime
) -> timedelta:
    """How long `session` was open within `[start, end)` (open sessions up to `now`)."""
    overlap = min(session.end_or(now), end) - max(session.started_at, start)
    return max(overlap, timedelta(0))


def utilisation(
    sessions: Iterable[ChargingSession],
    charger_count: int,
    start: datetime,
    now: datetime,
) -> float | None:
    """Share (0–1) of the chargers' time occupied from `start` to `now`.

    `None` when there is no charger or no time yet to measure.
    """
    period = now - start
    if charger_count <= 0 or period <= timedelta(0):
        return None
    occupied = sum(
        (occupied_time(session, start, now, now) for session in sessions),
        timedelta(0),
    )
    return min(occupied / (period * charger_count), 1.0)
