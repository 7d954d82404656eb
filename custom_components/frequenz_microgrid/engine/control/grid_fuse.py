"""The grid fuse for the battery and PV pools: no command that overloads it.

The EV allocation holds the grid fuse per phase (spec §4). The battery and PV
pools follow their targets within their components' bounds, as in the Frequenz
SDK, so a battery charge (or a PV curtailment) above what the fuse carries would
overload it for as long as it stands, and a discharge (or PV production) above
what it carries for export likewise. Their targets are therefore bounded, on
every round, by the room the fuse leaves the pool:

- the load besides the pool and the EV chargers ("others") is, per phase, the
  grid's current less the pool's share less the chargers' currents, all as they
  were when the grid's reading was sampled (readings that belong together, spec
  §4). Each inverter's power is spread over L1–L3 as its own phase currents
  show (`phase_shares`): evenly for a three-phase inverter, all on one line for a
  single-phase one;
- the pool's power is turned into current on each phase at the largest share
  any of its inverters puts there (the split among them is the distribution's);
  an inverter that has not yet carried enough current to tell counts as if all
  its power could be on any one line;
- import: the pool may draw up to the fuse less the others and the chargers on
  the phase with the least room: it raises only into room the grid shows free.
  What it wants beyond that the chargers leave free at their next round
  (`pending_import_a`, counted like a load), so the raise follows a round later
  and never meets the chargers' current on the way;
- export: the pool may feed in up to the fuse plus the others on the phase with
  the least room, again without the chargers: a car that stops charging would
  otherwise leave the export above the fuse.

A pool's or a charger's reading taken at another instant than the grid's is
bracketed by its kept readings just before and just after that instant; the
bound takes the side that leaves less room, so a reading out of step can only
make it stricter for a round. A battery's power is only ever moved towards
zero: never turned into a discharge (or the other way round), nor raised, to
relieve the fuse of a load the pool did not cause (spec: never send power
against the request's direction). A PV production limit is moved either way
within the room. Without a fuse nothing is bounded.

While the grid's currents are unknown (its meter silent, or sending NaN), the
fuse's room cannot be known either: the pool is held where it stands — it may
move towards 0 W, but neither draw nor feed in more than it was commanded or
measured to when the grid went blind (`FuseRoom.blind`), as the EV chargers
hold their minimum then. A grid whose meters send no phase currents at all
(they were never part of its telemetry) is not bounded: there is no fuse
reading to lose.
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

type PhaseShares = tuple[float, float, float]
"""The fractions of an inverter's power on L1, L2, L3 (adding up to 1)."""

LEARN_SHARES_FROM_A = 3.0
"""Phase currents (|L1| + |L2| + |L3|) an inverter must carry for its shares to be
read from them: below, a few amperes of noise would decide them."""

type _Bracket = tuple[float, float]
"""The least and the most a value may have been at an instant."""


