"""The hub's charging plan: every charging need at once, in 15-minute slots.

datafev schedules one EV at a time (`ChargerCluster` with a smart reservation's
scheduled energy) and evcc plans per charge point, blind to the circuits they
share, so two cars on one feeder both plan the same cheap night hours and one
misses its departure. Here one plan covers the whole hub: per charging need
(charger, energy to deliver, earliest start, departure) the planner

1. fills **PV surplus** first (free energy, shared in order of departure),
2. then the **cheapest** slots of the price forecast: each need in order of
   departure takes the cheapest slots of its window it still needs,
3. then **deadline**: whatever is still missing, as early as possible, in slots
   without a price (beyond the forecast, or no price source at all),
4. and last a **repair**: a need still short gets the slots it depends on from
   needs with a wider window, whose energy moves to their other slots (so a
   need leaving later does not keep a cheap slot a tighter one cannot miss);
   then chains of such moves, as a max-flow's augmenting paths (A moves out
   of the slot the short need wants, into one B leaves for a slot with room,
   ...), until none is left: whenever every need fits in the limits, every
   need is met (the minimum current aside), and what is left unmet otherwise
   is what the limits force; cheap slots are preferred along the way,

and never exceeds any circuit's limits on any phase in any slot: a circuit's
fuse (A per phase, less its other loads spread over the phases), its fixed
power limit and the lowest upper limit its envelope (`envelope.LimitEnvelope`)
holds during the slot. Limits win over deadlines: what does not fit is left
unmet, and the plan says so per need.

A need whose charger does not follow the plan is planned as it will charge,
so the others are planned around what it really takes (`NeedRun`): a charger in
*fast* mode charges as much as it may from now on (booked first, earliest
slots), one in *boost* mode does so until its boost ends and then as the mode
it returns to (`ChargingNeed.at_once_until`), one in *solar* mode takes PV
surplus and the rest only as the deadline forces it (the latest slots), one
that is *off* charges nothing (its whole energy is unmet). Only *smart* needs
follow the PV / cheap / deadline passes and the repair.

PV power is counted against every limit like grid power (conservative: a
feeder's fuse carries it either way, and the grid circuit's envelope is then
held even if the forecast was too sunny).

A slot a need uses is booked at the minimum current at least, for the whole
slot: the live allocator raises any limit below the minimum up to it, so a plan
that counted on less would overrun its circuits. A slot where the minimum does
not fit is not used; a need smaller than a slot at minimum current is delivered
before the slot ends (the car is full), so a slot's energy can be less than its
power over the slot. A charger with several needs at once (a booking and a
target) gets no more than its maximum current in a slot, all needs together.

Times are POSIX seconds (UTC); energies Wh; prices per kWh in the forecast's
currency. Pure computation, no I/O: the Home Assistant layer re-plans when
prices, forecasts, plug-ins, targets or envelopes change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
import math

from .charging_plan import (
    HORIZON_S,
    LONGEST_NEED_S,
    SLOT_S,
    TARGET_ORIGIN,
    ChargingNeed,
    ChargingPlan,
    InvalidNeedError,
    NeedPlan,
    NeedRun,
    PlanCircuit,
    PlannedSlot,
    PlanProblem,
    SlotSource,
    UnplannedDraw,
    need_run,
)
from .envelope import LimitEnvelope
from .forecast import TimeSeries

__all__ = [
    "HORIZON_S",
    "LONGEST_NEED_S",
    "SLOT_S",
    "TARGET_ORIGIN",
    "ChargingNeed",
    "ChargingPlan",
    "InvalidNeedError",
    "NeedPlan",
    "NeedRun",
    "PlanCircuit",
    "PlanProblem",
    "PlannedSlot",
    "SlotSource",
    "UnplannedDraw",
    "envelope_upper_w",
    "need_run",
    "plan_charging",
    "slot_uppers_w",
]

PHASE_COUNT = 3
_EPSILON_WH = 1e-6


def envelope_upper_w(envelope: LimitEnvelope, start: float, end: float) -> float:
    """The lowest upper limit the envelope holds during ``[start, end)`` (inf: none)."""
    lowest = math.inf
    step = envelope.in_force(start)
    if step is not None:
        lowest = step.upper_w
    for later in envelope.steps:
        if start < later.start < end:
            lowest = min(lowest, later.upper_w)
    return lowest


def slot_uppers_w(
    envelope: LimitEnvelope, start: float, slot_s: float, count: int
) -> list[float]:
    """`envelope_upper_w` of `count` slots from `start`, in one walk of the steps."""
    steps = envelope.steps
    uppers: list[float] = []
    index = 0
    for slot in range(count):
        slot_start = start + slot * slot_s
        slot_end = slot_start + slot_s
        while index + 1 < len(steps) and steps[index + 1].start <= slot_start:
            index += 1
        if steps[index].start <= slot_start:
            lowest, later = steps[index].upper_w, index + 1
        else:
            lowest, later = math.inf, index
        while later < len(steps) and steps[later].start < slot_end:
            lowest = min(lowest, steps[later].upper_w)
            later += 1
        uppers.append(lowest)
    return uppers


@dataclass(slots=True)
class _Need:
    """A need while planning: its window per slot and what it got so far."""

    need: ChargingNeed
    index: int
    watts_per_amp: float
    phase_index: tuple[int, ...]
    """The need's phases, 0-based."""
    circuits: list[int]
    charger_a: list[float]
    """Per slot: the current booked on the need's charger, all its needs together
    (the list is shared by the charger's needs)."""
    window: dict[int, float]
    """Slot → seconds of the slot inside the need's window, in slot order."""
    at_once: dict[int, float]
    """Slot → seconds its charger charges at once whatever the plan, in slot
    order: the whole window in fast mode; in boost mode the slots whose part in
    the window begins before the boost ends, to the slot's end if the boost
    returns to smart (the charger then follows the slot's power), else to the
    boost's end."""
    at_once_end: float
    """When charging at once ends (for the order in which such needs are booked)."""
    left_wh: float
    amps: dict[int, float] = field(default_factory=dict)
    """Slot → the current booked per phase (0, or the minimum current at least)."""
    wh: dict[int, float] = field(default_factory=dict)
    """Slot → the energy the need takes of what is booked."""
    pv_amps: dict[int, float] = field(default_factory=dict)
    grid_source: dict[int, SlotSource] = field(default_factory=dict)


