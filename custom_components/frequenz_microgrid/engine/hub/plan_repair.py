"""The charging plan's repair: moving bookings so that short needs get theirs.

The plan's passes (`planner`) take slots need by need, earliest departure
first, so a need can end up short where another took a slot it could as well
have had elsewhere. The repair moves such bookings: first one move at a time
(`repair_locally`), then chains of moves found as a max-flow's augmenting
paths (`repair`). Moves never take energy from a need, nor touch PV or what
charges at once, and prefer cheap slots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math

from .charging_plan import SlotSource
from .plan_slots import EPSILON_WH, SlotCapacity, SlotNeed, give, price_order


def repair_locally(
    needs: Sequence[SlotNeed], capacity: SlotCapacity, price_of: Sequence[float | None]
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
        if short.left_wh <= EPSILON_WH:
            continue
        order = price_order(short, price_of)
        order += [s for s in short.window if price_of[s] is None]
        for slot in order:
            if short.left_wh <= EPSILON_WH:
                break
            for other in needs:
                if other is short or short.left_wh <= EPSILON_WH:
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
            if give(short, slot, capacity) > 0.0:
                source = SlotSource.CHEAP if price_of[slot] is not None else None
                short.grid_source.setdefault(slot, source or SlotSource.DEADLINE)


def _move_out(
    other: SlotNeed,
    short: SlotNeed,
    slot: int,
    capacity: SlotCapacity,
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
    alternatives = price_order(other, price_of)
    alternatives += [s for s in other.window if price_of[s] is None]
    for target in alternatives:
        if other.left_wh <= EPSILON_WH:
            break
        if target != slot and give(other, target, capacity) > 0.0:
            source = SlotSource.CHEAP if price_of[target] is not None else None
            other.grid_source.setdefault(target, source or SlotSource.DEADLINE)
    # Whatever found no other slot goes back where it was (the room is still
    # there: it held `amps`, the minimum current at least).
    if other.left_wh > EPSILON_WH:
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


def _keep_a(need: SlotNeed, slot: int) -> float:
    """What of the need's current in the slot the repair never moves.

    Its PV part, and then the minimum current at least.
    """
    pv_a = need.pv_amps.get(slot, 0.0)
    return max(pv_a, need.need.min_current_a) if pv_a > 0.0 else 0.0


def _movable(need: SlotNeed, slot: int) -> bool:
    """Whether the need has grid current in the slot the repair may move."""
    amps = need.amps.get(slot, 0.0)
    return (
        amps > 0.0
        and need.grid_source.get(slot) is not SlotSource.AT_ONCE
        and amps - _keep_a(need, slot) > 1e-9
    )


def _wh_per_amp(need: SlotNeed, slot: int) -> float:
    return need.watts_per_amp * need.window[slot] / 3600.0


def _room_needed_a(need: SlotNeed, slot: int, freed_w: float = 0.0) -> float:
    """The room (A) the need must find in the slot to move there.

    `freed_w`, what it leaves elsewhere, and its minimum current at least if
    it has none there yet.
    """
    have = need.amps.get(slot, 0.0)
    return max(
        freed_w / need.watts_per_amp,
        need.need.min_current_a - have,
        EPSILON_WH / _wh_per_amp(need, slot),
    )


_DETOUR_HOPS = 1
"""How many more moves than the shortest chain a cheaper chain may take."""
_Step = tuple[SlotNeed, int, int]
"""A need moving energy from one slot to another."""
_State = tuple[int, tuple[int, ...]]
"""A slot, and the circuits of the need wanting room in it."""


def _augmenting_path(
    short: SlotNeed,
    movers_at: Mapping[int, Mapping[int, SlotNeed]],
    capacity: SlotCapacity,
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
    arrived: dict[_State, tuple[SlotNeed, _State | None, float, int, float]] = {}
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


def _tight(
    need: SlotNeed, slot: int, capacity: SlotCapacity, needed_a: float
) -> list[int]:
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
    mover: SlotNeed, comer: SlotNeed, slot: int, capacity: SlotCapacity, needed_a: float
) -> bool:
    """Whether the mover's grid current leaving gives `comer` the room it needs."""
    grid_a = mover.amps[slot] - _keep_a(mover, slot)
    before = capacity.room_a(comer, slot)
    capacity.take(mover, slot, -grid_a)
    after = capacity.room_a(comer, slot)
    capacity.take(mover, slot, grid_a)
    return after > before + 1e-9 and after >= needed_a - 1e-9


def _shift(
    mover: SlotNeed, source: int, target: int, wh: float, capacity: SlotCapacity
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
    if wh <= EPSILON_WH:
        return 0.0
    if keep_a <= 0.0 and movable_wh - wh < mover.need.min_current_a * wh_per_amp:
        # What stays would be booked at the minimum current: better all go.
        wh = movable_wh
    kept_left = mover.left_wh
    mover.left_wh = wh
    give(mover, target, capacity)
    moved = wh - mover.left_wh
    mover.left_wh = kept_left
    if moved <= EPSILON_WH:
        return moved
    left_wh = mover.wh[source] - moved
    if left_wh <= EPSILON_WH and keep_a <= 0.0:
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
    short: SlotNeed,
    first: int,
    steps: Sequence[_Step],
    capacity: SlotCapacity,
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
        if _shift(mover, source, target, wh, capacity) <= EPSILON_WH:
            break
        source_of = SlotSource.CHEAP if price_of[target] is not None else None
        mover.grid_source.setdefault(target, source_of or SlotSource.DEADLINE)
    before = short.left_wh
    if give(short, first, capacity) > 0.0:
        source_of = SlotSource.CHEAP if price_of[first] is not None else None
        short.grid_source.setdefault(first, source_of or SlotSource.DEADLINE)
    return before - short.left_wh


def repair(
    needs: Sequence[SlotNeed], capacity: SlotCapacity, price_of: Sequence[float | None]
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
    movers_at: dict[int, dict[int, SlotNeed]] = {}
    for need in needs:
        for slot in need.amps:
            movers_at.setdefault(slot, {})[need.index] = need
    for short in needs:
        rounds = 4 * (len(short.window) + len(needs)) + 16
        while short.left_wh > EPSILON_WH and rounds > 0:
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
            if gained <= EPSILON_WH:
                # The minimum current in the way (the moves made room, not
                # enough of it): no use searching on.
                break
