"""Battery distribution: worked examples (spec §2 and the SDK's documentation)."""

from __future__ import annotations

import math

import pytest

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.distribution.battery import (
    BatteryDistribution,
    BatteryRefusal,
    BatteryState,
    InverterBatteries,
    distribute_battery_power,
    subtract_unreachable_power,
)

WIDE = PowerBounds(-10_000.0, 10_000.0)


def pair(
    inverter_id: int,
    soc: float,
    *,
    capacity: float = 10_000.0,
    soc_lower: float = 20.0,
    soc_upper: float = 80.0,
    battery: PowerBounds = WIDE,
    inverter: PowerBounds = WIDE,
) -> InverterBatteries:
    """One inverter with one battery (battery id = inverter id + 100)."""
    aggregated = InverterBatteries.aggregate(
        inverter_id,
        inverter,
        [BatteryState(inverter_id + 100, capacity, soc, soc_lower, soc_upper, battery)],
    )
    assert aggregated is not None
    return aggregated


def distribute(
    power: float, pairs: list[InverterBatteries], **kwargs: float | bool
) -> BatteryDistribution:
    """Distribute and insist that something was distributed."""
    outcome = distribute_battery_power(power, pairs, **kwargs)  # type: ignore[arg-type]
    assert isinstance(outcome, BatteryDistribution), outcome
    return outcome


@pytest.mark.parametrize(
    ("exponent", "expected"),
    [
        (0.0, (4000.0, 4000.0)),
        (1.0, (2000.0, 6000.0)),
        (2.0, (800.0, 7200.0)),
        (3.0, (8000.0 / 28.0, 8000.0 * 27.0 / 28.0)),  # 285.7 / 7714.3
    ],
)
def test_sdk_documentation_example_1_charging(
    exponent: float, expected: tuple[float, float]
) -> None:
    # SoC 70 and 50 with bounds 20..80: 10 and 30 points left to charge.
    result = distribute(8000.0, [pair(1, 70.0), pair(2, 50.0)], exponent=exponent)
    assert result.setpoints[1] == pytest.approx(expected[0], abs=1e-3)
    assert result.setpoints[2] == pytest.approx(expected[1], abs=1e-3)
    assert result.excess_power == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("exponent", "expected"),
    [(0.0, (450.0, 450.0)), (1.0, (300.0, 600.0)), (2.0, (180.0, 720.0))],
)
def test_sdk_documentation_example_2_discharging(
    exponent: float, expected: tuple[float, float]
) -> None:
    # SoC 50 and 80 with lower bound 20: 30 and 60 points left to discharge.
    result = distribute(-900.0, [pair(1, 50.0), pair(2, 80.0)], exponent=exponent)
    assert result.setpoints[1] == pytest.approx(-expected[0], abs=1e-3)
    assert result.setpoints[2] == pytest.approx(-expected[1], abs=1e-3)


def test_exponent_half_from_sdk_example_3() -> None:
    # 36 and 16 points left: sqrt gives 6:4.
    result = distribute(900.0 * 10 / 9, [pair(1, 44.0), pair(2, 64.0)], exponent=0.5)
    assert result.setpoints == pytest.approx({1: 600.0, 2: 400.0}, abs=1e-3)


def test_capacity_weights_the_share() -> None:
    result = distribute(
        3000.0, [pair(1, 50.0, capacity=20_000.0), pair(2, 50.0)], exponent=1.0
    )
    assert result.setpoints == pytest.approx({1: 2000.0, 2: 1000.0})


def test_power_a_pair_cannot_take_goes_to_the_others() -> None:
    small = PowerBounds(-1000.0, 1000.0)
    result = distribute(6000.0, [pair(1, 50.0, inverter=small), pair(2, 50.0)])
    assert result.setpoints == pytest.approx({1: 1000.0, 2: 5000.0})


def test_battery_bound_limits_like_inverter_bound() -> None:
    small = PowerBounds(-500.0, 500.0)
    result = distribute(-3000.0, [pair(1, 50.0, battery=small), pair(2, 50.0)])
    assert result.setpoints == pytest.approx({1: -500.0, 2: -2500.0})


def test_request_beyond_every_bound_leaves_excess() -> None:
    result = distribute(25_000.0, [pair(1, 50.0), pair(2, 60.0)])
    assert result.setpoints == pytest.approx({1: 10_000.0, 2: 10_000.0})
    assert result.excess_power == pytest.approx(5000.0)
    assert result.distributed_power == pytest.approx(20_000.0)


def test_zero_request_sets_every_inverter_to_zero() -> None:
    result = distribute(0.0, [pair(1, 30.0), pair(2, 90.0)])
    assert result.setpoints == {1: 0.0, 2: 0.0}
    assert result.excess_power == 0.0


def test_all_full_when_charging_places_nothing() -> None:
    result = distribute(5000.0, [pair(1, 80.0), pair(2, 95.0)])
    assert result.setpoints == {1: 0.0, 2: 0.0}
    assert result.excess_power == 5000.0


