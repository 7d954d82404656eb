"""The grid fuse for the battery and PV pools: no command that overloads it.

The EV allocation holds the grid fuse per phase (spec §4). The battery and PV
pools follow their targets within their components' bounds, as in the Frequenz
SDK, so a battery charge (or a PV curtailment) above what the fuse carries would
overload it for as long as it stands, and a discharge (or PV production) above
what it carries for export likewise. Their targets are therefore bounded, on
every round, by the room the fuse leaves the pool:

- the load besides the pool and the EV chargers ("others") is, per line, the
  grid's current less the pool's share less the chargers' currents, all as they
  were when the grid's reading was sampled (readings that belong together, spec
  §4). Each inverter's power is spread over L1–L3 as its own phase currents
  show (`phase_shares`): evenly for a three-phase inverter, all on one line for a
  single-phase one, anywhere for one not seen carrying power yet;
- the pool's power is turned into current on each line at the most share any
  of its inverters may put there (the split among them is the distribution's);
- import: the pool may draw up to the fuse less the others and the chargers on
  the phase with the least room: it raises only into room the grid shows free.
  A charger counts at the most its setpoints let it draw from now on where
  that is more than it drew (`granted_a`): a car just granted current may start
  drawing it at any moment (its cable still locking), and the grid does not
  show it yet. What the pool wants beyond that the chargers leave free at their
  next round (`pending_import_a`, counted like a load), so the raise follows a
  round later and never meets the chargers' current on the way;
- export: the pool may feed in up to the fuse plus the others on the phase with
  the least room, again without the chargers: a car that stops charging would
  otherwise leave the export above the fuse.

A pool's or a charger's reading taken at another instant than the grid's is
bracketed by its kept readings just before and just after that instant; the
bound takes the side that leaves less room, so a reading out of step can only
make it stricter for a round. A battery's power is only ever moved towards
zero: never turned into a discharge (or the other way round), nor raised, to
relieve the fuse of a load the pool did not cause (spec: never send power
against the request's direction). A discharge (or a production) the chargers
were allocated against is not bounded here when it shrinks: the controller has
the chargers lowered first (`MicrogridController._lower_chargers_first`). A PV
production limit is moved either way within the room. The sets of a round
share the room (`FuseBudget`), what they draw apart from what they feed in: the
room is per line, and a discharge on one line frees nothing on another.
Without a fuse nothing is bounded.

While the grid's currents are unknown (its meter silent, or sending NaN), the
fuse's room cannot be known either: each inverter is held where it stands — it
may move towards 0 W, but neither draw nor feed in more than it was commanded
or measured to (`FuseRoom.held_w`), as the EV chargers hold their minimum then.
A grid whose meters send no phase currents at all (`TelemetryStore.sends`) is
not bounded: there is no fuse reading to lose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
import math

from frequenz.client.microgrid.metrics import Metric

from .. import members
from ..distribution.ev_fuse import PhaseCurrents, TimedCurrents
from ..graph import Topology
from ..pools import CURRENT_PHASES
from ..telemetry import TelemetryStore
from .inputs import FormulaCurrents, grid_fuse_a
from .phase_shares import UNKNOWN, Lines, PhaseShareBook, PhaseShares

type _Bracket = tuple[float, float]
"""The least and the most a value may have been at an instant."""


@dataclass(frozen=True, slots=True)
class FuseRoom:
    """The range of a pool's total power the grid fuse allows now (W, passive sign)."""

    lowest_w: float
    """The most the pool may feed in (negative: discharge, production)."""
    highest_w: float
    """The most the pool may draw (positive: charge)."""
    held_w: Mapping[int, _Bracket] | None = None
    """While the grid's currents are unknown: per inverter, the range from 0 W to
    where it stands (`GridFuse._held`); the two totals above are then unused."""
    unknown: frozenset[int] = frozenset()
    """The pool's inverters whose lines are not known yet (`phase_shares`)."""
    hopeful_w: _Bracket | None = None
    """(lowest, highest) if the `unknown` inverters take no power: the more
    room, when the distribution leaves them out (`None`: as above)."""

    @property
    def blind(self) -> bool:
        """Whether the grid's currents are unknown (the pool is held)."""
        return self.held_w is not None

    @property
    def reason(self) -> str:
        """Why a target was reduced to this room (service responses)."""
        return GRID_CURRENTS_UNKNOWN if self.blind else GRID_FUSE


