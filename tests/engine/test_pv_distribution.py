"""PV curtailment: worked examples and properties."""

from __future__ import annotations

import math

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.distribution.pv import (
    PvInverterInput,
    distribute_pv_power,
)

SLACK = 1e-6


def inverter(
    component_id: int,
    available_w: float,
    *,
    smallest_w: float = 0.0,
    upper_w: float = 0.0,
) -> PvInverterInput:
    """An inverter that can produce `available_w`, but not less than `smallest_w`."""
    return PvInverterInput(
        component_id=component_id,
        bounds=PowerBounds(-available_w, upper_w, -smallest_w, 0.0),
    )


def test_curtailment_is_proportional_to_available_production() -> None:
    setpoints = distribute_pv_power(-5000.0, [inverter(1, 6000.0), inverter(2, 4000.0)])
    assert setpoints == pytest.approx({1: -3000.0, 2: -2000.0})


def test_equal_inverters_split_equally_like_the_sdk() -> None:
    setpoints = distribute_pv_power(
        -4500.0, [inverter(1, 5000.0), inverter(2, 5000.0), inverter(3, 5000.0)]
    )
    assert setpoints == pytest.approx({1: -1500.0, 2: -1500.0, 3: -1500.0})


def test_target_beyond_available_production_means_no_curtailment() -> None:
    setpoints = distribute_pv_power(
        -20_000.0, [inverter(1, 6000.0), inverter(2, 4000.0)]
    )
    assert setpoints == {1: -6000.0, 2: -4000.0}


@pytest.mark.parametrize("target", [0.0, 800.0, math.nan])
def test_zero_positive_or_unknown_target_curtails_fully(target: float) -> None:
    setpoints = distribute_pv_power(target, [inverter(1, 6000.0), inverter(2, 400.0)])
    assert setpoints == {1: 0.0, 2: 0.0}


def test_no_inverters_gives_no_setpoints() -> None:
    assert distribute_pv_power(-1000.0, []) == {}


def test_share_inside_the_exclusion_zone_goes_to_the_others() -> None:
    # The small inverter's proportional share (200 W) is below its smallest
    # production (300 W): it is switched off and the big one takes all 2 kW.
    setpoints = distribute_pv_power(
        -2000.0, [inverter(1, 1000.0, smallest_w=300.0), inverter(2, 9000.0)]
    )
    assert setpoints == pytest.approx({1: 0.0, 2: -2000.0})


def test_equal_inverters_with_exclusion_zones_drop_one_at_a_time() -> None:
    # 75 W each would be inside both zones; one inverter makes 150 W instead of
    # both making nothing.
    setpoints = distribute_pv_power(
        -150.0,
        [inverter(1, 5000.0, smallest_w=100.0), inverter(2, 5000.0, smallest_w=100.0)],
    )
    assert setpoints == pytest.approx({1: 0.0, 2: -150.0})


def test_limit_below_every_smallest_production_produces_nothing() -> None:
    setpoints = distribute_pv_power(-50.0, [inverter(1, 5000.0, smallest_w=100.0)])
    assert setpoints == {1: 0.0}


def test_negative_inclusion_upper_bound_counts_as_smallest_production() -> None:
    setpoints = distribute_pv_power(
        -1000.0, [inverter(1, 4000.0, upper_w=-600.0), inverter(2, 4000.0)]
    )
    assert setpoints == pytest.approx({1: 0.0, 2: -1000.0})


def test_an_inverter_the_sun_holds_below_its_limit_gives_its_share_away() -> None:
    """Two 8 kW inverters, one yielding 1.5 kW under a 3 kW limit: 6 kW total.

    The shaded one keeps 1.5 margins (2 % of 8 kW: 160 W) above its yield, the
    other takes the rest; together exactly the limit.
    """
    shaded = PvInverterInput(
        component_id=1,
        bounds=PowerBounds(-8000.0, 0.0),
        produced_w=1500.0,
        limit_w=3000.0,
    )
    setpoints = distribute_pv_power(-6000.0, [shaded, inverter(2, 8000.0)])
    assert setpoints == pytest.approx({1: -1740.0, 2: -4260.0})


