"""Control tick: what one steering tick costs, per scenario (issue 18 §4).

Since the charging hub joined the tick (modes, circuits with per-circuit meter
pairing, peak shaving), every telemetry round re-checks every pool; at high
simulator speed a slow tick lets the data path fall behind the battery's bounds.
This runs Home Assistant's core with the integration (added through its config
flow) on each scenario's simulator (in this process, at 1×, 1 Hz), lets it warm
up, then profiles a window (cProfile) and reports the controller's tick:

    control_tick scenario=<name> ticks=<n> tick_cpu_ms_mean=<x> tick_cpu_ms_p99=<y>
        health_ms=<a> steer_ms=<b> shave_ms=<c> bounds_ms=<d>

`tick_cpu_ms_*` is the CPU the tick coroutine's own steps ran (its awaits
excluded), measured per tick with a thread-time clock around each step: the health
refresh, bounds and peak shaving, not the pools' steering, which runs as a task of
its own (a proposal may pre-empt it). The parts (milliseconds per tick, the
steering included) come from the profile's cumulative times, so they carry its
overhead (about 2–3×).

    scripts/python -m benchmarks.control_tick [--scenario home depot hub:100]
        [--seconds 20] [--profile tick.pstats]

`--engine N` measures instead the engine's whole periodic work on `generated:N`
without Home Assistant (the simulator in a child process, so its CPU is not
counted): the monitor's tick, the controller's tick and every pool's steering,
each tick driven by hand once a second while telemetry streams in, each timed
on the thread-time clock over its own steps only:

    control_tick engine components=<N> ticks=<n> monitor_cpu_ms=<a>
        controller_cpu_ms=<b> steer_cpu_ms=<c> total_cpu_ms=<a+b+c>
    scripts/python -m benchmarks.control_tick --engine 5000 [--ticks 20]
        [--profile engine.pstats]   # cProfile of the driven ticks

(medians per tick; ~1 % of a core per 10 ms).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Coroutine, Generator, Iterable
import cProfile
import logging
import pstats
import statistics
import sys
import time
from typing import Any

from frequenz.client.microgrid import MicrogridApiClient

from benchmarks._ha_harness import (
    async_add_microgrid,
    async_remove_microgrid,
    running_home_assistant,
    simulator_process,
)
from custom_components.frequenz_microgrid.engine.control.controller import (
    MicrogridController,
)
from custom_components.frequenz_microgrid.engine.control.steering import (
    ComponentSet,
    PoolSteering,
    Results,
)
from custom_components.frequenz_microgrid.engine.graph import load_topology
from custom_components.frequenz_microgrid.engine.microgrid import MicrogridEngine
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.cli import scenario_from_arg

PARTS = {
    "health_ms": "_refresh_inputs_stepwise",
    "steer_ms": "_steer",
    "shave_ms": "_shave_peak",
    "bounds_ms": "update_system_bounds",
}
"""The tick's parts, by the function that does each (cumulative profile time)."""


