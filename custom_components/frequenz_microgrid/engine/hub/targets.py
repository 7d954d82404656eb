"""Deadline targets: an energy wanted by a departure time, per charging session.

A target (`ChargingTarget`) says how much energy a session should have delivered
(kWh; a SoC target is kept for chargers that report the vehicle's SoC – the
Microgrid API reports none today, so the Home Assistant layer refuses it) and by
when. It is set by hand (`set_charging_target`) or comes from a reservation with
an energy and an end (the booking's end is the departure). A target set while no
car is plugged in waits for the next session at that charger; it is bound to the
session that is open when it is set (or the next that starts) and ends with it.
The energy counts over the whole session, like the session's energy sensor and a
booking's energy. A target is a floor, not a cap: a fast-mode car goes on
charging when it is met.

Each steering round `ChargingTargets.apply` gives every car with an unmet target
its *laxity* (datafev's least-laxity-first):

    laxity = time to departure − remaining energy / charger's maximum power

and the EV allocator serves the least laxity first, after the forced minimums
and within every circuit's limits (`distribution.ev_fair_share.staged_fill`).
How a target combines with the charger's mode:

- **off** stays off: the target is only reported at risk.
- **fast** charges by laxity.
- **boost** comes before every target (the user asked for *now*).
- **solar** stays on PV surplus, **smart** follows the charging plan, while
  its laxity is above `DEADLINE_FALLBACK_LAXITY_S`; below, it charges like fast
  (from the grid, by laxity) so the car still leaves with its energy — a plan
  is a forecast, and the live envelope or the other loads can leave less than
  it counted on.

`target_forecast.forecast` runs the same least-laxity model forward over the
circuits' limits over time: each target's expected completion and the energy
still unmet at its departure; a target with unmet energy is *at risk*.
`TargetGuarantee` uses it for what a reservation can be promised.

The live table re-runs the forecast only when one of its inputs changed
(`ChargingTargets.forecast_stale`): a car came or went, a target was set or
cleared, a charger's power range or mode changed, a circuit's limits or
envelope changed, a circuit's other loads moved by more than
`OTHERS_CHANGE_W`, or a car's delivered energy strayed more than
`ENERGY_DRIFT_WH` from what the last run expected by now — and at least every
`FORECAST_MAX_AGE_S`. At 100 chargers with 20 targets one run costs tens of
milliseconds on the event loop; most rounds change nothing it models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
import math
import time
from typing import Any, Final

from ..distribution.ev_chargers import EvAllocationReason, EvChargerInput
from .reservations import ChargerCapacity, Reservation
from .target_forecast import (
    AT_RISK_WH,
    DEFAULT_MAX_POWER_W,
    DEFAULT_MIN_POWER_W,
    MAX_DEPARTURE_AHEAD_S,
    CircuitBudget,
    ForecastCar,
    Outlook,
    forecast,
    laxity_s,
)

DEADLINE_FALLBACK_LAXITY_S: Final = 900.0
"""A solar- or smart-mode car with a target charges like fast once its laxity is
below this (s): a quarter of an hour of slack is left for the envelope's steps."""
FORECAST_MAX_AGE_S: Final = 60.0
"""The forecast is re-run at least this often (s) while nothing it models changes:
the expected completion is shown in minutes."""
ENERGY_DRIFT_WH: Final = AT_RISK_WH
"""A car whose delivered energy is off the last run's expectation by more than
this (Wh, the model's grain) is forecast again."""
OTHERS_CHANGE_W: Final = 500.0
"""A circuit whose other loads moved by more than this (W) since the last run is
forecast again (a kettle, not the household's flicker)."""


class TargetProblem(StrEnum):
    """Why a target was refused (translation keys)."""

    UNKNOWN_CHARGER = "unknown_charger"
    NO_AMOUNT = "no_amount"
    """Neither an energy nor a SoC was given."""
    BOTH_AMOUNTS = "both_amounts"
    NOT_FINITE = "not_finite"
    ENERGY_NOT_POSITIVE = "energy_not_positive"
    ABOVE_CAPACITY = "above_capacity"
    """More energy than the vehicle's battery holds."""
    SOC_OUT_OF_RANGE = "soc_out_of_range"
    SOC_NOT_REPORTED = "soc_not_reported"
    """A SoC target at a charger that does not report the vehicle's SoC."""
    DEPARTURE_NOT_AWARE = "departure_not_aware"
    DEPARTURE_IN_PAST = "departure_in_past"
    DEPARTURE_TOO_FAR = "departure_too_far"