GRID_FUSE = "grid_fuse"
"""A target was reduced to what the grid fuse carries."""
GRID_CURRENTS_UNKNOWN = "grid_currents_unknown"
"""A target was held where the pool stood: the grid's currents are unknown."""


class GridFuse:
    """Computes a pool's `FuseRoom` from the grid's and the chargers' currents."""

    def __init__(
        self,
        grid: FormulaCurrents,
        store: TelemetryStore,
        topology: Topology,
        *,
        voltage_v: float,
        standing: Callable[[], Mapping[int, float]],
    ) -> None:
        """Bound the pools of `topology` below its grid fuse (`grid`: its currents).

        `standing`: the setpoints the components are commanded to now (W, by
        component id), where a pool is held while the grid's currents are unknown.
        """
        self._store = store
        self._standing = standing
        self.granted_a: Callable[[], Mapping[int, PhaseCurrents]] | None = None
        """Per EV charger, the most current per line its setpoints let it draw
        from now on (`EvPoolSteering.granted_a`): what it draws beyond its
        reading is counted against the pools' import."""
        self._voltage_v = voltage_v
        self.shares = PhaseShareBook(store, voltage_v)
        """Which lines each inverter's power is on."""
        self.follow(grid, topology)

    def follow(self, grid: FormulaCurrents, topology: Topology) -> None:
        """Take a changed topology's fuse, grid formula, chargers and inverters.

        The pools' power and the chargers' currents keep a short history, to be
        paired with the grid's reading.
        """
        self._fuse_a = grid_fuse_a(topology)
        self._grid = grid
        self._chargers = tuple(sorted(topology.ev_charger_ids))
        self._store.keep_history(self._chargers, CURRENT_PHASES)
        inverters = topology.battery_inverter_ids | topology.pv_inverter_ids
        self._store.keep_history(inverters, (members.AC_POWER,))
        self.shares.keep_only(inverters)

    @property
    def watched(self) -> bool:
        """Whether the grid has a fuse to hold (else nothing is bounded)."""
        return self._fuse_a is not None

    def room(self, inverter_ids: Iterable[int]) -> FuseRoom | None:
        """The room of the pool of these inverters; `None`: not bounded."""
        fuse = self._fuse_a
        if fuse is None:
            return None
        inverters = tuple(inverter_ids)
        grid = self._paired_grid(inverters)
        if not all(math.isfinite(current) for current in grid.currents_a):
            if not self._grid.may_measure(self._store):
                return None  # no fuse reading to lose: not bounded
            return self._held(inverters)
        at = grid.last_sampled
        shares = [self.shares.of(inverter) for inverter in inverters]
        pool_low, pool_high = self._pool_currents(inverters, shares, at)
        granted = self._granted_above_drawn(at)
        free_import: list[float] = []
        free_export: list[float] = []
        for phase, metric in enumerate(CURRENT_PHASES):
            _, ev_high = _summed(self._store, self._chargers, metric, at, positive=True)
            grid_a = grid.currents_a[phase]
            free_import.append(fuse - (grid_a - pool_low[phase]) - granted[phase])
            free_export.append(fuse + (grid_a - pool_high[phase] - ev_high))
        lowest_w, highest_w = _room_w(
            free_import, free_export, self._amps_per_watt(shares)
        )
        unknown = frozenset(
            inverter
            for inverter, share in zip(inverters, shares, strict=True)
            if share is UNKNOWN
        )
        if not unknown:
            return FuseRoom(lowest_w=lowest_w, highest_w=highest_w)
        known = [share for share in shares if share is not UNKNOWN]
        return FuseRoom(
            lowest_w=lowest_w,
            highest_w=highest_w,
            unknown=unknown,
            hopeful_w=_room_w(free_import, free_export, self._amps_per_watt(known)),
        )

    def _granted_above_drawn(self, at: float) -> Lines:
        """Per line, what the chargers may draw beyond what they drew at `at` (A).

        Each charger's granted current (`granted_a`) less the least it may have
        drawn when the grid sampled (`_bracket`; nothing below 0 A): the grid's
        reading holds what it drew then, and it may rise to its grant before a
        reading shows it (a car that has not started yet, or is ramping up).
        A charger drawing more than its grant (still lowering) counts as read.
        """
        granted_of = self.granted_a
        if granted_of is None:
            return (0.0, 0.0, 0.0)
        granted = granted_of()
        extra = [0.0, 0.0, 0.0]
        for charger in self._chargers:
            currents = granted.get(charger)
            if currents is None:
                continue
            for phase, metric in enumerate(CURRENT_PHASES):
                least, _ = _bracket(self._store, charger, metric, at)
                grant = currents[phase]
                if math.isfinite(grant):
                    extra[phase] += max(0.0, grant - max(0.0, least))
        return (extra[0], extra[1], extra[2])

    def currents_unknown(self) -> bool:
        """Whether the fuse is watched but the grid's currents are unknown now.

        What holds the pools where they stand (`room`) and the EV chargers at
        their minimum. Not while the grid has no fuse, nor when its meters send
        no phase currents at all (nothing is watched then).
        """
        if self._fuse_a is None:
            return False
        currents = self._grid.measure(self._store).currents_a
        if all(math.isfinite(current) for current in currents):
            return False
        return self._grid.may_measure(self._store)

    def _pool_currents(
        self, inverters: Sequence[int], shares: Sequence[PhaseShares], at: float
    ) -> tuple[list[float], list[float]]:
        """The least and the most current the pool carried on L1–L3 at `at` (A).

        Each inverter's power at `at` (`_bracket`) on the least and the most
        share it may have had on each line.
        """
        low = [0.0, 0.0, 0.0]
        high = [0.0, 0.0, 0.0]
        for inverter, share in zip(inverters, shares, strict=True):
            least_w, most_w = _bracket(self._store, inverter, members.AC_POWER, at)
            for phase in range(3):
                amps = [
                    power * fraction / self._voltage_v
                    for power in (least_w, most_w)
                    for fraction in (share.least[phase], share.most[phase])
                ]
                low[phase] += min(amps)
                high[phase] += max(amps)
        return low, high

    def _amps_per_watt(self, shares: Iterable[PhaseShares]) -> Lines:
        """The most current a watt more of the pool may put on each line (A/W).

        The most share any of its inverters may have there, as the distribution
        may give the watt to any of them.
        """
        per_line = [0.0, 0.0, 0.0]
        for share in shares:
            for phase in range(3):
                per_line[phase] = max(per_line[phase], share.most[phase])
        l1, l2, l3 = (most / self._voltage_v for most in per_line)
        return (l1, l2, l3)

    def _held(self, inverters: Sequence[int]) -> FuseRoom:
        """The room of a pool while the grid is blind: each inverter where it stands.

        Where it stands: its setpoint and its measured power, whichever is
        further from 0 W on each side (a battery that has not reached its
        setpoint yet keeps it; an unsteered PV keeps what it produces). Per
        inverter, so that no set takes what another set stands at.
        """
        standing = self._standing()
        held: dict[int, _Bracket] = {}
        for inverter in inverters:
            commanded = standing.get(inverter, 0.0)
            measured = self._store.value(inverter, members.AC_POWER) or 0.0
            held[inverter] = (
                min(0.0, commanded, measured),
                max(0.0, commanded, measured),
            )
        return FuseRoom(lowest_w=0.0, highest_w=0.0, held_w=held)

    def pending_import_a(
        self, inverter_ids: Iterable[int], wanted_w: float | None, at: float
    ) -> PhaseCurrents:
        """How much more current than at `at` a pool wants to draw, per line (A, ≥ 0).

        Its target less the least it may have drawn then (`_bracket`), on the
        lines its inverters carry it: a charge raised, a discharge or a PV
        production curtailed or stopped all add import. The EV chargers leave
        that free (`EvPoolSteering.pending_import_a`), and the pool raises into
        it once the grid shows it free.
        """
        inverters = tuple(inverter_ids)
        if wanted_w is None or self._fuse_a is None or not inverters:
            return (0.0, 0.0, 0.0)
        shares = [self.shares.of(inverter) for inverter in inverters]
        drawn_low, _ = self._pool_currents(inverters, shares, at)
        # The most current the target may mean on each line (an inverter whose
        # lines are unknown: all of a draw, none of a feed-in, on any one), so
        # that the chargers never raise into current the pool is about to draw.
        if wanted_w >= 0.0:
            per_watt = self._amps_per_watt(shares)
        else:
            per_line = [min(s.least[phase] for s in shares) for phase in range(3)]
            per_watt = (
                per_line[0] / self._voltage_v,
                per_line[1] / self._voltage_v,
                per_line[2] / self._voltage_v,
            )
        l1, l2, l3 = (
            max(0.0, wanted_w * per_watt[phase] - drawn_low[phase])
            for phase in range(3)
        )
        return (l1, l2, l3)

    def _paired_grid(self, inverters: Sequence[int]) -> TimedCurrents:
        """The grid reading the pool's inverters have readings of (`newest_paired`).

        A round of telemetry arrives spread out: the grid's newest reading may
        already count a setpoint the pool's readings of the same instant have
        not shown yet. Bracketing those (`_bracket`) is safe but strict, and a
        strict round followed by an exact one would move the pool up and down.
        Without any kept reading: the newest one (bracketed).
        """
        store = self._store
        since = store.wall_time_s() - store.freshness_s
        best = self._grid.newest_paired(store, inverters, since)
        return self._grid.measure(store) if best is None else best[1]


