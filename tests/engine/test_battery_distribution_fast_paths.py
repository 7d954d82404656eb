"""Battery distribution's shortcuts give the answers of the long way round.

The distribution skips work where the outcome is already known: one battery per
inverter is aggregated without sums, the SDK's split
is not started when an exclusion zone surely binds, its repair phase is not done
when the safe split places everything, the safe split's level comes from Newton
steps instead of a walk over every kink, and the SDK's visiting order comes from
two float sorts instead of one tuple sort. Each shortcut is checked here against
the computation it replaces, on seeded random inputs that include the ties and
near-ties where shortcuts go wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import math
import random
from typing import Any

from frequenz.sdk.microgrid._power_distributing._distribution_algorithm import (
    AggregatedBatteryData,
)
import pytest

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.distribution.battery import (
    BatteryState,
    InverterBatteries,
)
from custom_components.frequenz_microgrid.engine.distribution.battery_safe_split import (  # noqa: E501
    _level_by_events,
    _level_by_newton,
)
from custom_components.frequenz_microgrid.engine.distribution.battery_sdk_split import (
    sdk_finish,
    sdk_reserve,
    sdk_visiting_order,
    zones_surely_bind,
)
from tests.engine.sdk_oracle_battery import _battery_data

CASES = 4000


def random_pairs(
    rng: random.Random, count: int
) -> tuple[list[float], list[float], list[float]]:
    """Ratios, minimum powers and upper bounds, with ties, zeros and near-misses."""
    ratios = [
        rng.choice([0.0, 1e-12, rng.random(), rng.choice([0.1, 0.2, 0.5])])
        for _ in range(count)
    ]
    minimums = [
        rng.choice([0.0, rng.uniform(0.0, 1500.0), rng.choice([100.0, 300.0])])
        for _ in range(count)
    ]
    uppers = [
        rng.choice([rng.uniform(0.0, 8000.0), 5000.0, minimum, minimum * 0.9])
        for minimum in minimums
    ]
    return ratios, minimums, uppers


def sdk_total(ratios: list[float]) -> float:
    """The ratios summed in the SDK's order."""
    total = 0.0
    for ratio in ratios:
        total += ratio
    return total


def test_zones_surely_bind_only_when_the_sdk_finds_a_deficit() -> None:
    rng = random.Random(11)
    sure = 0
    for _ in range(CASES):
        ratios, minimums, uppers = random_pairs(rng, rng.randint(1, 12))
        total = sdk_total(ratios)
        # Around the sum of the shares that just clear their minimums, where a
        # deficit is a near thing.
        power = rng.choice([rng.uniform(0.0, 20_000.0), sum(minimums) * 1.000001])
        if zones_surely_bind(power, ratios, total, minimums, uppers):
            sure += 1
            assert sdk_reserve(power, ratios, total, minimums, uppers).zones_bind
    assert sure > CASES // 4  # the shortcut is really taken


def test_zones_surely_bind_at_the_edge_of_a_share() -> None:
    # Two equal pairs: each one's share is half the request. A share that
    # equals its minimum is no deficit; one clearly below it is.
    ratios, uppers = [0.5, 0.5], [5000.0, 5000.0]
    assert not zones_surely_bind(1000.0, ratios, 1.0, [500.0, 500.0], uppers)
    assert not sdk_reserve(1000.0, ratios, 1.0, [500.0, 500.0], uppers).zones_bind
    assert zones_surely_bind(1000.0, ratios, 1.0, [501.0, 0.0], uppers)
    # The SDK checks the upper bound first: a share above it is no deficit.
    assert not zones_surely_bind(1000.0, ratios, 1.0, [600.0, 0.0], [400.0, 5e3])
    assert not sdk_reserve(1000.0, ratios, 1.0, [600.0, 0.0], [400.0, 5e3]).zones_bind
    # A pair the SDK never visits (no ratio) cannot be a deficit.
    assert not zones_surely_bind(1000.0, [1.0, 0.0], 1.0, [0.0, 300.0], uppers)


def sdk_split(
    power: float,
    ratios: Sequence[float],
    total_ratio: float,
    min_powers: Sequence[float],
    upper_bounds: Sequence[float],
) -> tuple[list[float], float, bool]:
    """The SDK's whole split (both phases): powers per pair, excess, zones bind."""
    reservation = sdk_reserve(power, ratios, total_ratio, min_powers, upper_bounds)
    powers, excess = sdk_finish(reservation)
    return powers, excess, reservation.zones_bind


def test_the_sdk_never_reports_a_negative_excess_with_power_placed() -> None:
    # What lets the distribution skip the SDK's repair when the safe split
    # places everything: the SDK's excess is negative only if all its setpoints
    # are 0 W.
    rng = random.Random(12)
    for _ in range(CASES):
        ratios, minimums, uppers = random_pairs(rng, rng.randint(1, 12))
        power = rng.choice([rng.uniform(0.0, 20_000.0), sum(minimums)])
        powers, excess, _ = sdk_split(
            power, ratios, sdk_total(ratios), minimums, uppers
        )
        assert excess >= 0.0 or not any(powers), (power, powers, excess)


