"""EV fuse: the depot's per-phase peak and fair-share times under skewed telemetry.

The depot (250 A fuse, twelve 6–32 A chargers) runs in the built-in simulator
with its batteries charging at 30 kW and PV held at 0 W; the engine steers it
over real gRPC (the control bench: telemetry and ticks every 0.5 s of simulated
time). Twelve EVs plug in one after another. Each run spreads every telemetry
round over `spread_ms` (simulated) in one order — `streams` is the grid meter
first and the chargers after it (issue 13), `reversed` the opposite, `random` a
new order per round — and `lag` runs add a charger lagging by 1.5 s. The
simulator judges: the peak per-phase current at the grid connection point, the
simulated seconds above the fuse, and per plug-in the simulated seconds until
every connected EV draws its fair share (within 5 %).

    scripts/python -m benchmarks.ev_fuse

One line per run:

    ev_fuse evs=12 spread_ms=<s> order=<o> lag_s=<l> fuse_a=250 peak_a=<p>
        overload_s=<o> fair_share_s_p95=<f> switched_off=<n>
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics

from custom_components.frequenz_microgrid.simulator import (
    DeliveryOrder,
    TelemetryTiming,
)
from tests.engine.depot_plug_in import CHARGERS, PlugInRun
from tests.engine.test_control_bench import TICK_S
from tests.engine.test_ev_fuse_timing import plug_in_under

SPEED = 5.0
"""Simulated seconds per real second: telemetry every 0.5 s of simulated time."""

SPREADS = (0.0, 0.5, 0.9)
"""Shares of the telemetry period a round is spread over."""
LAG_S = 1.5
"""Simulated seconds the lagging charger's telemetry comes late."""


def line(timing: TelemetryTiming, run: PlugInRun) -> str:
    """The run's result line (times in simulated seconds)."""
    times = sorted(run.fair_share_s)
    p95 = times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
    lag = max(timing.lag_s.values(), default=0.0) * SPEED
    return (
        f"ev_fuse evs={len(CHARGERS)} spread_ms={timing.spread_s * SPEED * 1000:.0f} "
        f"order={timing.order} lag_s={lag:g} fuse_a={run.fuse_a:g} "
        f"peak_a={run.peak_a:.2f} overload_s={run.overload_s:.2f} "
        f"fair_share_s_p95={p95:.2f} "
        f"fair_share_s_median={statistics.median(times):.2f} "
        f"switched_off={len(run.switched_off)}"
    )


async def run_all() -> None:
    """Every spread in every order, then a lagging charger."""
    timings = [
        TelemetryTiming(spread_s=share * TICK_S, order=order, seed=7)
        for order in DeliveryOrder
        for share in SPREADS
    ]
    timings.append(
        TelemetryTiming(
            spread_s=0.5 * TICK_S,
            order=DeliveryOrder.RANDOM,
            lag_s={CHARGERS[0]: LAG_S / SPEED},
            seed=7,
        )
    )
    for timing in timings:
        run = await plug_in_under(timing, speed=SPEED, together=0)
        print(line(timing, run), flush=True)


def main() -> None:
    """Entry point of `python -m benchmarks.ev_fuse`."""
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run_all())


if __name__ == "__main__":
    main()
