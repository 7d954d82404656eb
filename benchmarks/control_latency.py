"""Control latency: from a power proposal to the setpoint arriving at the microgrid.

A generated microgrid with 100 battery pairs (402 components, all streaming at
1 Hz) runs in the built-in simulator in a **child process**, so its telemetry
production and gRPC serving do not compete for the event loop being measured.
The child notes when each `SetElectricalComponentPower` arrives
(`time.perf_counter`, i.e. `CLOCK_MONOTONIC`, the same clock in both processes)
and reports it on stdout. Then, one after the other, on the same simulator:

- **ours**: Home Assistant's core with the integration set up through its config
  flow, streaming all 402 components; each sample is one
  `frequenz_microgrid.propose_power` action call for the battery pool;
- **sdk**: the Frequenz SDK (`new_battery_pool().propose_power()`), streaming the
  pool's batteries and inverters through its data pipeline.

Each side gets `WARM_UP` unmeasured proposals, then `SAMPLES` measured ones, each
with a different power (so every inverter's setpoint changes), spaced by a
pseudo-random pause so that proposals land at every phase of the 1 s telemetry
and steering ticks. A sample is the time from the call to the *first* setpoint
arriving; stderr adds the time to the last of the 100 setpoints, the same
proposal made on the controller directly (without Home Assistant's service
call), how long the event loop was blocked and Python's full garbage
collections meanwhile, and the floors, the bare client without Home Assistant:
one setpoint alone (no first setpoint arrives sooner) and 100 concurrent ones
(no last setpoint arrives sooner). The simulator reports how long its own loop was
blocked (serving 402 telemetry streams): an arrival is noted late meanwhile, on
both sides alike.

With `--freeze-gc`, every object alive after the warm-up is moved out of the
garbage collector's sight (`gc.freeze()`), on both sides: that shows what the
full collections cost (Home Assistant itself does not freeze).

Run: `scripts/python -m benchmarks.control_latency [--freeze-gc]`; prints
`control_latency ours_p50_ms=<a> ours_p99_ms=<b> sdk_p50_ms=<c> sdk_p99_ms=<d>`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
import gc
import logging
from pathlib import Path
import random
import statistics
import sys
import time
from typing import Any

from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid import MicrogridApiClient
from frequenz.client.microgrid.component import BatteryInverter
from frequenz.quantities import Power
from frequenz.sdk import microgrid
from frequenz.sdk.timeseries import ResamplerConfig2

from benchmarks._ha_harness import (
    async_add_microgrid,
    async_remove_microgrid,
    running_home_assistant,
)
from benchmarks._probes import GcPauseMeter, LoopLagProbe
from custom_components.frequenz_microgrid.actions import DEFAULT_ACTOR
from custom_components.frequenz_microgrid.actors import action_source_id
from custom_components.frequenz_microgrid.const import DEFAULT_PRIORITY, DOMAIN
from custom_components.frequenz_microgrid.engine.control import Pool
from custom_components.frequenz_microgrid.engine.health import ComponentHealth
from custom_components.frequenz_microgrid.runtime import MicrogridRuntimeData
from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    generate_scenario,
)
from tests.sdk_runtime import stop_sdk

REPO_ROOT = Path(__file__).resolve().parent.parent
BATTERY_PAIRS = 100
N_COMPONENTS = 2 + 4 * BATTERY_PAIRS
"""Grid, grid meter, then per group an inverter, its battery, a PV inverter and an
EV charger: 100 groups give 100 battery pairs."""
SAMPLES = 200
WARM_UP = 20
PAUSE_S = (0.01, 0.12)
"""Range of the pseudo-random pause between two samples (seconds)."""
ARRIVAL_TIMEOUT_S = 5.0
READY_TIMEOUT_S = 60.0
SLOW_S = 0.010
"""A sample slower than this (the target p99) is counted, by cause."""
LAG_INTERVAL_S = 0.001
"""The loop-lag probe's heartbeat."""
SERVE_FLAG = "--serve-simulator"


# --- The simulator child process -------------------------------------------------


async def serve_simulator(n_components: int) -> None:
    """Child: serve the simulator, print its URL, then one line per setpoint.

    Runs until stdin closes; then prints the unsafe-setpoint count and stops.
    """
    sim = MicrogridSimulator(generate_scenario(n_components), sample_period_s=1.0)
    original = sim.control.set_active_power

    def timed(*args: Any, **kwargs: Any) -> float:
        sys.stdout.write(f"arrival {time.perf_counter()!r}\n")
        sys.stdout.flush()
        return original(*args, **kwargs)

    setattr(sim.control, "set_active_power", timed)  # noqa: B010
    await sim.start(host="127.0.0.1", port=0)
    gc.freeze()  # as the simulator's command line does (see its `run`)
    print(f"url {sim.url}", flush=True)
    lag = LoopLagProbe(LAG_INTERVAL_S)  # arrivals are late while the loop is busy
    lag.start()
    pauses = GcPauseMeter()
    pauses.start()
    try:
        await asyncio.to_thread(sys.stdin.read)
    finally:
        pauses.stop()
        await lag.stop()
        print(f"lag {lag.blocked_summary()} {pauses.full_summary()}", flush=True)
        print(f"unsafe {sim.unsafe_setpoint_count}", flush=True)
        await sim.stop()


