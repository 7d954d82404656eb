"""What the hub's charging planner takes and gives: needs, circuits, the plan.

`planner.plan_charging` turns `ChargingNeed`s and `PlanCircuit`s into a
`ChargingPlan` of `PlannedSlot`s per need; the steering reads a charger's
planned power from it, the actions and the calendar show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
import math
from typing import NamedTuple

from .circuits import Circuit
from .envelope import LimitEnvelope
from .modes import ChargerMode

SLOT_S = 900.0
"""The planning slot: 15 minutes, the granularity of day-ahead prices since 2025."""
HORIZON_S = 2 * 86400.0
"""Needs starting later than this from now wait for a later plan (day-ahead
prices reach ~36 h); a need within reach is planned up to its departure."""
LONGEST_NEED_S = 8 * 86400.0
"""No plan reaches further than this (a booking lasts at most a week)."""
TARGET_ORIGIN = "target"
"""The origin of a need from a deadline target set by hand (a booking's: its id)."""


class SlotSource(StrEnum):
    """Why energy was planned in a slot (the pass that placed it)."""

    PV = "pv"
    CHEAP = "cheap"
    DEADLINE = "deadline"
    AT_ONCE = "at_once"
    """The charger charges at once whatever the plan (fast or boost mode)."""


class NeedRun(StrEnum):
    """How the need's charger will charge, i.e. what the plan can count on."""

    PLANNED = "planned"
    """It follows the plan (smart mode)."""
    AT_ONCE = "at_once"
    """As much as it may from now on (fast and boost mode)."""
    SOLAR = "solar"
    """PV surplus, and the rest only when the deadline forces it (solar mode)."""
    OFF = "off"
    """Nothing (the charger is off)."""


class PlanProblem(StrEnum):
    """Why a need is not planned (translation keys / response codes)."""

    NOT_FINITE = "plan_not_finite"
    DEPARTURE_NOT_AFTER_START = "plan_departure_not_after_start"
    IN_THE_PAST = "plan_in_the_past"
    UNKNOWN_CHARGER = "plan_unknown_charger"


class InvalidNeedError(ValueError):
    """A charging need that cannot be planned; nothing was planned for it."""

    def __init__(self, problem: PlanProblem, charger_id: int) -> None:
        """Name the problem and the need's charger."""
        super().__init__(f"{problem.value} (charger {charger_id})")
        self.problem = problem
        self.charger_id = charger_id


def need_run(mode: ChargerMode) -> NeedRun:
    """How a charger in `mode` charges a need (a boost charges at once)."""
    match mode:
        case ChargerMode.SMART:
            return NeedRun.PLANNED
        case ChargerMode.SOLAR:
            return NeedRun.SOLAR
        case ChargerMode.OFF:
            return NeedRun.OFF
        case ChargerMode.FAST | ChargerMode.BOOST:
            return NeedRun.AT_ONCE


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargingNeed:
    """Energy one charger should deliver between `earliest_start` and `departure`."""

    charger_id: int
    energy_wh: float
    earliest_start: float
    departure: float
    max_current_a: float = 16.0
    """Per phase: the charger's (and vehicle's) maximum."""
    min_current_a: float = 6.0
    """Per phase: below it the EV does not charge (IEC 61851: 6 A)."""
    phases: tuple[int, ...] = (1, 2, 3)
    """Phases (1–3) the EV draws on."""
    origin: str = ""
    """Where the need comes from (a reservation id, ``target``): shown in the plan."""
    runs: NeedRun = NeedRun.PLANNED
    """How its charger will charge (its mode): only planned needs follow the plan."""
    at_once_until: float | None = None
    """A boost's end: until then the charger charges at once whatever `runs`
    says (the mode it returns to), from then on as `runs` says."""

    def check(self) -> None:
        """Raise `InvalidNeedError` unless the need can be planned at all."""
        numbers = (
            self.energy_wh,
            self.earliest_start,
            self.departure,
            self.max_current_a,
            self.min_current_a,
            self.at_once_until if self.at_once_until is not None else 0.0,
        )
        if (
            not all(map(math.isfinite, numbers))
            or not self.phases
            or not set(self.phases) <= {1, 2, 3}
        ):
            raise InvalidNeedError(PlanProblem.NOT_FINITE, self.charger_id)
        if self.departure <= self.earliest_start:
            raise InvalidNeedError(
                PlanProblem.DEPARTURE_NOT_AFTER_START, self.charger_id
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class UnplannedDraw:
    """A car charging at once that no need describes: what it draws, held on.

    A charger in fast or boost mode without a booking or target in force: the
    plan cannot know how much its car still takes, so, like the circuits' other
    loads, its currents as last measured are expected to go on until `until`
    (the boost's end, the charger's next need, or as far as the plan reaches).
    Every re-plan (each slot, each plug-in and unplug) takes them anew.
    """

    charger_id: int
    currents_a: tuple[float, float, float]
    """Per phase (A), as last measured."""
    until: float = math.inf

    @property
    def held_a(self) -> tuple[float, float, float]:
        """The currents the plan holds: 0 for an unknown (NaN) or negative one."""
        l1, l2, l3 = (
            a if math.isfinite(a) and a > 0.0 else 0.0 for a in self.currents_a
        )
        return (l1, l2, l3)

    def as_dict(self) -> dict[str, object]:
        """A JSON-able form (`until` is `None` while no end is known)."""
        return {
            "charger": self.charger_id,
            "currents_a": list(self.held_a),
            "until": self.until if math.isfinite(self.until) else None,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanCircuit:
    """A circuit as the planner holds it: static limits, envelope, other loads."""

    circuit_id: str
    charger_ids: frozenset[int]
    phase_limit_a: float | None = None
    power_limit_w: float | None = None
    envelope: LimitEnvelope | None = None
    other_load_w: float = 0.0
    """The circuit's other loads, expected to go on (W; e.g. the last measured
    uncontrollable power); taken from the power limits and, spread evenly, from
    each phase's fuse."""

    @classmethod
    def of(
        cls,
        circuit: Circuit,
        envelope: LimitEnvelope | None = None,
        other_load_w: float = 0.0,
    ) -> PlanCircuit:
        """The planner's view of a circuit of the tree."""
        return cls(
            circuit_id=circuit.circuit_id,
            charger_ids=circuit.charger_ids,
            phase_limit_a=circuit.phase_limit_a,
            power_limit_w=circuit.power_limit_w,
            envelope=envelope,
            other_load_w=other_load_w if math.isfinite(other_load_w) else 0.0,
        )


class PlannedSlot(NamedTuple):
    """What a need is given in one slot (over the slot's part in its window).

    `power_w` is what the slot books on the circuits, the minimum current at
    least; `energy_wh` is what the need takes of it, less than `power_w` over
    the slot where the car is full before the slot ends.

    A named tuple: a plan of a whole depot holds thousands, built at every re-plan.
    """

    start: float
    end: float
    power_w: float
    pv_w: float
    """The part of `power_w` planned from the PV surplus."""
    source: SlotSource
    """The pass that placed most of the power."""
    price: float | None
    """The forecast price per kWh (`None`: unknown)."""
    energy_wh: float

    @property
    def grid_wh(self) -> float:
        """The energy not covered by PV (Wh)."""
        if not self.power_w:
            return 0.0
        return self.energy_wh * (1.0 - self.pv_w / self.power_w)

    @property
    def cost(self) -> float | None:
        """What the grid energy costs at the forecast price (`None`: unknown)."""
        return None if self.price is None else self.price * self.grid_wh / 1000.0

    def as_dict(self) -> dict[str, object]:
        """A JSON-able form (the action's response, the sensor's attribute)."""
        cost = self.cost
        return {
            "start": self.start,
            "end": self.end,
            "power_w": round(self.power_w, 1),
            "pv_w": round(self.pv_w, 1),
            "source": self.source.value,
            "price": self.price,
            "energy_kwh": round(self.energy_wh / 1000.0, 4),
            "cost": None if cost is None else round(cost, 4),
        }


@dataclass(frozen=True, slots=True)
class NeedPlan:
    """The slots planned for one need, and what is left unmet."""

    need: ChargingNeed
    slots: tuple[PlannedSlot, ...]
    unmet_wh: float

    @property
    def planned_wh(self) -> float:
        """The energy the plan delivers (Wh)."""
        return math.fsum(s.energy_wh for s in self.slots)

    @property
    def cost(self) -> float:
        """The plan's grid cost where the price is known."""
        return math.fsum(c for s in self.slots if (c := s.cost) is not None)

    def as_dict(self) -> dict[str, object]:
        """A JSON-able form."""
        need = self.need
        return {
            "charger": need.charger_id,
            "origin": need.origin,
            "runs": need.runs.value,
            "boost_until": need.at_once_until,
            "earliest_start": need.earliest_start,
            "departure": need.departure,
            "energy_kwh": round(need.energy_wh / 1000.0, 4),
            "planned_kwh": round(self.planned_wh / 1000.0, 4),
            "unmet_kwh": round(self.unmet_wh / 1000.0, 4),
            "cost": round(self.cost, 4),
            "slots": [slot.as_dict() for slot in self.slots],
        }


@dataclass(frozen=True, slots=True)
class ChargingPlan:
    """The hub's plan: every need's slots, from `start` in `slot_s` steps."""

    created: float
    start: float
    slot_s: float
    needs: tuple[NeedPlan, ...] = ()
    unplanned: tuple[UnplannedDraw, ...] = ()
    """The cars charging at once outside any need, held on their circuits."""
    _by_charger: dict[int, list[NeedPlan]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        """Index the needs by charger (read every tick by the smart mode)."""
        for need_plan in self.needs:
            self._by_charger.setdefault(need_plan.need.charger_id, []).append(need_plan)

    @property
    def unmet_wh(self) -> float:
        """Energy the plan cannot deliver, all needs together (Wh)."""
        return math.fsum(n.unmet_wh for n in self.needs)

    @property
    def cost(self) -> float:
        """The plan's grid cost where prices are known."""
        return math.fsum(n.cost for n in self.needs)

    def of_charger(self, charger_id: int) -> list[NeedPlan]:
        """The charger's planned needs, in order of earliest start."""
        return list(self._by_charger.get(charger_id, ()))

    def power_w(self, charger_id: int, at: float) -> float | None:
        """The power the plan gives the charger at `at`.

        `None` when no need of the charger covering `at` got any energy in the
        plan (none covers it, or the plan could not place any: below the
        minimum current, all capacity taken): its mode then decides alone, as
        holding it at 0 W would hold it for ever. 0 W when the plan holds it
        back now because its energy is planned in other slots.
        """
        covering = [
            n
            for n in self._by_charger.get(charger_id, ())
            if n.slots and n.need.earliest_start <= at < n.need.departure
        ]
        if not covering:
            return None
        return math.fsum(
            slot.power_w
            for n in covering
            for slot in n.slots
            if slot.start <= at < slot.end
        )

    def unmet_wh_of(self, charger_id: int, origin: str) -> float | None:
        """What the plan leaves unmet of the charger's need from `origin`.

        `None` when the plan has no such need (nothing left to deliver, a SoC
        target, beyond the horizon).
        """
        unmet = [
            n.unmet_wh
            for n in self._by_charger.get(charger_id, ())
            if n.need.origin == origin
        ]
        return math.fsum(unmet) if unmet else None

    def as_dict(self) -> dict[str, object]:
        """A JSON-able form: per charger its needs with their slots."""
        chargers: dict[str, list[dict[str, object]]] = {}
        for need_plan in self.needs:
            chargers.setdefault(str(need_plan.need.charger_id), []).append(
                need_plan.as_dict()
            )
        return {
            "created": self.created,
            "slot_s": self.slot_s,
            "unmet_kwh": round(self.unmet_wh / 1000.0, 4),
            "cost": round(self.cost, 4),
            "chargers": chargers,
            "charging_outside_the_plan": [draw.as_dict() for draw in self.unplanned],
        }