class InvalidTargetError(ValueError):
    """A refused target; nothing was stored."""

    def __init__(self, problem: TargetProblem, **details: object) -> None:
        """Name the problem and what the message needs (placeholders)."""
        super().__init__(problem.value)
        self.problem = problem
        self.details = {key: str(value) for key, value in details.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargingTarget:
    """What one session should have delivered, and by when."""

    charger_id: int
    energy_wh: float | None = None
    """Energy the session should deliver (Wh); `None` for a SoC target."""
    soc_pct: float | None = None
    """SoC the vehicle should reach (%); only where the SoC is reported."""
    departure: datetime
    """When the car leaves (timezone-aware)."""
    booking_id: str | None = None
    """The reservation the target came from (`None`: set by hand)."""
    session_id: str | None = None
    """The session it is bound to (`None`: waits for the next plug-in)."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (store, action responses)."""
        return {
            "charger_id": self.charger_id,
            "energy_wh": self.energy_wh,
            "soc_pct": self.soc_pct,
            "departure": self.departure.isoformat(),
            "booking_id": self.booking_id,
            "session_id": self.session_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChargingTarget:
        """The target `as_dict` wrote (raises on a damaged record)."""
        departure = datetime.fromisoformat(str(data["departure"]))
        if departure.tzinfo is None:
            raise ValueError("departure without a timezone")
        energy, soc = data.get("energy_wh"), data.get("soc_pct")
        booking, session = data.get("booking_id"), data.get("session_id")
        return cls(
            charger_id=int(data["charger_id"]),
            energy_wh=None if energy is None else float(energy),
            soc_pct=None if soc is None else float(soc),
            departure=departure,
            booking_id=None if booking is None else str(booking),
            session_id=None if session is None else str(session),
        )


def validate_target(
    target: ChargingTarget,
    *,
    now: datetime,
    charger_ids: Iterable[int],
    capacity_wh: float | None = None,
    soc_reported: bool = False,
) -> ChargingTarget:
    """Return `target` if it is valid, else raise naming the first problem.

    Raises:
        InvalidTargetError: unknown charger, no or two amounts, NaN/inf, an
            energy ≤ 0 or above the vehicle's capacity (when known), a SoC
            outside 0–100 % or not reported, a naive, past or too far departure.
    """
    if target.charger_id not in set(charger_ids):
        raise InvalidTargetError(
            TargetProblem.UNKNOWN_CHARGER, charger=target.charger_id
        )
    check_amount(target, capacity_wh=capacity_wh, soc_reported=soc_reported)
    if target.departure.tzinfo is None:
        raise InvalidTargetError(TargetProblem.DEPARTURE_NOT_AWARE)
    ahead = (target.departure - now).total_seconds()
    if ahead <= 0.0:
        raise InvalidTargetError(TargetProblem.DEPARTURE_IN_PAST)
    if ahead > MAX_DEPARTURE_AHEAD_S:
        raise InvalidTargetError(TargetProblem.DEPARTURE_TOO_FAR)
    return target


def check_amount(
    target: ChargingTarget,
    *,
    capacity_wh: float | None = None,
    soc_reported: bool = False,
) -> None:
    """Raise unless the target asks for one valid amount (`validate_target`'s checks).

    The checks that do not depend on the time or the microgrid: a stored target
    must pass them too (`ChargingTargets.restore`).

    Raises:
        InvalidTargetError: no or two amounts, NaN/inf, an energy ≤ 0 or above
            the vehicle's capacity (when known), a SoC outside 0–100 % or not
            reported.
    """
    if target.energy_wh is None and target.soc_pct is None:
        raise InvalidTargetError(TargetProblem.NO_AMOUNT)
    if target.energy_wh is not None and target.soc_pct is not None:
        raise InvalidTargetError(TargetProblem.BOTH_AMOUNTS)
    numbers = [target.energy_wh, target.soc_pct, capacity_wh]
    if not all(math.isfinite(n) for n in numbers if n is not None):
        raise InvalidTargetError(TargetProblem.NOT_FINITE)
    if target.energy_wh is not None:
        if target.energy_wh <= 0.0:
            raise InvalidTargetError(TargetProblem.ENERGY_NOT_POSITIVE)
        if capacity_wh is not None and target.energy_wh > capacity_wh:
            raise InvalidTargetError(
                TargetProblem.ABOVE_CAPACITY, capacity_kwh=f"{capacity_wh / 1000:g}"
            )
    if target.soc_pct is not None:
        if not 0.0 < target.soc_pct <= 100.0:
            raise InvalidTargetError(TargetProblem.SOC_OUT_OF_RANGE)
        if not soc_reported:
            raise InvalidTargetError(TargetProblem.SOC_NOT_REPORTED)


# -- the live table -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetState:
    """A target with where its session stands and what the forecast expects."""

    target: ChargingTarget
    delivered_wh: float
    remaining_wh: float
    laxity_s: float | None
    """`None` while no car is plugged in, or once the target is met."""
    outlook: Outlook | None
    planned_unmet_wh: float | None = None
    """What the hub's plan leaves unmet, when the car follows the plan (smart
    mode): then the plan, not the live forecast, says whether it is at risk."""

    @property
    def unmet_wh(self) -> float | None:
        """The energy expected to be missing at departure (`None`: not plugged in).

        The plan's figure dates from when it was made (re-plans run per slot):
        never more than what is still left to charge now.
        """
        if self.outlook is None:
            return None
        if self.planned_unmet_wh is not None:
            return min(self.planned_unmet_wh, max(0.0, self.remaining_wh))
        return self.outlook.unmet_wh

    @property
    def at_risk(self) -> bool:
        """Expected to miss its departure (only once the car is plugged in)."""
        unmet = self.unmet_wh
        return unmet is not None and unmet > AT_RISK_WH

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (action responses, attributes, diagnostics)."""
        outlook = self.outlook
        completion = None if outlook is None else outlook.completion_s
        return {
            **self.target.as_dict(),
            "delivered_wh": round(self.delivered_wh, 3),
            "remaining_wh": round(self.remaining_wh, 3),
            "laxity_s": None
            if self.laxity_s is None or not math.isfinite(self.laxity_s)
            else round(self.laxity_s, 1),
            "expected_completion": None
            if completion is None
            else datetime.fromtimestamp(completion, UTC).isoformat(),
            "at_risk": self.at_risk,
            "unmet_wh": None if self.unmet_wh is None else round(self.unmet_wh, 3),
        }


@dataclass(slots=True)
class _Session:
    session_id: str
    energy_wh: float


@dataclass(frozen=True, slots=True)
class _ForecastRun:
    """One run of the forecast: when, on what, and what it expected."""

    at_s: float
    cars: list[ForecastCar]
    budgets: list[CircuitBudget]
    outlooks: dict[int, Outlook]


def _shape(car: ForecastCar) -> tuple[object, ...]:
    """A car's forecast inputs but its remaining energy (which moves every round)."""
    return (
        car.charger_id,
        car.has_target,
        car.departure_s,
        car.min_power_w,
        car.max_power_w,
    )


type Listener = Callable[[], None]


class ChargingTargets:
    """Every charger's target, bound to its session; what the steering reads.

    Args:
        charger_ids: The chargers a target may be set on.
        clock: Wall-clock POSIX seconds (injected for tests).
        budgets: The circuits' power over time for the forecast (none: unlimited).
    """

    def __init__(
        self,
        charger_ids: frozenset[int],
        *,
        clock: Callable[[], float] = time.time,
        budgets: Callable[[], list[CircuitBudget]] = list,
    ) -> None:
        """Start with no targets."""
        self._targets: dict[int, ChargingTarget] = {}
        self._charger_ids = charger_ids
        self._clock = clock
        self.budgets = budgets
        self._sessions: dict[int, _Session] = {}
        self._powers: dict[int, tuple[float, float]] = {}
        """Per charger (min W, max W) from the last steering round."""
        self._held_off: set[int] = set()
        """Chargers in mode off in the last round: nothing reaches their target
        (a solar hold is not one: its target falls back to the grid)."""
        self._outlooks: dict[int, Outlook] = {}
        self._last_run: _ForecastRun | None = None
        """The inputs and results of the forecast's last run (`None`: never ran)."""
        self._listeners: list[Listener] = []
        self.planned_unmet_wh: Callable[[ChargingTarget], float | None] = (
            lambda _target: None
        )
        """What the hub's plan leaves unmet of a target whose car follows it
        (`None`: its car does not follow a plan, or the plan has no such need)."""

    @property
    def charger_ids(self) -> frozenset[int]:
        """The chargers a target may be set on."""
        return self._charger_ids

    @charger_ids.setter
    def charger_ids(self, charger_ids: frozenset[int]) -> None:
        """Follow a changed topology: the targets of chargers that left end.

        Otherwise the plan would go on reserving power for a charger that is
        gone, and the other cars would be planned around it.
        """
        self._charger_ids = charger_ids
        gone = [c for c in self._targets if c not in charger_ids]
        for charger_id in gone:
            del self._targets[charger_id]
            self._outlooks.pop(charger_id, None)
            self._sessions.pop(charger_id, None)
            self._powers.pop(charger_id, None)
            self._held_off.discard(charger_id)
        if gone:
            self._notify()

    # -- reading ----------------------------------------------------------------

    def get(self, charger_id: int) -> ChargingTarget | None:
        """The charger's target, or `None`."""
        return self._targets.get(charger_id)

    def targets(self) -> dict[int, ChargingTarget]:
        """Every target, by charger id (a copy)."""
        return dict(self._targets)

    def state(self, charger_id: int) -> TargetState | None:
        """The target with its session's progress and forecast, or `None`."""
        target = self._targets.get(charger_id)
        if target is None:
            return None
        session = self._bound_session(target)
        delivered = 0.0 if session is None else session.energy_wh
        remaining = self._remaining(target, delivered)
        laxity = None
        if session is not None and remaining > 0.0:
            laxity = laxity_s(
                remaining,
                target.departure.timestamp(),
                self._clock(),
                self._max_power(charger_id),
            )
        return TargetState(
            target,
            delivered,
            remaining,
            laxity,
            self._outlooks.get(charger_id) if session is not None else None,
            self.planned_unmet_wh(target),
        )

    @property
    def unmet_wh(self) -> float:
        """The energy the hub expects to miss over every plugged-in target (Wh)."""
        states = (self.state(charger_id) for charger_id in self._targets)
        return math.fsum(
            unmet
            for state in states
            if state is not None and (unmet := state.unmet_wh) is not None
        )

    # -- changing ---------------------------------------------------------------

    def set(self, target: ChargingTarget) -> TargetState:
        """Set (replace) the charger's target, bound to its open session if any.

        The caller validates first (`validate_target`).
        """
        if target.charger_id not in self.charger_ids:
            raise KeyError(target.charger_id)
        session = self._sessions.get(target.charger_id)
        target = dataclasses.replace(
            target, session_id=None if session is None else session.session_id
        )
        self._targets[target.charger_id] = target
        self.refresh()
        self._notify()
        state = self.state(target.charger_id)
        assert state is not None
        return state

    def clear(self, charger_id: int) -> bool:
        """Remove the charger's target; whether there was one."""
        removed = self._targets.pop(charger_id, None) is not None
        self._outlooks.pop(charger_id, None)
        if removed:
            self._notify()
        return removed

    def restore(self, target: ChargingTarget) -> None:
        """Put back a stored target (ignored for unknown chargers); no forecast yet.

        Raises:
            InvalidTargetError: it asks for no valid amount (`check_amount`: a
                damaged record, which nothing could steer towards or show).
        """
        check_amount(target)
        if target.charger_id in self.charger_ids:
            self._targets[target.charger_id] = target

    def observe_session(
        self, charger_id: int, session_id: str | None, energy_wh: float
    ) -> bool:
        """Tell the table the charger's open session (`None`: no car) and its energy.

        Binds an unbound target to the session that just opened; ends a target
        whose session ended (or that waited past its departure). Returns whether
        a car came or went (the forecast is out of date then).
        """
        known = self._sessions.get(charger_id)
        came_or_went = (None if known is None else known.session_id) != session_id
        if session_id is None:
            self._sessions.pop(charger_id, None)
        else:
            self._sessions[charger_id] = _Session(session_id, energy_wh)
        target = self._targets.get(charger_id)
        if target is None:
            return came_or_went
        if target.session_id is None and session_id is not None:
            self._targets[charger_id] = dataclasses.replace(
                target, session_id=session_id
            )
            self._notify()
        elif target.session_id is not None and target.session_id != session_id:
            self.clear(charger_id)  # its session ended: so does the target
        elif (
            target.session_id is None and target.departure.timestamp() <= self._clock()
        ):
            self.clear(charger_id)  # waited for a car that never came
        return came_or_went

    def listen(self, callback: Listener) -> Callable[[], None]:
        """Call `callback` after every change; return the unsubscribe function."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return unsubscribe

    # -- the steering's side ----------------------------------------------------

    def apply(
        self,
        unshaped: Mapping[int, EvChargerInput],
        shaped: Mapping[int, EvChargerInput],
        *,
        waits: Callable[[int], bool] = lambda _cid: False,
    ) -> dict[int, EvChargerInput]:
        """Give every plugged car with an unmet target its laxity (see module docs).

        `unshaped` are the inputs before the modes, `shaped` after; a car whose
        mode `waits` (solar, smart) and whose laxity ran out takes its unshaped
        input (charges from the grid). Off stays off and boost stays boost.
        """
        now = self._clock()
        result = dict(shaped)
        self._held_off = {
            cid
            for cid, charger in shaped.items()
            if charger.held_off is EvAllocationReason.MODE_OFF
        }
        for cid, charger in unshaped.items():
            per_amp = len(charger.phases) * (charger.voltage_v or 230.0)
            self._powers[cid] = (
                charger.min_current_a * per_amp,
                charger.max_current_a * per_amp,
            )
        for cid, target in self._targets.items():
            session = self._bound_session(target)
            if session is None or cid not in shaped:
                continue
            remaining = self._remaining(target, session.energy_wh)
            if remaining <= 0.0:
                continue
            laxity = laxity_s(
                remaining, target.departure.timestamp(), now, self._max_power(cid)
            )
            base = shaped[cid]
            if waits(cid) and laxity < DEADLINE_FALLBACK_LAXITY_S:
                base = unshaped[cid]
            result[cid] = dataclasses.replace(base, laxity_s=laxity)
        return result

    def refresh(self) -> None:
        """Re-run the forecast for the plugged-in targets (no listener is told)."""
        now = self._clock()
        cars = self._forecast_cars()
        budgets = self.budgets()
        outlooks = forecast(cars, budgets, now)
        self._outlooks = {
            cid: outlook for cid, outlook in outlooks.items() if cid in self._targets
        }
        self._last_run = _ForecastRun(now, cars, budgets, outlooks)

    def forecast_stale(self) -> bool:
        """Whether the forecast's inputs changed since it last ran (module docs).

        Cheap next to `refresh`: the cars and budgets are rebuilt and compared,
        nothing is run forward.
        """
        run = self._last_run
        if run is None:
            return True
        now = self._clock()
        elapsed = now - run.at_s
        if not 0.0 <= elapsed < FORECAST_MAX_AGE_S:
            return True
        cars = self._forecast_cars()
        if [_shape(car) for car in cars] != [_shape(car) for car in run.cars]:
            return True  # a car came or went, a target, a power range or mode
        for car, before in zip(cars, run.cars, strict=True):
            if not car.has_target:
                continue
            outlook = run.outlooks.get(car.charger_id)
            drawn_wh = 0.0 if outlook is None else outlook.power_w * elapsed / 3600.0
            expected_wh = max(0.0, before.remaining_wh - drawn_wh)
            if abs(car.remaining_wh - expected_wh) > ENERGY_DRIFT_WH:
                return True
        budgets = self.budgets()
        if budgets != run.budgets:
            return True  # the circuits, their fuses, limits or envelopes
        return any(
            abs(now_budget.others_w - then.others_w) > OTHERS_CHANGE_W
            for now_budget, then in zip(budgets, run.budgets, strict=True)
        )

    def _forecast_cars(self) -> list[ForecastCar]:
        """Every plugged car as the forecast sees it (a car held off: none)."""
        cars: list[ForecastCar] = []
        for cid, session in self._sessions.items():
            target = self._targets.get(cid)
            bound = target is not None and target.session_id == session.session_id
            low, high = self._powers.get(
                cid, (DEFAULT_MIN_POWER_W, DEFAULT_MAX_POWER_W)
            )
            if cid in self._held_off:
                high = 0.0
            if target is not None and bound:
                cars.append(
                    ForecastCar(
                        charger_id=cid,
                        remaining_wh=self._remaining(target, session.energy_wh),
                        departure_s=target.departure.timestamp(),
                        max_power_w=high,
                        min_power_w=low,
                    )
                )
            elif cid not in self._held_off:
                cars.append(
                    ForecastCar(
                        charger_id=cid,
                        remaining_wh=0.0,
                        min_power_w=low,
                        max_power_w=high,
                        has_target=False,
                    )
                )
        return cars

    # -- internals --------------------------------------------------------------

    def _bound_session(self, target: ChargingTarget) -> _Session | None:
        session = self._sessions.get(target.charger_id)
        if session is None or session.session_id != target.session_id:
            return None
        return session

    def _max_power(self, charger_id: int) -> float:
        if charger_id in self._held_off:
            return 0.0
        return self._powers.get(charger_id, (0.0, DEFAULT_MAX_POWER_W))[1]

    @staticmethod
    def _remaining(target: ChargingTarget, delivered_wh: float) -> float:
        if target.energy_wh is None:
            return 0.0  # a SoC target: no SoC reported, nothing to steer by
        return max(0.0, target.energy_wh - delivered_wh)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()


# -- reservations -----------------------------------------------------------------


def _no_bookings(_start: float, _end: float) -> Iterable[Reservation]:
    return ()


class TargetGuarantee:
    """What a booking can be promised: the same model, everyone else first.

    A `reservations.Guarantee`: called with the charger's capacity and the
    period, it runs `forecast` over ``[start, end)`` with every other booking
    that asks for an energy as a target (arriving at its start, leaving at its
    end), every other charger of `max_power_w` (booked without an energy, or a
    walk-in that may come at any time) drawing its minimum all the time, and the
    new booking served last with what is left. The average power over the
    period comes back (W). That is a floor: under least laxity first the
    booking's own target usually comes before some of them. Set `bookings` once
    the book exists (it needs the book and the book needs it).
    """

    def __init__(
        self,
        budgets: Callable[[], list[CircuitBudget]],
        max_power_w: Mapping[int, float],
        *,
        min_power_w: float = DEFAULT_MIN_POWER_W,
    ) -> None:
        """Price bookings of the chargers of `max_power_w` against `budgets`."""
        self._budgets = budgets
        self._min_power_w = min_power_w
        self.max_power_w = dict(max_power_w)
        """Each charger's rated power (W)."""
        self.bookings: Callable[[float, float], Iterable[Reservation]] = _no_bookings
        """The bookings overlapping a period (`ReservationBook.reservations`)."""

    def __call__(self, capacity: ChargerCapacity, start: float, end: float) -> float:
        """The average power (W) the charger can count on over the period."""
        if not end > start:
            return 0.0
        own = capacity.charger_id
        cars = [
            ForecastCar(
                charger_id=own,
                remaining_wh=0.0,
                arrival_s=start,
                departure_s=end,
                max_power_w=capacity.max_power_w,
                min_power_w=min(self._min_power_w, capacity.max_power_w),
                has_target=False,
                best_effort=True,
            )
        ]
        with_energy: set[int] = set()
        for booking in self.bookings(start, end):
            if booking.charger_id == own or booking.energy_kwh is None:
                continue
            with_energy.add(booking.charger_id)
            max_power = self.max_power_w.get(booking.charger_id, DEFAULT_MAX_POWER_W)
            cars.append(
                ForecastCar(
                    charger_id=booking.charger_id,
                    remaining_wh=booking.energy_kwh * 1000.0,
                    arrival_s=booking.start,
                    departure_s=booking.end,
                    max_power_w=max_power,
                    min_power_w=min(self._min_power_w, max_power),
                )
            )
        cars.extend(
            ForecastCar(
                charger_id=charger_id,
                remaining_wh=0.0,
                max_power_w=max_power,
                min_power_w=min(self._min_power_w, max_power),
                has_target=False,
            )
            for charger_id, max_power in self.max_power_w.items()
            if charger_id != own and charger_id not in with_energy and max_power > 0.0
        )
        outlook = forecast(cars, self._budgets(), start, until_s=end)
        energy = outlook[own].delivered_wh
        return min(float(capacity.max_power_w), energy * 3600.0 / (end - start))
