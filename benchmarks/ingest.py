"""Ingest: Home Assistant with the integration on a generated N-component microgrid.

The simulator (`generated:N`, 1 Hz samples) runs in a child process so only Home
Assistant's side is measured: this process runs the real Home Assistant core with
the integration added through its config flow. After a warm-up it measures, in one
run and side by side, two modes of the same entry, window after window:

- `full`: what users run — telemetry streams in, the engine ticks, and every
  snapshot reaches the entities, which write their states;
- `baseline`: the same streams and ticks, but the coordinator tells no entity, so
  no state is written: what Home Assistant, gRPC and the engine cost without the
  telemetry → entity write path.

The machine is shared and noisy, so the modes alternate (baseline, full, full,
baseline, …) over `--rounds` rounds, with a settling pause after each switch (the
first snapshot after a baseline window writes every changed state at once). Per
window it records:

- process CPU (every thread of this process: the event loop, gRPC's poller and
  Home Assistant's executors), as % of one core;
- event-loop lag: a task sleeping 50 ms over and over records how late it wakes,
  which is how long other callbacks held the loop;
- state writes per second: `state_changed` plus `state_reported` events (a write
  whose state and attributes did not change only reports);
- garbage-collection pauses per generation (stderr).

Prints one line per microgrid size (each window and the progress go to stderr):

    ingest components=<N> entities=<E> cpu_pct=<full, median of windows>
        baseline_cpu_pct=<baseline, median> write_path_cpu_pct=<median of
        full − baseline per round> loop_lag_p50_ms=<x> loop_lag_p99_ms=<y>
        baseline_loop_lag_p99_ms=<z> writes_per_s=<w> rounds=<R>

Targets (issue 18): 1,000 components ≤ 10 % of a core, 5,000 ≤ 40 %, loop lag
p99 < 50 ms (in full mode).

    scripts/python -m benchmarks.ingest [--components 1000 5000] [--rounds 3]
        [--seconds 10]
    scripts/python -m benchmarks.ingest --components 1000 --profile ingest.pstats
        # cProfile the full-mode windows
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
import cProfile
from dataclasses import dataclass
import logging
import os
import signal
import statistics
import sys
import time
from typing import Any, Self

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback

from benchmarks._ha_harness import home_assistant_with_generated_microgrid
from benchmarks._probes import GcPauseMeter, LoopLagProbe

LAG_PROBE_INTERVAL_S = 0.05
TARGET_CPU_PCT: Mapping[int, float] = {1000: 10.0, 5000: 40.0}
"""Issue 18's CPU goal (full mode, % of one core) per microgrid size."""
TARGET_LAG_P99_MS = 50.0
FULL = "full"
BASELINE = "baseline"


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
class Window:
    """What one measurement window saw."""

    mode: str
    cpu_pct: float
    loop_cpu_pct: float
    """The event loop's thread alone (the rest: gRPC's poller, executors)."""
    lags_ms: list[float]
    writes_per_s: float
    gc_pauses: str

    def line(self, components: int, round_no: int) -> str:
        """One stderr line per window."""
        return (
            f"ingest_window components={components} round={round_no} "
            f"mode={self.mode} cpu_pct={self.cpu_pct:.1f} "
            f"loop_cpu_pct={self.loop_cpu_pct:.1f} "
            f"loop_lag_p99_ms={_percentile(self.lags_ms, 99):.2f} "
            f"writes_per_s={self.writes_per_s:.0f} gc: {self.gc_pauses}"
        )


def _percentile(values: list[float], pct: int) -> float:
    """The `pct`-th percentile (inclusive method); NaN when empty."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


@dataclass(frozen=True)
class IngestResult:
    """Every window of one microgrid size, both modes."""

    components: int
    entities: int
    windows: list[tuple[int, Window]]
    """(round, window) in the order measured."""

    def _of(self, mode: str) -> list[Window]:
        return [window for _, window in self.windows if window.mode == mode]

    def cpu_pct(self, mode: str) -> float:
        """Median CPU of a mode's windows."""
        return statistics.median(w.cpu_pct for w in self._of(mode))

    def write_path_cpu_pct(self) -> float:
        """Median over rounds of full − baseline CPU: the write path's own cost."""
        by_round: dict[int, dict[str, float]] = {}
        for round_no, window in self.windows:
            by_round.setdefault(round_no, {})[window.mode] = window.cpu_pct
        return statistics.median(
            modes[FULL] - modes[BASELINE] for modes in by_round.values()
        )

    def lag_ms(self, mode: str, pct: int) -> float:
        """A percentile of the loop lag over all of a mode's windows."""
        return _percentile([lag for w in self._of(mode) for lag in w.lags_ms], pct)

    def line(self) -> str:
        """Return the benchmark's line for this size."""
        full = statistics.median(w.writes_per_s for w in self._of(FULL))
        return (
            f"ingest components={self.components} entities={self.entities} "
            f"cpu_pct={self.cpu_pct(FULL):.1f} "
            f"baseline_cpu_pct={self.cpu_pct(BASELINE):.1f} "
            f"write_path_cpu_pct={self.write_path_cpu_pct():.1f} "
            f"loop_lag_p50_ms={self.lag_ms(FULL, 50):.2f} "
            f"loop_lag_p99_ms={self.lag_ms(FULL, 99):.2f} "
            f"baseline_loop_lag_p99_ms={self.lag_ms(BASELINE, 99):.2f} "
            f"writes_per_s={full:.0f} rounds={len(self._of(FULL))}"
        )

    def verdict(self) -> str:
        """Whether the issue's goal is met (full mode), for stderr."""
        target = TARGET_CPU_PCT.get(self.components)
        if target is None:
            return "no target for this size"
        met = self.cpu_pct(FULL) <= target and self.lag_ms(FULL, 99) < TARGET_LAG_P99_MS
        return (
            f"target cpu_pct<={target:.0f} loop_lag_p99_ms<{TARGET_LAG_P99_MS:.0f}: "
            f"{'met' if met else 'MISSED'}"
        )


