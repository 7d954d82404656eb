"""Battery distribution results: what the distributor reports after sending."""

from __future__ import annotations

import pytest

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.distribution.battery import (
    BatteryDistribution,
    BatteryState,
    InverterBatteries,
    distribute_battery_power,
)
from custom_components.frequenz_microgrid.engine.distribution.battery_results import (
    battery_result,
)
from custom_components.frequenz_microgrid.engine.results import (
    Error,
    OutOfBounds,
    PartialFailure,
    Request,
    Success,
    result_as_dict,
)

WIDE = PowerBounds(-5000.0, 5000.0)


def two_battery_pairs() -> list[InverterBatteries]:
    """Inverter 1 with batteries 11 and 12, inverter 2 with battery 21."""
    first = InverterBatteries.aggregate(
        1,
        WIDE,
        [
            BatteryState(11, 10_000.0, 50.0, 10.0, 90.0, WIDE),
            BatteryState(12, 10_000.0, 50.0, 10.0, 90.0, WIDE),
        ],
    )
    second = InverterBatteries.aggregate(
        2, WIDE, [BatteryState(21, 20_000.0, 50.0, 10.0, 90.0, WIDE)]
    )
    assert first is not None
    assert second is not None
    return [first, second]


def request(power: float) -> Request:
    """A request for all three batteries."""
    return Request(power=power, component_ids=frozenset({11, 12, 21}))


def distribution(power: float, unreachable: float | None = None) -> BatteryDistribution:
    """Distribute among the two pairs."""
    outcome = distribute_battery_power(
        power, two_battery_pairs(), unreachable_power=unreachable
    )
    assert isinstance(outcome, BatteryDistribution)
    return outcome


def test_success_reports_battery_ids_power_and_excess() -> None:
    planned = distribution(12_000.0)
    result = battery_result(request(12_000.0), planned)
    assert isinstance(result, Success)
    assert result.succeeded_components == {11, 12, 21}
    assert result.succeeded_power == pytest.approx(10_000.0)
    assert result.excess_power == pytest.approx(2000.0)
    assert result.setpoints == pytest.approx({1: 5000.0, 2: 5000.0})
    assert result_as_dict(result)["kind"] == "success"


def test_failed_inverter_fails_all_its_batteries() -> None:
    planned = distribution(-4000.0)
    result = battery_result(request(-4000.0), planned, failed_inverters={1})
    assert isinstance(result, PartialFailure)
    assert result.failed_components == {11, 12}
    assert result.succeeded_components == {21}
    assert result.failed_power == pytest.approx(-2000.0)
    assert result.succeeded_power == pytest.approx(-2000.0)
    assert result.excess_power == pytest.approx(0.0)


def test_unreachable_power_counts_as_placed_like_the_sdk() -> None:
    # 1000 W is measured on a requested battery that cannot be used: the pairs
    # get the other 3000 W and the result reports the full request as placed.
    planned = distribution(4000.0, unreachable=1000.0)
    assert planned.distributed_power == pytest.approx(3000.0)
    result = battery_result(request(4000.0), planned)
    assert isinstance(result, Success)
    assert result.succeeded_power == pytest.approx(4000.0)


def test_refusals_become_out_of_bounds_or_error() -> None:
    pairs = two_battery_pairs()
    refused = distribute_battery_power(20_000.0, pairs, adjust_power=False)
    out_of_bounds = battery_result(request(20_000.0), refused)
    assert isinstance(out_of_bounds, OutOfBounds)
    assert out_of_bounds.bounds == PowerBounds(-10_000.0, 10_000.0)
    error = battery_result(request(1.0), distribute_battery_power(1.0, []))
    assert isinstance(error, Error)
    assert "No usable batteries" in error.msg