class _TimedCoroutine:
    """Wrap a coroutine; add up the thread CPU of each of its steps."""

    def __init__(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self._coroutine = coroutine
        self.cpu_s = 0.0

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine = self._coroutine
        value: Any = None
        error: BaseException | None = None
        while True:
            started = time.thread_time()
            try:
                if error is not None:
                    yielded = coroutine.throw(error)
                else:
                    yielded = coroutine.send(value)
            except StopIteration as stop:
                self.cpu_s += time.thread_time() - started
                return stop.value
            finally:
                error = None
            self.cpu_s += time.thread_time() - started
            try:
                value = yield yielded
            except BaseException as err:  # handed to the coroutine
                error = err
                value = None


async def measure(
    scenario: str, seconds: float, warmup: float, profile_to: str | None
) -> str:
    """Run one scenario; return its line."""
    sim = MicrogridSimulator(scenario_from_arg(scenario), sample_period_s=1.0)
    await sim.start()
    tick_cpu_ms: list[float] = []
    profiler = cProfile.Profile()
    try:
        async with running_home_assistant() as hass:
            entry = await async_add_microgrid(hass, sim.url)
            controller: MicrogridController = entry.runtime_data.engine.controller
            original = controller.tick

            async def timed_tick() -> None:
                timed = _TimedCoroutine(original())
                await timed
                tick_cpu_ms.append(timed.cpu_s * 1000.0)

            await asyncio.sleep(warmup)
            tick_cpu_ms.clear()
            controller.tick = timed_tick  # type: ignore[method-assign]
            profiler.enable()
            await asyncio.sleep(seconds)
            profiler.disable()
            del controller.tick
            await async_remove_microgrid(hass, entry)
    finally:
        await sim.stop()
    ticks = len(tick_cpu_ms)
    if profile_to:
        profiler.dump_stats(profile_to.replace("SCENARIO", scenario.replace(":", "")))
    stats = pstats.Stats(profiler)
    parts = dict.fromkeys(PARTS, 0.0)
    for (_, _, function), row in stats.stats.items():  # type: ignore[attr-defined]
        for name, wanted in PARTS.items():
            if function == wanted:
                parts[name] += row[3]  # cumulative time
    ordered = sorted(tick_cpu_ms) or [0.0]
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (
        f"control_tick scenario={scenario} ticks={ticks} "
        f"tick_cpu_ms_mean={statistics.fmean(ordered):.2f} "
        f"tick_cpu_ms_p99={p99:.2f} "
        + " ".join(
            f"{name}={1000.0 * total / max(ticks, 1):.2f}"
            for name, total in parts.items()
        )
    )


async def measure_engine(
    n_components: int, ticks: int, warmup_s: float, profile: str | None = None
) -> str:
    """The engine's periodic work on `generated:N`, without Home Assistant.

    With `profile`, the driven ticks (not the telemetry between them) are
    profiled into that file; the figures then carry the profiler's overhead.
    """
    profiler = cProfile.Profile() if profile else None
    with simulator_process(n_components) as (url, _):
        client = MicrogridApiClient(url)
        try:
            topology = await load_topology(client)
            engine = MicrogridEngine(
                client, topology, on_snapshot=lambda _snapshot: None, tick_s=3600.0
            )
            await engine.start()
            monitor, controller = engine.monitor, engine.controller
            # Only the ticks driven here tick the controller.
            controller._running = False
            steer_cpu_s = [0.0]
            for steering in controller._pools.values():
                _time_steering(steering, steer_cpu_s)
            rows: list[tuple[float, float, float]] = []
            await asyncio.sleep(warmup_s)
            for _ in range(ticks):
                await asyncio.sleep(1.0)
                steer_cpu_s[0] = 0.0
                if profiler is not None:
                    profiler.enable()
                monitor_tick = _TimedCoroutine(monitor._tick_in_slices())
                await monitor_tick
                controller_tick = _TimedCoroutine(controller.tick())
                await controller_tick
                if profiler is not None:
                    profiler.disable()
                rows.append((monitor_tick.cpu_s, controller_tick.cpu_s, steer_cpu_s[0]))
            controller._running = True
            await engine.stop()
        finally:
            await client.disconnect()
    if profiler is not None and profile:
        profiler.dump_stats(profile)
    monitor_ms, controller_ms, steer_ms = (
        1000.0 * statistics.median(row[index] for row in rows) for index in range(3)
    )
    return (
        f"control_tick engine components={n_components} ticks={len(rows)} "
        f"monitor_cpu_ms={monitor_ms:.2f} controller_cpu_ms={controller_ms:.2f} "
        f"steer_cpu_ms={steer_ms:.2f} "
        f"total_cpu_ms={monitor_ms + controller_ms + steer_ms:.2f}"
    )


def _time_steering(steering: PoolSteering, total_s: list[float]) -> None:
    """Add the CPU of each of the pool's steering runs to `total_s[0]`."""
    original = steering.steer

    async def timed(now: float, *, force: Iterable[ComponentSet] = ()) -> Results:
        run = _TimedCoroutine(original(now, force=force))
        results: Results = await run
        total_s[0] += run.cpu_s
        return results

    steering.steer = timed  # type: ignore[method-assign]


async def run(args: argparse.Namespace) -> None:
    """Each scenario in turn (or the engine alone, `--engine`)."""
    if args.engine:
        line = await measure_engine(args.engine, args.ticks, args.warmup, args.profile)
        print(line, flush=True)
        return
    for scenario in args.scenario:
        line = await measure(scenario, args.seconds, args.warmup, args.profile)
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", nargs="+", default=["home", "depot", "hub:100"])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument(
        "--profile", help="write each profile here (SCENARIO: the scenario's name)"
    )
    parser.add_argument(
        "--engine",
        type=int,
        metavar="N",
        help="measure the engine's periodic work on generated:N instead",
    )
    parser.add_argument("--ticks", type=int, default=20, help="with --engine")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        sys.exit("control_tick: interrupted")


if __name__ == "__main__":
    main()