class _Capacity:
    """Per circuit and slot: the power and per-phase current still free.

    Per charger and slot: the current booked, all its needs together
    (`_Need.charger_a`).
    """

    def __init__(
        self,
        circuits: Sequence[PlanCircuit],
        start: float,
        slot_s: float,
        count: int,
        voltage_v: float,
    ) -> None:
        self.count = count
        self.charger_a: dict[int, list[float]] = {}
        """Per charger, per slot: the current booked (per phase)."""
        self.power_w: list[list[float]] = []
        self.phase_a: list[list[list[float]]] = []
        """Per circuit, per phase (0-based), per slot."""
        for circuit in circuits:
            other = max(0.0, circuit.other_load_w)
            fuse = (
                math.inf
                if circuit.phase_limit_a is None
                else max(0.0, circuit.phase_limit_a - other / (PHASE_COUNT * voltage_v))
            )
            static = (
                math.inf if circuit.power_limit_w is None else circuit.power_limit_w
            )
            uppers = (
                slot_uppers_w(circuit.envelope, start, slot_s, count)
                if circuit.envelope is not None
                else [math.inf] * count
            )
            self.power_w.append([max(0.0, min(static, u) - other) for u in uppers])
            self.phase_a.append([[fuse] * count for _ in range(PHASE_COUNT)])

    def hold(
        self,
        draw: UnplannedDraw,
        circuits: Iterable[int],
        slots: int,
        voltage_v: float,
    ) -> None:
        """Take what a car charging outside the plan draws, in the first slots.

        On its circuits only: the charger's own need that follows the draw (a
        booking beginning inside the draw's last slot) is the same car going
        on, not a second one beside it.
        """
        currents = draw.held_a
        power_w = math.fsum(currents) * voltage_v
        for slot in range(slots):
            for circuit in circuits:
                self.power_w[circuit][slot] = max(
                    0.0, self.power_w[circuit][slot] - power_w
                )
                for phase, current in enumerate(currents):
                    free = self.phase_a[circuit][phase]
                    free[slot] = max(0.0, free[slot] - current)

    def booked_a(self, charger_id: int) -> list[float]:
        """The charger's booked current per slot (one list for all its needs)."""
        booked = self.charger_a.get(charger_id)
        if booked is None:
            booked = self.charger_a[charger_id] = [0.0] * self.count
        return booked

    def room_a(self, need: _Need, slot: int) -> float:
        """The per-phase current the need could still add in the slot."""
        room = need.need.max_current_a - need.charger_a[slot]
        watts_per_amp = need.watts_per_amp
        for circuit in need.circuits:
            free = self.power_w[circuit][slot] / watts_per_amp
            if free < room:
                room = free
            phases = self.phase_a[circuit]
            for phase in need.phase_index:
                free = phases[phase][slot]
                if free < room:
                    room = free
        return room if room > 0.0 else 0.0

    def take(self, need: _Need, slot: int, amps: float) -> None:
        """Book `amps` per phase of the need's phases in the slot on its circuits."""
        watts = amps * need.watts_per_amp
        need.charger_a[slot] += amps
        for circuit in need.circuits:
            self.power_w[circuit][slot] -= watts
            phases = self.phase_a[circuit]
            for phase in need.phase_index:
                phases[phase][slot] -= amps