@dataclass(frozen=True, slots=True)
class FuseRoom:
    """The range of a pool's total power the grid fuse allows now (W, passive sign)."""

    lowest_w: float
    """The most the pool may feed in (negative: discharge, production)."""
    highest_w: float
    """The most the pool may draw (positive: charge)."""
    blind: bool = False
    """The grid's currents are unknown: the room is where the pool stands."""

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
        self._voltage_v = voltage_v
        self._shares: dict[int, PhaseShares] = {}
        """Each inverter's phase shares, as last seen carrying current."""
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
        self._shares = {
            inverter: shares
            for inverter, shares in self._shares.items()
            if inverter in inverters
        }

    def phase_shares(self, inverter_id: int) -> PhaseShares | None:
        """How the inverter's power spreads over L1–L3 (`None`: not known yet).

        Read from its latest phase currents while they add up to
        `LEARN_SHARES_FROM_A` or more, and remembered for when it is idle.
        """
        store = self._store
        currents = [store.value(inverter_id, metric) for metric in CURRENT_PHASES]
        magnitudes = [abs(c) for c in currents if c is not None]
        total = math.fsum(magnitudes)
        if len(magnitudes) == len(currents) and total >= LEARN_SHARES_FROM_A:
            l1, l2, l3 = (magnitude / total for magnitude in magnitudes)
            self._shares[inverter_id] = (l1, l2, l3)
        return self._shares.get(inverter_id)

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
        shares = [self.phase_shares(inverter) for inverter in inverters]
        pool_low, pool_high = self._pool_currents(inverters, shares, at)
        amps_per_watt = self._amps_per_watt(shares)
        highest_w = lowest_w = math.inf
        for phase, metric in enumerate(CURRENT_PHASES):
            if amps_per_watt[phase] == 0.0:
                continue  # the pool puts nothing on this line
            _, ev_high = _summed(self._store, self._chargers, metric, at, positive=True)
            grid_a = grid.currents_a[phase]
            most_others = grid_a - pool_low[phase]
            least_others = grid_a - pool_high[phase] - ev_high
            highest_w = min(highest_w, (fuse - most_others) / amps_per_watt[phase])
            lowest_w = min(lowest_w, (fuse + least_others) / amps_per_watt[phase])
        return FuseRoom(lowest_w=-lowest_w, highest_w=highest_w)

    def _pool_currents(
        self, inverters: Sequence[int], shares: Sequence[PhaseShares | None], at: float
    ) -> tuple[list[float], list[float]]:
        """The least and the most current the pool carried on L1–L3 at `at` (A).

        Each inverter's power at `at` (`_bracket`) on its shares of the lines; an
        inverter whose shares are unknown carried anywhere from none to all of it
        on each line.
        """
        low = [0.0, 0.0, 0.0]
        high = [0.0, 0.0, 0.0]
        for inverter, known in zip(inverters, shares, strict=True):
            least_w, most_w = _bracket(self._store, inverter, members.AC_POWER, at)
            for phase in range(3):
                fractions = (0.0, 1.0) if known is None else (known[phase],)
                amps = [
                    power * fraction / self._voltage_v
                    for power in (least_w, most_w)
                    for fraction in fractions
                ]
                low[phase] += min(amps)
                high[phase] += max(amps)
        return low, high

    def _amps_per_watt(self, shares: Sequence[PhaseShares | None]) -> PhaseShares:
        """The most current a watt more of the pool may put on each line (A/W).

        The largest share any of its inverters has there, as the distribution
        may give the watt to any of them; an unknown one may put it on any line.
        """
        per_line = [0.0, 0.0, 0.0]
        for known in shares:
            for phase in range(3):
                share = 1.0 if known is None else known[phase]
                per_line[phase] = max(per_line[phase], share / self._voltage_v)
        return (per_line[0], per_line[1], per_line[2])

    def _held(self, inverters: Sequence[int]) -> FuseRoom:
        """The room of a pool while the grid is blind: from 0 W to where it stands.

        Where it stands: its setpoints and its measured power, whichever is
        further from 0 W on each side (a battery that has not reached its
        setpoint yet keeps it; an unsteered PV keeps what it produces).
        """
        standing = self._standing()
        commanded = math.fsum(standing.get(inverter, 0.0) for inverter in inverters)
        measured = measured_power_w(self._store, inverters)
        return FuseRoom(
            lowest_w=min(0.0, commanded, measured),
            highest_w=max(0.0, commanded, measured),
            blind=True,
        )

    def pending_import_a(
        self, inverter_ids: Iterable[int], wanted_w: float | None, at: float
    ) -> PhaseCurrents:
        """How much more current than at `at` a pool wants to draw, per line (A, ≥ 0).

        Its target less the least it may have drawn then (`_bracket`), on the
        lines its inverters carry it (`_amps_per_watt`): the EV chargers leave
        that free (`EvPoolSteering.pending_import_a`), and the pool raises into
        it once the grid shows it free.
        """
        if wanted_w is None or self._fuse_a is None:
            return (0.0, 0.0, 0.0)
        inverters = tuple(inverter_ids)
        low, _ = _summed(self._store, inverters, members.AC_POWER, at, positive=False)
        pending_w = max(0.0, wanted_w - low)
        if pending_w == 0.0:
            return (0.0, 0.0, 0.0)
        l1, l2, l3 = self._amps_per_watt(
            [self.phase_shares(inverter) for inverter in inverters]
        )
        return (pending_w * l1, pending_w * l2, pending_w * l3)

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
    pool's unsteered inverters draw) they stay within the room.
    """

    def __init__(
        self,
        room: FuseRoom | None,
        unsteered_w: float = 0.0,
        *,
        production_limits: bool = False,
    ) -> None:
        """Start a round with `room` (`None`: nothing bounded).

        `production_limits`: the targets are PV production limits (≤ 0 W), which
        may be moved either way within the room (a higher limit only lets the
        inverters produce more); otherwise targets are powers to run at, which
        the room only ever moves towards 0 W.
        """
        self._room = room
        self._taken_w = unsteered_w
        self._limits = production_limits

    def bound_explained(self, target_w: float) -> tuple[float, str | None]:
        """`bound`, and why the target was reduced (`None`: it was not)."""
        bounded = self.bound(target_w)
        if bounded == target_w or self._room is None:
            return bounded, None
        return bounded, self._room.reason

    def bound(self, target_w: float) -> float:
        """`target_w` within what the room still leaves.

        A power to run at is only ever lowered towards 0 W: a charge may be cut
        (to 0 W at most, never turned into a discharge), a discharge likewise,
        and neither is raised to relieve the fuse of a load the pool did not
        cause.
        """
        room = self._room
        if room is None:
            return target_w
        highest = room.highest_w - self._taken_w
        lowest = room.lowest_w - self._taken_w
        if self._limits:
            bounded = min(max(target_w, lowest), highest, 0.0)
        elif target_w >= 0.0:
            bounded = max(0.0, min(target_w, highest))
        else:
            bounded = min(0.0, max(target_w, lowest))
        self._taken_w += bounded
        return bounded


type FuseRoomOf = Callable[[Iterable[int]], FuseRoom | None]
"""A pool's room below the grid fuse, by its inverters (`GridFuse.room`)."""


def measured_power_w(store: TelemetryStore, inverter_ids: Iterable[int]) -> float:
    """The inverters' measured AC power added up (W; unknown ones count 0)."""
    return math.fsum(store.fresh_values(members.AC_POWER, inverter_ids).values())
