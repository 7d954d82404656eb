"""The engine follows a topology re-read while it runs (issue 17 §2).

Against the simulator over real gRPC: components connected live join the pools
(telemetry and steering), components disconnected live are never sent anything
again and a proposal in force is placed on what remains; an unchanged re-read
changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
from dataclasses import dataclass
import math
import time

from frequenz.client.microgrid import MicrogridApiClient

from custom_components.frequenz_microgrid.engine.control import ControllerStatus, Pool
from custom_components.frequenz_microgrid.engine.graph import load_topology
from custom_components.frequenz_microgrid.engine.microgrid import MicrogridEngine
from custom_components.frequenz_microgrid.engine.snapshot import MicrogridSnapshot
from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    load_scenario,
    running_simulator,
)
from custom_components.frequenz_microgrid.simulator.scenario import (
    Kind,
    generated_component,
)
from tests.observations import held_setpoint

TICK_S = 0.1
GRID_METER = 2
HOME_INVERTER = 3
NEW_INVERTER = 20
NEW_BATTERY = 21
NEW_CHARGER = 22


@dataclass
class Site:
    sim: MicrogridSimulator
    client: MicrogridApiClient
    engine: MicrogridEngine
    snapshots: list[MicrogridSnapshot]

    async def wait_for(
        self, condition: Callable[[], bool], timeout_s: float = 10.0
    ) -> None:
        async with asyncio.timeout(timeout_s):
            while not condition():  # noqa: ASYNC110 - polls simulator and engine
                await asyncio.sleep(0.02)

    async def reread(self) -> object:
        return await self.engine.follow_topology(await load_topology(self.client))


@contextlib.asynccontextmanager
async def home_site() -> AsyncIterator[Site]:
    async with running_simulator(
        load_scenario("home"), speed=10.0, sample_period_s=TICK_S
    ) as sim:
        client = MicrogridApiClient(sim.url)
        snapshots: list[MicrogridSnapshot] = []
        try:
            engine = MicrogridEngine(
                client,
                await load_topology(client),
                on_snapshot=snapshots.append,
                tick_s=TICK_S,
                lifetime_s=10.0,
            )
            await engine.start()
            site = Site(sim, client, engine, snapshots)
            try:
                await site.wait_for(
                    lambda: (
                        bool(snapshots) and snapshots[-1].battery.soc_pct is not None
                    )
                )
                yield site
            finally:
                await engine.stop()
            assert sim.unsafe_setpoint_count == 0
            assert sim.overload_ampere_seconds == 0.0, sim.overloads
        finally:
            await client.disconnect()


def _connect_battery_and_charger(sim: MicrogridSimulator) -> None:
    sim.add_component(
        generated_component(NEW_INVERTER, Kind.BATTERY_INVERTER, GRID_METER)
    )
    sim.add_component(generated_component(NEW_BATTERY, Kind.BATTERY, NEW_INVERTER))
    sim.add_component(generated_component(NEW_CHARGER, Kind.EV_CHARGER, GRID_METER))


async def test_a_battery_connected_live_joins_the_pools_and_its_proposal() -> None:
    async with home_site() as site:
        controller = site.engine.controller
        await controller.propose(
            Pool.BATTERIES, source_id="test", priority=1, power=8000.0
        )
        # The home inverter alone is rated 5 kW: the rest cannot be placed yet.
        await site.wait_for(lambda: held_setpoint(site.sim, HOME_INVERTER) == 5000.0)
        capacity_before = site.snapshots[-1].battery.usable_capacity_wh
        assert capacity_before is not None

        _connect_battery_and_charger(site.sim)
        change = await site.reread()

        assert change.added == {NEW_INVERTER, NEW_BATTERY, NEW_CHARGER}  # type: ignore[attr-defined]
        assert controller.pool_components(Pool.BATTERIES) == {4, NEW_BATTERY}
        assert NEW_CHARGER in controller.pool_components(Pool.EV_CHARGERS)
        # The proposal for the whole pool now covers the new battery too.
        await site.wait_for(
            lambda: math.isclose(
                (held_setpoint(site.sim, HOME_INVERTER) or 0.0)
                + (held_setpoint(site.sim, NEW_INVERTER) or 0.0),
                8000.0,
                abs_tol=1.0,
            )
        )
        await site.wait_for(
            lambda: (
                (site.snapshots[-1].battery.usable_capacity_wh or 0.0) > capacity_before
            )
        )
        # Its own stream may deliver a moment after the battery's.
        await site.wait_for(lambda: NEW_CHARGER in site.snapshots[-1].components)


async def test_a_component_disconnected_live_is_never_sent_anything_again() -> None:
    async with home_site() as site:
        controller = site.engine.controller
        _connect_battery_and_charger(site.sim)
        await site.reread()
        await controller.propose(
            Pool.BATTERIES, source_id="test", priority=1, power=3000.0
        )
        await site.wait_for(lambda: held_setpoint(site.sim, NEW_INVERTER) is not None)

        assert site.sim.remove_component(NEW_INVERTER) == {NEW_INVERTER, NEW_BATTERY}
        change = await site.reread()
        sent = site.sim.control.requests_by_component[NEW_INVERTER]

        assert change.removed == {NEW_INVERTER, NEW_BATTERY}  # type: ignore[attr-defined]
        assert controller.pool_components(Pool.BATTERIES) == {4}
        # The proposal in force is placed on what remains (the tick the change
        # scheduled re-distributes it).
        await site.wait_for(lambda: held_setpoint(site.sim, HOME_INVERTER) == 3000.0)
        # Keep-alives (every ~6 s of 10× simulated time) and ticks go on: none to it.
        deadline = time.monotonic() + 1.0
        await site.wait_for(lambda: time.monotonic() > deadline)
        assert site.sim.control.requests_by_component[NEW_INVERTER] == sent
        assert NEW_INVERTER not in site.snapshots[-1].components
        assert NEW_BATTERY not in site.engine.monitor.store.component_ids


async def test_an_unchanged_topology_changes_nothing() -> None:
    async with home_site() as site:
        controller = site.engine.controller
        await controller.propose(
            Pool.BATTERIES, source_id="test", priority=1, power=1000.0
        )
        # Until the inverter's bounds have arrived, the proposal waits for a tick.
        await site.wait_for(lambda: held_setpoint(site.sim, HOME_INVERTER) == 1000.0)
        pools = _pools(controller.status())
        received = site.sim.control.setpoints_received
        topology = site.engine.topology

        change = await site.reread()

        assert not change
        assert site.engine.topology is topology
        assert site.sim.control.setpoints_received == received
        assert _pools(controller.status()) == pools


def _pools(status: ControllerStatus) -> list[tuple[object, ...]]:
    """What the pools steer (without the proposals' ages, which move on)."""
    return [
        (
            pool.pool,
            pool.component_ids,
            component_set.component_ids,
            component_set.target_power,
            [(p.source_id, p.power) for p in component_set.proposals],
        )
        for pool in status.pools.values()
        for component_set in pool.component_sets
    ]