def plan_charging(
    needs: Iterable[ChargingNeed],
    circuits: Sequence[PlanCircuit],
    *,
    now: float,
    prices: TimeSeries | None = None,
    pv_surplus_w: TimeSeries | None = None,
    slot_s: float = SLOT_S,
    horizon_s: float = HORIZON_S,
    voltage_v: float = 230.0,
    unplanned: Iterable[UnplannedDraw] = (),
) -> ChargingPlan:
    """Plan every need at once: PV surplus, then cheapest slots, then deadline.

    What `unplanned` cars draw is held on their circuits first, in every slot
    before their `until`: the needs are planned around it.

    Needs that `ChargingNeed.check` refuses, or whose departure has passed, are
    planned with nothing and their whole energy unmet; needs starting beyond
    `horizon_s` from now are left for a later plan. A charger behind no circuit
    is limited by its own maximum only.
    """
    start = math.floor(now / slot_s) * slot_s
    reach = now + horizon_s
    valid: list[ChargingNeed] = []
    refused: list[ChargingNeed] = []
    for need in needs:
        try:
            need.check()
        except InvalidNeedError:
            refused.append(need)
            continue
        if need.earliest_start >= reach:
            continue
        (valid if need.departure > now and need.energy_wh > 0 else refused).append(need)
    last = min(max((n.departure for n in valid), default=now), now + LONGEST_NEED_S)
    count = max(0, math.ceil((last - start) / slot_s))
    capacity = _Capacity(circuits, start, slot_s, count, voltage_v)
    circuit_index: dict[int, list[int]] = {}
    for index, circuit in enumerate(circuits):
        for charger_id in circuit.charger_ids:
            circuit_index.setdefault(charger_id, []).append(index)

    unplanned = tuple(unplanned)
    held_slots = [
        _held_slots(draw.until, start, slot_s, reach, count) for draw in unplanned
    ]
    for draw, slots in zip(unplanned, held_slots, strict=True):
        capacity.hold(draw, circuit_index.get(draw.charger_id, ()), slots, voltage_v)
    planning = [
        _need_in_slots(
            need, index, circuit_index, capacity, start, now, slot_s, voltage_v
        )
        for index, need in enumerate(valid)
    ]
    by_departure = sorted(
        planning, key=lambda n: (n.need.departure, n.need.earliest_start, n.index)
    )
    price_of = prices.slot_means(start, slot_s, count) if prices else [None] * count
    pv_of: list[float | None] = (
        pv_surplus_w.slot_means(start, slot_s, count)
        if pv_surplus_w
        else [None] * count
    )
    for draw, slots in zip(unplanned, held_slots, strict=True):
        # Like a car planned at once, it draws the PV surplus before any other.
        draw_w = math.fsum(draw.held_a) * voltage_v
        for slot in range(slots):
            surplus = pv_of[slot]
            if surplus is not None:
                pv_of[slot] = max(0.0, surplus - draw_w)

    def running(*runs: NeedRun) -> list[_Need]:
        return [n for n in by_departure if n.need.runs in runs]

    planned = running(NeedRun.PLANNED)
    solar = running(NeedRun.SOLAR)
    # What charges whatever the plan says goes first: the others plan around it,
    # in order of when charging at once ends (the departure, or the boost's end).
    at_once = sorted(
        (n for n in planning if n.at_once),
        key=lambda n: (n.at_once_end, n.need.earliest_start, n.index),
    )
    _fill_at_once(at_once, capacity, pv_of)
    _fill_pv(running(NeedRun.PLANNED, NeedRun.SOLAR), capacity, pv_of)
    _fill_latest(solar, capacity)
    _fill_cheapest(planned, capacity, price_of)
    _fill_earliest(planned, capacity)
    _repair_locally(planned, capacity, price_of)
    _repair(planned, capacity, price_of)

    plans = [
        _need_plan(n, start, slot_s, price_of) for n in sorted(planning, key=_order)
    ]
    plans.extend(NeedPlan(need, (), max(0.0, need.energy_wh)) for need in refused)
    plans.sort(key=lambda p: (p.need.charger_id, p.need.earliest_start))
    return ChargingPlan(
        created=now,
        start=start,
        slot_s=slot_s,
        needs=tuple(plans),
        unplanned=tuple(unplanned),
    )


def _held_slots(
    until: float, start: float, slot_s: float, reach: float, count: int
) -> int:
    """How many slots from the first a draw held until `until` covers."""
    if not until > start:  # ended already (or NaN)
        return 0
    if until >= reach:
        return count
    return min(count, math.ceil((until - start) / slot_s))


def _order(need: _Need) -> tuple[int, float]:
    return (need.need.charger_id, need.need.earliest_start)


