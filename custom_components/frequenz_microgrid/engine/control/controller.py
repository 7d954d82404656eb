"""`MicrogridController`: the steering side of one microgrid, free of Home Assistant.

It owns one power manager per pool, the health tracker and the distributor, and
runs the steering data flow (architecture: "Steering"): a proposal → the power
manager's target → the pool's distribution with the latest telemetry and health →
the distributor → the result back to the power manager, the health tracker and
the caller. Every distribution of a pool runs under that pool's lock, so two
changes never interleave their commands; the pools share no component, so one
pool's slow or hanging calls never hold up another pool.

Once per monitor tick (`on_tick`) it feeds the health tracker from the telemetry
store, drops expired proposals, refreshes the system bounds and re-checks every
pool's setpoints, sending only what changed — and at once whatever became
unsafe. `on_tick` only schedules that work; it never blocks the event loop.

The EV chargers are allocated against the grid's reading, in which a battery's
discharge (or the PV's production) makes room. A battery or PV round that wants
more import than the chargers' last allocation counted (a discharge withdrawn,
reduced or turned into a charge; a production curtailed) re-allocates the
chargers first, under their lock, and only then takes its fuse room and sends
(`_lower_chargers_first`): the grid fuse is not exceeded in between, even while
a car just granted current has not started drawing it. The EV chargers' lock is
therefore always taken after the others.

Latency: a proposal does the minimum before its setpoints go out. It steers on
the health view of the last tick (at most `INPUTS_MAX_AGE_S` old: the tick keeps
it current, and the distribution itself reads the latest bounds and SoC from the
store), and a tick never holds a proposal up for long: it refreshes the health
view in small steps without any lock, and a proposal preempts the tick's dispatch
for its pool (cancels it: the proposal re-steers every set of the pool from the
latest telemetry anyway, so nothing the tick would have corrected is lost).

Releasing (`stop`): every proposal is withdrawn; battery inverters get 0 W
explicitly (a battery left at its last setpoint would keep charging or
discharging until the lifetime lapses); EV chargers and PV inverters are simply
no longer kept alive and fall back to their own default (no limit) when the
lifetime lapses — sending them 0 W would stop every EV and all PV production,
which is not what "released" means for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
import contextlib
from datetime import UTC, datetime
import logging
import time
from typing import Any

from frequenz.client.microgrid import MicrogridApiClient

from ..bounds import Bounds
from ..distribution.ev_chargers import EvAllocatorConfig
from ..distribution.ev_fuse import PhaseCurrents
from ..distributor import Distributor
from ..graph import Topology
from ..health import HealthTracker
from ..hub.battery_for_evs import BatteryForEvs
from ..hub.circuits import ROOT_CIRCUIT_ID, Circuit, build_circuit_tree
from ..hub.limits import CircuitLimits
from ..hub.modes import ChargerModes
from ..hub.peak_shaving import (
    PEAK_SHAVING_PRIORITY,
    PEAK_SHAVING_SOURCE,
    battery_ceiling_w,
)
from ..hub.site import SiteFlows
from ..hub.target_forecast import circuit_budgets
from ..hub.targets import ChargingTargets
from ..power_manager import (
    MAX_PROPOSAL_AGE,
    PowerManager,
    Proposal,
    ProposalRefusedError,
    RefusalReason,
)
from ..results import PartialFailure, Result, result_as_dict
from ..set_power import CompletingSetPowerClient
from ..telemetry import TelemetryStore
from .battery_pool import BatteryPoolSteering
from .changes import ChangeDetector
from .ev_pool import EvPoolSteering
from .grid_fuse import GridFuse
from .inputs import (
    FormulaCurrents,
    feed_health,
    grid_fuse_a,
    health_input_ids,
    register_components,
)
from .pv_pool import PvPoolSteering
from .status import (
    ComponentSetStatus,
    ControllerStatus,
    Pool,
    PoolStatus,
    ProposalOutcome,
    ProposalStatus,
    monotonic_to_wall_time,
)
from .steering import ComponentSet, PoolSteering, Results, SteeringContext

_LOGGER = logging.getLogger(__name__)

INPUTS_MAX_AGE_S = 2.0
"""A proposal reuses the last tick's health view if it is younger than this (ticks
come once a second); an older one (no tick yet, or ticks stopped) is refreshed
first, so a proposal never steers on health older than this."""

HEALTH_FEED_STEP = 50
"""Components fed to the health tracker per event-loop turn during a tick (well
under a millisecond each), so a tick's refresh never holds up a proposal."""

