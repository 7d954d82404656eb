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
from .forecast import TimeSeries
from .plan_repair import repair, repair_locally
from .plan_slots import (
    EPSILON_WH,
    SlotCapacity,
    SlotNeed,
    envelope_upper_w,
    give,
    price_order,
    slot_uppers_w,
)

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
    capacity = SlotCapacity(circuits, start, slot_s, count, voltage_v)
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

    def running(*runs: NeedRun) -> list[SlotNeed]:
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
    repair_locally(planned, capacity, price_of)
    repair(planned, capacity, price_of)

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


def _order(need: SlotNeed) -> tuple[int, float]:
    return (need.need.charger_id, need.need.earliest_start)


def _need_in_slots(
    need: ChargingNeed,
    index: int,
    circuit_index: Mapping[int, list[int]],
    capacity: SlotCapacity,
    start: float,
    now: float,
    slot_s: float,
    voltage_v: float,
) -> SlotNeed:
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
    return SlotNeed(
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


def _fill_pv(
    needs: Sequence[SlotNeed], capacity: SlotCapacity, pv_of: Sequence[float | None]
) -> None:
    """Share each slot's PV surplus among the needs in it, earliest departure first."""
    for slot, surplus in enumerate(pv_of):
        if surplus is None or surplus <= 0.0:
            continue
        left_w = surplus
        for need in needs:
            if slot not in need.window or left_w <= 0.0:
                continue
            amps = give(need, slot, capacity, left_w / need.watts_per_amp)
            if amps > 0.0:
                need.pv_amps[slot] = need.pv_amps.get(slot, 0.0) + amps
                left_w -= amps * need.watts_per_amp


def _fill_cheapest(
    needs: Sequence[SlotNeed], capacity: SlotCapacity, price_of: Sequence[float | None]
) -> None:
    """Each need, earliest departure first, takes the cheapest slots of its window."""
    for need in needs:
        for slot in price_order(need, price_of):
            if need.left_wh <= EPSILON_WH:
                break
            if give(need, slot, capacity) > 0.0:
                need.grid_source.setdefault(slot, SlotSource.CHEAP)


def _fill_earliest(
    needs: Sequence[SlotNeed],
    capacity: SlotCapacity,
    source: SlotSource = SlotSource.DEADLINE,
) -> None:
    """What is still missing, as early as it fits (earliest departure first)."""
    for need in needs:
        for slot in need.window:
            if need.left_wh <= EPSILON_WH:
                break
            if give(need, slot, capacity) > 0.0:
                need.grid_source.setdefault(slot, source)


def _fill_at_once(
    needs: Sequence[SlotNeed], capacity: SlotCapacity, pv_of: list[float | None]
) -> None:
    """Needs that charge at once, as much as fits from now on (fast, boost).

    A boost only until it ends (`SlotNeed.at_once`): the rest of its need is
    planned as the mode it returns to. Their cars take the PV surplus first
    where there is some (it is theirs physically: they draw before any planned
    car), so it is counted as theirs and what is left of it goes to the others.
    """
    for need in needs:
        for slot, seconds in need.at_once.items():
            if need.left_wh <= EPSILON_WH:
                break
            amps = give(need, slot, capacity, seconds=seconds)
            if amps <= 0.0:
                continue
            need.grid_source.setdefault(slot, SlotSource.AT_ONCE)
            surplus = pv_of[slot]
            if surplus is not None and surplus > 0.0:
                pv_a = min(amps, surplus / need.watts_per_amp)
                need.pv_amps[slot] = need.pv_amps.get(slot, 0.0) + pv_a
                pv_of[slot] = surplus - pv_a * need.watts_per_amp


def _fill_latest(needs: Sequence[SlotNeed], capacity: SlotCapacity) -> None:
    """What solar needs still miss, as late as it fits: their deadline fallback.

    A car in solar mode charges from the grid only once its departure leaves no
    slack (`ChargingTargets`' fallback), so its grid energy lands at the end of
    its window; the latest departure goes first, as it has the latest slots.
    """
    for need in reversed(needs):
        for slot in reversed(need.window):
            if need.left_wh <= EPSILON_WH:
                break
            if give(need, slot, capacity) > 0.0:
                need.grid_source.setdefault(slot, SlotSource.DEADLINE)


def _need_plan(
    need: SlotNeed, start: float, slot_s: float, price_of: Sequence[float | None]
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
    unmet = need.left_wh if need.left_wh > EPSILON_WH else 0.0
    return NeedPlan(need.need, tuple(slots), unmet)