def _need_in_slots(
    need: ChargingNeed,
    index: int,
    circuit_index: Mapping[int, list[int]],
    capacity: _Capacity,
    start: float,
    now: float,
    slot_s: float,
    voltage_v: float,
) -> _Need:
    """The need's window as seconds per slot, from now on."""
    begin = max(need.earliest_start, now)
    window: dict[int, float] = {}
    first = max(0, math.floor((begin - start) / slot_s))
    for slot in range(first, capacity.count):
        slot_start = start + slot * slot_s
        if slot_start >= need.departure:
            break
        seconds = min(slot_start + slot_s, need.departure) - max(slot_start, begin)
        if seconds > 0.0:
            window[slot] = seconds
    at_once: dict[int, float] = {}
    at_once_end = need.departure
    if need.runs is NeedRun.AT_ONCE:
        at_once = window
    elif (until := need.at_once_until) is not None:
        to_slot_end = need.runs is NeedRun.PLANNED
        for slot, seconds in window.items():
            slot_start = start + slot * slot_s
            from_s = max(slot_start, begin)
            if from_s >= until:
                break
            at_once[slot] = seconds if to_slot_end else min(seconds, until - from_s)
            end = slot_start + slot_s if to_slot_end else until
            at_once_end = min(need.departure, end)
    return _Need(
        need=need,
        index=index,
        watts_per_amp=len(need.phases) * voltage_v,
        phase_index=tuple(phase - 1 for phase in need.phases),
        circuits=list(circuit_index.get(need.charger_id, ())),
        charger_a=capacity.booked_a(need.charger_id),
        window=window,
        at_once=at_once,
        at_once_end=at_once_end,
        left_wh=need.energy_wh,
    )


def _give(
    need: _Need,
    slot: int,
    capacity: _Capacity,
    limit_a: float = math.inf,
    seconds: float | None = None,
) -> float:
    """Add what fits of the need's rest in the slot; return the amps added.

    A slot the need uses is booked at the minimum current at least, for the
    whole slot (the live allocator raises a lower limit to the minimum), and
    its energy is what that delivers, up to the need's rest: nothing where the
    minimum does not fit. What the slot has booked already and not used (a
    short rest given back to it) is used first. `seconds`: how long of the
    slot the current flows (a boost ending inside it); its window if `None`.
    """
    if need.left_wh <= _EPSILON_WH:
        return 0.0
    have = need.amps.get(slot, 0.0)
    flowing_s = need.window[slot] if seconds is None else seconds
    wh_per_amp = need.watts_per_amp * flowing_s / 3600.0
    if have > 0.0:
        spare_wh = have * wh_per_amp - need.wh[slot]
        if spare_wh > _EPSILON_WH:
            used = min(spare_wh, need.left_wh)
            need.wh[slot] += used
            need.left_wh -= used
            if need.left_wh <= _EPSILON_WH:
                return 0.0
    at_least = need.need.min_current_a - have
    room = min(capacity.room_a(need, slot), limit_a)
    if room <= 0.0 or room < at_least - 1e-9:
        return 0.0
    amps = min(room, max(need.left_wh / wh_per_amp, at_least))
    if amps <= 0.0:
        return 0.0
    capacity.take(need, slot, amps)
    need.amps[slot] = have + amps
    energy = min(need.left_wh, amps * wh_per_amp)
    need.wh[slot] = need.wh.get(slot, 0.0) + energy
    need.left_wh = max(0.0, need.left_wh - energy)
    return amps


def _fill_pv(
    needs: Sequence[_Need], capacity: _Capacity, pv_of: Sequence[float | None]
) -> None:
    """Share each slot's PV surplus among the needs in it, earliest departure first."""
    for slot, surplus in enumerate(pv_of):
        if surplus is None or surplus <= 0.0:
            continue
        left_w = surplus
        for need in needs:
            if slot not in need.window or left_w <= 0.0:
                continue
            amps = _give(need, slot, capacity, left_w / need.watts_per_amp)
            if amps > 0.0:
                need.pv_amps[slot] = need.pv_amps.get(slot, 0.0) + amps
                left_w -= amps * need.watts_per_amp


def _price_order(need: _Need, price_of: Sequence[float | None]) -> list[int]:
    """The need's priced slots, cheapest first (earlier first at equal price)."""
    return sorted(
        (s for s in need.window if price_of[s] is not None),
        key=lambda s: (price_of[s], s),
    )


def _fill_cheapest(
    needs: Sequence[_Need], capacity: _Capacity, price_of: Sequence[float | None]
) -> None:
    """Each need, earliest departure first, takes the cheapest slots of its window."""
    for need in needs:
        for slot in _price_order(need, price_of):
            if need.left_wh <= _EPSILON_WH:
                break
            if _give(need, slot, capacity) > 0.0:
                need.grid_source.setdefault(slot, SlotSource.CHEAP)