def test_all_empty_when_discharging_places_nothing() -> None:
    result = distribute(-5000.0, [pair(1, 20.0), pair(2, 10.0)])
    assert result.setpoints == {1: 0.0, 2: 0.0}
    assert result.excess_power == -5000.0


def test_full_battery_is_skipped_when_charging_but_used_when_discharging() -> None:
    pairs = [pair(1, 80.0), pair(2, 50.0)]
    assert distribute(1000.0, pairs).setpoints == pytest.approx({1: 0.0, 2: 1000.0})
    discharge = distribute(-1000.0, pairs).setpoints
    assert discharge == pytest.approx({1: -2000 / 3, 2: -1000 / 3})


def test_several_batteries_behind_one_inverter_are_aggregated() -> None:
    batteries = [
        BatteryState(11, 10_000.0, 30.0, 10.0, 90.0, PowerBounds(-2000.0, 2000.0)),
        BatteryState(12, 30_000.0, 70.0, 10.0, 90.0, PowerBounds(-3000.0, 3000.0)),
    ]
    aggregated = InverterBatteries.aggregate(1, WIDE, batteries)
    assert aggregated is not None
    assert aggregated.battery_ids == (11, 12)
    assert aggregated.capacity_wh == 40_000.0
    assert aggregated.soc_pct == pytest.approx(60.0)
    assert aggregated.battery_bounds == PowerBounds(-5000.0, 5000.0)
    other = pair(2, 60.0, capacity=40_000.0, soc_lower=10.0, soc_upper=90.0)
    result = distribute(8000.0, [aggregated, other])
    assert result.setpoints == pytest.approx({1: 4000.0, 2: 4000.0})
    capped = distribute(12_000.0, [aggregated, other])
    assert capped.setpoints == pytest.approx({1: 5000.0, 2: 7000.0})


def test_aggregated_exclusion_zone_is_the_widest_times_the_count() -> None:
    batteries = [
        BatteryState(11, 1.0, 50.0, 0.0, 100.0, PowerBounds(-9e3, 9e3, -100.0, 50.0)),
        BatteryState(12, 1.0, 50.0, 0.0, 100.0, PowerBounds(-9e3, 9e3, -20.0, 300.0)),
    ]
    aggregated = InverterBatteries.aggregate(1, WIDE, batteries)
    assert aggregated is not None
    assert aggregated.battery_bounds.exclusion_lower == -200.0
    assert aggregated.battery_bounds.exclusion_upper == 600.0


@pytest.mark.parametrize("field", ["soc_pct", "capacity_wh", "soc_upper_pct"])
def test_nan_in_crucial_battery_data_makes_the_pair_unusable(field: str) -> None:
    values = {
        "component_id": 11,
        "capacity_wh": 1000.0,
        "soc_pct": 50.0,
        "soc_lower_pct": 10.0,
        "soc_upper_pct": 90.0,
        "bounds": WIDE,
    }
    values[field] = math.nan
    battery = BatteryState(**values)  # type: ignore[arg-type]
    assert InverterBatteries.aggregate(1, WIDE, [battery]) is None


def test_nan_bound_is_replaced_by_the_other_side() -> None:
    nan_upper = PowerBounds(-4000.0, math.nan, math.nan, 100.0)
    battery = BatteryState(11, 1000.0, 50.0, 10.0, 90.0, nan_upper)
    inverter = PowerBounds(-5000.0, 3000.0, -50.0, 10.0)
    aggregated = InverterBatteries.aggregate(1, inverter, [battery])
    assert aggregated is not None
    assert aggregated.battery_bounds == PowerBounds(-4000.0, 3000.0, -50.0, 100.0)
    both_nan = PowerBounds(-5000.0, math.nan)
    assert InverterBatteries.aggregate(1, both_nan, [battery]) is None


def test_request_inside_the_exclusion_zone_is_refused() -> None:
    zone = PowerBounds(-5000.0, 5000.0, -300.0, 300.0)
    outcome = distribute_battery_power(200.0, [pair(1, 50.0, inverter=zone)])
    assert isinstance(outcome, BatteryRefusal)
    assert outcome.bounds == zone


def test_request_outside_inclusion_refused_only_without_adjusting() -> None:
    pairs = [pair(1, 50.0), pair(2, 50.0)]
    refused = distribute_battery_power(30_000.0, pairs, adjust_power=False)
    assert isinstance(refused, BatteryRefusal)
    assert refused.bounds == PowerBounds(-20_000.0, 20_000.0)
    assert distribute(30_000.0, pairs).excess_power == pytest.approx(10_000.0)
    assert distribute(-20_000.0, pairs, adjust_power=False).excess_power == 0.0