def test_visiting_order_equals_the_tuple_sort() -> None:
    rng = random.Random(13)
    for _ in range(CASES):
        count = rng.randint(0, 15)
        ratios = [rng.choice([0.0, 0.25, 0.5, rng.random()]) for _ in range(count)]
        minimums = [rng.choice([0.0, 100.0, 250.0]) for _ in range(count)]
        expected = sorted(
            range(count), key=lambda i: (minimums[i], ratios[i]), reverse=True
        )
        assert sdk_visiting_order(ratios, minimums) == expected


@pytest.mark.parametrize("seed", range(4))
def test_newton_level_gives_the_split_of_the_kink_walk(seed: int) -> None:
    rng = random.Random(seed)
    newton_found = 0
    for _ in range(CASES // 4):
        count = rng.randint(1, 30)
        weights = [rng.choice([rng.uniform(1e-3, 1.0), 0.5]) for _ in range(count)]
        lows = [rng.choice([0.0, rng.uniform(0.0, 1000.0)]) for _ in range(count)]
        highs = [low + rng.choice([0.0, rng.uniform(0.0, 5000.0)]) for low in lows]
        low_sum, high_sum = sum(lows), sum(highs)
        if not low_sum < high_sum:
            continue
        power = rng.uniform(low_sum, high_sum)
        # From the plain proportional level or from anywhere near it.
        start = power / sum(weights) * rng.choice([1.0, rng.uniform(0.5, 2.0)])
        newton = _level_by_newton(power, weights, lows, highs, start)
        if newton is None:
            continue
        newton_found += 1
        walk = _level_by_events(power, low_sum, weights, lows, highs)
        for level in (newton, walk):
            split = [
                min(max(level * w, lo), hi)
                for w, lo, hi in zip(weights, lows, highs, strict=True)
            ]
            assert sum(split) == pytest.approx(power, rel=1e-9, abs=1e-6)
        for w, lo, hi in zip(weights, lows, highs, strict=True):
            assert min(max(newton * w, lo), hi) == pytest.approx(
                min(max(walk * w, lo), hi), rel=1e-9, abs=1e-6
            )
    assert newton_found > CASES // 8


def test_one_battery_per_inverter_is_aggregated_as_the_sdk_does() -> None:
    """The one-battery shortcut of `InverterBatteries.aggregate` is the SDK's rule.

    Compared field by field with the SDK's `AggregatedBatteryData` (exact
    equality: the split must stay the SDK's to the last bit), on capacities
    including 0 and SoC values that do not survive `× c / c` unchanged.
    """
    rng = random.Random(17)
    inverter = PowerBounds(-9000.0, 9000.0, -50.0, 50.0)
    for index in range(CASES):
        capacity = rng.choice([0.0, 1e-3, rng.uniform(1.0, 1e6), 3.0])
        soc = rng.uniform(0.0, 100.0)
        battery = BatteryState(
            component_id=index,
            capacity_wh=capacity,
            soc_pct=soc,
            soc_lower_pct=rng.uniform(0.0, soc),
            soc_upper_pct=rng.uniform(soc, 100.0),
            bounds=PowerBounds(
                -rng.uniform(0.0, 8000.0),
                rng.uniform(0.0, 8000.0),
                -rng.choice([0.0, 100.0]),
                rng.choice([0.0, 100.0]),
            ),
        )
        ours = InverterBatteries.aggregate(1, inverter, [battery])
        sdk = AggregatedBatteryData([_battery_data(battery)])
        assert ours is not None
        assert ours.capacity_wh == sdk.capacity
        for mine, theirs in (
            (ours.soc_pct, sdk.soc),
            (ours.soc_lower_pct, sdk.soc_lower_bound),
            (ours.soc_upper_pct, sdk.soc_upper_bound),
        ):
            assert mine == theirs or (math.isnan(mine) and math.isnan(theirs))
        sdk_bounds = sdk.power_bounds
        assert ours.battery_bounds == PowerBounds(
            sdk_bounds.inclusion_lower.as_watts(),
            sdk_bounds.inclusion_upper.as_watts(),
            sdk_bounds.exclusion_lower.as_watts(),
            sdk_bounds.exclusion_upper.as_watts(),
        )


@pytest.mark.parametrize(
    "field", ["capacity_wh", "soc_pct", "soc_lower_pct", "soc_upper_pct"]
)
def test_one_battery_with_a_nan_input_makes_no_pair(field: str) -> None:
    battery = BatteryState(
        component_id=4,
        capacity_wh=10_000.0,
        soc_pct=50.0,
        soc_lower_pct=10.0,
        soc_upper_pct=90.0,
        bounds=PowerBounds(-5000.0, 5000.0),
    )
    values: dict[str, Any] = {field: math.nan}
    broken = dataclasses.replace(battery, **values)
    inverter = PowerBounds(-9000.0, 9000.0)
    assert InverterBatteries.aggregate(3, inverter, [battery]) is not None
    assert InverterBatteries.aggregate(3, inverter, [broken]) is None