def _repair_locally(
    needs: Sequence[_Need], capacity: _Capacity, price_of: Sequence[float | None]
) -> None:
    """Move other needs' grid energy out of the slots a short need depends on.

    Taking slots earliest departure first can leave a need short where another
    took a slot it could as well have had elsewhere (its window is wider). For
    each need still short, slot by slot (cheapest first), each other need with
    grid energy in that slot moves it to its own other slots where they have
    room, but only where that frees room the short need can use; what does not
    move stays where it was, so no need ever loses energy.
    """
    for short in needs:
        if short.left_wh <= _EPSILON_WH:
            continue
        order = _price_order(short, price_of)
        order += [s for s in short.window if price_of[s] is None]
        for slot in order:
            if short.left_wh <= _EPSILON_WH:
                break
            for other in needs:
                if other is short or short.left_wh <= _EPSILON_WH:
                    continue
                grid_a = other.amps.get(slot, 0.0) - other.pv_amps.get(slot, 0.0)
                if (
                    grid_a <= 0.0
                    or other.grid_source.get(slot) is SlotSource.AT_ONCE
                    or (
                        other.charger_a is not short.charger_a
                        and set(other.circuits).isdisjoint(short.circuits)
                    )
                ):
                    continue
                _move_out(other, short, slot, capacity, price_of)
            if _give(short, slot, capacity) > 0.0:
                source = SlotSource.CHEAP if price_of[slot] is not None else None
                short.grid_source.setdefault(slot, source or SlotSource.DEADLINE)


def _move_out(
    other: _Need,
    short: _Need,
    slot: int,
    capacity: _Capacity,
    price_of: Sequence[float | None],
) -> None:
    """Move `other`'s grid current in `slot` elsewhere if that lets `short` in.

    What stays in the slot (its PV part, and then the minimum current at
    least) keeps as much of the slot's energy as it delivers.
    """
    amps = other.amps[slot]
    pv_a = other.pv_amps.get(slot, 0.0)
    keep_a = max(pv_a, other.need.min_current_a) if pv_a > 0.0 else 0.0
    grid_a = amps - keep_a
    if grid_a <= 1e-9:
        return
    before = min(capacity.room_a(short, slot), short.need.max_current_a)
    capacity.take(other, slot, -grid_a)
    after = min(capacity.room_a(short, slot), short.need.max_current_a)
    have = short.amps.get(slot, 0.0)
    capacity.take(other, slot, grid_a)
    if after <= before + 1e-9 or have + after < short.need.min_current_a - 1e-9:
        return
    wh_per_amp = other.watts_per_amp * other.window[slot] / 3600.0
    slot_wh = other.wh[slot]
    kept_wh = min(slot_wh, keep_a * wh_per_amp)
    capacity.take(other, slot, -grid_a)
    other.amps[slot] = keep_a
    other.wh[slot] = kept_wh
    kept_left = other.left_wh
    other.left_wh = slot_wh - kept_wh
    alternatives = _price_order(other, price_of)
    alternatives += [s for s in other.window if price_of[s] is None]
    for target in alternatives:
        if other.left_wh <= _EPSILON_WH:
            break
        if target != slot and _give(other, target, capacity) > 0.0:
            source = SlotSource.CHEAP if price_of[target] is not None else None
            other.grid_source.setdefault(target, source or SlotSource.DEADLINE)
    # Whatever found no other slot goes back where it was (the room is still
    # there: it held `amps`, the minimum current at least).
    if other.left_wh > _EPSILON_WH:
        back_a = max(other.left_wh / wh_per_amp, other.need.min_current_a - keep_a)
        capacity.take(other, slot, back_a)
        other.amps[slot] = keep_a + back_a
        other.wh[slot] = kept_wh + other.left_wh
    other.left_wh = kept_left


def _slot_costs(price_of: Sequence[float | None]) -> list[float]:
    """What a Wh costs per slot for the repair: the price.

    Unpriced slots come after every priced one, earlier first (as
    `_fill_earliest` takes them).
    """
    top = max((abs(p) for p in price_of if p is not None), default=0.0)
    above = 2.0 * top + 1.0
    return [above + slot if p is None else p for slot, p in enumerate(price_of)]


def _keep_a(need: _Need, slot: int) -> float:
    """What of the need's current in the slot the repair never moves.

    Its PV part, and then the minimum current at least.
    """
    pv_a = need.pv_amps.get(slot, 0.0)
    return max(pv_a, need.need.min_current_a) if pv_a > 0.0 else 0.0


def _movable(need: _Need, slot: int) -> bool:
    """Whether the need has grid current in the slot the repair may move."""
    amps = need.amps.get(slot, 0.0)
    return (
        amps > 0.0
        and need.grid_source.get(slot) is not SlotSource.AT_ONCE
        and amps - _keep_a(need, slot) > 1e-9
    )


