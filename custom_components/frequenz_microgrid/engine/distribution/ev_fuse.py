"""Readings that belong together: the chargers' share of a fuse meter's reading.

The per-phase load of everything behind the fuse that is not a steered charger
("other loads", the allocator's `other_currents_a`) is the fuse meter's current
minus the chargers' currents *at the moment the meter sampled* (spec §4). A round
of telemetry arrives spread out and in any order, so the charger readings at hand
may be older or newer than the meter's; in between, our own setpoints may have
moved the chargers. Subtracting a charger reading taken before a setpoint lowered
it (or after one raised it) understates the other loads, and the allocator then
hands out current the fuse does not have: the overload of issue 13.

So a charger's current at the meter's sample time is taken

- exactly from its reading when both were sampled at the same instant;
- otherwise as a *lower bound*: the smaller of its reading and what each setpoint
  that may have been in force between the two sample times allows. Subtracting
  a lower bound can only overstate the other loads — sharing may be less generous
  for a moment, the fuse is never overloaded.

The other direction matters for the setpoints we send next: until a reading taken
after a setpoint's reply arrives, a charger may still draw its old current or
already its new one, so it *counts* at the larger of its reading and every
unconfirmed setpoint (`committed_currents`). A raise goes out only where those
counts plus the raise fit the fuse (`hold_back_raises`); decreases always go out
at once. A held raise follows as soon as the decreases are confirmed, a round of
telemetry later.

A charger that is not heard (silent past the freshness window, or NaN on a
phase) still draws through the fuse meter: the meter measures its real current,
so it is not subtracted there but left in the other loads. As it may rise to
what its setpoints allow before anything shows it, that much is reserved on top
(`unheard_reserve`, `other_loads`): nothing for an idle charger held at 0 W, its
last setpoint's current for one that was charging, until it is heard again. Its
current then counts twice at most (measured and reserved), never less than it
may draw; the others charge on in what the fuse has left.

All times are wall-clock POSIX seconds: sample times are the components' own
clock, sending and reply times the integration's (assumed in sync to well within
a telemetry period, as with NTP).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
import math

type PhaseCurrents = tuple[float, float, float]
"""Current on L1, L2, L3 (A); NaN where unknown."""

_EPSILON_A = 1e-3
"""Float noise between planned and measured currents (a milliampere)."""


@dataclass(frozen=True, slots=True)
class TimedCurrents:
    """Per-phase currents and when the readings they come from were sampled.

    A single component's reading has one sample time; a value computed from
    several meters (a grid formula) spans from its oldest to its newest reading.
    """

    currents_a: PhaseCurrents
    first_sampled: float
    last_sampled: float

    def sampled_with(self, other: TimedCurrents) -> bool:
        """Whether both were sampled at one and the same instant."""
        return (
            self.first_sampled
            == self.last_sampled
            == other.first_sampled
            == other.last_sampled
        )


@dataclass(frozen=True, slots=True)
class SentSetpoint:
    """A setpoint sent to a charger, as the fuse bookkeeping needs it."""

    currents_a: PhaseCurrents
    """Per-phase current the setpoint lets the charger draw (A)."""
    sent_at: float
    """When sending started: from then on the charger may follow it."""
    acked_at: float = math.inf
    """When the reply came (inf: in flight): by then the charger has it."""


def in_force_between(
    setpoints: Sequence[SentSetpoint], start: float, end: float
) -> list[SentSetpoint]:
    """The setpoints (oldest first) a charger may have followed in [start, end].

    A setpoint may be followed from when it was sent until the next one has
    surely arrived (that one's reply).
    """
    found: list[SentSetpoint] = []
    for index, setpoint in enumerate(setpoints):
        until = (
            setpoints[index + 1].acked_at if index + 1 < len(setpoints) else math.inf
        )
        if setpoint.sent_at <= end and until >= start:
            found.append(setpoint)
    return found


def unconfirmed(
    setpoints: Sequence[SentSetpoint], sampled_at: float
) -> list[SentSetpoint]:
    """The setpoints a reading sampled at `sampled_at` may not reflect yet."""
    return [s for s in setpoints if s.acked_at > sampled_at]


def current_at_fuse_sample(
    charger: TimedCurrents | None,
    fuse: TimedCurrents,
    setpoints: Sequence[SentSetpoint],
) -> PhaseCurrents:
    """The charger's current when the fuse meter sampled, or a lower bound of it.

    Exact when both were sampled together; otherwise the smaller of the charger's
    reading and every setpoint it may have followed between the two sample
    times. No reading at all: NaN (the allocator then counts the phase as taken).
    """
    if charger is None:
        return (math.nan, math.nan, math.nan)
    if charger.sampled_with(fuse):
        return charger.currents_a
    start = min(charger.first_sampled, fuse.first_sampled)
    end = max(charger.last_sampled, fuse.last_sampled)
    bound = charger.currents_a
    for setpoint in in_force_between(setpoints, start, end):
        bound = _phase_min(bound, setpoint.currents_a)
    return bound


def committed_currents(
    charger: TimedCurrents | None, setpoints: Sequence[SentSetpoint]
) -> PhaseCurrents:
    """What the charger may draw until its setpoints are confirmed (upper bound).

    The larger of its reading and every setpoint the reading does not reflect
    yet; NaN without a reading.
    """
    if charger is None:
        return (math.nan, math.nan, math.nan)
    bound = charger.currents_a
    for setpoint in unconfirmed(setpoints, charger.last_sampled):
        bound = _phase_max(bound, setpoint.currents_a)
    return bound


@dataclass(frozen=True, slots=True)
class PlannedSetpoint:
    """A charger's new setpoint as planned, and what it stands at now."""

    power_w: float
    currents_a: PhaseCurrents
    """Per-phase current the new setpoint allows (A)."""
    standing_power_w: float
    """The setpoint the charger holds now (W; 0 when it holds none)."""
    committed_a: PhaseCurrents
    """What it may draw until its setpoints are confirmed (`committed_currents`)."""


def hold_back_raises(
    planned: Mapping[int, PlannedSetpoint], capacity_a: PhaseCurrents
) -> dict[int, float]:
    """The setpoints to send now: the plan, with raises held where they don't fit.

    During the change every charger may draw the larger of its committed and its
    new current. On a phase where that sum exceeds the capacity (the fuse minus
    the other loads), a charger raised on that phase keeps the smaller of its
    standing and its planned setpoint until the decreases are confirmed; every
    decrease goes out at once.
    """
    transitional = [0.0, 0.0, 0.0]
    for setpoint in planned.values():
        for index, current in enumerate(
            _phase_max(setpoint.committed_a, setpoint.currents_a)
        ):
            transitional[index] += current
    over = {
        index
        for index in range(3)
        if not transitional[index] <= capacity_a[index] + _EPSILON_A  # NaN: over
    }
    released: dict[int, float] = {}
    for component_id, setpoint in planned.items():
        raised = any(
            not setpoint.currents_a[index] <= setpoint.committed_a[index] + _EPSILON_A
            for index in over
        )
        released[component_id] = (
            min(setpoint.standing_power_w, setpoint.power_w)
            if raised
            else setpoint.power_w
        )
    return released


def uncontrolled_currents(
    fuse_currents_a: PhaseCurrents, charger_currents_a: Iterable[PhaseCurrents]
) -> PhaseCurrents:
    """Per-phase current of the loads behind the fuse that are not these chargers.

    The fuse meter measures everything; subtracting the chargers' currents at
    its sample time (`current_at_fuse_sample`) leaves the rest. A NaN anywhere on
    a phase makes that phase NaN, which the allocator treats as fully taken: a
    charger whose current is unknown may be drawing anything.
    """
    chargers = list(charger_currents_a)
    l1, l2, l3 = (
        fuse - math.fsum(currents[index] for currents in chargers)
        for index, fuse in enumerate(fuse_currents_a)
    )
    return (l1, l2, l3)


def unheard_reserve(setpoints: Sequence[SentSetpoint]) -> float:
    """What a charger without a current reading may draw on any phase (A).

    The most any of its logged setpoints allows (the newest one and those it
    may still be following), on whichever phase: its EV may change while it
    is silent. 0 for a charger held at 0 W or never sent a setpoint.
    """
    return max(
        (max(setpoint.currents_a) for setpoint in setpoints),
        default=0.0,
    )


def other_loads(
    fuse_currents_a: PhaseCurrents,
    chargers: Iterable[tuple[PhaseCurrents, Sequence[SentSetpoint]]],
) -> PhaseCurrents:
    """The other loads behind the fuse, with unheard chargers left in the meter.

    Each charger comes with its current at the fuse meter's sample time
    (`current_at_fuse_sample`) and its setpoints. Where that current is known
    it is subtracted (`uncontrolled_currents`). Where it is not (a silent
    charger, or NaN on a phase), the charger's real draw is still in the
    meter's reading and stays there, and its `unheard_reserve` is added: it
    may rise to that before a reading shows it. An unknown fuse reading stays
    unknown (NaN: the phase is taken).
    """
    counted: list[PhaseCurrents] = []
    for currents, setpoints in chargers:
        if not any(map(math.isnan, currents)):  # every tick, every charger
            counted.append(currents)
            continue
        reserve = unheard_reserve(setpoints)
        l1, l2, l3 = (-reserve if math.isnan(c) else c for c in currents)
        counted.append((l1, l2, l3))
    return uncontrolled_currents(fuse_currents_a, counted)


def committed_beside_meter(
    charger: TimedCurrents | None, setpoints: Sequence[SentSetpoint]
) -> PhaseCurrents:
    """What a charger counts for `hold_back_raises` beside `other_loads`.

    Its `committed_currents`; a silent charger counts 0 A, since the other
    loads hold it already (the meter's reading plus its reserve). A phase a
    heard charger reports NaN on counts at its `unheard_reserve` (the other
    loads may not hold it: they come from a reading of another instant).
    """
    if charger is None:
        return (0.0, 0.0, 0.0)
    committed = committed_currents(charger, setpoints)
    if not any(map(math.isnan, committed)):
        return committed
    reserve = unheard_reserve(setpoints)
    l1, l2, l3 = (reserve if math.isnan(c) else c for c in committed)
    return (l1, l2, l3)


def _phase_min(a: PhaseCurrents, b: PhaseCurrents) -> PhaseCurrents:
    """Phase-wise minimum; NaN stays NaN (unknown is not a bound)."""
    l1, l2, l3 = (math.nan if x != x else min(x, y) for x, y in zip(a, b, strict=True))
    return (l1, l2, l3)


def _phase_max(a: PhaseCurrents, b: PhaseCurrents) -> PhaseCurrents:
    """Phase-wise maximum; NaN stays NaN."""
    l1, l2, l3 = (math.nan if x != x else max(x, y) for x, y in zip(a, b, strict=True))
    return (l1, l2, l3)
