"""Battery distribution speed: ours and the Frequenz SDK's, same inputs, one run.

Run from the repository root: ``scripts/python -m benchmarks.distribution``
(optionally followed by pool sizes, e.g. ``... distribution 100 1000``).
Prints one line per case (wrapped here to fit)::

    distribution N=<n> case=<plain|excl> dir=<charge|discharge>
    sdk_ms=<median> ours_ms=<median> ratio=<sdk/ours>

Each case times only the distribution call (inputs are built beforehand, for both)
and reports the median time per call. ``excl`` gives every pair an exclusion zone,
so ours also runs its safety check and, where needed, its safe split.

The machine this runs on is shared and noisy, so the measurement is built to be
fair to both sides rather than quick:

- Time is this thread's CPU time, not wall time: both are plain synchronous
  Python, so they are the same on an idle machine, but while other processes
  compete for the cores only CPU time leaves out the time spent waiting for one.
- SDK and ours are *interleaved* sample by sample (alternating which goes first),
  so a burst of load from elsewhere hits both alike instead of one case.
- Small pools run several calls per sample, so a sample is long enough for the
  timer and short enough to dodge most interruptions; the median over many
  samples throws away the interrupted ones.
- The garbage collector is off while timing (as in `timeit`): a collection lands
  on whichever call happens to trigger it. The SDK allocates far more objects, so
  this favours the SDK and the ratio is, if anything, conservative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import gc
import random
import statistics
import sys
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
SAMPLE_TARGET_CALLS_X_PAIRS = 200
"""Calls per sample × pairs: 20 calls per sample at N=10, 1 from N=200 on."""
SAMPLE_BUDGET_PAIRS = 60_000
"""Samples × calls per sample × pairs, bounded below by `MIN_SAMPLES` samples."""
MIN_SAMPLES = 41


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


def _sample_ms(call: Callable[[], object], calls: int) -> float:
    """CPU time of one call in milliseconds, averaged over `calls` calls."""
    start = time.thread_time_ns()
    for _ in range(calls):
        call()
    return (time.thread_time_ns() - start) / 1e6 / calls


def interleaved_medians(
    sdk: Callable[[], object], ours: Callable[[], object], count: int
) -> tuple[float, float]:
    """Median milliseconds per call of both, sampled alternately (see module doc)."""
    calls = max(1, SAMPLE_TARGET_CALLS_X_PAIRS // count)
    samples = max(MIN_SAMPLES, SAMPLE_BUDGET_PAIRS // (calls * count))
    sdk(), ours()  # warm up (imports, caches, specialisation)
    sdk_samples: list[float] = []
    ours_samples: list[float] = []
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for sample in range(samples):
            if sample % 2:
                ours_samples.append(_sample_ms(ours, calls))
                sdk_samples.append(_sample_ms(sdk, calls))
            else:
                sdk_samples.append(_sample_ms(sdk, calls))
                ours_samples.append(_sample_ms(ours, calls))
    finally:
        if gc_was_enabled:
            gc.enable()
    return statistics.median(sdk_samples), statistics.median(ours_samples)


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

    sdk_ms, ours_ms = interleaved_medians(
        lambda: sdk_distribute(request, sdk_pairs, exponent=EXPONENT),
        lambda: distribute_battery_power(request, ours_pairs, exponent=EXPONENT),
        count,
    )
    return (
        f"distribution N={count} case={'excl' if exclusion else 'plain'} "
        f"dir={'charge' if charge else 'discharge'} sdk_ms={sdk_ms:.3f} "
        f"ours_ms={ours_ms:.3f} ratio={sdk_ms / ours_ms:.1f}"
    )


def main(argv: Sequence[str] = ()) -> None:
    """Run every case (for the given pool sizes, or all) and print its line."""
    sizes = tuple(int(arg) for arg in argv) or SIZES
    for count in sizes:
        for exclusion in (False, True):
            for charge in (True, False):
                print(run_case(count, exclusion=exclusion, charge=charge), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