def _wh_per_amp(need: _Need, slot: int) -> float:
    return need.watts_per_amp * need.window[slot] / 3600.0


def _room_needed_a(need: _Need, slot: int, freed_w: float = 0.0) -> float:
    """The room (A) the need must find in the slot to move there.

    `freed_w`, what it leaves elsewhere, and its minimum current at least if
    it has none there yet.
    """
    have = need.amps.get(slot, 0.0)
    return max(
        freed_w / need.watts_per_amp,
        need.need.min_current_a - have,
        _EPSILON_WH / _wh_per_amp(need, slot),
    )


_DETOUR_HOPS = 1
"""How many more moves than the shortest chain a cheaper chain may take."""
_Step = tuple[_Need, int, int]
"""A need moving energy from one slot to another."""
_State = tuple[int, tuple[int, ...]]
"""A slot, and the circuits of the need wanting room in it."""


def _augmenting_path(
    short: _Need,
    movers_at: Mapping[int, Mapping[int, _Need]],
    capacity: _Capacity,
    cost: Sequence[float],
    dead: dict[_State, float],
) -> tuple[int, list[_Step]] | None:
    """The cheapest chain of moves that lets `short` add energy, if there is one.

    Breadth-first, as in a max-flow's residual graph: from a slot where `short`
    (or a need moving there) wants room, each need with grid current there whose
    going would make that room can move to a slot of its window where its
    charger has room; a slot with room for the need arriving ends the chain.
    Each need moves once per chain, and a slot is reached once per set of
    circuits. Of the chains found (up to `_DETOUR_HOPS` moves longer than the
    shortest), the one whose moves cost least (the slots' prices,
    `_slot_costs`) wins, then the shortest.

    `movers_at`: per slot, the needs with current in it (by index).
    `dead`: the states a search found no chain from, with the room they needed
    (as in a max-flow, no later move opens a way out of them): skipped unless
    they need less. A search finding nothing adds the states it went through.
    """
    arrived: dict[_State, tuple[_Need, _State | None, float, int, float]] = {}
    """State (slot, the arriving need's circuits) → the need arriving, the state
    it comes from, the cost so far, hops, the room it needs (`_room_needed_a`)."""
    queue: list[_State] = []
    key = tuple(short.circuits)
    for slot in short.window:
        needed = _room_needed_a(short, slot)
        if (
            short.need.max_current_a - short.charger_a[slot] >= needed
            and dead.get((slot, key), math.inf) > needed + 1e-9
        ):
            arrived[slot, key] = (short, None, cost[slot], 0, needed)
            queue.append((slot, key))
    used: set[int] = {short.index}
    best: tuple[float, int, _State] | None = None
    head = 0
    while head < len(queue):
        state = queue[head]
        head += 1
        slot = state[0]
        comer, _, so_far, hops, needed = arrived[state]
        if best is not None and hops > best[1] + _DETOUR_HOPS:
            break
        before = capacity.room_a(comer, slot)
        if before >= needed - 1e-9:
            if best is None or (so_far, hops) < best[:2]:
                best = (so_far, hops, state)
            continue
        tight = _tight(comer, slot, capacity, needed)
        for mover in movers_at.get(slot, {}).values():
            if (
                mover.index in used
                or not all(circuit in mover.circuits for circuit in tight)
                or (
                    comer.need.max_current_a - comer.charger_a[slot] < needed
                    and mover.charger_a is not comer.charger_a
                )
                or not _movable(mover, slot)
                or not _makes_room(mover, comer, slot, capacity, needed)
            ):
                continue
            used.add(mover.index)
            # What it must leave, as power where it goes (its window's seconds).
            freed_w = (needed - before) * comer.watts_per_amp * mover.window[slot]
            charger_a = mover.charger_a
            top = mover.need.max_current_a
            key = tuple(mover.circuits)
            for target in mover.window:
                if (target, key) in arrived:
                    continue
                moving = _room_needed_a(mover, target, freed_w / mover.window[target])
                if (
                    charger_a[target] + moving > top + 1e-9
                    or dead.get((target, key), math.inf) <= moving + 1e-9
                ):
                    continue
                arrived[target, key] = (
                    mover,
                    state,
                    so_far + cost[target] - cost[slot],
                    hops + 1,
                    moving,
                )
                queue.append((target, key))
    if best is None:
        for state, (_, _, _, _, needed) in arrived.items():
            dead[state] = min(needed, dead.get(state, math.inf))
        return None
    steps: list[_Step] = []
    state = best[2]
    while True:
        comer, came_from, _, _, _ = arrived[state]
        if came_from is None:
            break
        steps.append((comer, came_from[0], state[0]))
        state = came_from
    steps.reverse()
    return state[0], steps