@contextmanager
def _mode(entry: ConfigEntry, mode: str) -> Iterator[None]:
    """Run the entry in `mode`: in baseline, the coordinator tells no entity."""
    coordinator = entry.runtime_data.coordinator
    if mode == BASELINE:
        coordinator.async_update_listeners = lambda: None
    try:
        yield
    finally:
        if mode == BASELINE:
            del coordinator.async_update_listeners


async def measure_window(
    hass: HomeAssistant, mode: str, duration_s: float, profiler: cProfile.Profile | None
) -> Window:
    """Measure CPU, loop lag and state writes over `duration_s` seconds."""
    async with LoopLagProbe(LAG_PROBE_INTERVAL_S) as probe:
        with StateWriteCounter(hass) as writes, GcPauseMeter() as gc_pauses:
            cpu_started = time.process_time()
            loop_cpu_started = time.thread_time()
            started = time.monotonic()
            if profiler is not None:
                profiler.enable()
            await asyncio.sleep(duration_s)
            if profiler is not None:
                profiler.disable()
            elapsed = time.monotonic() - started
            cpu_s = time.process_time() - cpu_started
            loop_cpu_s = time.thread_time() - loop_cpu_started
    return Window(
        mode=mode,
        cpu_pct=100 * cpu_s / elapsed,
        loop_cpu_pct=100 * loop_cpu_s / elapsed,
        lags_ms=list(probe.lags_ms),
        writes_per_s=writes.count / elapsed,
        gc_pauses=gc_pauses.summary(elapsed),
    )


async def run_size(n_components: int, args: argparse.Namespace) -> IngestResult:
    """Start the simulator and Home Assistant, warm up, alternate modes, tear down."""
    profiler = cProfile.Profile() if args.profile else None
    setup_started = time.monotonic()
    windows: list[tuple[int, Window]] = []
    async with home_assistant_with_generated_microgrid(n_components) as (hass, entry):
        _note(
            f"{n_components} components: entry loaded "
            f"{time.monotonic() - setup_started:.1f} s after start-up began; "
            f"warming up {args.warmup:.0f} s"
        )
        await asyncio.sleep(args.warmup)
        entities = len(hass.states.async_entity_ids())
        for round_no in range(1, args.rounds + 1):
            # Alternate which mode goes first, so a trend over the run (the
            # machine getting busier, the heap growing) favours neither.
            order = (BASELINE, FULL) if round_no % 2 else (FULL, BASELINE)
            for mode in order:
                with _mode(entry, mode):
                    await asyncio.sleep(args.settle)
                    window = await measure_window(
                        hass, mode, args.seconds, profiler if mode == FULL else None
                    )
                windows.append((round_no, window))
                _note(window.line(n_components, round_no))
    if profiler is not None:
        profiler.dump_stats(args.profile)
        _note(f"profile of the full-mode windows written to {args.profile}")
    return IngestResult(n_components, entities, windows)


async def run(args: argparse.Namespace) -> None:
    """Measure each size in turn; SIGTERM cancels as Ctrl-C does (clean teardown)."""
    run_task = asyncio.current_task()
    assert run_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, run_task.cancel)
    for n_components in args.components:
        result = await run_size(n_components, args)
        print(result.line(), flush=True)
        load_1min = os.getloadavg()[0]
        _note(
            f"{result.verdict()}; machine load (1 min average) {load_1min:.2f} "
            f"on {os.cpu_count()} cores"
        )


def _note(message: str) -> None:
    """Progress goes to stderr: stdout carries only the result lines."""
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--components",
        type=int,
        nargs="+",
        default=[1000, 5000],
        help="microgrid sizes, measured one after another",
    )
    parser.add_argument("--rounds", type=int, default=3, help="windows per mode")
    parser.add_argument("--seconds", type=float, default=10.0, help="window length")
    parser.add_argument(
        "--settle", type=float, default=3.0, help="pause after each mode switch"
    )
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--profile", help="write a cProfile of the full windows here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt, asyncio.CancelledError:
        sys.exit("ingest: interrupted")


if __name__ == "__main__":
    main()
