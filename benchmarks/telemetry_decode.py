"""Telemetry decode: what one message costs from its bytes to the store, per kind.

Every component sends a message a second, so on a 1,000-component site this path
runs a thousand times a second (`ingest` measures the whole of Home Assistant;
this isolates the part the integration's own code decides). The simulator
(`generated:N`, in this process) streams each component's telemetry over real
gRPC with the metrics the monitor asks for (`metrics_for`), once as by default
and once with every detail metric (every detail sensor enabled). The raw
responses are kept and then, with the garbage collector off, parsed
(protobuf), decoded (`telemetry_from_proto`) and stored
(`TelemetryStore.ingest_message`) in a tight loop; the best of `--rounds`.

Prints one line per metric set and component kind, and one for all kinds:

    telemetry_decode metrics=<default|all_details> kind=<kind> values=<per message>
        bytes=<per message> us_per_message=<x>
    telemetry_decode metrics=<...> kind=all ... cpu_pct_per_1000_messages_s=<y>

    scripts/python -m benchmarks.telemetry_decode [--components 200]
        [--messages 10] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
import gc
import logging
import time

from frequenz.api.microgrid.v1alpha18 import microgrid_pb2, microgrid_pb2_grpc
from frequenz.client.microgrid import MicrogridApiClient
from frequenz.client.microgrid.component import (
    Battery,
    BatteryInverter,
    Component,
    EvCharger,
    Meter,
    SolarInverter,
)
from frequenz.client.microgrid.metrics import Metric
import grpc

from custom_components.frequenz_microgrid.engine.graph import load_topology
from custom_components.frequenz_microgrid.engine.monitor import (
    DETAIL_METRICS,
    metrics_for,
    streamed_components,
    telemetry_request,
)
from custom_components.frequenz_microgrid.engine.telemetry import TelemetryStore
from custom_components.frequenz_microgrid.engine.telemetry_message import (
    telemetry_from_proto,
)
from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    generate_scenario,
)

_Response = microgrid_pb2.ReceiveElectricalComponentTelemetryStreamResponse
MetricSet = Callable[[Component], Sequence[Metric]]
METRIC_SETS: dict[str, MetricSet] = {
    "default": metrics_for,
    "all_details": lambda component: metrics_for(component, DETAIL_METRICS),
}


def kind_of(component: Component) -> str:
    """A short name for the component's kind (the monitor's metric sets differ)."""
    for kind, name in (
        (Battery, "battery"),
        (SolarInverter, "pv_inverter"),
        (BatteryInverter, "battery_inverter"),
        (EvCharger, "ev_charger"),
        (Meter, "meter"),
    ):
        if isinstance(component, kind):
            return name
    return "other"


@dataclass(frozen=True)
class KindResult:
    """What a message of one kind costs and carries."""

    kind: str
    messages: int
    values: float
    bytes: float
    us_per_message: float

    def line(self, metrics: str) -> str:
        """The printed figure."""
        return (
            f"telemetry_decode metrics={metrics} kind={self.kind} "
            f"values={self.values:.1f} bytes={self.bytes:.0f} "
            f"us_per_message={self.us_per_message:.2f}"
        )


async def collect(
    url: str, components: Iterable[Component], metrics: MetricSet, per_component: int
) -> dict[str, list[bytes]]:
    """Each component's next `per_component` responses, raw, by kind."""
    channel = grpc.aio.insecure_channel(url.split("://", 1)[1])
    stub = microgrid_pb2_grpc.MicrogridStub(channel)
    by_kind: defaultdict[str, list[bytes]] = defaultdict(list)

    async def read(component: Component) -> None:
        request = telemetry_request(int(component.id), metrics(component))
        call = stub.ReceiveElectricalComponentTelemetryStream(request)
        try:
            for _ in range(per_component):
                response = await call.read()
                if not isinstance(response, _Response):  # the stream ended
                    break
                by_kind[kind_of(component)].append(response.SerializeToString())
        finally:
            call.cancel()

    try:
        await asyncio.gather(*(read(component) for component in components))
    finally:
        await channel.close()
    return dict(by_kind)


def time_decoding(raw: Sequence[bytes], rounds: int) -> float:
    """Best seconds per message to parse, decode and store `raw` (GC off)."""
    best = float("inf")
    for _ in range(rounds):
        store = TelemetryStore()
        gc.disable()
        try:
            started = time.perf_counter()
            for message in raw:
                store.ingest_message(
                    telemetry_from_proto(_Response.FromString(message).telemetry)
                )
            best = min(best, time.perf_counter() - started)
        finally:
            gc.enable()
    return best / len(raw)


def measure(kind: str, raw: Sequence[bytes], rounds: int) -> KindResult:
    """Time and size one kind's messages."""
    values = sum(
        len(_Response.FromString(message).telemetry.metric_samples) for message in raw
    )
    return KindResult(
        kind=kind,
        messages=len(raw),
        values=values / len(raw),
        bytes=sum(map(len, raw)) / len(raw),
        us_per_message=time_decoding(raw, rounds) * 1e6,
    )


async def run(args: argparse.Namespace) -> list[str]:
    """Stream, time and return the result lines."""
    simulator = MicrogridSimulator(
        generate_scenario(args.components), speed=1.0, sample_period_s=0.05
    )
    await simulator.start(host="127.0.0.1", port=0)
    lines: list[str] = []
    try:
        client = MicrogridApiClient(simulator.url)
        try:
            topology = await load_topology(client)
        finally:
            await client.disconnect()
        components = streamed_components(topology)
        for name, metrics in METRIC_SETS.items():
            by_kind = await collect(simulator.url, components, metrics, args.messages)
            results = [
                measure(kind, raw, args.rounds) for kind, raw in sorted(by_kind.items())
            ]
            lines.extend(result.line(name) for result in results)
            every = [message for raw in by_kind.values() for message in raw]
            overall = measure("all", every, args.rounds)
            lines.append(
                f"{overall.line(name)} "
                f"cpu_pct_per_1000_messages_s={overall.us_per_message / 10:.2f}"
            )
    finally:
        await simulator.stop()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--components", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10, help="per component")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for line in asyncio.run(run(args)):
        print(line, flush=True)


if __name__ == "__main__":
    main()