def _tight(need: _Need, slot: int, capacity: _Capacity, needed_a: float) -> list[int]:
    """The need's circuits that leave it less room in the slot than it needs.

    Only a need behind all of them (and on the same charger, where that is
    what is short) can make the room by leaving.
    """
    tight: list[int] = []
    for circuit in need.circuits:
        free = capacity.power_w[circuit][slot] / need.watts_per_amp
        phases = capacity.phase_a[circuit]
        for phase in need.phase_index:
            free = min(free, phases[phase][slot])
        if free < needed_a:
            tight.append(circuit)
    return tight


def _makes_room(
    mover: _Need, comer: _Need, slot: int, capacity: _Capacity, needed_a: float
) -> bool:
    """Whether the mover's grid current leaving gives `comer` the room it needs."""
    grid_a = mover.amps[slot] - _keep_a(mover, slot)
    before = capacity.room_a(comer, slot)
    capacity.take(mover, slot, -grid_a)
    after = capacity.room_a(comer, slot)
    capacity.take(mover, slot, grid_a)
    return after > before + 1e-9 and after >= needed_a - 1e-9


def _shift(
    mover: _Need, source: int, target: int, wh: float, capacity: _Capacity
) -> float:
    """Move up to `wh` of the mover's grid energy from `source` to `target`.

    As much as fits in `target` (booked at the minimum current at least); what
    stays in `source` keeps the minimum current at least, or nothing. Returns
    the energy moved.
    """
    keep_a = _keep_a(mover, source)
    wh_per_amp = _wh_per_amp(mover, source)
    movable_wh = mover.wh[source] - min(mover.wh[source], keep_a * wh_per_amp)
    wh = min(wh, movable_wh)
    if wh <= _EPSILON_WH:
        return 0.0
    if keep_a <= 0.0 and movable_wh - wh < mover.need.min_current_a * wh_per_amp:
        # What stays would be booked at the minimum current: better all go.
        wh = movable_wh
    kept_left = mover.left_wh
    mover.left_wh = wh
    _give(mover, target, capacity)
    moved = wh - mover.left_wh
    mover.left_wh = kept_left
    if moved <= _EPSILON_WH:
        return moved
    left_wh = mover.wh[source] - moved
    if left_wh <= _EPSILON_WH and keep_a <= 0.0:
        capacity.take(mover, source, -mover.amps[source])
        del mover.amps[source], mover.wh[source]
        mover.grid_source.pop(source, None)
        return moved
    amps = max(left_wh / wh_per_amp, keep_a, mover.need.min_current_a)
    amps = min(amps, mover.amps[source])
    capacity.take(mover, source, amps - mover.amps[source])
    mover.amps[source] = amps
    mover.wh[source] = left_wh
    return moved


def _augment(
    short: _Need,
    first: int,
    steps: Sequence[_Step],
    capacity: _Capacity,
    price_of: Sequence[float | None],
) -> float:
    """Make the chain's moves, last first, then give `short` its slot.

    How much each move carries is bounded along the chain (what `short` still
    needs and may take, what each need can move), so no need moves more than
    the others can use. Returns the energy `short` gained.
    """
    watts = (
        min(
            short.left_wh / _wh_per_amp(short, first),
            short.need.max_current_a - short.charger_a[first],
        )
        * short.watts_per_amp
    )
    if short.amps.get(first, 0.0) <= 0.0:
        watts = max(watts, short.need.min_current_a * short.watts_per_amp)
    carried: list[float] = []
    for mover, source, target in steps:
        source_wh = mover.wh[source]
        movable_wh = source_wh - min(
            source_wh, _keep_a(mover, source) * _wh_per_amp(mover, source)
        )
        wh = min(watts / mover.watts_per_amp * _wh_per_amp(mover, source), movable_wh)
        if mover.amps.get(target, 0.0) <= 0.0:
            # It is booked at the minimum current there: that much at least.
            at_least = mover.need.min_current_a * _wh_per_amp(mover, target)
            wh = max(wh, min(at_least, movable_wh))
        carried.append(wh)
        watts = wh / _wh_per_amp(mover, target) * mover.watts_per_amp
    for (mover, source, target), wh in zip(
        reversed(steps), reversed(carried), strict=True
    ):
        if _shift(mover, source, target, wh, capacity) <= _EPSILON_WH:
            break
        source_of = SlotSource.CHEAP if price_of[target] is not None else None
        mover.grid_source.setdefault(target, source_of or SlotSource.DEADLINE)
    before = short.left_wh
    if _give(short, first, capacity) > 0.0:
        source_of = SlotSource.CHEAP if price_of[first] is not None else None
        short.grid_source.setdefault(first, source_of or SlotSource.DEADLINE)
    return before - short.left_wh


