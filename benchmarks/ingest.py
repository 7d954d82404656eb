"""Ingest: Home Assistant with the integration on a generated N-component microgrid.

The simulator (`generated:N`, 1 Hz samples) runs in a child process so only Home
Assistant's side is measured: this process runs the real Home Assistant core with
the integration added through its config flow. After a warm-up, it measures over
a window:

- process CPU (every thread of this process: the event loop, gRPC's poller and
  Home Assistant's executors), as % of one core;
- event-loop lag: a task sleeping 50 ms over and over records how late it wakes,
  which is how long other callbacks held the loop;
- state writes per second: `state_changed` plus `state_reported` events (a write
  whose state and attributes did not change only reports);
- garbage-collection pauses per generation (stderr): with thousands of entities the
  heap is large, and a full collection stops the loop for a long time.

`--components 0` measures Home Assistant alone (no simulator, no entry): the
baseline the integration's cost adds to, and the machine's noise floor for lag.

Prints one line (progress and the entity count go to stderr):

    ingest components=<N> cpu_pct=<HA process CPU %> loop_lag_p50_ms=<x>
        loop_lag_p99_ms=<y> writes_per_s=<z>

Target at N=1000: under 25 % of one core, lag p99 under 50 ms.

    scripts/python -m benchmarks.ingest [--components N --seconds S]
    scripts/python -m benchmarks.ingest --profile ingest.pstats   # cProfile the loop
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
import cProfile
from dataclasses import dataclass
import logging
import os
import signal
import sys
import time
from typing import Any, Self

from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback

from benchmarks._ha_harness import (
    home_assistant_with_generated_microgrid,
    running_home_assistant,
)
from benchmarks._probes import GcPauseMeter, LoopLagProbe

LAG_PROBE_INTERVAL_S = 0.05
TARGET_CPU_PCT = 25.0
TARGET_LAG_P99_MS = 50.0


class StateWriteCounter:
    """Count every state write in Home Assistant: changed and merely reported."""

    def __init__(self, hass: HomeAssistant) -> None:
        self._hass = hass
        self.count = 0
        self._unsubscribe: list[CALLBACK_TYPE] = []

    @callback
    def _count(self, _event: Event[Any]) -> None:
        self.count += 1

    @callback
    def _every_report(self, _data: Mapping[str, Any]) -> bool:
        """Let every report through: HA demands a filter for `state_reported`."""
        return True

    def __enter__(self) -> Self:
        bus = self._hass.bus
        self._unsubscribe = [
            bus.async_listen(EVENT_STATE_CHANGED, self._count),
            bus.async_listen(EVENT_STATE_REPORTED, self._count, self._every_report),
        ]
        return self

    def __exit__(self, *_: object) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()


@dataclass(frozen=True)
class IngestResult:
    """What one measurement window saw."""

    components: int
    entities: int
    cpu_pct: float
    lag_p50_ms: float
    lag_p99_ms: float
    writes_per_s: float
    gc_pauses: str
    """Human-readable GC pause summary (stderr only)."""

    def line(self) -> str:
        """Return the benchmark's one-line report."""
        return (
            f"ingest components={self.components} cpu_pct={self.cpu_pct:.1f} "
            f"loop_lag_p50_ms={self.lag_p50_ms:.2f} "
            f"loop_lag_p99_ms={self.lag_p99_ms:.2f} "
            f"writes_per_s={self.writes_per_s:.0f}"
        )

    @property
    def meets_target(self) -> bool:
        """Whether the issue's target (CPU and lag p99) is met."""
        return self.cpu_pct < TARGET_CPU_PCT and self.lag_p99_ms < TARGET_LAG_P99_MS


async def measure(
    hass: HomeAssistant,
    n_components: int,
    duration_s: float,
    profiler: cProfile.Profile | None = None,
) -> IngestResult:
    """Measure CPU, loop lag and state writes over `duration_s` seconds."""
    async with LoopLagProbe(LAG_PROBE_INTERVAL_S) as probe:
        with StateWriteCounter(hass) as writes, GcPauseMeter() as gc_pauses:
            cpu_started = time.process_time()
            started = time.monotonic()
            if profiler is not None:
                profiler.enable()
            await asyncio.sleep(duration_s)
            if profiler is not None:
                profiler.disable()
            elapsed = time.monotonic() - started
            cpu_s = time.process_time() - cpu_started
    return IngestResult(
        components=n_components,
        entities=len(hass.states.async_entity_ids()),
        cpu_pct=100 * cpu_s / elapsed,
        lag_p50_ms=probe.percentile_ms(50),
        lag_p99_ms=probe.percentile_ms(99),
        writes_per_s=writes.count / elapsed,
        gc_pauses=gc_pauses.summary(elapsed),
    )


@asynccontextmanager
async def _home_assistant(n_components: int) -> AsyncIterator[HomeAssistant]:
    """Home Assistant with a generated microgrid, or alone for 0 (the baseline)."""
    if n_components == 0:
        async with running_home_assistant() as hass:
            yield hass
        return
    setup_started = time.monotonic()
    async with home_assistant_with_generated_microgrid(n_components) as (hass, _):
        _note(
            f"entry loaded {time.monotonic() - setup_started:.1f} s after start-up "
            f"began, {len(hass.states.async_entity_ids())} entities so far"
        )
        yield hass


async def run(args: argparse.Namespace) -> IngestResult:
    """Start the simulator and Home Assistant, warm up, measure, tear down.

    SIGTERM cancels the run as Ctrl-C does, so the teardown still stops the
    simulator's child process instead of leaving it behind.
    """
    run_task = asyncio.current_task()
    assert run_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, run_task.cancel)
    profiler = cProfile.Profile() if args.profile else None
    async with _home_assistant(args.components) as hass:
        _note(f"warming up {args.warmup:.0f} s, then measuring {args.seconds:.0f} s")
        await asyncio.sleep(args.warmup)
        result = await measure(hass, args.components, args.seconds, profiler)
    if profiler is not None:
        profiler.dump_stats(args.profile)
        _note(f"profile of the measurement window written to {args.profile}")
    return result


def _note(message: str) -> None:
    """Progress goes to stderr: stdout carries only the result line."""
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--components", type=int, default=1000, help="0: Home Assistant alone"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="window length")
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--profile", help="write a cProfile of the window here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        result = asyncio.run(run(args))
    except KeyboardInterrupt, asyncio.CancelledError:
        sys.exit("ingest: interrupted")
    print(result.line(), flush=True)
    _note(f"gc pauses: {result.gc_pauses}")
    # Lag is only meaningful on an otherwise idle machine: show how busy it was.
    load_1min = os.getloadavg()[0]
    _note(f"machine load (1 min average) {load_1min:.2f} on {os.cpu_count()} cores")
    _note(
        f"{result.entities} entities in the state machine; target "
        f"cpu_pct<{TARGET_CPU_PCT:.0f} loop_lag_p99_ms<{TARGET_LAG_P99_MS:.0f}: "
        f"{'met' if result.meets_target else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
