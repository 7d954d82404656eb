"""Edge cases of the battery split found by running its properties much harder.

Each was a real bug: a request equal to a zone edge was dropped whole, and a
subnormal capacity (broken telemetry) made the split place more than asked or
send an infinite setpoint.
"""

from __future__ import annotations

import math

import pytest

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.distribution import (
    battery_safe_split,
)
from custom_components.frequenz_microgrid.engine.distribution.battery import (
    BatteryDistribution,
    BatteryState,
    InverterBatteries,
    distribute_battery_power,
)

SUBNORMAL_WH = 1.1125369292536007e-308


def pair(
    inverter_id: int,
    inverter: PowerBounds,
    battery: PowerBounds,
    *,
    capacity_wh: float = 10_000.0,
    soc_pct: float = 50.0,
) -> InverterBatteries:
    state = BatteryState(inverter_id + 100, capacity_wh, soc_pct, 10.0, 90.0, battery)
    aggregated = InverterBatteries.aggregate(inverter_id, inverter, [state])
    assert aggregated is not None
    return aggregated


@pytest.mark.parametrize("request_w", [299.0, 300.0, 301.0])
def test_a_request_at_a_zone_edge_of_a_full_pair_goes_to_the_free_one(
    request_w: float,
) -> None:
    """Pair 2 may not charge, its inverter has a ±300 W zone: pair 1 takes it all."""
    pairs = [
        pair(1, PowerBounds(-5000.0, 5000.0), PowerBounds(-5000.0, 5000.0)),
        pair(2, PowerBounds(-5000.0, 5000.0, -300.0, 300.0), PowerBounds(-5000.0, 0.0)),
    ]
    result = distribute_battery_power(request_w, pairs)
    assert isinstance(result, BatteryDistribution)
    assert result.distributed_power == pytest.approx(request_w), result.setpoints
    assert result.setpoints[2] == 0.0


def test_a_negligible_ratio_takes_nothing_and_overflows_nothing() -> None:
    powers, excess = battery_safe_split.safe_split(
        1.0, [5.562684646268003e-309, 1.0], [0.0, 2.0], [2.0, math.inf]
    )
    assert sum(powers) <= 1.0 + 1e-9
    assert math.isclose(sum(powers) + excess, 1.0)


def test_a_subnormal_capacity_never_places_more_than_asked() -> None:
    pairs = [
        pair(
            2, PowerBounds(-2.0, 0.0), PowerBounds(-2.0, 0.0), capacity_wh=SUBNORMAL_WH
        ),
        pair(
            5,
            PowerBounds(-math.inf, -2.0),
            PowerBounds(-math.inf, -2.0),
            capacity_wh=2.0,
        ),
    ]
    result = distribute_battery_power(-1.0, pairs, exponent=0.0)
    assert isinstance(result, BatteryDistribution)
    assert result.distributed_power >= -1.0 - 1e-9, result.setpoints


def test_a_subnormal_capacity_never_gives_an_infinite_setpoint() -> None:
    pairs = [
        pair(
            2,
            PowerBounds(-math.inf, 0.0, -1.0, 0.0),
            PowerBounds(-math.inf, 0.0),
            capacity_wh=SUBNORMAL_WH,
        ),
        pair(5, PowerBounds(0.0, 0.0), PowerBounds(0.0, 0.0), capacity_wh=1.0),
    ]
    result = distribute_battery_power(-2.0, pairs, exponent=0.0)
    if isinstance(result, BatteryDistribution):
        assert all(math.isfinite(p) for p in result.setpoints.values()), (
            result.setpoints
        )