def _repair(
    needs: Sequence[_Need], capacity: _Capacity, price_of: Sequence[float | None]
) -> None:
    """Reroute other needs' grid energy so that needs still short get theirs.

    Taking slots earliest departure first can leave a need short where others
    took slots they could as well have had elsewhere (a wider window, or room
    left in their other slots). For each need still short (earliest departure
    first), chains of moves are made as augmenting paths of a max-flow are: the
    short need takes room in a slot another need vacates by moving to one of
    its slots, which a third need vacates, ... up to a slot with room. Until no
    chain is left: what is unmet then is what the limits leave no room for (as
    a max-flow over needs and slots, one circuit or several sharing them; the
    minimum current can leave a bit more). Moves never take energy from a need,
    nor touch PV or what charges at once, and prefer cheap slots.
    """
    cost = _slot_costs(price_of)
    dead: dict[_State, float] = {}
    movers_at: dict[int, dict[int, _Need]] = {}
    for need in needs:
        for slot in need.amps:
            movers_at.setdefault(slot, {})[need.index] = need
    for short in needs:
        rounds = 4 * (len(short.window) + len(needs)) + 16
        while short.left_wh > _EPSILON_WH and rounds > 0:
            rounds -= 1
            found = _augmenting_path(short, movers_at, capacity, cost, dead)
            if found is None:
                break
            first, steps = found
            touched = {short.index: short} | {m.index: m for m, _, _ in steps}
            had = {index: set(need.amps) for index, need in touched.items()}
            gained = _augment(short, first, steps, capacity, price_of)
            for index, need in touched.items():
                for slot in had[index].difference(need.amps):
                    del movers_at[slot][index]
                for slot in set(need.amps).difference(had[index]):
                    movers_at.setdefault(slot, {})[index] = need
            if gained <= _EPSILON_WH:
                # The minimum current in the way (the moves made room, not
                # enough of it): no use searching on.
                break


def _fill_earliest(
    needs: Sequence[_Need],
    capacity: _Capacity,
    source: SlotSource = SlotSource.DEADLINE,
) -> None:
    """What is still missing, as early as it fits (earliest departure first)."""
    for need in needs:
        for slot in need.window:
            if need.left_wh <= _EPSILON_WH:
                break
            if _give(need, slot, capacity) > 0.0:
                need.grid_source.setdefault(slot, source)


def _fill_at_once(
    needs: Sequence[_Need], capacity: _Capacity, pv_of: list[float | None]
) -> None:
    """Needs that charge at once, as much as fits from now on (fast, boost).

    A boost only until it ends (`_Need.at_once`): the rest of its need is
    planned as the mode it returns to. Their cars take the PV surplus first
    where there is some (it is theirs physically: they draw before any planned
    car), so it is counted as theirs and what is left of it goes to the others.
    """
    for need in needs:
        for slot, seconds in need.at_once.items():
            if need.left_wh <= _EPSILON_WH:
                break
            amps = _give(need, slot, capacity, seconds=seconds)
            if amps <= 0.0:
                continue
            need.grid_source.setdefault(slot, SlotSource.AT_ONCE)
            surplus = pv_of[slot]
            if surplus is not None and surplus > 0.0:
                pv_a = min(amps, surplus / need.watts_per_amp)
                need.pv_amps[slot] = need.pv_amps.get(slot, 0.0) + pv_a
                pv_of[slot] = surplus - pv_a * need.watts_per_amp


def _fill_latest(needs: Sequence[_Need], capacity: _Capacity) -> None:
    """What solar needs still miss, as late as it fits: their deadline fallback.

    A car in solar mode charges from the grid only once its departure leaves no
    slack (`ChargingTargets`' fallback), so its grid energy lands at the end of
    its window; the latest departure goes first, as it has the latest slots.
    """
    for need in reversed(needs):
        for slot in reversed(need.window):
            if need.left_wh <= _EPSILON_WH:
                break
            if _give(need, slot, capacity) > 0.0:
                need.grid_source.setdefault(slot, SlotSource.DEADLINE)


def _need_plan(
    need: _Need, start: float, slot_s: float, price_of: Sequence[float | None]
) -> NeedPlan:
    slots: list[PlannedSlot] = []
    for slot in sorted(need.amps):
        amps = need.amps[slot]
        if amps <= 0.0:
            continue
        power = amps * need.watts_per_amp
        pv = min(power, need.pv_amps.get(slot, 0.0) * need.watts_per_amp)
        source = (
            SlotSource.PV
            if pv >= power - pv
            else need.grid_source.get(slot, SlotSource.DEADLINE)
        )
        slot_start = start + slot * slot_s
        slots.append(
            PlannedSlot(
                start=max(slot_start, need.need.earliest_start),
                end=min(slot_start + slot_s, need.need.departure),
                power_w=power,
                pv_w=pv,
                source=source,
                price=price_of[slot],
                energy_wh=need.wh[slot],
            )
        )
    unmet = need.left_wh if need.left_wh > _EPSILON_WH else 0.0
    return NeedPlan(need.need, tuple(slots), unmet)
