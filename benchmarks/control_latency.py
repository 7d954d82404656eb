"""Control latency: from a power proposal to the setpoint arriving at the microgrid.

A generated microgrid with 100 battery pairs runs in the built-in simulator (in
this process, so arrivals can be timed exactly: `PowerControl.set_active_power` is
wrapped to note the time each `SetElectricalComponentPower` arrives). Then:

- **ours**: Home Assistant's core with the integration set up through its config
  flow; each sample is one `frequenz_microgrid.propose_power` action call for the
  battery pool, timed from the call to the first setpoint arriving;
- **sdk**: the Frequenz SDK driving the same simulator, `new_battery_pool()
  .propose_power()`, timed the same way.

Each side sends ~100 proposals with different powers (so every inverter's setpoint
changes), after a few warm-up calls. The time to the *last* of the 100 setpoints
is printed too (stderr), since a pool only steers fully once all have arrived.

Run: `.venv/bin/python -m benchmarks.control_latency`; prints
`control_latency ours_p50_ms=<a> ours_p99_ms=<b> sdk_p50_ms=<c> sdk_p99_ms=<d>`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
import logging
import statistics
import sys
import time
from typing import Any

from frequenz.quantities import Power
from frequenz.sdk import microgrid
from frequenz.sdk.microgrid import _data_pipeline, connection_manager
from frequenz.sdk.timeseries import ResamplerConfig2

from benchmarks._ha_harness import (
    async_add_microgrid,
    async_remove_microgrid,
    running_home_assistant,
)
from custom_components.frequenz_microgrid.const import DOMAIN
from custom_components.frequenz_microgrid.coordinator import MicrogridRuntimeData
from custom_components.frequenz_microgrid.engine.health import ComponentHealth
from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    generate_scenario,
)

BATTERY_PAIRS = 100
N_COMPONENTS = 2 + 4 * BATTERY_PAIRS
"""Grid, grid meter, then per group an inverter, its battery, a PV inverter and an
EV charger: 100 groups give 100 battery pairs."""
SAMPLES = 100
WARM_UP = 5
ARRIVAL_TIMEOUT_S = 5.0
READY_TIMEOUT_S = 60.0


class ArrivalClock:
    """Notes when each active-power setpoint arrives at the simulator."""

    def __init__(self, sim: MicrogridSimulator) -> None:
        """Wrap the simulator's setpoint handler (the gRPC servicer calls it)."""
        self.arrivals: list[float] = []
        self._event = asyncio.Event()
        original = sim.control.set_active_power

        def timed(*args: Any, **kwargs: Any) -> float:
            self.arrivals.append(time.perf_counter())
            self._event.set()
            return original(*args, **kwargs)

        setattr(sim.control, "set_active_power", timed)  # noqa: B010

    def reset(self) -> None:
        """Forget earlier arrivals."""
        self.arrivals.clear()
        self._event.clear()

    async def wait_for(self, count: int) -> None:
        """Wait until `count` setpoints arrived since the last reset."""
        async with asyncio.timeout(ARRIVAL_TIMEOUT_S):
            while len(self.arrivals) < count:
                self._event.clear()
                await self._event.wait()


def powers(n: int) -> list[float]:
    """Alternating charge/discharge requests, all different (20–70 kW)."""
    return [(1 if i % 2 else -1) * (20_000.0 + 500.0 * i) for i in range(n)]


async def measure(
    clock: ArrivalClock,
    propose: Callable[[float], Awaitable[None]],
    expected: int,
) -> tuple[list[float], list[float]]:
    """Time each proposal to its first and its last (`expected`-th) setpoint."""
    first: list[float] = []
    last: list[float] = []
    for i, power in enumerate(powers(WARM_UP + SAMPLES)):
        clock.reset()
        start = time.perf_counter()
        await propose(power)
        await clock.wait_for(expected)
        if i >= WARM_UP:
            first.append(clock.arrivals[0] - start)
            last.append(clock.arrivals[expected - 1] - start)
        await asyncio.sleep(0.02)  # let stray replies settle between samples
    return first, last


