"""Topology refresh: what re-reading the topology costs Home Assistant's event loop.

Home Assistant with the integration on a generated N-component microgrid (the
simulator runs in this process, so components can be connected and disconnected
live; it is idle between its 1 Hz rounds). After a warm-up, the entry's
`TopologyRefresh.async_refresh` is timed step by step: `loop_ms` is the time
its task held the event loop (the engine following a change, the devices
removed; not the network wait nor the work in the executor or the child
process; the platforms add and remove entities in tasks of their own).
`block_ms` is the longest the loop was blocked while the refresh and the
platforms' tasks it set off ran: the stall a user would notice. Both leave
out the process's garbage collections, reported as `gc_max_ms` (the longest
one meanwhile): a full collection of this process (Home Assistant with a
1,000-component simulator in it) takes 0.4–2 s on a small machine, and a
real change is followed by one (its allocations tip it over; as long a
window without a change had none). `lag_max_ms` is the longest the loop was
blocked by anything while the refresh and what it set off ran, GC, the
simulator and the telemetry included.
`entities_changed` counts entity-registry events (created, updated, removed).

Cases: `unchanged` (the median of several refreshes of the same topology) and
`changed` (a battery inverter with its battery and an EV charger connected, a PV
inverter and an EV charger disconnected).

    topology_refresh components=1000 case=unchanged loop_ms=… block_ms=…
        lag_max_ms=… gc_max_ms=… entities_changed=0
    topology_refresh components=1000 case=changed loop_ms=… block_ms=…
        lag_max_ms=… gc_max_ms=… entities_changed=…

Target: ≤ 50 ms of loop time per refresh and no block of the loop over 50 ms
by the refresh; 0 entities changed when unchanged. An unchanged read compares
the raw answers and decodes nothing. A changed one decodes them in the
executor and has the pool formulas generated in a child process (the graph
library holds the GIL for ~0.3–1 s while it generates them, see
`engine/topology_worker.py`).

    scripts/python -m benchmarks.topology_refresh [--components N]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Coroutine, Generator
import gc
import logging
import statistics
import sys
import time
from typing import Any

from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from benchmarks._ha_harness import (
    async_add_microgrid,
    async_remove_microgrid,
    running_home_assistant,
)
from custom_components.frequenz_microgrid.runtime import MicrogridRuntimeData
from custom_components.frequenz_microgrid.simulator import running_simulator
from custom_components.frequenz_microgrid.simulator.scenario import (
    Kind,
    generate_scenario,
    generated_component,
)

TARGET_LOOP_MS = 50.0
WARM_UP_S = 8.0
UNCHANGED_RUNS = 5
FOLLOW_ON_S = 3.0
"""How long after a changed refresh the loop is watched (entities being added)."""


class TimedCoroutine[T]:
    """Await a coroutine, adding up the time each of its steps holds the loop."""

    def __init__(self, coroutine: Coroutine[Any, Any, T]) -> None:
        """Wrap `coroutine` (run it by awaiting this)."""
        self._coroutine = coroutine
        self.busy_s = 0.0
        self.steps: list[tuple[float, float]] = []
        """When each step ran (`time.perf_counter` seconds)."""

    def __await__(self) -> Generator[Any, Any, T]:
        """Drive the coroutine step by step, timing each step."""
        inner = self._coroutine.__await__()
        value: Any = None
        error: BaseException | None = None
        while True:
            started = time.perf_counter()
            try:
                yielded = inner.throw(error) if error is not None else inner.send(value)
            except StopIteration as stop:
                self._took(started)
                return stop.value  # type: ignore[no-any-return]
            self._took(started)
            try:
                value, error = (yield yielded), None
            except BaseException as err:  # handed on to the coroutine
                value, error = None, err

    def _took(self, started: float) -> None:
        ended = time.perf_counter()
        self.busy_s += ended - started
        self.steps.append((started, ended))


class RegistryEventCounter:
    """Counts entity-registry events (entities created, updated, removed)."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Listen from now on (`stop` ends it)."""
        self.count = 0
        self._remove = hass.bus.async_listen(
            er.EVENT_ENTITY_REGISTRY_UPDATED, self._count
        )

    @callback
    def _count(self, _event: Event[Any]) -> None:
        self.count += 1

    def stop(self) -> None:
        """Stop counting."""
        self._remove()


class GcPauses:
    """The process's garbage collections, while open (`stop` ends it)."""

    def __init__(self) -> None:
        """Collect from now on."""
        self.pauses: list[tuple[float, float]] = []
        """When each collection ran (`time.perf_counter` seconds)."""
        self._started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((self._started, time.perf_counter()))

    def within(self, start: float, end: float) -> float:
        """Seconds of garbage collection between `start` and `end`."""
        return sum(
            max(0.0, min(end, gc_end) - max(start, gc_start))
            for gc_start, gc_end in self.pauses
        )

    def stop(self) -> None:
        """Stop collecting."""
        gc.callbacks.remove(self._on_gc)


