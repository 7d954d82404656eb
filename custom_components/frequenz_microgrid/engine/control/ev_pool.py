"""EV pool steering: the pool target → fair, fuse-safe per-charger setpoints.

Every tick (spec §4) the chargers' latest data (cable state, phase currents,
bounds) goes through `EvChargerAllocator`, with the per-phase fuse of the grid
connection point minus the current of every other load behind it. That estimate
pairs the grid meter's reading with the chargers' currents *at its sample time*
(`distribution.ev_fuse`): exact when they were sampled together, otherwise a
bound from the setpoints each charger may have followed in between, which this
pool logs as it sends them (`ChargerSetpointLog`). Raises that do not fit while
lowered chargers may still draw their old current wait until a reading confirms
the decrease. Only setpoints that changed are sent; the distributor keeps the
others alive. A charger without an EV gets 0 W; a silent or failed one gets
nothing and stops being kept alive. A silent charger still draws through the
meters: it stays in their other loads, with what its last setpoints allow
reserved on top until it is heard again (`ev_fuse.other_loads`), so it never
stops the others. What the chargers' setpoints let them draw from now on
(`granted_a`) the battery and PV pools count against their import: a car just
granted current may start drawing it at any moment (`grid_fuse`).

Component sets: chargers named by a proposal form a set with that set's target;
all other chargers form one more set with the pool default (full charging). Sets
are allocated one after the other against the same fuse, each seeing the
currents planned for the sets before it, so together they never exceed it.

Circuits (`engine.hub.circuits`, spec §4): besides the grid fuse, every circuit
of the tree bounds its chargers – per phase by its fuse less its other loads
(a metered feeder's meter paired with its chargers exactly as the grid meter
is; an unmetered one: its chargers alone, a silent one at its reserve), in
watts by the upper limit of its envelope in force (or its fixed kW limit) less
its other loads. Raises are held back per circuit as they are for the grid
fuse. After each tick every circuit's status (headroom, limit exceeded, energy
above the limit) is recorded in `CircuitLimits`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
import dataclasses
import math

from .. import members
from ..bounds import PowerBounds
from ..distribution.ev_chargers import (
    PHASES,
    CircuitCapacity,
    EvAllocation,
    EvAllocatorConfig,
    EvChargerAllocator,
    EvChargerInput,
)
from ..distribution.ev_fuse import (
    PlannedSetpoint,
    SentSetpoint,
    TimedCurrents,
    committed_beside_meter,
    current_at_fuse_sample,
    hold_back_raises,
    in_force_between,
    other_loads,
)
from ..distributor import DispatchReport
from ..health import ComponentHealth
from ..hub.circuits import Circuit, build_circuit_tree
from ..hub.limits import CircuitLimits
from ..hub.modes import ChargerMode, ChargerModes
from ..hub.targets import ChargingTargets
from ..pools import CURRENT_PHASES
from ..power_manager import PowerManager
from ..results import PartialFailure, Request, Result, Success
from ..telemetry import FreshView
from .charger_setpoints import ChargerSetpointLog
from .inputs import (
    CHARGER_PHASES,
    FormulaCurrents,
    GridCurrents,
    can_take_setpoint,
    charger_currents,
    currents_near,
    ev_charger_input,
    ev_pool_bounds,
    grid_fuse_a,
)
from .status import Pool
from .steering import (
    ComponentSet,
    PoolSteering,
    Results,
    SteeringContext,
    dispatch_result,
)

type PhaseCurrents = tuple[float, float, float]


class EvPoolSteering(PoolSteering):
    """Steers the EV chargers (matryoshka, full charging by default)."""

    pool = Pool.EV_CHARGERS

    def __init__(
        self,
        context: SteeringContext,
        manager: PowerManager,
        config: EvAllocatorConfig | None = None,
        limits: CircuitLimits | None = None,
        modes: ChargerModes | None = None,
        targets: ChargingTargets | None = None,
    ) -> None:
        """Steer every charger of the topology.

        Without a per-phase limit in `config`, the grid connection point's rated
        fuse current is the limit (no limit only if the topology has none).
        Without `limits`, the circuits are the grid root and the feeders the
        topology states, with no envelope set.
        `modes` (the charging hub's charger modes) shape each charger's input
        before it is allocated; without them every charger charges fast.
        `targets` (deadline targets) then give each car with a target its
        laxity, so the allocator serves the least laxity first.
        """
        config = config or EvAllocatorConfig()
        if config.phase_limit_a is None:
            fuse = grid_fuse_a(context.topology)
            config = dataclasses.replace(config, phase_limit_a=fuse)
        super().__init__(context, manager, context.topology.ev_charger_ids)
        self.config = config
        self.limits = limits or CircuitLimits(
            build_circuit_tree(context.topology, config.phase_limit_a)
        )
        self._grid = GridCurrents(context.topology, context.store)
        self._batteries = FormulaCurrents(
            context.topology.formulas.battery, context.store
        )
        self._meters = self._meter_currents()
        context.store.keep_history(context.topology.ev_charger_ids, CURRENT_PHASES)
        self._allocators: dict[ComponentSet, EvChargerAllocator] = {}
        self._log = ChargerSetpointLog()
        self._planned_a: dict[int, PhaseCurrents] = {}
        """While a round sends: per charger, the current its new setpoint allows
        (the log has it only once its own set is being sent)."""
        self.pending_import_a: Callable[[float], PhaseCurrents] | None = None
        """What the battery and PV pools are about to add to the grid's import
        beyond what it showed at a sample time (A per line;
        `GridFuse.pending_import_a`): the chargers leave it free, so those pools
        raise into room the fuse has (`grid_fuse`) instead of into the chargers'
        current."""
        self.modes = modes
        self.targets = targets

    def _meter_currents(self) -> dict[str, FormulaCurrents]:
        """Each metered feeder's meter, read as its circuit's current."""
        store = self.context.store
        return {
            circuit.circuit_id: FormulaCurrents(f"#{circuit.meter_id}", store)
            for circuit in self.limits.tree.circuits
            if circuit.meter_id is not None and not circuit.root
        }

    def follow_topology(
        self,
        context: SteeringContext,
        component_ids: frozenset[int],
        gone: frozenset[int],
        user_circuits: Sequence[Circuit] = (),
    ) -> set[ComponentSet]:
        """Allocate the chargers of the new topology within its circuits.

        The circuit tree is rebuilt from the new wiring (the root keeps its
        phase limit; envelopes set on circuits that remain stay in force).
        """
        renamed = super().follow_topology(context, component_ids, gone)
        topology = context.topology
        self.limits.tree = build_circuit_tree(
            topology, self.config.phase_limit_a, user_circuits
        )
        self._grid = GridCurrents(topology, context.store)
        self._batteries = FormulaCurrents(topology.formulas.battery, context.store)
        self._meters = self._meter_currents()
        context.store.keep_history(topology.ev_charger_ids, CURRENT_PHASES)
        self._allocators.clear()
        if self.modes is not None:
            self.modes.charger_ids = topology.ev_charger_ids
        if self.targets is not None:
            self.targets.charger_ids = topology.ev_charger_ids
        return renamed

    def partition(self) -> list[ComponentSet]:
        """The sets allocated this tick: proposal sets, then everyone else."""
        proposal_sets = [
            ids
            for ids in self.manager.component_sets()
            if self.manager.proposals(ids) and ids <= self.component_ids
        ]
        covered = frozenset().union(*proposal_sets)
        rest = self.component_ids - covered
        return proposal_sets + ([rest] if rest else [])

    def component_sets(self) -> list[ComponentSet]:
        """The sets with system bounds: the base ones and this tick's partition."""
        return sorted(set(super().component_sets()) | set(self.partition()), key=sorted)

    def _sets_in_use(self) -> set[ComponentSet]:
        """The base ones and this tick's partition (the chargers nobody asked for)."""
        return super()._sets_in_use() | set(self.partition())

    def system_bounds(self, component_ids: ComponentSet, now: float) -> PowerBounds:
        """The working chargers' bounds (chargers with an EV), `ev_pool_bounds`."""
        working = self.context.health.working(component_ids, now)
        return ev_pool_bounds(self.context.store, working)

    def target(self, component_ids: ComponentSet, now: float) -> float:
        """The set's target, or the pool default (full charging) without one."""
        target = self.manager.steering_target(component_ids)
        if target is not None:
            return target
        system = self.manager.system_bounds(component_ids)
        if system is None:
            system = self.system_bounds(component_ids, now)
        return self.manager.default_power.of(system)

    async def steer(self, now: float, *, force: Iterable[ComponentSet] = ()) -> Results:
        """Allocate every set against the fuse and send what changed."""
        forced = set(force)
        partition = self.partition()
        orphans = self._forget_stale_sets(partition)
        store = self.context.store
        self._log.forget_before(store.wall_time_s() - store.freshness_s)
        view = store.fresh_view()
        readings = {cid: charger_currents(view, cid) for cid in self.component_ids}
        inputs = self._inputs(now, readings, view)
        others = self._other_currents(readings, self._grid, self.component_ids)
        circuits = self._circuit_capacities(readings, others)
        plans: list[tuple[ComponentSet, float, EvAllocation]] = []
        for component_ids in partition:
            allocator = self._allocators.setdefault(
                component_ids, EvChargerAllocator(self.config)
            )
            target = self.target(component_ids, now)
            allocation = allocator.allocate(
                target,
                [inputs[cid] for cid in sorted(component_ids)],
                now,
                other_currents_a=others,
                circuits=[c for c, _ in circuits],
            )
            others = _add(others, allocation.phase_currents_a)
            circuits = [
                (
                    capacity.less(
                        allocation.currents_of(capacity.charger_ids),
                        # What they draw (a one-phase EV: a third of its
                        # setpoint's watts), as the circuit's meter counts it.
                        math.fsum(allocation.currents_of(capacity.charger_ids))
                        * self.config.nominal_voltage_v,
                    ),
                    others_w,
                )
                for capacity, others_w in circuits
            ]
            plans.append((component_ids, target, allocation))
        released = self._fitting(plans, readings)
        self._record_circuits(plans, circuits, view)
        self._planned_a = self._currents_of(released, plans)
        try:
            results = await self._send_plans(plans, released, now, forced)
        finally:
            self._planned_a = {}
        still_commanded = self.commanded()
        await self.context.distributor.release(orphans - still_commanded.keys())
        return results

    def granted_a(self) -> dict[int, PhaseCurrents]:
        """Per charger, the most current per line its setpoints let it draw from now on.

        The setpoints it may still follow (until a newer one surely arrived) and,
        while a round sends, the one planned for it: a car may draw that much at
        any moment, whatever it draws now (its cable still locking, say). The
        battery and PV pools count it against their import (`GridFuse.room`).
        """
        now = self.context.store.wall_time_s()
        granted = dict(self._planned_a)
        for cid in self.component_ids:
            for setpoint in in_force_between(self._log.of(cid), now, math.inf):
                old = granted.get(cid, (0.0, 0.0, 0.0))
                l1, l2, l3 = (
                    max(a, b) for a, b in zip(old, setpoint.currents_a, strict=True)
                )
                granted[cid] = (l1, l2, l3)
        return granted

    def _currents_of(
        self,
        released: Mapping[int, float],
        plans: Sequence[tuple[ComponentSet, float, EvAllocation]],
    ) -> dict[int, PhaseCurrents]:
        """The current on each line the released setpoints allow, per charger."""
        watts_per_amp = CHARGER_PHASES * self.config.nominal_voltage_v
        return {
            cid: _on_phases(power / watts_per_amp, allocation.setpoints[cid].phases)
            for _, _, allocation in plans
            for cid in allocation.setpoints
            if (power := released.get(cid, 0.0)) > 0.0
        }

    async def _send_plans(
        self,
        plans: Sequence[tuple[ComponentSet, float, EvAllocation]],
        released: Mapping[int, float],
        now: float,
        forced: set[ComponentSet],
    ) -> Results:
        """Send each set's released setpoints that are due; their results."""
        store = self.context.store
        results: Results = {}
        health = self.context.health
        for component_ids, target, allocation in plans:
            # Not even 0 W for a charger outside its operational lifetime.
            setpoints = {
                cid: released[cid]
                for cid in allocation.setpoints
                if can_take_setpoint(store, cid) and not health.is_out_of_service(cid)
            }
            to_send = self._due(component_ids, setpoints, now, component_ids in forced)
            if to_send is None:
                continue
            report = await self._send_logged(
                component_ids, setpoints, to_send, allocation
            )
            request = Request(power=target, component_ids=component_ids)
            results[component_ids] = _as_drawn(
                dispatch_result(request, setpoints, report), allocation
            )
        return results

    def _circuit_capacities(
        self,
        readings: dict[int, TimedCurrents | None],
        grid_others_a: PhaseCurrents,
    ) -> list[tuple[CircuitCapacity, float]]:
        """What each circuit leaves its chargers now, and its other loads (W).

        Per phase: the circuit's fuse less the fuse tolerance and its other
        loads' current (the grid root's phases are the allocator's own phase
        limit, so it has none here). In watts: its power limit in force less
        its other loads, counted as ``current × nominal voltage`` per phase –
        an upper bound of their power, so the chargers never get too much.
        Other loads that feed in are not credited (they can stop at any time).
        """
        wall = self.context.store.wall_time_s()
        voltage = self.config.nominal_voltage_v
        found: list[tuple[CircuitCapacity, float]] = []
        for circuit in self.limits.tree.circuits:
            if circuit.root:
                others_a = grid_others_a
            elif (meter := self._meters.get(circuit.circuit_id)) is not None:
                others_a = self._other_currents(readings, meter, circuit.charger_ids)
            else:  # no meter: its chargers alone, a silent one at the most it may
                others_a = self._unmetered_others(circuit, readings)
            drawn = [max(0.0, a) if not math.isnan(a) else math.nan for a in others_a]
            others_w = math.fsum(drawn) * voltage
            if circuit.root:
                others_w += self._battery_discharge_w()
            phase_capacity = (math.inf, math.inf, math.inf)
            if circuit.phase_limit_a is not None and not circuit.root:
                usable = circuit.phase_limit_a - self.config.fuse_tolerance_a
                l1, l2, l3 = (usable - a for a in drawn)  # NaN stays NaN: 0 A
                phase_capacity = (l1, l2, l3)
            upper = self.limits.upper_limit_w(circuit, wall)
            power = upper - others_w if math.isfinite(upper) else math.inf
            found.append(
                (
                    CircuitCapacity(
                        circuit.circuit_id,
                        circuit.charger_ids & self.component_ids,
                        phase_capacity,
                        power,
                    ),
                    others_w,
                )
            )
        return found

    def _battery_discharge_w(self) -> float:
        """What the batteries discharge now (W, ≥ 0; 0 without batteries or data).

        Added back to the grid circuit's other loads for its power limit, so a
        discharge for peak shaving (`engine.hub.peak_shaving`) lowers the grid
        draw instead of flowing into the EVs: the EVs yield first.
        """
        power = self._batteries.power(self.context.store)
        return -power if power < 0.0 else 0.0  # NaN: 0

    def _record_circuits(
        self,
        plans: list[tuple[ComponentSet, float, EvAllocation]],
        remaining: list[tuple[CircuitCapacity, float]],
        view: FreshView,
    ) -> None:
        """Record each circuit's status: headroom after the setpoints, power, limit.

        Headroom per phase is what the circuit had for its chargers less what
        they are planned to draw (a held-back raise follows within a round, so
        the plan is what the circuit is about to carry); for the grid root, the
        fuse's.
        """
        store = self.context.store
        wall = store.wall_time_s()
        root_headroom = (math.inf, math.inf, math.inf)
        if plans:
            capacity = plans[0][2].phase_capacity_a
            planned = [0.0, 0.0, 0.0]
            for _, _, allocation in plans:
                for index, amps in enumerate(allocation.phase_currents_a):
                    planned[index] += amps
            l1, l2, l3 = (
                cap - amps for cap, amps in zip(capacity, planned, strict=True)
            )
            root_headroom = (l1, l2, l3)
        for circuit, (left, others_w) in zip(
            self.limits.tree.circuits, remaining, strict=True
        ):
            headroom = (
                root_headroom if circuit.root else left.sanitized().phase_capacity_a
            )
            self.limits.observe(
                circuit,
                wall,
                measured_power_w=self._circuit_power(circuit, view),
                headroom_a=headroom,
                uncontrollable_w=others_w,
            )

    def _circuit_power(self, circuit: Circuit, view: FreshView) -> float:
        """The circuit's measured net consumption (W; NaN: unknown).

        The grid formula for the root, its meter for a metered feeder, the sum
        of its chargers' measured power otherwise (read in `view`, the tick's
        one view of the store: the same instant as the allocation's readings).
        """
        store = self.context.store
        if circuit.root:
            return self._grid.power(store)
        if (meter := self._meters.get(circuit.circuit_id)) is not None:
            return meter.power(store)
        powers = [view.value(cid, members.AC_POWER) for cid in circuit.charger_ids]
        return math.fsum(p if p is not None else math.nan for p in powers)

    def _unmetered_others(
        self, circuit: Circuit, readings: Mapping[int, TimedCurrents | None]
    ) -> tuple[float, float, float]:
        """A circuit without a meter: what its silent chargers may draw.

        No meter shows what they really draw, and a silent charger is no longer
        kept alive: once its last setpoint lapses it follows its own default
        (full power, on a real wallbox). So it counts at the larger of its last
        setpoints and its maximum current (from its last known bounds); one
        never heard since start-up takes the circuit (its draw is unknown).
        """
        silent = [
            cid
            for cid in sorted(circuit.charger_ids & self.component_ids)
            if readings[cid] is None
        ]
        if not silent:
            return (0.0, 0.0, 0.0)
        store = self.context.store
        per_amp = CHARGER_PHASES * self.config.nominal_voltage_v
        chargers: list[tuple[PhaseCurrents, Sequence[SentSetpoint]]] = []
        for cid in silent:
            bounds = store.last_known_bounds(cid, members.AC_POWER)
            if bounds is None or not math.isfinite(bounds.inclusion_upper):
                return (math.nan, math.nan, math.nan)
            most_a = max(bounds.inclusion_upper / per_amp, 0.0)
            at_most = SentSetpoint(currents_a=(most_a,) * 3, sent_at=-math.inf)
            chargers.append(((math.nan,) * 3, [*self._log.of(cid), at_most]))
        return other_loads((0.0, 0.0, 0.0), chargers)

    def _other_currents(
        self,
        readings: dict[int, TimedCurrents | None],
        meter: FormulaCurrents,
        charger_ids: Iterable[int],
    ) -> tuple[float, float, float]:
        """Per phase, the current of every load behind `meter` but the chargers.

        The meter's reading minus each charger's current at the meter's
        sample time. Of the grid readings kept, the newest one that every
        charger has a reading of the same instant for is used (readings that
        belong together); failing that, the one with the fewest chargers
        without, each of those counted at a lower bound of its current
        (`current_at_fuse_sample`). Without any kept reading: the latest ones.
        A charger with no current at all (silent) is left in the meter's
        reading, its reserve added (`other_loads`).
        """
        store = self.context.store
        since = store.wall_time_s() - store.freshness_s
        chargers = sorted(charger_ids)
        best = meter.newest_paired(store, chargers, since)
        if best is None:
            fuse = meter.measure(store)
            near = [readings[cid] for cid in chargers]
        else:
            fuse = best[1]
            near = [
                currents_near(store, cid, fuse.first_sampled, since) for cid in chargers
            ]
        others = other_loads(
            fuse.currents_a,
            [
                (
                    current_at_fuse_sample(reading, fuse, self._log.of(cid)),
                    self._log.of(cid),
                )
                for cid, reading in zip(chargers, near, strict=True)
            ],
        )
        pending = self.pending_import_a
        if meter is not self._grid or pending is None:
            return others
        return _add(others, pending(fuse.first_sampled))

    def _fitting(
        self,
        plans: list[tuple[ComponentSet, float, EvAllocation]],
        readings: dict[int, TimedCurrents | None],
    ) -> dict[int, float]:
        """The planned setpoints, with raises held back while they don't fit yet.

        The capacity is the fuse less the other loads, as the first set was
        allocated against (`hold_back_raises`); the same for every circuit with
        a fuse, over its own chargers. A charger keeps the lowest of what its
        circuits release.
        """
        if not plans:
            return {}
        standing = self.commanded()
        planned = {
            cid: PlannedSetpoint(
                power_w=setpoint.power_w,
                currents_a=setpoint.phase_currents_a,
                standing_power_w=standing.get(cid, 0.0),
                committed_a=committed_beside_meter(readings[cid], self._log.of(cid)),
            )
            for _, _, allocation in plans
            for cid, setpoint in allocation.setpoints.items()
        }
        released = hold_back_raises(planned, plans[0][2].phase_capacity_a)
        for circuit in plans[0][2].circuits:
            if not any(map(math.isfinite, circuit.phase_capacity_a)):
                continue
            inside = {
                cid: setpoint
                for cid, setpoint in planned.items()
                if cid in circuit.charger_ids
            }
            for cid, power in hold_back_raises(
                inside, circuit.phase_capacity_a
            ).items():
                released[cid] = min(released[cid], power)
        return released

    async def _send_logged(
        self,
        component_ids: ComponentSet,
        setpoints: dict[int, float],
        to_send: dict[int, float],
        allocation: EvAllocation,
    ) -> DispatchReport:
        """Send like `_send`, logging each setpoint's per-phase current and times."""
        watts_per_amp = CHARGER_PHASES * self.config.nominal_voltage_v
        currents = {
            cid: _on_phases(power / watts_per_amp, allocation.setpoints[cid].phases)
            for cid, power in to_send.items()
        }
        store = self.context.store
        self._log.sending(currents, store.wall_time_s())
        report = DispatchReport()
        try:
            report = await self._send(component_ids, setpoints, to_send)
        finally:
            self._log.replied(to_send.keys(), store.wall_time_s(), report.failed)
        return report

    def _inputs(
        self,
        now: float,
        readings: dict[int, TimedCurrents | None],
        view: FreshView,
    ) -> dict[int, EvChargerInput]:
        """Each charger's allocator input, read in `view` (as `readings` were)."""
        health = self.context.health
        inputs = {
            cid: ev_charger_input(
                self.context.store,
                cid,
                working=health.health(cid, now) is ComponentHealth.WORKING,
                nominal_voltage_v=self.config.nominal_voltage_v,
                confirmed_limit_a=self._log.confirmed_limit_a(
                    cid,
                    None
                    if (reading := readings[cid]) is None
                    else reading.first_sampled,
                ),
                view=view,
                currents=reading,
            )
            for cid in sorted(self.component_ids)
        }
        modes = self.modes
        shaped = inputs if modes is None else modes.apply(inputs, now)
        if self.targets is None:
            return shaped
        return self.targets.apply(
            inputs,
            shaped,
            waits=lambda cid: (
                modes is not None
                and modes.mode(cid) in (ChargerMode.SOLAR, ChargerMode.SMART)
            ),
        )

    def _due(
        self,
        component_ids: ComponentSet,
        setpoints: dict[int, float],
        now: float,
        force: bool,
    ) -> dict[int, float] | None:
        """The chargers whose setpoint changed (all when forced); `None`: nothing.

        The allocator's hysteresis already keeps small changes out, so any change
        is sent. A blocked charger holding nothing waits for its block to end.
        """
        old = self._sent.get(component_ids, {})
        if force:
            return setpoints
        to_send = {
            cid: power
            for cid, power in setpoints.items()
            if old.get(cid) != power and (cid in old or not self._is_blocked(cid, now))
        }
        if to_send or old.keys() - setpoints.keys():
            return to_send
        return None

    def _forget_stale_sets(self, partition: list[ComponentSet]) -> frozenset[int]:
        """Drop sets that are no longer allocated; return their chargers.

        Their chargers belong to another set now, which commands them this tick;
        those it does not command are released afterwards.
        """
        orphans: set[int] = set()
        for component_ids in list(self._sent):
            if component_ids not in partition:
                orphans.update(self._sent.pop(component_ids))
        for component_ids in list(self._allocators):
            if component_ids not in partition:
                del self._allocators[component_ids]
        return frozenset(orphans)


def _as_drawn(result: Result, allocation: EvAllocation) -> Result:
    """The result with its powers counted at what the EVs draw at the setpoints.

    The target is the pool's power, which counts a one-phase EV behind a
    three-phase charger at a third of its setpoint's watts (it draws the
    setpoint's current on one phase): succeeded, failed and excess power say
    what the setpoints let the pool draw, while `setpoints` stay the watts sent.
    """
    if not isinstance(result, Success | PartialFailure):
        return result

    def drawn(cid: int, power: float) -> float:
        setpoint = allocation.setpoints.get(cid)
        if setpoint is None or setpoint.power_w <= 0.0:
            return power
        return power * setpoint.drawn_power_w / setpoint.power_w

    drawn_w = {cid: drawn(cid, power) for cid, power in result.setpoints.items()}
    succeeded_w = math.fsum(drawn_w[cid] for cid in result.succeeded_components)
    excess_w = result.request.power - math.fsum(drawn_w.values())
    if isinstance(result, Success):
        return dataclasses.replace(
            result, succeeded_power=succeeded_w, excess_power=excess_w
        )
    return dataclasses.replace(
        result,
        succeeded_power=succeeded_w,
        excess_power=excess_w,
        failed_power=math.fsum(drawn_w[cid] for cid in result.failed_components),
    )


def _add(a: PhaseCurrents, b: PhaseCurrents) -> PhaseCurrents:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def _on_phases(current_a: float, phases: tuple[int, ...]) -> PhaseCurrents:
    l1, l2, l3 = (current_a if phase in phases else 0.0 for phase in PHASES)
    return (l1, l2, l3)