@dataclass
class SimulatorProcess:
    """The parent's view of the simulator child: URL and setpoint arrival times."""

    url: str
    arrivals: list[float] = field(default_factory=list)
    unsafe_setpoints: int | None = None
    lag: str = ""
    """How long the simulator's own event loop was blocked (its summary line)."""
    _event: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self, line: str) -> None:
        """Take one line the child printed."""
        kind, _, value = line.partition(" ")
        if kind == "arrival":
            self.arrivals.append(float(value))
            self._event.set()
        elif kind == "unsafe":
            self.unsafe_setpoints = int(value)
        elif kind == "lag":
            self.lag = value

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


@asynccontextmanager
async def simulator_child(n_components: int) -> AsyncIterator[SimulatorProcess]:
    """Run the timed simulator in a child process while the block runs."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.control_latency",
        SERVE_FLAG,
        str(n_components),
        cwd=REPO_ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    stdout = process.stdout
    first = (await stdout.readline()).decode().split()
    if first[:1] != ["url"]:
        raise RuntimeError(f"the simulator did not start: {first}")
    child = SimulatorProcess(first[1])

    async def read_lines() -> None:
        while line := await stdout.readline():
            child.note(line.decode().strip())

    reader = asyncio.create_task(read_lines())
    try:
        yield child
    finally:
        process.stdin.close()
        await asyncio.wait_for(reader, timeout=10.0)
        await process.wait()


# --- Measuring -------------------------------------------------------------------


@dataclass
class Samples:
    """Seconds from each measured call to its first and its last setpoint."""

    first: list[float] = field(default_factory=list)
    last: list[float] = field(default_factory=list)
    slow_with_gc: int = 0
    """Samples over `SLOW_S` to the first setpoint with a full collection inside."""
    slow_without_gc: int = 0
    """Samples over `SLOW_S` to the first setpoint without one."""
    lag: LoopLagProbe = field(default_factory=lambda: LoopLagProbe(LAG_INTERVAL_S))
    gc: GcPauseMeter = field(default_factory=GcPauseMeter)


def powers(n: int) -> list[float]:
    """Alternating charge/discharge requests, all different (20–130 kW)."""
    return [(1 if i % 2 else -1) * (20_000.0 + 500.0 * i) for i in range(n)]


async def measure(
    child: SimulatorProcess,
    propose: Callable[[float], Awaitable[None]],
    expected: int,
    *,
    seed: int,
    freeze_gc: bool,
) -> Samples:
    """Time each proposal to its first and its last (`expected`-th) setpoint."""
    pauses = random.Random(seed)
    samples = Samples()
    for i, power in enumerate(powers(WARM_UP + SAMPLES)):
        if i == WARM_UP:
            if freeze_gc:
                gc.collect()
                gc.freeze()
            samples.lag.start()
            samples.gc.start()
        await asyncio.sleep(pauses.uniform(*PAUSE_S))
        child.reset()
        start = time.perf_counter()
        await propose(power)
        await child.wait_for(expected)
        if i >= WARM_UP:
            first = child.arrivals[0] - start
            samples.first.append(first)
            samples.last.append(child.arrivals[expected - 1] - start)
            if first > SLOW_S:
                if samples.gc.full_during(start, child.arrivals[0]):
                    samples.slow_with_gc += 1
                else:
                    samples.slow_without_gc += 1
    await samples.lag.stop()
    samples.gc.stop()
    if freeze_gc:
        gc.unfreeze()
    return samples


async def measure_ours(
    child: SimulatorProcess, *, freeze_gc: bool
) -> tuple[Samples, Samples]:
    """Home Assistant with the integration: action call, then the controller alone."""
    async with running_home_assistant() as hass:
        entry = await async_add_microgrid(hass, child.url)
        runtime: MicrogridRuntimeData = entry.runtime_data
        controller = runtime.engine.controller
        batteries = runtime.engine.topology.battery_ids
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

        async def propose_by_action(power: float) -> None:
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

        async def propose_directly(power: float) -> None:
            # The very proposal the action makes, without the service call.
            await controller.propose(
                Pool.BATTERIES,
                source_id=action_source_id(DEFAULT_ACTOR),
                priority=DEFAULT_PRIORITY,
                power=power,
            )

        try:
            by_action = await measure(
                child, propose_by_action, len(batteries), seed=1, freeze_gc=freeze_gc
            )
            direct = await measure(
                child, propose_directly, len(batteries), seed=2, freeze_gc=freeze_gc
            )
            return by_action, direct
        finally:
            await async_remove_microgrid(hass, entry)


async def measure_sdk(child: SimulatorProcess, *, freeze_gc: bool) -> Samples:
    """The Frequenz SDK's battery pool: propose_power → setpoints."""
    before = asyncio.all_tasks()
    await microgrid.initialize(
        child.url, ResamplerConfig2(resampling_period=timedelta(seconds=1.0))
    )
    pool = microgrid.new_battery_pool(priority=5)
    try:
        # The SDK ignores proposals until it has seen every battery's bounds.
        async with asyncio.timeout(READY_TIMEOUT_S):
            while True:
                child.reset()
                await pool.propose_power(Power.from_watts(10_000.0))
                try:
                    await child.wait_for(BATTERY_PAIRS)
                    break
                except TimeoutError:
                    continue

        async def propose(power: float) -> None:
            await pool.propose_power(Power.from_watts(power))

        return await measure(child, propose, BATTERY_PAIRS, seed=1, freeze_gc=freeze_gc)
    finally:
        await pool.stop()
        await stop_sdk(before)


