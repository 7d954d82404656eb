"""The deadline targets' forecast: least laxity first, run forward in time.

`forecast` runs the live allocator's least-laxity model forward over the
circuits' limits over time (fuse, fixed kW limit and envelope steps, less what
the circuit's other loads draw now): each target's expected completion and the
energy still unmet at its departure; a target with unmet energy is *at risk*.
It is a model, not a promise: the other loads are held at today's value,
plugged cars without a target keep their minimum, and the car's own taper near
full is unknown. `targets.ChargingTargets` shows it per target and
`targets.TargetGuarantee` prices a reservation with it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
import math
from typing import Final

from .circuits import Circuit
from .limits import CircuitLimits

MAX_DEPARTURE_AHEAD_S: Final = 7 * 24 * 3600.0
"""The latest departure a target may name (a week, a booking's longest)."""
AT_RISK_WH: Final = 100.0
"""Unmet energy (Wh) from which a target counts as at risk (the model's grain)."""
DEFAULT_MAX_POWER_W: Final = 3 * 16.0 * 230.0
"""A charger's power before its first steering round has told its maximum."""
DEFAULT_MIN_POWER_W: Final = 3 * 6.0 * 230.0
"""A charger's minimum power before its first steering round has told it."""
_MAX_FORECAST_STEPS: Final = 720
_MIN_STEP_S: Final = 60.0


def laxity_s(
    remaining_wh: float, departure_s: float, now_s: float, max_power_w: float
) -> float:
    """Slack before departure (s): time left less the time the energy takes.

    Negative: even the charger's maximum power from now on misses the target.
    A charger that cannot charge (0 W) has no slack at all (−inf).
    """
    if remaining_wh <= 0.0:
        return math.inf
    if not max_power_w > 0.0:
        return -math.inf
    return (departure_s - now_s) - remaining_wh * 3600.0 / max_power_w


@dataclass(frozen=True, slots=True)
class CircuitBudget:
    """What one circuit leaves its chargers over time (W)."""

    charger_ids: frozenset[int]
    capacity_w: Callable[[float], float] = field(compare=False)
    """Power its chargers may draw together at a POSIX time (W)."""
    limits: Hashable = None
    """What `capacity_w` is made of besides `others_w` (equal limits: the same
    capacity over time); `None` for a budget given as a bare function."""
    others_w: float = field(default=0.0, compare=False)
    """What the circuit's other loads take off (W, held constant)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ForecastCar:
    """One car as the forecast sees it."""

    charger_id: int
    remaining_wh: float
    """Energy still wanted (Wh); 0 for a car without a target (takes its minimum)."""
    departure_s: float = math.inf
    arrival_s: float = -math.inf
    max_power_w: float = DEFAULT_MAX_POWER_W
    min_power_w: float = DEFAULT_MIN_POWER_W
    has_target: bool = True
    best_effort: bool = False
    """Served after every target with what is left (a booking being priced)."""


@dataclass(frozen=True, slots=True)
class Outlook:
    """What the forecast expects for one car."""

    charger_id: int
    delivered_wh: float
    unmet_wh: float
    """Energy still missing at departure (Wh)."""
    completion_s: float | None
    """When the target is expected to be met (`None`: not by departure)."""
    power_w: float = 0.0
    """The power the car gets in the first step (W): what it should draw now."""

    @property
    def at_risk(self) -> bool:
        """Whether the target is expected to miss by more than the model's grain."""
        return self.unmet_wh > AT_RISK_WH


def forecast(
    cars: Iterable[ForecastCar],
    budgets: Iterable[CircuitBudget],
    now_s: float,
    *,
    until_s: float | None = None,
) -> dict[int, Outlook]:
    """Run least laxity first forward from `now_s`, step by step.

    Per step: every plugged car without a target takes its minimum where it
    fits (the allocator's forced minimums), then the targets by least laxity
    each take up to their maximum power (never less than their minimum, never
    more than any of their circuits has left), then the best-effort cars.
    """
    fleet = list(cars)
    circuits = list(budgets)
    horizon = until_s
    if horizon is None:
        finite = [c.departure_s for c in fleet if math.isfinite(c.departure_s)]
        horizon = max(finite, default=now_s)
    horizon = min(horizon, now_s + MAX_DEPARTURE_AHEAD_S)
    step = max(_MIN_STEP_S, (horizon - now_s) / _MAX_FORECAST_STEPS)
    remaining = {c.charger_id: c.remaining_wh for c in fleet}
    delivered = dict.fromkeys(remaining, 0.0)
    first_power: dict[int, float] = {}
    completion: dict[int, float | None] = {
        c.charger_id: (now_s if c.has_target and c.remaining_wh <= 0.0 else None)
        for c in fleet
    }
    member_of = {
        c.charger_id: [
            i for i, b in enumerate(circuits) if c.charger_id in b.charger_ids
        ]
        for c in fleet
    }
    at = now_s
    while at < horizon - 1e-9:
        dt = min(step, horizon - at)
        headroom = [max(0.0, _finite_or_zero(b.capacity_w(at))) for b in circuits]

        present = [c for c in fleet if c.arrival_s <= at < c.departure_s]
        for car in present:
            if not car.has_target and not car.best_effort:
                _take(car, car.min_power_w, headroom, member_of[car.charger_id])
        targets = sorted(
            (c for c in present if c.has_target and remaining[c.charger_id] > 0.0),
            key=lambda c: (
                laxity_s(remaining[c.charger_id], c.departure_s, at, c.max_power_w),
                c.charger_id,
            ),
        )
        for car in [*targets, *(c for c in present if c.best_effort)]:
            wanted = car.max_power_w
            if car.has_target:
                wanted = min(wanted, remaining[car.charger_id] * 3600.0 / dt)
            power = _take(car, wanted, headroom, member_of[car.charger_id])
            if at == now_s:
                first_power[car.charger_id] = power
            if power <= 0.0:
                continue
            energy = power * dt / 3600.0
            if car.has_target and energy >= remaining[car.charger_id] - 1e-9:
                completion[car.charger_id] = (
                    at + remaining[car.charger_id] * 3600.0 / power
                )
            delivered[car.charger_id] += energy
            remaining[car.charger_id] = max(0.0, remaining[car.charger_id] - energy)
        at += dt
    return {
        c.charger_id: Outlook(
            c.charger_id,
            delivered[c.charger_id],
            remaining[c.charger_id] if c.has_target else 0.0,
            completion[c.charger_id],
            first_power.get(c.charger_id, 0.0),
        )
        for c in fleet
    }


def _take(
    car: ForecastCar, wanted_w: float, headroom: list[float], circuits: list[int]
) -> float:
    """Power the car gets of `wanted_w` from its circuits' headroom (taken from it).

    Below its minimum a car cannot charge at all (unless it only wants less).
    """
    room = min((headroom[i] for i in circuits), default=math.inf)
    power = min(wanted_w, room)
    if power < min(car.min_power_w, wanted_w) - 1e-9:
        return 0.0
    for i in circuits:
        headroom[i] -= power
    return power


def _finite_or_zero(value: float) -> float:
    """Capacities: inf stays (no limit), NaN counts as 0 (no data, no promise)."""
    return 0.0 if math.isnan(value) else value


def circuit_budgets(
    limits: CircuitLimits, nominal_voltage_v: float = 230.0
) -> list[CircuitBudget]:
    """Each circuit's power for its chargers over time, from its limits.

    The fuse over three phases, the fixed kW limit and the envelope step in
    force, the lowest, less what the circuit's other loads drew at the last
    tick (held constant: the best the hub knows of the future).
    """

    def budget(circuit: Circuit) -> CircuitBudget:
        fuse_w = (
            math.inf
            if circuit.phase_limit_a is None
            else circuit.phase_limit_a * 3 * nominal_voltage_v
        )
        status = limits.statuses.get(circuit.circuit_id)
        others_w = 0.0 if status is None else status.other_load_w

        def capacity(at: float) -> float:
            return min(fuse_w, limits.upper_limit_w(circuit, at)) - others_w

        return CircuitBudget(
            circuit.charger_ids,
            capacity,
            (circuit, fuse_w, limits.envelope(circuit.circuit_id)),
            others_w,
        )

    return [budget(c) for c in limits.tree.circuits]