def test_an_inverter_at_its_limit_or_alone_keeps_its_share() -> None:
    at_limit = PvInverterInput(
        component_id=1,
        bounds=PowerBounds(-8000.0, 0.0),
        produced_w=2950.0,  # within one margin of its 3 kW limit
        limit_w=3000.0,
    )
    setpoints = distribute_pv_power(-6000.0, [at_limit, inverter(2, 8000.0)])
    assert setpoints == pytest.approx({1: -3000.0, 2: -3000.0})
    # Alone, a shaded inverter still gets the whole limit (nobody to give to).
    alone = PvInverterInput(
        component_id=1,
        bounds=PowerBounds(-8000.0, 0.0),
        produced_w=1500.0,
        limit_w=3000.0,
    )
    assert distribute_pv_power(-3000.0, [alone]) == pytest.approx({1: -3000.0})


def test_unknown_bounds_get_zero_and_the_others_take_over() -> None:
    unknown = PvInverterInput(
        component_id=1, bounds=PowerBounds(math.nan, 0.0, 0.0, 0.0)
    )
    unbounded = PvInverterInput(component_id=3, bounds=PowerBounds.from_ranges([]))
    setpoints = distribute_pv_power(-3000.0, [unknown, inverter(2, 4000.0), unbounded])
    assert setpoints == pytest.approx({1: 0.0, 2: -3000.0, 3: 0.0})


@st.composite
def inverters(draw: st.DrawFn) -> list[PvInverterInput]:
    result = []
    for component_id in range(draw(st.integers(0, 6))):
        available = draw(st.floats(0.0, 10_000.0))
        smallest = draw(st.just(0.0) | st.floats(0.0, 1000.0))
        upper = draw(st.just(0.0) | st.floats(-500.0, 500.0))
        limit = draw(st.none() | st.floats(0.0, 10_000.0))
        produced = draw(st.just(math.nan) | st.floats(-100.0, 10_000.0))
        result.append(
            PvInverterInput(
                component_id=component_id,
                bounds=PowerBounds(-available, upper, -smallest, 0.0),
                produced_w=produced,
                limit_w=limit,
            )
        )
    return result


@settings(max_examples=300, deadline=None)
@given(inverters(), st.floats(-60_000.0, 2000.0) | st.just(math.nan))
def test_setpoints_are_safe_and_meet_the_target(
    pool: list[PvInverterInput], target: float
) -> None:
    setpoints = distribute_pv_power(target, pool)
    assert set(setpoints) == {i.component_id for i in pool}
    for inv in pool:
        power = setpoints[inv.component_id]
        assert power <= 0.0
        assert power == 0.0 or inv.bounds.allows(power)
    total = math.fsum(setpoints.values())
    limit = 0.0 if math.isnan(target) else min(0.0, target)
    # Never more production than the target allows.
    assert total >= limit - SLACK
    # Either the target is met, or every inverter that produces is at its maximum.
    producing = [i for i in pool if setpoints[i.component_id] < 0.0]
    assert total <= limit + SLACK or all(
        setpoints[i.component_id] == pytest.approx(-i.available_w) for i in producing
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(1.0, 10_000.0), min_size=1, max_size=6),
    st.floats(-70_000.0, 0.0),
)
def test_without_exclusion_zones_curtailment_is_proportional(
    availables: list[float], target: float
) -> None:
    pool = [inverter(i, a) for i, a in enumerate(availables)]
    setpoints = distribute_pv_power(target, pool)
    total_available = math.fsum(availables)
    expected_total = max(target, -total_available)
    assert math.fsum(setpoints.values()) == pytest.approx(expected_total, abs=SLACK)
    fraction = expected_total / -total_available
    for i, available in enumerate(availables):
        assert setpoints[i] == pytest.approx(-available * fraction, abs=SLACK)