async def measure_client_floors(
    child: SimulatorProcess, *, freeze_gc: bool
) -> tuple[Samples, Samples]:
    """The bare client, nothing else running: one setpoint alone, then all 100.

    One call alone is the floor of the first setpoint's time; 100 concurrent
    calls (started together) that of the last one's.
    """
    client = MicrogridApiClient(child.url)
    try:
        inverters = [
            ComponentId(int(c.id))
            for c in await client.list_components()
            if isinstance(c, BatteryInverter)
        ]
        lifetime = timedelta(seconds=60)

        async def send_one(power: float) -> None:
            await client.set_component_power_active(
                inverters[0], power / len(inverters), request_lifetime=lifetime
            )

        async def send_all(power: float) -> None:
            share = power / len(inverters)  # within every inverter's bounds
            await asyncio.gather(
                *(
                    client.set_component_power_active(
                        inverter, share, request_lifetime=lifetime
                    )
                    for inverter in inverters
                ),
                return_exceptions=True,  # timed at arrival; answers don't matter
            )

        one = await measure(child, send_one, 1, seed=1, freeze_gc=freeze_gc)
        every = await measure(
            child, send_all, len(inverters), seed=1, freeze_gc=freeze_gc
        )
        return one, every
    finally:
        await client.disconnect()


def percentile_ms(values: list[float], pct: int) -> float:
    """The `pct`-th percentile of seconds, in milliseconds."""
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1] * 1000.0


def describe(name: str, samples: Samples) -> str:
    """One stderr line: first and last setpoint percentiles, and the loop's lag."""
    return (
        f"{name} first_p50_ms={percentile_ms(samples.first, 50):.2f} "
        f"first_p99_ms={percentile_ms(samples.first, 99):.2f} "
        f"last_p50_ms={percentile_ms(samples.last, 50):.2f} "
        f"last_p99_ms={percentile_ms(samples.last, 99):.2f} "
        f"{samples.lag.blocked_summary()} {samples.gc.full_summary()} "
        f"slow_with_full_gc={samples.slow_with_gc} "
        f"slow_without_full_gc={samples.slow_without_gc}"
    )


async def main(*, freeze_gc: bool = False) -> None:
    """Run both measurements on one simulator and print the result line."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("frequenz.channels").setLevel(logging.ERROR)
    async with simulator_child(N_COMPONENTS) as child:
        ours, direct = await measure_ours(child, freeze_gc=freeze_gc)
        await asyncio.sleep(1.0)
        sdk = await measure_sdk(child, freeze_gc=freeze_gc)
        floor_one, floor_all = await measure_client_floors(child, freeze_gc=freeze_gc)
    for name, samples in (
        ("ours", ours),
        ("ours_direct", direct),
        ("sdk", sdk),
        ("client_one_setpoint", floor_one),
        ("client_all_setpoints", floor_all),
    ):
        print(f"control_latency_detail {describe(name, samples)}", file=sys.stderr)
    print(f"simulator_process {child.lag}", file=sys.stderr)
    print(f"unsafe_setpoints={child.unsafe_setpoints}", file=sys.stderr)
    print(
        f"control_latency ours_p50_ms={percentile_ms(ours.first, 50):.2f} "
        f"ours_p99_ms={percentile_ms(ours.first, 99):.2f} "
        f"sdk_p50_ms={percentile_ms(sdk.first, 50):.2f} "
        f"sdk_p99_ms={percentile_ms(sdk.first, 99):.2f}"
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == SERVE_FLAG:
        asyncio.run(serve_simulator(int(sys.argv[2])))
    else:
        asyncio.run(main(freeze_gc="--freeze-gc" in sys.argv[1:]))