IMPORT_RISE_W = 1.0
"""A battery or PV pool wanting more import than the EV chargers counted by more
than this re-allocates them before the pool's round sends (`_lower_chargers_first`)."""

type Listener = Callable[[], None]


class MicrogridController:
    """Steers the batteries, EV chargers and PV inverters of one microgrid.

    Args:
        client: The Microgrid API client the setpoints go through.
        topology: The microgrid's components and wiring.
        store: The monitor's telemetry store (latest values, bounds, states).
        clock: Monotonic seconds (proposal ages, blocks, EV dwell times).
        lifetime_s: Request lifetime of each setpoint (the distributor re-sends
            standing setpoints before it lapses).
        timeout_s: How long one set-power call may take before it counts as failed.
        battery_exponent: SoC-balancing exponent of the battery split (spec §2).
        ev_config: Tuning of the EV allocator; its per-phase limit defaults to the
            grid connection point's rated fuse current.
        max_proposal_age_s: Age after which a proposal that is not kept alive
            expires (the SDK's 60 s).
        user_circuits: Sub-circuits the user defined (issue 15), held besides
            the grid root and the feeders the topology states.
    """

    def __init__(
        self,
        client: MicrogridApiClient,
        topology: Topology,
        store: TelemetryStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        lifetime_s: float = 60.0,
        timeout_s: float = 5.0,
        battery_exponent: float = 1.0,
        ev_config: EvAllocatorConfig | None = None,
        max_proposal_age_s: float = MAX_PROPOSAL_AGE,
        user_circuits: Sequence[Circuit] = (),
    ) -> None:
        """Prepare the steering; nothing is sent before `start`."""
        self._clock = clock
        self._user_circuits = tuple(user_circuits)
        self._health = HealthTracker(max_data_age=store.freshness_s)
        register_components(self._health, topology)
        self._set_power = CompletingSetPowerClient(
            client, on_failed=self._on_setpoint_failed
        )
        self._distributor = Distributor(
            self._set_power,
            observer=self._health,
            timeout_s=timeout_s,
            lifetime_s=lifetime_s,
            on_setpoints_lost=self._on_setpoints_lost,
            falls_back_to_zero=topology.battery_inverter_ids,
            clock=clock,
            still_allowed=self._still_allowed,
        )
        self._context = SteeringContext(
            topology, store, self._health, self._distributor
        )
        self._site: SiteFlows | None = None
        self.charger_modes = ChargerModes(
            topology.ev_charger_ids,
            clock=clock,
            nominal_voltage_v=(ev_config or EvAllocatorConfig()).nominal_voltage_v,
            site=lambda: self._site,
        )
        """The charging hub's charger modes (Home Assistant's select writes them)."""
        self.battery_for_evs = BatteryForEvs()
        """Whether the battery may discharge into the EVs (the hub's setting)."""
        self.charging_targets = ChargingTargets(
            topology.ev_charger_ids,
            clock=store.wall_time_s,
            budgets=lambda: circuit_budgets(
                self.circuit_limits,
                (ev_config or EvAllocatorConfig()).nominal_voltage_v,
            ),
        )
        """Deadline targets per charger session (Home Assistant's actions set them)."""

        def manager(factory: Callable[[], PowerManager]) -> PowerManager:
            built = factory()
            built.max_proposal_age = max_proposal_age_s
            return built

        self._grid_meter = FormulaCurrents(topology.formulas.grid, store)
        self._grid_fuse = GridFuse(
            self._grid_meter,
            store,
            topology,
            voltage_v=(ev_config or EvAllocatorConfig()).nominal_voltage_v,
            standing=lambda: self._distributor.standing_setpoints,
        )
        self._pools: dict[Pool, PoolSteering] = {
            Pool.BATTERIES: BatteryPoolSteering(
                self._context,
                manager(PowerManager.for_batteries),
                exponent=battery_exponent,
                discharge_limit=self.battery_discharge_limit_w,
                fuse_room=self._grid_fuse.room,
            ),
            Pool.EV_CHARGERS: EvPoolSteering(
                self._context,
                manager(PowerManager.for_ev_chargers),
                ev_config,
                circuits_of(topology, ev_config, user_circuits),
                self.charger_modes,
                self.charging_targets,
            ),
            Pool.PV: PvPoolSteering(
                self._context,
                manager(PowerManager.for_pv_inverters),
                fuse_room=self._grid_fuse.room,
            ),
        }
        ev_pool = self._pools[Pool.EV_CHARGERS]
        assert isinstance(ev_pool, EvPoolSteering)
        ev_pool.pending_import_a = self._pending_import_a
        self._grid_fuse.granted_a = ev_pool.granted_a
        self._chargers_lowered = False
        """Whether a battery or PV round re-allocated the chargers since the tick
        began (the tick's own charger round is then left out)."""
        self._counted_w: dict[Pool, float | None] = {}
        self._counting_w: dict[Pool, float | None] = {}
        """What the chargers' allocation in progress counts; `_counted_w` once
        it has sent (a cancelled one lowered nothing)."""
        """Per battery and PV pool, the `wanted_w` the EV chargers' last
        allocation counted (`_pending_import_a`)."""
        for pool in (Pool.BATTERIES, Pool.PV):
            feeding = self._pools[pool]
            assert isinstance(feeding, BatteryPoolSteering | PvPoolSteering)
            feeding.before_import_rise = self._lower_chargers_first
        # The EV chargers' lock is taken last (also inside a battery's or PV's
        # round: `_lower_chargers_first`), so no two tasks wait for each other.
        self._locks = {
            pool: asyncio.Lock() for pool in (Pool.BATTERIES, Pool.PV, Pool.EV_CHARGERS)
        }
        self._tick_dispatch: dict[Pool, asyncio.Task[Results]] = {}
        """Per pool: the tick's dispatch in flight (a proposal cancels it)."""
        self._running = False
        self._tick_task: asyncio.Task[None] | None = None
        self._tick_requested = False
        self._listeners: list[Listener] = []
        steerable = [s.component_ids for s in self._pools.values()]
        self._changes = ChangeDetector(self._health, frozenset().union(*steerable))
        self._health_input_ids = health_input_ids(topology)
        self._battery_meter = FormulaCurrents(topology.formulas.battery, store)
        self._shaving_refused = False
        """Whether the last peak-shaving proposal was refused (log once)."""
        self._inputs_at: float | None = None
        """Controller time of the last complete health refresh (`None`: never)."""
        self._result_views: dict[ComponentSet, tuple[Result, dict[str, Any]]] = {}
        """Per component set: its last result and that result's `result_as_dict`."""
        self.charger_modes.listen(self.on_tick)
        self.charging_targets.listen(self.on_tick)

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Start keeping setpoints alive and accept ticks."""
        self._running = True
        self._distributor.start()

    async def stop(self) -> None:
        """Release everything safely (see the module docstring) and stop."""
        self._running = False
        task, self._tick_task = self._tick_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with contextlib.AsyncExitStack() as locked:
            for lock in self._locks.values():
                await locked.enter_async_context(lock)
            await self._lower_chargers_before_stop()
            for steering in self._pools.values():
                _withdraw_everything(steering.manager)
            batteries = self._pools[Pool.BATTERIES]
            zeros = dict.fromkeys(batteries.commanded(), 0.0)
            for steering in self._pools.values():
                await steering.release_all()
            if zeros:
                await self._distributor.apply(zeros)
            await self._distributor.release()
        await self._distributor.stop()
        await self._set_power.finish()
        self._notify()

    async def follow_topology(self, topology: Topology, gone: frozenset[int]) -> None:
        """Steer a changed topology from now on (components came or went).

        Under every pool's lock, so no distribution runs meanwhile: components
        that left are dropped by the distributor at once (no setpoint and no
        keep-alive goes to them any more) and by the health tracker; newcomers
        are tracked; every pool takes its new components and re-keys its
        proposals (`PoolSteering.follow_topology`). Then a tick is scheduled
        at once: it re-distributes a proposal in force over the components
        that remain (including the newcomers when it was for the whole pool),
        as any tick re-steers a set whose components changed.
        """
        for pool in self._pools:
            self._preempt_tick(pool)
        async with contextlib.AsyncExitStack() as locked:
            for lock in self._locks.values():
                await locked.enter_async_context(lock)
            await self._distributor.drop(gone, topology.battery_inverter_ids)
            self._health.forget(gone)
            register_components(self._health, topology)
            context = SteeringContext(
                topology, self._context.store, self._health, self._distributor
            )
            self._context = context
            for pool, steering in self._pools.items():
                ids = _pool_ids(topology, pool)
                if isinstance(steering, EvPoolSteering):
                    steering.follow_topology(context, ids, gone, self._user_circuits)
                else:
                    steering.follow_topology(context, ids, gone)
            # A setpoint no pool commands any more is not kept alive for good.
            commanded = set().union(*(s.commanded() for s in self._pools.values()))
            orphans = self._distributor.standing_setpoints.keys() - commanded
            if orphans:
                await self._distributor.release(frozenset(orphans))
            steerable = [s.component_ids for s in self._pools.values()]
            self._changes.follow(frozenset().union(*steerable))
            self._health_input_ids = health_input_ids(topology)
            store = context.store
            self._grid_meter = FormulaCurrents(topology.formulas.grid, store)
            self._grid_fuse.follow(self._grid_meter, topology)
            self._battery_meter = FormulaCurrents(topology.formulas.battery, store)
            self._inputs_at = None  # a proposal before the tick refreshes first
        self.on_tick()

    # -- steering -------------------------------------------------------------

    async def propose(
        self,
        pool: Pool,
        *,
        source_id: str,
        priority: int,
        power: float | None,
        bounds: Bounds = Bounds(),  # noqa: B008 - frozen, immutable default
        component_ids: frozenset[int] | None = None,
        keep_alive: bool = True,
    ) -> ProposalOutcome:
        """Add or replace a proposal; return once its distribution has completed.

        `keep_alive=True` keeps the proposal until it is withdrawn or the
        controller stops (spec §6); `False` lets it expire after the maximum age
        (the SDK's 60 s) unless it is proposed again.

        Raises:
            ProposalRefusedError: The component set is not part of the pool, or
                overlaps another set that has proposals.
            ValueError: The proposal contains NaN (callers check their input).
        """
        steering = self._pools[pool]
        ids = self._component_set(steering, component_ids)
        self._preempt_tick(pool)
        async with self._locks[pool]:
            now = self._clock()
            refreshed = self._refresh_inputs_if_old(now)
            steering.manager.set_system_bounds(ids, steering.system_bounds(ids, now))
            steering.manager.propose(
                Proposal(
                    source_id=source_id,
                    priority=priority,
                    power=power,
                    bounds=bounds,
                    component_ids=ids,
                    creation_time=now,
                    keep_alive=keep_alive,
                )
            )
            results = await self._steer(steering, now, force=frozenset({ids}))
            outcome = self._outcome(steering, ids, priority, results)
        self._notify_dispatch(results, refreshed=refreshed)
        return outcome

    async def withdraw(
        self,
        pool: Pool,
        *,
        source_id: str,
        priority: int | None = None,
        component_ids: frozenset[int] | None = None,
    ) -> ProposalOutcome:
        """Withdraw a source's proposals (one priority, or all); return the outcome.

        The outcome describes the set that changed (the pool's whole set if none
        did, or the given `component_ids`).
        """
        steering = self._pools[pool]
        wanted = None if component_ids is None else frozenset(component_ids)
        self._preempt_tick(pool)
        async with self._locks[pool]:
            now = self._clock()
            refreshed = self._refresh_inputs_if_old(now)
            changed = steering.manager.withdraw_sets(
                source_id, priority=priority, component_ids=wanted
            )
            ids = wanted or next(iter(changed), steering.component_ids)
            results = await self._steer(steering, now, force=frozenset(changed))
            outcome = self._outcome(steering, ids, priority, results)
        self._notify_dispatch(results, refreshed=refreshed)
        return outcome

    def observe_site(self, site: SiteFlows) -> None:
        """Take the site's latest power flows (solar surplus, battery for EVs)."""
        self._site = site

    def _pending_import_a(self, at: float) -> PhaseCurrents:
        """What the battery and PV pools want to add to the import since `at` (A)."""
        total: PhaseCurrents = (0.0, 0.0, 0.0)
        for pool in (Pool.BATTERIES, Pool.PV):
            steering = self._pools[pool]
            assert isinstance(steering, BatteryPoolSteering | PvPoolSteering)
            self._counting_w[pool] = steering.wanted_w
            l1, l2, l3 = self._grid_fuse.pending_import_a(
                steering.inverter_ids, steering.wanted_w, at
            )
            total = (total[0] + l1, total[1] + l2, total[2] + l3)
        return total

    async def _lower_chargers_first(self) -> None:
        """Re-allocate the EV chargers before a battery or PV round adds import.

        The chargers are allocated against the grid's reading, in which a
        battery's discharge (or the PV's production) lowers the other loads,
        and against what the pools want beyond it (`_pending_import_a`). When a
        pool now wants more import than that allocation counted (a discharge
        withdrawn, reduced or turned into a charge; a production curtailed),
        the chargers are allocated anew with it — lowered where they no longer
        fit — and only then does the pool take its room and send: the sum never
        exceeds the fuse, even for the round in between. Under the chargers'
        lock (taken after the pool's), so a charger round in flight ends first.
        """
        ev_pool = self._pools[Pool.EV_CHARGERS]
        if (
            not ev_pool.component_ids
            or not self._grid_fuse.watched
            or not self._import_rises()
        ):
            return  # no wait for a charger round in flight: nothing to lower
        async with self._locks[Pool.EV_CHARGERS]:
            if self._import_rises():
                await self._steer(ev_pool, self._clock())
                self._chargers_lowered = True

    async def _lower_chargers_before_stop(self) -> None:
        """Lower the chargers that count on a battery discharge stop is ending.

        Stopping sends the batteries 0 W: a discharge the chargers' allocation
        made room with ends at once, while their setpoints stand until they
        lapse. So they are allocated once more first, with their proposals
        still in force and the batteries counted at 0 W (as
        `_lower_chargers_first` does for a round), and only lowered by it where
        the fuse needs it. A failure is logged: stopping goes on.
        """
        batteries = self._pools[Pool.BATTERIES]
        assert isinstance(batteries, BatteryPoolSteering)
        ev_pool = self._pools[Pool.EV_CHARGERS]
        if (
            not ev_pool.component_ids
            or not self._grid_fuse.watched
            or not any(power < 0.0 for power in batteries.commanded().values())
        ):
            return
        batteries.wanted_w = 0.0
        try:
            await self._steer(ev_pool, self._clock())
        except Exception:  # the release must happen whatever
            _LOGGER.exception("Could not lower the EV chargers before stopping")

    def _import_rises(self) -> bool:
        """Whether a battery or PV pool wants more import than the chargers counted."""
        for pool in (Pool.BATTERIES, Pool.PV):
            steering = self._pools[pool]
            assert isinstance(steering, BatteryPoolSteering | PvPoolSteering)
            wanted = steering.wanted_w
            if wanted is None:
                continue
            counted = self._counted_w.get(pool)
            if counted is None or wanted > counted + IMPORT_RISE_W:
                return True
        return False

    def battery_discharge_limit_w(self) -> float | None:
        """The battery pool's discharge limit now (W); `None`: none.

        Only while EVs charge and the battery may not feed them (the hub's
        setting); never without EV chargers.
        """
        if not self._pools[Pool.EV_CHARGERS].component_ids:
            return None
        return self.battery_for_evs.discharge_limit_w(self._site)

    def on_tick(self) -> None:
        """Re-check everything with the latest telemetry (call once per tick).

        Schedules the work and returns at once; ticks that arrive while one is
        still running are folded into one more run.
        """
        if not self._running:
            return
        self._tick_requested = True
        if self._tick_task is None or self._tick_task.done():
            self._tick_task = asyncio.create_task(
                self._tick_loop(), name="frequenz_microgrid.controller_tick"
            )

    async def tick(self) -> None:
        """Run one tick now and wait for it (what `on_tick` schedules).

        The health refresh runs without the lock, a step at a time; each pool is
        then re-checked under the lock on its own, so a proposal that arrives
        meanwhile waits for one pool at most, not for the whole tick.
        """
        await self._refresh_inputs_stepwise()
        self._chargers_lowered = False
        for pool, steering in self._pools.items():
            async with self._locks[pool]:
                now = self._clock()
                expired = steering.manager.drop_expired(now)
                steering.update_system_bounds(now)
                if pool is Pool.BATTERIES:
                    self._shave_peak(steering, now)
                if pool is Pool.EV_CHARGERS and self._chargers_lowered and not expired:
                    continue  # allocated this tick already (`_lower_chargers_first`)
                await self._steer_preemptibly(pool, steering, now)
        self._notify()

    async def _steer_preemptibly(
        self, pool: Pool, steering: PoolSteering, now: float
    ) -> None:
        """Steer a pool on a tick, as a task a proposal for the pool may cancel."""
        task = asyncio.create_task(
            self._steer(steering, now), name=f"frequenz_microgrid.tick_{pool}"
        )
        self._tick_dispatch[pool] = task
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:  # the tick itself is cancelled (stop)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise
        finally:
            self._tick_dispatch.pop(pool, None)
        if not task.cancelled():
            task.result()  # a bug in steering is logged by the tick loop

    def _preempt_tick(self, pool: Pool) -> None:
        """Cancel the tick's dispatch for `pool`, so a proposal need not wait for it.

        The proposal re-steers every set of the pool, so whatever the tick was
        sending (a drift or an unsafe-setpoint correction) is sent anew from the
        latest telemetry. Calls already answered stay recorded; the others are
        cancelled before their results count.
        """
        task = self._tick_dispatch.get(pool)
        if task is not None and not task.done():
            task.cancel()

    async def _tick_loop(self) -> None:
        while self._tick_requested and self._running:
            self._tick_requested = False
            try:
                await self.tick()
            except Exception:  # a bug must not end steering for good
                _LOGGER.exception("Steering tick failed")

    def _shave_peak(self, steering: PoolSteering, now: float) -> None:
        """Propose (or withdraw) the batteries' peak shaving for the grid circuit.

        See `engine.hub.peak_shaving`: the batteries discharge what is above the
        grid circuit's power limit after the EV chargers yielded. A proposal for
        the whole pool that overlaps an actor's subset is refused by the power
        manager; then no shaving happens (logged once until it works again).
        """
        ids = steering.component_ids
        manager = steering.manager
        limits = self.circuit_limits
        root = limits.tree.get(ROOT_CIRCUIT_ID)
        if root is None or not ids:
            return
        store = self._context.store
        ceiling = battery_ceiling_w(
            self._grid_meter.power(store),
            self._battery_meter.power(store),
            limits.upper_limit_w(root, store.wall_time_s()),
        )
        shaving = any(
            p.source_id == PEAK_SHAVING_SOURCE for p in manager.proposals(ids)
        )
        if ceiling is None:
            if shaving:
                manager.withdraw(PEAK_SHAVING_SOURCE)
            return
        try:
            manager.propose(
                Proposal(
                    source_id=PEAK_SHAVING_SOURCE,
                    priority=PEAK_SHAVING_PRIORITY,
                    power=min(0.0, ceiling),
                    bounds=Bounds(None, ceiling),
                    component_ids=ids,
                    creation_time=now,
                    keep_alive=True,
                )
            )
        except ProposalRefusedError as err:
            if not self._shaving_refused:
                _LOGGER.warning("Peak shaving is not possible now: %s", err)
            self._shaving_refused = True
        else:
            self._shaving_refused = False

    def _refresh_inputs_if_old(self, now: float) -> bool:
        """Refresh the health view if the last tick's is too old to use.

        Returns whether it did (then any component's health may have changed).
        """
        if self._inputs_at is not None and now - self._inputs_at <= INPUTS_MAX_AGE_S:
            return False
        self._feed_health(self._health_input_ids, now)
        self._inputs_at = now
        return True

    async def _refresh_inputs_stepwise(self) -> None:
        """Refresh the health view, yielding to the event loop between steps."""
        started = self._clock()
        ids = self._health_input_ids
        for first in range(0, len(ids), HEALTH_FEED_STEP):
            if first:
                await asyncio.sleep(0)
            self._feed_health(ids[first : first + HEALTH_FEED_STEP], self._clock())
        self._inputs_at = started

    def _feed_health(self, component_ids: list[int], now: float) -> None:
        context = self._context
        feed_health(self._health, context.topology, context.store, now, component_ids)

    async def _steer(
        self,
        steering: PoolSteering,
        now: float,
        *,
        force: frozenset[ComponentSet] = frozenset(),
    ) -> Results:
        """Steer one pool; feed the results back (a partial failure re-sends once)."""
        results = await steering.steer(now, force=force)
        if steering is self._pools[Pool.EV_CHARGERS]:
            # Sent: the chargers now leave free what the pools wanted then.
            self._counted_w.update(self._counting_w)
        resend: set[ComponentSet] = set()
        for component_ids, result in results.items():
            if steering.manager.record_result(result) is not None:
                resend.add(component_ids)
        if resend:
            # The failed components are blocked now: place the power on the others.
            for component_ids, result in (
                await steering.steer(now, force=resend)
            ).items():
                steering.manager.record_result(result)
                results.setdefault(component_ids, result)
        return results

    def _still_allowed(self, component_id: int, power: float) -> bool:
        """Whether a standing setpoint may be refreshed as it is (the distributor asks).

        The pool that commands the component judges it on the latest telemetry
        (`PoolSteering.still_allows`). One that is not allowed is withheld and
        reported lost (`_on_setpoints_lost`): the tick that follows re-distributes
        the set within the latest bounds. Without this, a keep-alive re-sent a
        battery discharge decided before the SoC-driven bound shrank below it
        (the soak at 480×: ten unsafe setpoints, every one a refresh).
        """
        for steering in self._pools.values():
            if steering.commands(component_id):
                return steering.still_allows(component_id, power)
        return True

    def _on_setpoint_failed(self, component_id: int, power: float) -> None:
        """An accepted setpoint failed at the microgrid (its final reply)."""
        self._distributor.setpoint_failed(component_id, power)

    def _on_setpoints_lost(self, component_ids: frozenset[int]) -> None:
        """Those setpoints are not in force: forget them; re-distribute on a tick."""
        for steering in self._pools.values():
            steering.forget(component_ids)
        self.on_tick()

    def set_out_of_service(self, component_ids: frozenset[int]) -> None:
        """Never steer these components (outside their operational lifetime).

        The others are steered again. A change re-distributes at once, so power
        a left-out component had is placed on the others.
        """
        if self._health.set_out_of_service(component_ids):
            self._notify(health_changed=True)
            self.on_tick()

    # -- views ----------------------------------------------------------------

    @property
    def circuit_limits(self) -> CircuitLimits:
        """The circuits, their envelopes (settable) and their last statuses."""
        steering = self._pools[Pool.EV_CHARGERS]
        assert isinstance(steering, EvPoolSteering)
        return steering.limits

    def pool_components(self, pool: Pool) -> frozenset[int]:
        """The pool's default component set (all its components)."""
        return self._pools[pool].component_ids

    def status(self) -> ControllerStatus:
        """Proposals, targets, bounds and results per pool, and component health."""
        now = self._clock()
        views, self._result_views = self._result_views, {}
        return ControllerStatus(
            pools={
                pool: self._pool_status(steering, now, views)
                for pool, steering in self._pools.items()
            },
            components=tuple(self._health.statuses(now)),
            grid_currents_unknown=self._grid_fuse.currents_unknown(),
        )

    def to_wall_time(self, at: float) -> datetime:
        """Return when `at` on the controller's clock is, in UTC (to the second).

        Times in the status (a block's end) are on the controller's monotonic
        clock, which means nothing to a user or an automation.
        """
        return monotonic_to_wall_time(at, self._clock(), datetime.now(UTC))

    def listen(self, callback: Listener) -> Callable[[], None]:
        """Call `callback` after each change of status, target or result.

        Returns a function that unsubscribes.
        """
        self._listeners.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return unsubscribe

    # -- internals ------------------------------------------------------------

    @staticmethod
    def _component_set(
        steering: PoolSteering, component_ids: frozenset[int] | None
    ) -> ComponentSet:
        if component_ids is None:
            return steering.component_ids
        ids = frozenset(component_ids)
        if not ids or not ids <= steering.component_ids:
            raise ProposalRefusedError(
                RefusalReason.NOT_A_POOL_SUBSET,
                f"Components {sorted(ids)} are not a non-empty subset of the "
                f"{steering.pool} pool {sorted(steering.component_ids)}",
            )
        return ids

    @staticmethod
    def _outcome(
        steering: PoolSteering,
        ids: ComponentSet,
        priority: int | None,
        results: Results,
    ) -> ProposalOutcome:
        manager = steering.manager
        result: Result | None = results.get(ids)
        if result is None:  # e.g. EV chargers allocated with the rest of the pool
            result = next((r for s, r in results.items() if ids <= s), None)
        bounds = (
            manager.system_bounds(ids)
            if priority is None
            else manager.report(ids, priority).bounds
        )
        return ProposalOutcome(
            pool=steering.pool,
            component_ids=ids,
            target_power=manager.steering_target(ids),
            bounds=bounds,
            result=result,
        )

    def _pool_status(
        self,
        steering: PoolSteering,
        now: float,
        views: dict[ComponentSet, tuple[Result, dict[str, Any]]],
    ) -> PoolStatus:
        manager = steering.manager
        sets: list[ComponentSetStatus] = []
        for ids in manager.component_sets():
            proposals = manager.proposals(ids)
            last_result = self._result_view(ids, manager.last_result(ids), views)
            sets.append(
                ComponentSetStatus(
                    component_ids=ids,
                    proposals=tuple(
                        ProposalStatus(
                            source_id=p.source_id,
                            priority=p.priority,
                            power=p.power,
                            bounds=p.bounds,
                            age_s=now - p.creation_time,
                            keep_alive=p.keep_alive,
                        )
                        for p in proposals
                    ),
                    target_power=manager.steering_target(ids),
                    system_bounds=manager.system_bounds(ids),
                    bounds_by_priority={
                        p.priority: manager.report(ids, p.priority).bounds
                        for p in proposals
                    },
                    last_result=last_result,
                )
            )
        return PoolStatus(
            pool=steering.pool,
            component_ids=steering.component_ids,
            component_sets=tuple(sets),
        )

    def _result_view(
        self,
        ids: ComponentSet,
        result: Result | None,
        views: dict[ComponentSet, tuple[Result, dict[str, Any]]],
    ) -> dict[str, Any] | None:
        """A result as a dict: the same object while the result is the same.

        The status is computed once per snapshot; a pool of 1,250 chargers'
        result lists every component and setpoint, so converting it anew every
        second cost milliseconds, and its entity compared a new dict each time.
        `views`: those of the last status (only the sets still there are kept).
        """
        if result is None:
            return None
        known = views.get(ids)
        view = known[1] if known is not None and known[0] is result else None
        if view is None:
            view = result_as_dict(result)
        self._result_views[ids] = (result, view)
        return view

    def _notify(self, *, health_changed: bool | None = None) -> None:
        """Tell the listeners, if anything they can see changed.

        `health_changed` says whether the caller saw a component's health
        change; `None` has every component's health compared (a tick: telemetry
        and time moved on).
        """
        changes = self._changes
        if health_changed is None:
            health_changed = changes.all_health_changed(self._clock())
        pools_changed = changes.pools_changed(self._pools_fingerprint())
        if not (pools_changed or health_changed):
            return
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                _LOGGER.exception("Controller listener %s failed", listener)

    def _notify_dispatch(self, results: Results, *, refreshed: bool) -> None:
        """Notify after a proposal or withdrawal: only its dispatch moved health."""
        if refreshed:
            self._notify()
            return
        touched: set[int] = set()
        any_failed = False
        for result in results.values():
            touched.update(result.request.component_ids)
            any_failed = any_failed or isinstance(result, PartialFailure)
        self._notify(
            health_changed=self._changes.recheck_after_dispatch(
                self._clock(), touched, any_failed=any_failed
            )
        )

    def _pools_fingerprint(self) -> Hashable:
        """The pools' part of `status()` (no proposal ages), in a comparable form."""
        parts: list[Hashable] = []
        for pool, steering in self._pools.items():
            manager = steering.manager
            for ids in manager.component_sets():
                parts.append(
                    (
                        pool,
                        ids,
                        tuple(
                            (p.key, p.power, p.bounds, p.keep_alive)
                            for p in manager.proposals(ids)
                        ),
                        manager.steering_target(ids),
                        manager.system_bounds(ids),
                        id(manager.last_result(ids)),
                    )
                )
        return tuple(parts)


def circuits_of(
    topology: Topology,
    ev_config: EvAllocatorConfig | None,
    user_circuits: Sequence[Circuit],
) -> CircuitLimits:
    """The circuit tree, with no envelope set yet.

    The grid root (its fuse is the EV allocator's phase limit), the feeders the
    topology states, the user's circuits.
    """
    limit = None if ev_config is None else ev_config.phase_limit_a
    if limit is None:
        limit = grid_fuse_a(topology)
    return CircuitLimits(build_circuit_tree(topology, limit, user_circuits))


def _pool_ids(topology: Topology, pool: Pool) -> frozenset[int]:
    """The components of `topology` a pool steers."""
    match pool:
        case Pool.BATTERIES:
            return topology.battery_ids
        case Pool.EV_CHARGERS:
            return topology.ev_charger_ids
        case Pool.PV:
            return topology.pv_inverter_ids


def _withdraw_everything(manager: PowerManager) -> None:
    """Remove every proposal of every source from a power manager."""
    for ids in manager.component_sets():
        for proposal in manager.proposals(ids):
            manager.withdraw(proposal.source_id, component_ids=ids)