def test_errors_for_no_pairs_and_zero_capacity() -> None:
    empty = distribute_battery_power(100.0, [])
    assert isinstance(empty, BatteryRefusal)
    assert empty.bounds is None
    zero = distribute_battery_power(100.0, [pair(1, 50.0, capacity=0.0)])
    assert isinstance(zero, BatteryRefusal)
    assert "capacity" in zero.msg
    with pytest.raises(ValueError, match="exponent"):
        distribute_battery_power(100.0, [pair(1, 50.0)], exponent=-1.0)


def test_unreachable_power_is_subtracted_before_distributing() -> None:
    assert subtract_unreachable_power(5000.0, None) == 5000.0
    assert subtract_unreachable_power(5000.0, 1500.0) == 3500.0
    result = distribute(
        5000.0, [pair(1, 50.0), pair(2, 50.0)], unreachable_power=1000.0
    )
    assert result.setpoints == pytest.approx({1: 2000.0, 2: 2000.0})
    assert result.unreachable_power == 1000.0
    assert result.request_power == 5000.0


def test_zero_watts_asked_is_zero_watts_whatever_broken_batteries_do() -> None:
    """Spec §2: 0 W → every inverter 0 W, also with unreachable power measured.

    The SDK subtracts a broken battery's 3 kW and discharges the others by
    3 kW to make up for it; ours reports it as excess, as for any request the
    unusable batteries already overshoot.
    """
    result = distribute(0.0, [pair(1, 50.0), pair(2, 60.0)], unreachable_power=3000.0)
    assert result.setpoints == {1: 0.0, 2: 0.0}
    assert result.excess_power == -3000.0


def test_exclusion_zones_never_get_a_setpoint_spec_example() -> None:
    # Spec §2: two pairs with ±600 W exclusion, 1000 W requested. The SDK would
    # send 400/600; ours runs one pair at 1000 W.
    zone = PowerBounds(-5000.0, 5000.0, -600.0, 600.0)
    result = distribute(
        1000.0, [pair(1, 50.0, inverter=zone), pair(2, 50.0, inverter=zone)]
    )
    assert sorted(result.setpoints.values()) == pytest.approx([0.0, 1000.0])
    assert result.excess_power == pytest.approx(0.0)


def test_exclusion_keeps_the_sdk_split_when_it_is_safe() -> None:
    zone = PowerBounds(-5000.0, 5000.0, -600.0, 600.0)
    pairs = [pair(1, 70.0, inverter=zone), pair(2, 50.0, inverter=zone)]
    assert distribute(4000.0, pairs).setpoints == pytest.approx({1: 1000.0, 2: 3000.0})


def _nearly_full_with_1000_w_zones() -> list[InverterBatteries]:
    """Three pairs 1, 3 and 6 points below an 80 % SoC limit; ±1000 W zones."""
    zone = PowerBounds(-5000.0, 5000.0, -1000.0, 1000.0)
    return [
        pair(1, 79.0, soc_upper=80.0, inverter=zone),
        pair(2, 77.0, soc_upper=80.0, inverter=zone),
        pair(3, 74.0, soc_upper=80.0, inverter=zone),
    ]


def test_exclusion_turns_off_the_pair_with_the_smallest_share() -> None:
    # Shares 250 / 750 / 1500 for 2500 W with 1000 W minimums. The SDK's split
    # (1000/1000/500) puts the last pair inside its zone. Ours switches off the
    # pair whose share is furthest below its minimum and balances the rest:
    # 3:6 would be 833/1667, held at the 1000 W minimum.
    result = distribute(2500.0, _nearly_full_with_1000_w_zones())
    assert result.setpoints == pytest.approx({1: 0.0, 2: 1000.0, 3: 1500.0})
    assert result.excess_power == pytest.approx(0.0)


def test_binding_exclusion_zone_replaces_the_sdk_repair() -> None:
    # For 3000 W the SDK runs all three at their 1000 W minimum (safe, but the
    # nearly full battery gets a third). Ours switches it off instead.
    result = distribute(3000.0, _nearly_full_with_1000_w_zones())
    assert result.setpoints == pytest.approx({1: 0.0, 2: 1000.0, 3: 2000.0})


def test_pool_exclusion_zone_for_refusals_is_the_narrowest_pair_zone() -> None:
    # Any single pair can run alone, so only a request below every pair's
    # minimum is refused; the summed zone (-900, 900) would refuse 700 W.
    pairs = [
        pair(1, 50.0, inverter=PowerBounds(-5000.0, 5000.0, -600.0, 600.0)),
        pair(2, 50.0, inverter=PowerBounds(-5000.0, 5000.0, -300.0, 300.0)),
    ]
    refused = distribute_battery_power(-250.0, pairs)
    assert isinstance(refused, BatteryRefusal)
    assert refused.bounds == PowerBounds(-10_000.0, 10_000.0, -300.0, 300.0)
    assert distribute(700.0, pairs).setpoints == pytest.approx({1: 0.0, 2: 700.0})
