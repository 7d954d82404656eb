"""Battery distribution speed: ours and the Frequenz SDK's, same inputs, one run.

Run from the repository root: ``.venv/bin/python -m benchmarks.distribution``.
Prints one line per case::

    distribution N=<n> case=<plain|excl> dir=<charge|discharge> sdk_ms=<median>
    ours_ms=<median> ratio=<sdk/ours>

Each case times only the distribution call (inputs are built beforehand, for both)
and reports the median of repeated runs. ``excl`` gives every pair an exclusion
zone, so ours also runs its safety check and, where needed, its safe split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import random
import statistics
import time

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.distribution.battery import (
    BatteryDistribution,
    BatteryState,
    InverterBatteries,
    distribute_battery_power,
)
from tests.engine.sdk_oracle_battery import RawPair, sdk_distribute

SIZES = (10, 100, 1000)
EXPONENT = 1.0


def make_pairs(count: int, *, exclusion: bool, seed: int) -> list[RawPair]:
    """Realistic pairs: 5–20 kWh batteries, 2–5 kW inverters, SoC 10–90 %."""
    rng = random.Random(seed)
    pairs = []
    for index in range(count):
        limit = rng.uniform(2000.0, 5000.0)
        zone = rng.uniform(50.0, 300.0) if exclusion else 0.0
        inverter = PowerBounds(-limit, limit, -zone, zone)
        battery = BatteryState(
            component_id=100_000 + index,
            capacity_wh=rng.uniform(5000.0, 20_000.0),
            soc_pct=rng.uniform(10.0, 90.0),
            soc_lower_pct=10.0,
            soc_upper_pct=90.0,
            bounds=PowerBounds(-1.2 * limit, 1.2 * limit),
        )
        pairs.append(RawPair(index + 1, inverter, (battery,)))
    return pairs


def median_ms(call: Callable[[], object], repeats: int) -> float:
    """Median wall time of `call` in milliseconds."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(samples)


def run_case(count: int, *, exclusion: bool, charge: bool) -> str:
    """Time both implementations on one case and format the result line."""
    raw = make_pairs(count, exclusion=exclusion, seed=count)
    ours_pairs: Sequence[InverterBatteries] = [pair.ours() for pair in raw]
    sdk_pairs = [pair.sdk() for pair in raw]
    # About 40 % of what the pool can do: every pair gets a real share.
    request = 0.4 * sum(p.inverter_bounds.inclusion_upper for p in raw)
    request = request if charge else -request
    outcome = distribute_battery_power(request, ours_pairs, exponent=EXPONENT)
    assert isinstance(outcome, BatteryDistribution)

    repeats = max(7, 3000 // count)
    sdk_ms = median_ms(
        lambda: sdk_distribute(request, sdk_pairs, exponent=EXPONENT), repeats
    )
    ours_ms = median_ms(
        lambda: distribute_battery_power(request, ours_pairs, exponent=EXPONENT),
        repeats,
    )
    return (
        f"distribution N={count} case={'excl' if exclusion else 'plain'} "
        f"dir={'charge' if charge else 'discharge'} sdk_ms={sdk_ms:.3f} "
        f"ours_ms={ours_ms:.3f} ratio={sdk_ms / ours_ms:.1f}"
    )


def main() -> None:
    """Run every case and print its line."""
    for count in SIZES:
        for exclusion in (False, True):
            for charge in (True, False):
                print(run_case(count, exclusion=exclusion, charge=charge), flush=True)


if __name__ == "__main__":
    main()
