"""Battery pool steering: target → working pairs → SoC-balanced split → inverters.

Per component set with a target (spec §2–§3): the working batteries are paired
with their inverters, the measured power of requested-but-unusable inverters is
subtracted, the rest is split by `distribute_battery_power` and sent to the
inverters. Nothing goes to an inverter whose batteries are not all working; an
inverter that drops out while it runs a setpoint is stopped (0 W, once) and then
no longer kept alive: a battery that can no longer be steered (its data stale,
NaN or incomplete) must not run an old command, perhaps against the
one asked now, until the command's lifetime lapses.

On a tick the split is recomputed from the latest telemetry and sent only when it
moved noticeably, when the pairs changed, or when a standing setpoint is no longer
allowed by its pair's bounds (safety first). An inverter whose batteries are
blocked after a failed command is retried only once the block has run out, so the
back-off is honoured.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
import math

from .. import members
from ..bounds import PowerBounds
from ..distribution.battery import (
    BatteryDistribution,
    InverterBatteries,
    distribute_battery_power,
    reachable_bounds,
)
from ..distribution.battery_results import battery_result
from ..distributor import DispatchReport
from ..hub.battery_for_evs import DischargeBudget, DischargeLimit
from ..power_manager import PowerManager
from ..results import Request, Result
from .grid_fuse import FuseBudget, FuseRoomOf
from .inputs import BatteryPairs, can_take_setpoint
from .status import Pool
from .steering import (
    ComponentSet,
    PoolSteering,
    Results,
    SteeringContext,
)

type _Pairs = tuple[list[InverterBatteries], float]
"""Usable inverter–battery pairs and the unreachable power (`BatteryPairs`)."""


class BatteryPoolSteering(PoolSteering):
    """Steers the battery pool (shifting matryoshka, 0 W by default)."""

    pool = Pool.BATTERIES

    def __init__(
        self,
        context: SteeringContext,
        manager: PowerManager,
        *,
        exponent: float = 1.0,
        discharge_limit: DischargeLimit | None = None,
        fuse_room: FuseRoomOf | None = None,
    ) -> None:
        """Steer every battery of the topology, balancing SoC with `exponent`.

        `discharge_limit` bounds the pool's discharge on every round, whatever
        the targets (the charging hub: no battery energy into the EVs);
        `fuse_room` bounds its charge and discharge by the grid fuse
        (`grid_fuse`).
        """
        super().__init__(context, manager, context.topology.battery_ids)
        self._exponent = exponent
        self._discharge_limit = discharge_limit
        self._fuse_room = fuse_room
        self.wanted_w: float | None = None
        """What the sets' targets asked of the pool last round, before the grid
        fuse bounded them (0 W for a set released and without any target; `None`:
        not steered yet): the EV chargers leave room for it."""
        self.before_import_rise: Callable[[], Awaitable[None]] | None = None
        """Awaited each round once `wanted_w` is known, before the fuse's room is
        taken and anything is sent: the controller has the EV chargers lowered
        first where they counted on a discharge that now ends or shrinks."""
        self._battery_pairs = BatteryPairs(context.topology, context.store)
        self._last_pairs: tuple[ComponentSet, float, _Pairs] | None = None
        """The pairs `system_bounds` just built, for the distribution that follows."""
        self._lost: dict[ComponentSet, set[int]] = {}
        """Per set, inverters forgotten while running (a refresh withheld or
        failed): stopped at the set's next round if they cannot be steered."""

    def follow_topology(
        self,
        context: SteeringContext,
        component_ids: frozenset[int],
        gone: frozenset[int],
    ) -> set[ComponentSet]:
        """Pair the batteries of the new topology with their inverters."""
        renamed = super().follow_topology(context, component_ids, gone)
        self._lost.clear()  # keyed by the old sets; the gone must get nothing
        self._battery_pairs = BatteryPairs(context.topology, context.store)
        self._last_pairs = None
        return renamed

    def _pairs(self, component_ids: ComponentSet, now: float) -> _Pairs:
        """The set's usable pairs at `now`, built once per step.

        The controller asks for a set's system bounds and then, in the same
        synchronous step (same `now`, nothing awaited in between), distributes
        its target: both use the same pairs, built from the same telemetry.
        `_steer_set` consumes them, so they are never reused after an await.
        """
        last = self._last_pairs
        if last is not None and last[1] == now and last[0] == component_ids:
            return last[2]
        ctx = self.context
        working = ctx.health.working(component_ids, now)
        pairs = self._battery_pairs.usable(component_ids, working)
        self._last_pairs = (component_ids, now, pairs)
        return pairs

    def still_allows(self, component_id: int, power: float) -> bool:
        """Whether the inverter's pair, as its latest telemetry has it, allows `power`.

        The pair's bounds (the inverter's and its batteries' together, the SoC
        limits included) are those a tick checks a standing setpoint against: a
        battery's discharge bound shrinks as its SoC falls, so a refresh of a
        value decided some time ago may no longer be allowed. An unusable pair
        (stale or incomplete data) allows nothing but 0 W.
        """
        if power == 0.0:
            return True
        pair = self._battery_pairs.pair(component_id)
        return pair is not None and pair.bounds.allows(power)

    def system_bounds(self, component_ids: ComponentSet, now: float) -> PowerBounds:
        """What the set's usable pairs can serve (`reachable_bounds`)."""
        pairs, _ = self._pairs(component_ids, now)
        return reachable_bounds(pairs) if pairs else PowerBounds.zero()

    async def steer(self, now: float, *, force: Iterable[ComponentSet] = ()) -> Results:
        """Distribute every set's target; 0 W once to a set whose target went away."""
        forced = set(force)
        results: Results = {}
        budget = DischargeBudget(
            None if self._discharge_limit is None else self._discharge_limit()
        )
        targets = list(self._targets())
        wanted = [
            (ids, None if target is None else budget.bound(target))
            for ids, target in targets
        ]
        # A set released gets 0 W, and a battery nobody steers stands at 0 W
        # (the pool's default): a discharge that ends adds import too.
        self.wanted_w = math.fsum(w for _, w in wanted if w is not None)
        if self.before_import_rise is not None:
            await self.before_import_rise()
        fuse = self._fuse_budget([ids for ids, _ in targets])
        for component_ids, target in wanted:
            releasing = target is None
            result = await self._steer_set(
                component_ids,
                0.0 if target is None else target,
                fuse,
                now,
                force=component_ids in forced or releasing,
            )
            if releasing:
                self._drop(component_ids)
            if result is not None:
                results[component_ids] = result
        return results

    @property
    def inverter_ids(self) -> frozenset[int]:
        """The inverters that carry the pool's power (what the grid fuse sees)."""
        return self.context.topology.battery_inverter_ids

    def _fuse_budget(self, steered: Iterable[ComponentSet]) -> FuseBudget:
        """The grid fuse's room for this round's sets (`grid_fuse`).

        Not even looked up without a set to steer (no cost on a quiet site).
        """
        steered = list(steered)
        if self._fuse_room is None or not steered:
            return FuseBudget(None)
        unsteered = self.inverter_ids.difference(*map(self._inverters_of, steered))
        return FuseBudget(
            self._fuse_room(self.inverter_ids),
            self.context.store.fresh_values(members.AC_POWER, unsteered).values(),
        )

    def _inverters_of(self, component_ids: ComponentSet) -> frozenset[int]:
        """The inverters of a set's batteries."""
        topology = self.context.topology
        return frozenset(
            inverter
            for battery in component_ids
            for inverter in topology.inverters_of_battery(battery)
        )

    async def _steer_set(
        self,
        component_ids: ComponentSet,
        wanted: float,
        fuse: FuseBudget,
        now: float,
        *,
        force: bool,
    ) -> Result | None:
        """Distribute one set's target; return the result if anything was decided.

        Within the grid fuse's room: the room left if the inverters whose lines
        are not known yet take no power, unless the split gives them some (then
        the room as if all of theirs could be on any one line).
        """
        pairs, unreachable = self._pairs(component_ids, now)
        self._last_pairs = None
        inverters = self._inverters_of(component_ids)
        target, limited_by = fuse.allowance(wanted, inverters, hopeful=True)
        outcome = distribute_battery_power(
            target, pairs, exponent=self._exponent, unreachable_power=unreachable
        )
        if isinstance(outcome, BatteryDistribution) and fuse.uses_unknown(
            outcome.setpoints
        ):
            target, limited_by = fuse.allowance(wanted, inverters)
            outcome = distribute_battery_power(
                target, pairs, exponent=self._exponent, unreachable_power=unreachable
            )
        fuse.take(target)
        request = Request(
            power=target, component_ids=component_ids, limited_by=limited_by
        )
        if not isinstance(outcome, BatteryDistribution):
            # Nothing to distribute: stop keeping alive what this set commanded
            # (and stop the inverters that can no longer be steered).
            was_steered = self._is_steered(component_ids)
            await self._send_stopping(component_ids, {}, {}, pairs, now)
            return battery_result(request, outcome) if force or was_steered else None
        setpoints = outcome.setpoints
        to_send = setpoints
        if not force:
            bounds = {pair.inverter_id: pair.bounds for pair in pairs}
            changes = self._changes(component_ids, setpoints, bounds, target, now)
            if changes is None:
                return None
            to_send = changes
        report = await self._send_stopping(
            component_ids, setpoints, to_send, pairs, now
        )
        return battery_result(request, outcome, failed_inverters=report.failed)

    def _commanded_through(
        self, component_id: int, component_ids: ComponentSet
    ) -> bool:
        """Whether the inverter feeds a battery of the set (its setpoints do)."""
        return any(
            battery in component_ids
            for battery in self.context.topology.batteries_of_inverter(component_id)
        )

    def forget(self, component_ids: Collection[int]) -> None:
        """As `PoolSteering.forget`, remembering the inverters that were running.

        A refresh withheld because the inverter's pair is no longer usable
        forgets it before any tick; the set's next round then stops it
        (`_send_stopping`) rather than letting the old setpoint run on for the
        rest of its lifetime.
        """
        for ids, sent in self._sent.items():
            running = {cid for cid in component_ids if sent.get(cid, 0.0) != 0.0}
            if running:
                self._lost.setdefault(ids, set()).update(running)
        super().forget(component_ids)

    async def _send_stopping(
        self,
        component_ids: ComponentSet,
        setpoints: Mapping[int, float],
        to_send: Mapping[int, float],
        usable: Iterable[InverterBatteries],
        now: float,
    ) -> DispatchReport:
        """`_send`, with a stop to each inverter whose pair is no longer usable.

        0 W once, in the same batch, to each inverter this set commanded to run
        (or whose running setpoint was just forgotten) that is not among the
        `usable` pairs any more, if it may take a stop (`_may_stop`). `_send`
        releases it like any inverter left out; it returns to its default when
        the 0 W lapses. A usable inverter left out (a target inside its
        exclusion zone) keeps its setpoint until it lapses: nothing is sent.
        The stops are not part of the set's result.
        """
        kept = {pair.inverter_id for pair in usable}
        running = {
            inverter
            for inverter, power in self._sent.get(component_ids, {}).items()
            if power != 0.0
        } | self._lost.pop(component_ids, set())
        stops = {
            inverter: 0.0
            for inverter in sorted(running)
            if inverter not in kept and self._may_stop(inverter, now)
        }
        report = await self._send(component_ids, setpoints, {**to_send, **stops})
        for outcomes in (report.succeeded, report.failed, report.errors):
            for inverter in stops:  # never among `setpoints` (not usable)
                outcomes.pop(inverter, None)
        return report

    def _may_stop(self, inverter_id: int, now: float) -> bool:
        """Whether a 0 W stop may go to the inverter (`_send_stopping`).

        Not when it cannot take a command (silent, in error), when it or a
        battery behind it is outside its operational lifetime (never even 0 W
        then), nor while a battery behind it is blocked after a failed command
        (the back-off is honoured).
        """
        ctx = self.context
        batteries = ctx.topology.batteries_of_inverter(inverter_id)
        return (
            can_take_setpoint(ctx.store, inverter_id)
            and not any(
                ctx.health.is_out_of_service(component_id)
                for component_id in (inverter_id, *batteries)
            )
            and not self._is_blocked(inverter_id, now)
        )

    def _is_blocked(self, component_id: int, now: float) -> bool:
        """Whether a battery behind the inverter is blocked after a failed command."""
        return any(
            super(BatteryPoolSteering, self)._is_blocked(battery_id, now)
            for battery_id in self.context.topology.batteries_of_inverter(component_id)
        )
