"""The controller's test bench: simulator, real client, monitor and controller.

Wired as in production (`MicrogridEngine`): the monitor streams the simulator's
telemetry over gRPC (127.0.0.1) into its store and ticks the controller once per
snapshot. The
simulator and the monitor tick every 0.1 s of real time so tests stay short.
Every bench checks on exit that the simulator never received an unsafe setpoint
and never carried current above a fuse (its own judgement).
What the components were sent and hold: `tests.observations.setpoints_to` and
`held_setpoint`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
from dataclasses import dataclass
import time
from typing import Any

from frequenz.client.microgrid import MicrogridApiClient

from custom_components.frequenz_microgrid.engine.control import MicrogridController
from custom_components.frequenz_microgrid.engine.graph import Topology, load_topology
from custom_components.frequenz_microgrid.engine.microgrid import MicrogridEngine
from custom_components.frequenz_microgrid.engine.monitor import MicrogridMonitor
from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    Scenario,
    TelemetryTiming,
    load_scenario,
    running_simulator,
)

TICK_S = 0.1
"""Real seconds between two simulator samples and between two monitor ticks."""

NO_TICKS_S = 3600.0
"""Monitor tick period of a bench whose test ticks the controller itself."""


@dataclass
class Bench:
    sim: MicrogridSimulator
    client: MicrogridApiClient
    topology: Topology
    monitor: MicrogridMonitor
    controller: MicrogridController

    async def wait_for(
        self, condition: Callable[[], bool], *, timeout_s: float = 3.0
    ) -> float:
        """Wait until `condition` holds; return the real seconds it took."""
        start = time.monotonic()
        async with asyncio.timeout(timeout_s):
            while not condition():  # noqa: ASYNC110 - polls the simulator's model
                await asyncio.sleep(0.02)
        return time.monotonic() - start

    async def settle(self) -> None:
        """Wait until every component has sent data, then run one tick."""
        store = self.monitor.store
        streamed = [c for c in self.topology.components if c != self.topology.grid_id]
        await self.wait_for(lambda: all(store.is_fresh(c) for c in streamed))
        await self.controller.tick()


@contextlib.asynccontextmanager
async def control_bench(
    scenario: str | Scenario,
    *,
    speed: float = 1.0,
    ticking: bool = True,
    timing: TelemetryTiming | None = None,
    **controller_args: Any,
) -> AsyncIterator[Bench]:
    """Run the whole steering chain against a simulated `scenario`.

    With `ticking=False` the controller ticks only when the test says so: the
    monitor ticks once at start and then not for an hour, so no tick from it can
    interleave with what the test awaits. `timing` spreads, reorders and delays the
    simulator's telemetry.
    """
    async with running_simulator(
        load_scenario(scenario) if isinstance(scenario, str) else scenario,
        speed=speed,
        sample_period_s=TICK_S,
        timing=timing,
    ) as sim:
        client = MicrogridApiClient(sim.url)
        try:
            topology = await load_topology(client)
            engine = MicrogridEngine(
                client,
                topology,
                on_snapshot=lambda _: None,
                tick_s=TICK_S if ticking else NO_TICKS_S,
                **controller_args,
            )
            await engine.start()
            monitor, controller = engine.monitor, engine.controller
            bench = Bench(sim, client, topology, monitor, controller)
            try:
                await bench.settle()
                yield bench
            finally:
                await engine.stop()
            assert sim.unsafe_setpoint_count == 0
            assert sim.overload_ampere_seconds == 0.0, sim.overloads
        finally:
            await client.disconnect()