class BlockProbe:
    """The loop's blocks (like `LoopLagProbe`), each with when it happened."""

    def __init__(self, interval_s: float = 0.01) -> None:
        """Sample every `interval_s` once started."""
        self._interval_s = interval_s
        self.blocks: list[tuple[float, float]] = []
        """Each late wake-up: from when it was due to when it woke (perf_counter)."""
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BlockProbe:
        self._task = asyncio.create_task(self._run(), name="block probe")
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            due = time.perf_counter() + self._interval_s
            await asyncio.sleep(self._interval_s)
            self.blocks.append((due, time.perf_counter()))

    def longest_ms(
        self, until: float = float("inf"), *, minus: GcPauses | None = None
    ) -> float:
        """The longest block that began before `until` (ms), less any GC in it."""
        return max(
            (
                (end - start - (0.0 if minus is None else minus.within(start, end)))
                * 1000
                for start, end in self.blocks
                if start < until
            ),
            default=0.0,
        )


async def _registry_settled(
    hass: HomeAssistant, quiet_s: float = 1.0, timeout_s: float = 60.0
) -> None:
    """Wait until no entity was registered for `quiet_s`.

    Sensors that wait for their first measurement (per-phase values,
    temperatures) are registered once it arrives; on a busy machine that can be
    after the warm-up, and would be counted against the refresh.
    """
    async with asyncio.timeout(timeout_s):
        while True:
            counter = RegistryEventCounter(hass)
            try:
                await asyncio.sleep(quiet_s)
            finally:
                counter.stop()
            if counter.count == 0:
                return


async def _refresh(
    hass: HomeAssistant, runtime: MicrogridRuntimeData, follow_on_s: float
) -> tuple[float, float, float, float, int]:
    """One refresh: loop time, longest block by it, by anything, GC (ms); events.

    The refresh's loop time and its longest block leave out the process's
    garbage collections that ran meanwhile (reported on their own).
    """
    refresh = runtime.topology_refresh
    assert refresh is not None
    counter = RegistryEventCounter(hass)
    collections = GcPauses()
    try:
        async with BlockProbe(0.01) as probe:
            timed = TimedCoroutine(refresh.async_refresh())
            await timed
            await hass.async_block_till_done()  # the platforms' work it set off
            finished = time.perf_counter()
            await asyncio.sleep(follow_on_s)
    finally:
        counter.stop()
        collections.stop()
    own_s = timed.busy_s - sum(collections.within(*step) for step in timed.steps)
    return (
        own_s * 1000,
        probe.longest_ms(finished, minus=collections),
        probe.longest_ms(),
        max(((end - start) * 1000 for start, end in collections.pauses), default=0.0),
        counter.count,
    )


def _line(n: int, case: str, runs: list[tuple[float, float, float, float, int]]) -> str:
    """The case's figures: the median loop time, the worst of the rest."""
    return (
        f"topology_refresh components={n} case={case} "
        f"loop_ms={statistics.median(r[0] for r in runs):.1f} "
        f"block_ms={max(r[1] for r in runs):.1f} "
        f"lag_max_ms={max(r[2] for r in runs):.1f} "
        f"gc_max_ms={max(r[3] for r in runs):.1f} "
        f"entities_changed={sum(r[4] for r in runs)}"
    )


async def run(
    n_components: int,
    *,
    warm_up_s: float = WARM_UP_S,
    follow_on_s: float = FOLLOW_ON_S,
) -> bool:
    """Measure both cases; print a line each; return whether the targets hold."""
    scenario = generate_scenario(n_components)
    async with (
        running_simulator(scenario, sample_period_s=1.0) as sim,
        running_home_assistant() as hass,
    ):
        entry = await async_add_microgrid(hass, sim.url)
        try:
            _note(f"warming up {warm_up_s:.0f} s")
            await asyncio.sleep(warm_up_s)
            await _registry_settled(hass)
            runtime: MicrogridRuntimeData = entry.runtime_data
            runs = [await _refresh(hass, runtime, 0.2) for _ in range(UNCHANGED_RUNS)]
            print(_line(n_components, "unchanged", runs), flush=True)
            new_inverter = max(c.id for c in scenario.components) + 1
            meter = 2
            sim.add_component(
                generated_component(new_inverter, Kind.BATTERY_INVERTER, meter)
            )
            sim.add_component(
                generated_component(new_inverter + 1, Kind.BATTERY, new_inverter)
            )
            sim.add_component(
                generated_component(new_inverter + 2, Kind.EV_CHARGER, meter)
            )
            pv, charger = _first_of(scenario, Kind.PV_INVERTER, Kind.EV_CHARGER)
            sim.remove_component(pv)
            sim.remove_component(charger)
            changed = await _refresh(hass, runtime, follow_on_s)
            print(_line(n_components, "changed", [changed]), flush=True)
        finally:
            await async_remove_microgrid(hass, entry)
    return (
        statistics.median(r[0] for r in runs) <= TARGET_LOOP_MS
        and max(r[1] for r in runs) <= TARGET_LOOP_MS
        and changed[0] <= TARGET_LOOP_MS
        and changed[1] <= TARGET_LOOP_MS
        and sum(r[4] for r in runs) == 0
    )


def _first_of(scenario: Any, *kinds: Kind) -> list[int]:
    return [next(c.id for c in scenario.components if c.kind is k) for k in kinds]


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    """Entry point: `scripts/python -m benchmarks.topology_refresh`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=1000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    met = asyncio.run(run(args.components))
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