def _room_w(
    free_import_a: Sequence[float],
    free_export_a: Sequence[float],
    amps_per_watt: Lines,
) -> _Bracket:
    """(lowest, highest) pool power: the tightest line at its current per watt."""
    highest_w = lowest_w = math.inf
    for phase, per_watt in enumerate(amps_per_watt):
        if per_watt == 0.0:
            continue  # the pool puts nothing on this line
        highest_w = min(highest_w, free_import_a[phase] / per_watt)
        lowest_w = min(lowest_w, free_export_a[phase] / per_watt)
    return -lowest_w, highest_w


def _summed(
    store: TelemetryStore,
    component_ids: Iterable[int],
    metric: Metric | int,
    at: float,
    *,
    positive: bool,
) -> _Bracket:
    """The components' `metric` at `at`, added up, bracketed (unknown: 0).

    `positive`: a charger's current (never below 0 when it draws).
    """
    low = high = 0.0
    for component_id in component_ids:
        least, most = _bracket(store, component_id, metric, at)
        if positive:
            least, most = max(0.0, least), max(0.0, most)
        low += least
        high += most
    return low, high


def _bracket(
    store: TelemetryStore, component_id: int, metric: Metric | int, at: float
) -> _Bracket:
    """A component's `metric` at `at`: its kept readings just before and after.

    Exact when one was sampled at `at`. Without kept readings, its latest fresh
    value; not even that: 0 (a component that tells nothing is not steered).
    """
    history = store.history(component_id)
    values: Sequence[float] = ()
    if history is not None and store.is_fresh(component_id):
        before: float | None = None
        after: float | None = None
        for sampled in history.times():  # newest first
            value = (history.at(sampled) or {}).get(metric)
            if value is None or math.isnan(value):
                continue
            if sampled > at:
                after = value
            else:
                before = value
                if sampled == at:  # sampled with the grid: exact
                    after = None
                break
        values = [v for v in (before, after) if v is not None]
    if not values:
        latest = store.value(component_id, metric)
        values = () if latest is None else (latest,)
    if not values:
        return 0.0, 0.0
    return min(values), max(values)