async def measure_ours(
    sim: MicrogridSimulator, clock: ArrivalClock
) -> tuple[list[float], list[float]]:
    """Home Assistant with the integration: action call → setpoints."""
    async with running_home_assistant() as hass:
        entry = await async_add_microgrid(hass, sim.url)
        runtime: MicrogridRuntimeData = entry.runtime_data
        controller = runtime.controller
        batteries = runtime.topology.battery_ids
        changed = asyncio.Event()
        unsubscribe = controller.listen(changed.set)
        async with asyncio.timeout(READY_TIMEOUT_S):
            while not all(
                s.health is ComponentHealth.WORKING
                for s in controller.status().components
                if s.component_id in batteries
            ):
                changed.clear()
                await changed.wait()
        unsubscribe()

        async def propose(power: float) -> None:
            await hass.services.async_call(
                DOMAIN,
                "propose_power",
                {
                    "config_entry_id": entry.entry_id,
                    "pool": "batteries",
                    "power": power,
                },
                blocking=True,
            )

        try:
            return await measure(clock, propose, len(batteries))
        finally:
            await async_remove_microgrid(hass, entry)


async def measure_sdk(
    sim: MicrogridSimulator, clock: ArrivalClock
) -> tuple[list[float], list[float]]:
    """The Frequenz SDK's battery pool: propose_power → setpoints."""
    before = asyncio.all_tasks()
    await microgrid.initialize(
        sim.url, ResamplerConfig2(resampling_period=timedelta(seconds=1.0))
    )
    pool = microgrid.new_battery_pool(priority=5)
    try:
        # The SDK ignores proposals until it has seen every battery's bounds.
        async with asyncio.timeout(READY_TIMEOUT_S):
            while True:
                clock.reset()
                await pool.propose_power(Power.from_watts(10_000.0))
                try:
                    await clock.wait_for(BATTERY_PAIRS)
                    break
                except TimeoutError:
                    continue

        async def propose(power: float) -> None:
            await pool.propose_power(Power.from_watts(power))

        return await measure(clock, propose, BATTERY_PAIRS)
    finally:
        await pool.stop()
        await _stop_sdk(before)


async def _stop_sdk(before: set[asyncio.Task[Any]]) -> None:
    """Stop the SDK's pipeline and connection (it has no complete shutdown)."""
    pipeline = _data_pipeline._DATA_PIPELINE
    if pipeline is not None:
        await pipeline._stop()
    _data_pipeline._DATA_PIPELINE = None
    manager = connection_manager._CONNECTION_MANAGER
    if manager is not None:
        await manager.api_client.disconnect()
    connection_manager._CONNECTION_MANAGER = None
    leftovers = asyncio.all_tasks() - before - {asyncio.current_task()}
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


def percentile_ms(values: list[float], pct: int) -> float:
    """The `pct`-th percentile of seconds, in milliseconds."""
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1] * 1000.0


async def main() -> None:
    """Run both measurements on one simulator and print the result line."""
    logging.basicConfig(level=logging.WARNING)
    sim = MicrogridSimulator(generate_scenario(N_COMPONENTS), sample_period_s=1.0)
    await sim.start(host="127.0.0.1", port=0)
    try:
        clock = ArrivalClock(sim)
        ours_first, ours_last = await measure_ours(sim, clock)
        await asyncio.sleep(1.0)
        sdk_first, sdk_last = await measure_sdk(sim, clock)
    finally:
        await sim.stop()
    print(
        f"control_latency_all_setpoints ours_p50_ms={percentile_ms(ours_last, 50):.2f} "
        f"ours_p99_ms={percentile_ms(ours_last, 99):.2f} "
        f"sdk_p50_ms={percentile_ms(sdk_last, 50):.2f} "
        f"sdk_p99_ms={percentile_ms(sdk_last, 99):.2f} "
        f"unsafe_setpoints={sim.unsafe_setpoint_count}",
        file=sys.stderr,
    )
    print(
        f"control_latency ours_p50_ms={percentile_ms(ours_first, 50):.2f} "
        f"ours_p99_ms={percentile_ms(ours_first, 99):.2f} "
        f"sdk_p50_ms={percentile_ms(sdk_first, 50):.2f} "
        f"sdk_p99_ms={percentile_ms(sdk_first, 99):.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
