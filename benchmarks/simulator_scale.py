"""Simulator scale: N components at 1 Hz, one client subscribed to all of them.

The server runs in its own process (the simulator's command line) so its CPU
and memory can be measured with psutil; the client side runs here. Prints one
line per N:

    simulator components=<N> samples_per_s=<x> cpu_pct=<server CPU %> rss_mb=<y>

The target is stated for 10 metrics per component, so every AC component (meter,
inverter, EV charger) is asked for 10 AC metrics — more than the integration itself
asks for — and every battery for all 6 metrics it has. Target: 1,000 components ×
1 Hz × 10 metrics on under half of one core.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import subprocess
import sys
import time

from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid import MicrogridApiClient
from frequenz.client.microgrid.component import Battery, Component
from frequenz.client.microgrid.metrics import Metric
import psutil

TEN_AC_METRICS: tuple[Metric, ...] = (
    Metric.AC_POWER_ACTIVE,
    Metric.AC_POWER_ACTIVE_PHASE_1,
    Metric.AC_POWER_ACTIVE_PHASE_2,
    Metric.AC_POWER_ACTIVE_PHASE_3,
    Metric.AC_CURRENT_PHASE_1,
    Metric.AC_CURRENT_PHASE_2,
    Metric.AC_CURRENT_PHASE_3,
    Metric.AC_VOLTAGE_PHASE_1_N,
    Metric.AC_VOLTAGE_PHASE_2_N,
    Metric.AC_VOLTAGE_PHASE_3_N,
)
ALL_BATTERY_METRICS: tuple[Metric, ...] = (
    Metric.BATTERY_SOC_PCT,
    Metric.BATTERY_CAPACITY,
    Metric.BATTERY_TEMPERATURE,
    Metric.DC_POWER,
    Metric.DC_VOLTAGE,
    Metric.DC_CURRENT,
)


def metrics_for(component: Component) -> tuple[Metric, ...]:
    """Return the metrics this benchmark streams from `component`."""
    return ALL_BATTERY_METRICS if isinstance(component, Battery) else TEN_AC_METRICS


REPO_ROOT = Path(__file__).resolve().parent.parent


def start_server(n_components: int) -> tuple[subprocess.Popen[str], str]:
    """Run the simulator CLI in a child process; return it and its URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "custom_components.frequenz_microgrid.simulator",
            "--scenario",
            f"generated:{n_components}",
            "--port",
            "0",
            "--speed",
            "1",
            "--sample-period",
            "1",
        ],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("grpc://"):
            return process, line.strip()
    raise RuntimeError("the simulator exited before printing its URL")


async def measure(
    url: str, server: psutil.Process, duration_s: float
) -> tuple[float, float, float]:
    """Subscribe to every component; return samples/s, server CPU % and RSS MB."""
    client = MicrogridApiClient(url)
    try:
        components = list(await client.list_components())
        receivers = [
            client.receive_component_data_samples_stream(
                ComponentId(int(c.id)), metrics_for(c)
            )
            for c in components
        ]
        counted = 0
        counting = False

        async def drain(receiver: object) -> None:
            nonlocal counted
            async for samples in receiver:  # type: ignore[attr-defined]
                if counting:
                    counted += len(samples.metric_samples)

        tasks = [asyncio.create_task(drain(r)) for r in receivers]
        await asyncio.sleep(3.0)  # let every stream connect and settle
        server.cpu_percent()
        counting = True
        started = time.monotonic()
        await asyncio.sleep(duration_s)
        counting = False
        elapsed = time.monotonic() - started
        cpu = server.cpu_percent()
        rss_mb = server.memory_info().rss / 1e6
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return counted / elapsed, cpu, rss_mb
    finally:
        await client.disconnect()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--components", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    for n_components in args.components:
        process, url = start_server(n_components)
        try:
            rate, cpu, rss = await measure(
                url, psutil.Process(process.pid), args.duration
            )
        finally:
            process.terminate()
            process.wait(timeout=10)
        print(
            f"simulator components={n_components} samples_per_s={rate:.0f} "
            f"cpu_pct={cpu:.1f} rss_mb={rss:.0f}",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
