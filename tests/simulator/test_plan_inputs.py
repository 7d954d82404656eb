"""Scenario bookings and price/PV forecasts (issue 16 §4) as wall-clock series."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pytest

from custom_components.frequenz_microgrid.simulator import MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.plan_inputs import (
    DailySeries,
    model_pv_w,
    plan_inputs_from_dict,
    simulator_series,
)
from custom_components.frequenz_microgrid.simulator.scenario import (
    load_scenario,
    scenario_from_dict,
)
from tests.integration.steering_helpers import home_without_arrivals


def test_shipped_scenarios_carry_bookings_prices_and_a_model_pv_forecast() -> None:
    for name in ("home", "depot"):
        inputs = load_scenario(name).plan_inputs
        assert inputs.bookings
        assert inputs.price_per_kwh is not None
        assert len(inputs.price_per_kwh.values) * inputs.price_per_kwh.step_s == 86400
        assert inputs.pv_from_model


def test_daily_series_repeats_by_time_of_day() -> None:
    series = DailySeries(3600.0, tuple(float(h) for h in range(24)))
    assert series.at(0.0) == 0.0
    assert series.at(18.5 * 3600) == 18.0
    assert series.at(86400 + 3600) == 1.0


@pytest.mark.parametrize(
    "tables",
    [
        {"bookings": [{"charger": 6, "start_s": 100, "end_s": 50}]},
        {"bookings": [{"charger": 6, "start_s": -1, "end_s": 50}]},
        {"bookings": [{"charger": 5, "start_s": 0, "end_s": 50}]},  # a PV inverter
        {"price_forecast": {"step_s": 0, "values": [0.1]}},
        {"price_forecast": {"step_s": 3600, "values": []}},
        {"pv_forecast": {"step_s": 3600, "values": ["nan"]}},
    ],
)
def test_bad_tables_are_refused(tables: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"booking|forecast|finite|float"):
        scenario_from_dict(home_without_arrivals(**tables))


def test_an_empty_scenario_plans_without_anything() -> None:
    inputs = plan_inputs_from_dict({})
    assert inputs.bookings == ()
    assert inputs.price_per_kwh is None
    assert inputs.pv_w is None
    assert not inputs.pv_from_model


async def test_simulator_series_follow_the_simulated_time_of_day() -> None:
    """Each wall-clock step has the value of the simulated time it starts at."""
    scenario = load_scenario("home")
    sim = MicrogridSimulator(scenario, speed=2.0)
    now = 1_800_000_000.0
    sim_now = 500.0
    price = scenario.plan_inputs.price_per_kwh
    assert price is not None
    with patch.object(sim.clock, "now", return_value=sim_now):
        prices = simulator_series(sim, pv=False, now=now)
        pv = simulator_series(sim, pv=True, now=now)
    assert prices.points[0].start <= now < prices.points[0].end
    for point in prices.points:
        sim_at = sim_now + (point.start - now) * 2.0
        tod = (scenario.start_time_of_day_s + sim_at) % 86400
        assert point.value == price.at(tod)
    for point in pv.points:
        sim_at = sim_now + (point.start - now) * 2.0
        tod = (scenario.start_time_of_day_s + sim_at) % 86400
        assert point.value == pytest.approx(model_pv_w(scenario, tod))
    assert max(p.value for p in pv.points) > 0.0