class FuseBudget:
    """Hands out a pool's `FuseRoom` to its component sets of one steering round.

    The sets are steered one after the other; together (with whatever the
    pool's unsteered inverters run at) they stay within the room. What draws
    and what feeds in are kept apart: the room is per line, and a discharge on
    L2 frees nothing on L1, so it must not lend its watts to a charge there.
    """

    def __init__(
        self,
        room: FuseRoom | None,
        unsteered_w: Iterable[float] = (),
        *,
        production_limits: bool = False,
    ) -> None:
        """Start a round with `room` (`None`: nothing bounded).

        `unsteered_w`: what each of the pool's inverters without a set to
        steer runs at. `production_limits`: the targets are PV production
        limits (≤ 0 W), which may be moved either way within the room (a higher
        limit only lets the inverters produce more); otherwise targets are
        powers to run at, which the room only ever moves towards 0 W.
        """
        self._room = room
        unsteered = list(unsteered_w)
        self._drawn_w = math.fsum(max(0.0, power) for power in unsteered)
        self._fed_w = math.fsum(min(0.0, power) for power in unsteered)
        self._limits = production_limits

    def bound_explained(
        self, target_w: float, inverter_ids: Iterable[int]
    ) -> tuple[float, str | None]:
        """`allowance` for the set of these inverters, taken from the room."""
        bounded, reason = self.allowance(target_w, inverter_ids)
        self.take(bounded)
        return bounded, reason

    def allowance(
        self, target_w: float, inverter_ids: Iterable[int], *, hopeful: bool = False
    ) -> tuple[float, str | None]:
        """`target_w` of the set of these inverters within what the room leaves.

        With why it was reduced (`None`: it was not); nothing is taken from the
        room yet (`take`). A power to run at is only ever lowered towards 0 W: a
        charge may be cut (to 0 W at most, never turned into a discharge), a
        discharge likewise, and neither is raised to relieve the fuse of a load
        the pool did not cause. While the grid is blind, a set is held where its
        own inverters stand. `hopeful`: the room if the inverters whose lines
        are unknown take no power (`uses_unknown` tells whether they did).
        """
        room = self._room
        if room is None:
            return target_w, None
        if room.held_w is not None:
            held = [room.held_w.get(inverter, (0.0, 0.0)) for inverter in inverter_ids]
            lowest = math.fsum(low for low, _ in held)
            highest = math.fsum(high for _, high in held)
        else:
            lowest, highest = room.lowest_w, room.highest_w
            if hopeful and room.hopeful_w is not None:
                lowest, highest = room.hopeful_w
            lowest -= self._fed_w
            highest -= self._drawn_w
            if self._limits:  # production lowers the import wherever it is
                highest -= self._fed_w
        if self._limits:
            bounded = min(max(target_w, lowest), highest, 0.0)
        elif target_w >= 0.0:
            bounded = max(0.0, min(target_w, highest))
        else:
            bounded = min(0.0, max(target_w, lowest))
        return bounded, None if bounded == target_w else room.reason

    def uses_unknown(self, setpoints: Mapping[int, float]) -> bool:
        """Whether these setpoints give power to an inverter whose lines are unknown."""
        room = self._room
        return room is not None and any(
            power != 0.0 and inverter in room.unknown
            for inverter, power in setpoints.items()
        )

    def take(self, power_w: float) -> None:
        """Count a set's power as taken from the room (what it draws or feeds in)."""
        if power_w > 0.0:
            self._drawn_w += power_w
        else:
            self._fed_w += power_w


type FuseRoomOf = Callable[[Iterable[int]], FuseRoom | None]
"""A pool's room below the grid fuse, by its inverters (`GridFuse.room`)."""
