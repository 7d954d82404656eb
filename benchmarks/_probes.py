"""Probes the benchmarks share: event-loop lag and garbage-collection pauses."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import gc
import statistics
import time
from typing import Self

BLOCKED_THRESHOLD_MS = 5.0
"""Lag above this counts as the loop being blocked (`LoopLagProbe.blocked_summary`)."""


class LoopLagProbe:
    """Measure event-loop lag: how late a short sleep wakes up, again and again.

    A callback that holds the loop delays every other task by as long as it runs;
    the probe's overshoot samples exactly that delay. Use as an async context
    manager, or `start()` / `await stop()`.
    """

    def __init__(self, interval_s: float = 0.05) -> None:
        """Sleep `interval_s` per sample once started."""
        self._interval_s = interval_s
        self.lags_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None
        self._started = 0.0
        self._elapsed_s = 0.0

    def start(self) -> None:
        """Start sampling."""
        self._started = time.perf_counter()
        self._task = asyncio.create_task(self._run(), name="loop lag probe")

    async def stop(self) -> None:
        """Stop sampling."""
        self._elapsed_s = time.perf_counter() - self._started
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self._interval_s)
            self.lags_ms.append((loop.time() - started - self._interval_s) * 1000)

    def percentile_ms(self, pct: int) -> float:
        """Return the `pct`-th percentile of the lags (inclusive method)."""
        if len(self.lags_ms) < 2:
            return self.lags_ms[0] if self.lags_ms else float("nan")
        return statistics.quantiles(self.lags_ms, n=100, method="inclusive")[pct - 1]

    def blocked_summary(self) -> str:
        """Share of time blocked longer than the threshold, and the longest block."""
        blocked = [lag for lag in self.lags_ms if lag > BLOCKED_THRESHOLD_MS]
        elapsed_ms = self._elapsed_s * 1000
        share = 100.0 * sum(blocked) / elapsed_ms if elapsed_ms else 0.0
        return (
            f"loop_blocked_pct={share:.1f} "
            f"longest_block_ms={max(blocked, default=0.0):.1f}"
        )


class GcPauseMeter:
    """Record when and how long each garbage collection runs, per generation.

    A collection holds the GIL for its whole run, so each one is a loop stall; the
    full (generation 2) ones grow with everything alive in the process. Use as a
    context manager, or `start()` / `stop()`.
    """

    GENERATIONS = (0, 1, 2)

    def __init__(self) -> None:
        """Not recording until started."""
        self.spans: dict[int, list[tuple[float, float]]] = {
            gen: [] for gen in self.GENERATIONS
        }
        """Per generation: when each collection began and ended (perf_counter)."""
        self._started = 0.0

    def start(self) -> None:
        """Start recording."""
        gc.callbacks.append(self._on_gc)

    def stop(self) -> None:
        """Stop recording."""
        gc.callbacks.remove(self._on_gc)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _on_gc(self, phase: str, info: Mapping[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.spans[info["generation"]].append((self._started, time.perf_counter()))

    def pauses_ms(self, generation: int) -> list[float]:
        """How long each collection of `generation` ran."""
        return [(end - began) * 1000 for began, end in self.spans[generation]]

    def summary(self, elapsed_s: float) -> str:
        """Return collections per second and the longest pause, per generation."""
        return "; ".join(
            f"gen{gen} {len(self.spans[gen]) / elapsed_s:.2f}/s "
            f"max {max(self.pauses_ms(gen), default=0.0):.0f} ms"
            for gen in self.GENERATIONS
        )

    def full_summary(self) -> str:
        """Number of full collections, their total and longest pause."""
        pauses = self.pauses_ms(2)
        return (
            f"full_gcs={len(pauses)} full_gc_total_ms={sum(pauses):.0f} "
            f"full_gc_longest_ms={max(pauses, default=0.0):.0f}"
        )

    def full_during(self, start: float, end: float) -> bool:
        """Whether a full collection ran (partly) between `start` and `end`."""
        return any(began < end and ended > start for began, ended in self.spans[2])
