"""Where the charging plan's needs come from: bookings and deadline targets.

Each booking with an energy, and each deadline target set by hand, becomes a
`ChargingNeed` of the planner (`planner.plan_charging`), less what its session
already delivered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Protocol

from .planner import TARGET_ORIGIN, ChargingNeed
from .reservations import Reservation


def needs_from_reservations(
    reservations: Iterable[Reservation],
    *,
    now: float,
    delivered_wh: Mapping[str, float] | None = None,
    max_current_a: Mapping[int, float] | None = None,
    phases: Mapping[int, tuple[int, ...]] | None = None,
) -> list[ChargingNeed]:
    """A need per booking with an energy that has not ended yet.

    `delivered_wh` is what each booking (by id) already got, subtracted from its
    energy; `max_current_a` / `phases` describe each charger (default 16 A on
    three phases). A booking without an energy asks for nothing to plan.
    """
    delivered_wh = delivered_wh or {}
    needs: list[ChargingNeed] = []
    for reservation in reservations:
        if reservation.energy_kwh is None or reservation.end <= now:
            continue
        left = reservation.energy_kwh * 1000.0 - delivered_wh.get(
            reservation.reservation_id, 0.0
        )
        if left <= 0.0:
            continue
        cid = reservation.charger_id
        needs.append(
            ChargingNeed(
                charger_id=cid,
                energy_wh=left,
                earliest_start=reservation.start,
                departure=reservation.end,
                max_current_a=(max_current_a or {}).get(cid, 16.0),
                phases=(phases or {}).get(cid, (1, 2, 3)),
                origin=reservation.reservation_id,
            )
        )
    return needs


class DeadlineTarget(Protocol):
    """What the planner reads of a deadline target (issue 16 §1's `ChargingTarget`)."""

    @property
    def charger_id(self) -> int:
        """The charger the target is for."""

    @property
    def energy_wh(self) -> float | None:
        """The energy wanted (`None`: a SoC target not turned into energy)."""

    @property
    def departure(self) -> datetime:
        """When the energy is wanted by."""


def needs_from_targets(
    targets: Iterable[DeadlineTarget],
    *,
    now: float,
    delivered_wh: Mapping[int, float] | None = None,
    max_current_a: Mapping[int, float] | None = None,
    phases: Mapping[int, tuple[int, ...]] | None = None,
) -> list[ChargingNeed]:
    """A need per target with an energy still missing, from now to its departure.

    `delivered_wh` is what each charger's session already delivered (by charger).
    A target with only a SoC (no energy) is skipped: its owner knows the vehicle.
    """
    needs: list[ChargingNeed] = []
    for target in targets:
        cid = target.charger_id
        if target.energy_wh is None:
            continue
        left = target.energy_wh - (delivered_wh or {}).get(cid, 0.0)
        departure = target.departure.timestamp()
        if left <= 0.0 or departure <= now:
            continue
        needs.append(
            ChargingNeed(
                charger_id=cid,
                energy_wh=left,
                earliest_start=now,
                departure=departure,
                max_current_a=(max_current_a or {}).get(cid, 16.0),
                phases=(phases or {}).get(cid, (1, 2, 3)),
                origin=TARGET_ORIGIN,
            )
        )
    return needs
