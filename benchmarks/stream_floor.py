"""Stream floor: what reading N telemetry streams costs before Home Assistant.

Issue 18's goal for 1,000 components is ≤ 10 % of a core for the whole of Home
Assistant (`ingest`). This benchmark measures the part no Home Assistant code
and no steering is in: the integration's own `TelemetryStream`s on a bare
client, against the simulator (`generated:N`, 1 Hz) in a child process. One run
alternates, window after window on the same open streams, what each message
goes through:

- `read`: gRPC's read alone (the response is dropped undecoded);
- `decode`: read and `telemetry_from_proto`;
- `store`: read, decode and `TelemetryStore.ingest_message`, as the monitor does.

Per window it records this process's CPU (every thread), the event loop's own
thread, and gRPC's other threads (its EventEngine and poller), as % of one core.
Prints one line per mode (medians over `--rounds`):

    stream_floor components=<N> mode=<read|decode|store> messages_per_s=<m>
        cpu_pct=<process> loop_cpu_pct=<event loop> grpc_threads_cpu_pct=<rest>
        us_per_message=<process CPU / messages>

    scripts/python -m benchmarks.stream_floor [--components 1000] [--rounds 3]
        [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
import logging
import statistics
import time
from typing import Any

from frequenz.client.microgrid import MicrogridApiClient
from frequenz.client.microgrid.component import Component

from benchmarks._ha_harness import simulator_process
from custom_components.frequenz_microgrid.engine.graph import load_topology
from custom_components.frequenz_microgrid.engine.monitor import (
    TelemetryStream,
    metrics_for,
    streamed_components,
)
from custom_components.frequenz_microgrid.engine.telemetry import TelemetryStore
from custom_components.frequenz_microgrid.engine.telemetry_message import (
    TelemetryMessage,
)

READ = "read"
DECODE = "decode"
STORE = "store"
MODES = (READ, DECODE, STORE)
CONNECT_S = 5.0
"""Time for every stream to open and the first round to arrive."""


class _Counter:
    """The mode of the current window, and the messages it saw."""

    def __init__(self) -> None:
        self.mode = STORE
        self.messages = 0
        self.store = TelemetryStore()

    def on_message(self, message: TelemetryMessage) -> None:
        """What the monitor does with a decoded message (in `store` mode)."""
        self.messages += 1
        if self.mode == STORE:
            self.store.ingest_message(message)


class _FloorStream(TelemetryStream):
    """A `TelemetryStream` that, in `read` mode, drops each response undecoded."""

    def __init__(
        self, counter: _Counter, client: MicrogridApiClient, component: Component
    ) -> None:
        self._counter = counter
        super().__init__(
            client, int(component.id), metrics_for(component), counter.on_message
        )

    def _deliver(
        self, response: Any, on_message: Callable[[TelemetryMessage], None]
    ) -> None:
        if self._counter.mode == READ:
            self._counter.messages += 1
            return
        super()._deliver(response, on_message)


async def _window(counter: _Counter, mode: str, seconds: float) -> dict[str, float]:
    counter.mode = mode
    await asyncio.sleep(1.0)  # settle: messages in flight belong to the last mode
    counter.messages = 0
    cpu, loop_cpu, started = time.process_time(), time.thread_time(), time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    cpu_s, loop_s = time.process_time() - cpu, time.thread_time() - loop_cpu
    return {
        "messages_per_s": counter.messages / elapsed,
        "cpu_pct": 100 * cpu_s / elapsed,
        "loop_cpu_pct": 100 * loop_s / elapsed,
        "grpc_threads_cpu_pct": 100 * (cpu_s - loop_s) / elapsed,
        "us_per_message": 1e6 * cpu_s / max(1, counter.messages),
    }


async def run(components: int, rounds: int, seconds: float) -> list[str]:
    """Measure each mode `rounds` times, alternating; one line per mode."""
    windows: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    with simulator_process(components) as (url, _server):
        client = MicrogridApiClient(url)
        counter = _Counter()
        try:
            topology = await load_topology(client)
            streams = [
                _FloorStream(counter, client, component)
                for component in streamed_components(topology)
            ]
            await asyncio.sleep(CONNECT_S)
            for round_no in range(rounds):
                order = MODES if round_no % 2 == 0 else tuple(reversed(MODES))
                for mode in order:
                    windows[mode].append(await _window(counter, mode, seconds))
            for stream in streams:
                await stream.stop()
        finally:
            await client.disconnect()
    return [
        f"stream_floor components={components} mode={mode} "
        + " ".join(
            f"{key}={statistics.median(w[key] for w in windows[mode]):.{digits}f}"
            for key, digits in (
                ("messages_per_s", 0),
                ("cpu_pct", 1),
                ("loop_cpu_pct", 1),
                ("grpc_threads_cpu_pct", 1),
                ("us_per_message", 1),
            )
        )
        for mode in MODES
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--components", type=int, nargs="+", default=[1000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for components in args.components:
        for line in asyncio.run(run(components, args.rounds, args.seconds)):
            print(line, flush=True)


if __name__ == "__main__":
    main()
