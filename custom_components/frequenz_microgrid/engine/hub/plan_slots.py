"""The charging plan's working state: each need's slots and each circuit's room.

`plan_charging` (`planner`) books needs into 15-minute slots pass by pass and
`plan_repair` moves bookings between them; both work on the same two pieces of
state, kept here: a `SlotNeed` (a need's window per slot and what it has been
given so far) and the `SlotCapacity` (per circuit, phase and slot, the power
and current still free, and per charger the current booked). `give` is the one
way anything is booked, so the minimum current and the limits hold in every
pass alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
import math

from .charging_plan import ChargingNeed, PlanCircuit, SlotSource, UnplannedDraw
from .envelope import LimitEnvelope

PHASE_COUNT = 3
EPSILON_WH = 1e-6
"""Energy below this counts as none (float sums of slot energies)."""


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
class SlotNeed:
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


class SlotCapacity:
    """Per circuit and slot: the power and per-phase current still free.

    Per charger and slot: the current booked, all its needs together
    (`SlotNeed.charger_a`).
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

    def room_a(self, need: SlotNeed, slot: int) -> float:
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

    def take(self, need: SlotNeed, slot: int, amps: float) -> None:
        """Book `amps` per phase of the need's phases in the slot on its circuits."""
        watts = amps * need.watts_per_amp
        need.charger_a[slot] += amps
        for circuit in need.circuits:
            self.power_w[circuit][slot] -= watts
            phases = self.phase_a[circuit]
            for phase in need.phase_index:
                phases[phase][slot] -= amps


def give(
    need: SlotNeed,
    slot: int,
    capacity: SlotCapacity,
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
    if need.left_wh <= EPSILON_WH:
        return 0.0
    have = need.amps.get(slot, 0.0)
    flowing_s = need.window[slot] if seconds is None else seconds
    wh_per_amp = need.watts_per_amp * flowing_s / 3600.0
    if have > 0.0:
        spare_wh = have * wh_per_amp - need.wh[slot]
        if spare_wh > EPSILON_WH:
            used = min(spare_wh, need.left_wh)
            need.wh[slot] += used
            need.left_wh -= used
            if need.left_wh <= EPSILON_WH:
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


def price_order(need: SlotNeed, price_of: Sequence[float | None]) -> list[int]:
    """The need's priced slots, cheapest first (earlier first at equal price)."""
    return sorted(
        (s for s in need.window if price_of[s] is not None),
        key=lambda s: (price_of[s], s),
    )
