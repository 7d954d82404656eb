"""The physics model on its own: stepped directly, no gRPC, no real time."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.simulator import (
    EvSpec,
    generate_scenario,
    load_scenario,
)
from custom_components.frequenz_microgrid.simulator.physics.ev_charger import (
    LOCK_DELAY_S,
    CableState,
)
from custom_components.frequenz_microgrid.simulator.physics.inverter import (
    InverterParams,
    daylight_factor,
)
from custom_components.frequenz_microgrid.simulator.physics.model import (
    MicrogridModel,
    Operation,
)
from custom_components.frequenz_microgrid.simulator.scenario import (
    Kind,
    scenario_from_dict,
)

from .conftest import (
    BATTERY,
    BATTERY_INVERTER,
    EV_CHARGER_1,
    EV_CHARGER_2,
    GRID,
    GRID_METER,
    HOUSEHOLD_METER,
    PV_INVERTER,
)

SCENARIOS = (
    Path(__file__).parents[2]
    / "custom_components"
    / "frequenz_microgrid"
    / "simulator"
    / "scenarios"
)


def home() -> MicrogridModel:
    return MicrogridModel(load_scenario("home"))


def test_charging_battery_gains_soc_with_efficiency() -> None:
    model = home()
    model.set_active_power(BATTERY_INVERTER, 2000.0, lifetime_s=900)
    model.advance_to(3600.0)  # 2 kW for 15 min, then the setpoint lapses
    battery = model.component(BATTERY).battery
    assert battery is not None
    # 500 Wh at 95 % efficiency into 10 kWh: +4.75 points from 50 %.
    assert battery.soc_pct == pytest.approx(54.75)
    assert battery.dc_power_w == 0.0


def test_discharging_draws_more_than_delivered() -> None:
    model = home()
    model.set_active_power(BATTERY_INVERTER, -1900.0, lifetime_s=900)
    model.advance_to(900.0)
    battery = model.component(BATTERY).battery
    assert battery is not None
    assert battery.soc_pct == pytest.approx(50.0 - 475.0 / 0.95 / 100.0)
    assert model.component(BATTERY_INVERTER).active_power_w == pytest.approx(-1900.0)


def test_setpoint_lapses_exactly_after_its_lifetime() -> None:
    model = home()
    model.set_active_power(BATTERY_INVERTER, 3000.0, lifetime_s=60)
    model.advance_to(59.0)
    assert model.component(BATTERY_INVERTER).active_power_w == 3000.0
    model.advance_to(500.0)  # one big step: the lapse at 60 s still splits it
    assert model.component(BATTERY_INVERTER).active_power_w == 0.0
    battery = model.component(BATTERY).battery
    assert battery is not None
    assert battery.soc_pct == pytest.approx(50.0 + 3000 * 60 / 3600 * 0.95 / 100)


def test_battery_bounds_taper_to_zero_at_the_soc_window_edges() -> None:
    model = home()
    battery = model.component(BATTERY).battery
    assert battery is not None
    battery.soc_pct = 87.5  # half-way into the 5-point taper below 90 %
    assert battery.power_bounds() == PowerBounds(-5000.0, 2500.0)
    battery.soc_pct = 90.0
    assert battery.power_bounds().inclusion_upper == 0.0
    battery.soc_pct = 11.0
    assert battery.power_bounds().inclusion_lower == pytest.approx(-1000.0)


def test_battery_stops_charging_at_the_upper_soc_limit() -> None:
    model = home()
    model.set_active_power(BATTERY_INVERTER, 5000.0, lifetime_s=900)
    for minute in range(1, 121):
        model.set_active_power(BATTERY_INVERTER, 5000.0, lifetime_s=900)
        model.advance_to(minute * 60.0)
    battery = model.component(BATTERY).battery
    assert battery is not None
    assert 89.0 < battery.soc_pct <= 90.0
    assert model.component(BATTERY_INVERTER).active_power_w < 500.0


def test_meters_read_the_sum_of_what_is_behind_them() -> None:
    model = home()
    model.set_active_power(BATTERY_INVERTER, 1500.0, lifetime_s=600)
    model.plug_ev(EV_CHARGER_1, EvSpec(phases=3))
    model.set_active_power(EV_CHARGER_1, 11_040.0, lifetime_s=600)
    model.advance_to(100.0)
    children = [
        BATTERY_INVERTER,
        PV_INVERTER,
        EV_CHARGER_1,
        EV_CHARGER_2,
        HOUSEHOLD_METER,
    ]
    expected = sum(model.component(c).active_power_w for c in children)
    assert model.component(GRID_METER).active_power_w == pytest.approx(expected)
    assert model.component(GRID).active_power_w == pytest.approx(expected)
    # The household meter carries the base load, split 50/30/20 over the phases.
    household = model.component(HOUSEHOLD_METER).phases
    assert household.as_tuple() == pytest.approx((300.0, 180.0, 120.0))
    assert model.component(GRID_METER).phases.currents()[0] == pytest.approx(
        model.component(GRID_METER).phases.l1 / 230.0
    )


def test_pv_follows_daylight_and_can_be_curtailed() -> None:
    model = home()  # starts at noon
    noon_output = model.component(PV_INVERTER).active_power_w
    assert noon_output == pytest.approx(-7000.0 * daylight_factor(12 * 3600.0))
    model.set_active_power(PV_INVERTER, -2000.0, lifetime_s=60)
    model.advance_to(1.0)
    assert model.component(PV_INVERTER).active_power_w == -2000.0
    model.advance_to(61.0)  # curtailment lapsed: back to the daylight curve
    assert model.component(PV_INVERTER).active_power_w < -6000.0
    assert daylight_factor(3 * 3600.0) == 0.0


def test_ev_cable_plugs_then_locks_then_charges() -> None:
    model = home()
    charger = model.component(EV_CHARGER_1).ev_charger
    assert charger is not None
    assert charger.cable_state(model.now_s) is CableState.UNPLUGGED
    model.plug_ev(EV_CHARGER_1, EvSpec(capacity_wh=50_000, soc_pct=20, phases=3))
    model.set_active_power(EV_CHARGER_1, 16 * 230 * 3, lifetime_s=900)
    model.advance_to(LOCK_DELAY_S / 2)
    assert charger.cable_state(model.now_s) is CableState.PLUGGED
    assert model.component(EV_CHARGER_1).active_power_w == 0.0
    model.advance_to(LOCK_DELAY_S + 600.0)
    assert charger.cable_state(model.now_s) is CableState.LOCKED
    assert charger.current_a == pytest.approx(16.0)
    assert model.component(EV_CHARGER_1).active_power_w == pytest.approx(11_040.0)
    assert charger.session is not None
    # 11.04 kW for 10 minutes at 92 % efficiency into 50 kWh.
    assert charger.session.soc_pct == pytest.approx(20 + 11_040 * 0.92 / 6 / 500)


def single_phase_home(phase: int) -> MicrogridModel:
    """The home scenario with its battery and PV inverters wired to one line."""
    scenario = load_scenario("home")
    components = []
    for spec in scenario.components:
        if spec.inverter is not None:
            spec = dataclasses.replace(
                spec, inverter=dataclasses.replace(spec.inverter, phase=phase)
            )
        components.append(spec)
    return MicrogridModel(dataclasses.replace(scenario, components=tuple(components)))


@pytest.mark.parametrize("phase", [1, 2, 3])
def test_a_single_phase_inverter_carries_its_power_on_its_line(phase: int) -> None:
    model = single_phase_home(phase)  # noon: the PV produces
    model.set_active_power(BATTERY_INVERTER, 4_600.0, lifetime_s=60)
    model.advance_to(1.0)
    expected = [0.0, 0.0, 0.0]
    expected[phase - 1] = 4_600.0
    assert model.component(BATTERY_INVERTER).phases.as_tuple() == pytest.approx(
        tuple(expected)
    )
    pv = model.component(PV_INVERTER)
    assert pv.phases.as_tuple()[phase - 1] == pytest.approx(pv.active_power_w)
    assert pv.active_power_w < -1_000.0


def test_a_scenario_row_names_an_inverters_line() -> None:
    """`"phase": 2` in a scenario file wires the inverter to L2; absent: three-phase."""
    data = json.loads(
        (SCENARIOS / "home.json").read_text(encoding="utf-8"),
    )
    for row in data["topology"]:
        if row["id"] == BATTERY_INVERTER:
            row["phase"] = 2
    scenario = scenario_from_dict(data)
    inverters = {s.id: s.inverter for s in scenario.components if s.inverter}
    assert inverters[BATTERY_INVERTER] is not None
    assert inverters[BATTERY_INVERTER].phase == 2
    assert inverters[PV_INVERTER] is not None
    assert inverters[PV_INVERTER].phase is None


def test_an_inverter_on_a_line_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValueError, match="1, 2 or 3"):
        InverterParams(rated_power_w=5_000.0, phase=4)


def test_single_phase_ev_draws_on_one_phase_only() -> None:
    model = home()
    model.plug_ev(EV_CHARGER_2, EvSpec(phases=1, max_current_a=32))
    model.set_active_power(EV_CHARGER_2, 32 * 230 * 3, lifetime_s=60)
    model.advance_to(10.0)
    phases = model.component(EV_CHARGER_2).phases
    assert phases.as_tuple() == pytest.approx((32 * 230.0, 0.0, 0.0))


def test_a_single_phase_charger_charges_a_three_phase_ev_on_one_phase() -> None:
    """The phases in use are the fewer of the charger's and the EV's."""
    scenario = load_scenario("home")
    components = tuple(
        dataclasses.replace(
            spec, ev_charger=dataclasses.replace(spec.ev_charger, phases=1)
        )
        if spec.id == EV_CHARGER_2 and spec.ev_charger is not None
        else spec
        for spec in scenario.components
    )
    model = MicrogridModel(dataclasses.replace(scenario, components=components))
    model.plug_ev(EV_CHARGER_2, EvSpec(phases=3, max_current_a=32))
    bounds = model.reported_bounds(EV_CHARGER_2)
    assert bounds is not None
    assert bounds.inclusion_upper == pytest.approx(32 * 230.0)
    model.set_active_power(EV_CHARGER_2, bounds.inclusion_upper, lifetime_s=60)
    model.advance_to(10.0)
    phases = model.component(EV_CHARGER_2).phases
    assert phases.as_tuple() == pytest.approx((32 * 230.0, 0.0, 0.0))
    assert phases.currents(230.0) == pytest.approx((32.0, 0.0, 0.0))
    assert phases.total <= bounds.inclusion_upper + 1e-6


def test_ev_below_minimum_current_does_not_charge_and_tapers_when_full() -> None:
    model = home()
    model.plug_ev(EV_CHARGER_1, EvSpec(soc_pct=90.0, max_current_a=32))
    model.set_active_power(EV_CHARGER_1, 5 * 230 * 3, lifetime_s=60)  # 5 A < 6 A
    model.advance_to(10.0)
    assert model.component(EV_CHARGER_1).active_power_w == 0.0
    model.set_active_power(EV_CHARGER_1, 32 * 230 * 3, lifetime_s=60)
    model.advance_to(11.0)
    charger = model.component(EV_CHARGER_1).ev_charger
    assert charger is not None
    assert charger.current_a == pytest.approx(16.0, abs=0.1)  # 90 % SoC: half


def test_scheduled_ev_arrives_departs_and_comes_back() -> None:
    """The home demo's garage EV: 120 s → 3600 s, then again 7200 s → 21 600 s."""
    model = home()

    def plugged() -> bool:
        charger = model.component(EV_CHARGER_1).ev_charger
        return charger is not None and charger.session is not None

    model.advance_to(119.0)
    assert not plugged()
    model.advance_to(121.0)
    assert plugged()
    model.advance_to(3601.0)
    assert not plugged()
    assert [r.unplugged_at_s for r in model.finished_sessions] == [3600.0]
    model.advance_to(7201.0)
    assert plugged()
    model.advance_to(21_601.0)
    assert not plugged()
    assert len(model.finished_sessions) == 3  # the driveway EV left at 14 400 s


def test_inverter_with_two_batteries_shares_by_room() -> None:
    model = MicrogridModel(load_scenario("depot"))
    model.set_active_power(15, 20_000.0, lifetime_s=60)
    model.advance_to(10.0)
    c1, c2 = model.component(16).battery, model.component(17).battery
    assert c1 is not None
    assert c2 is not None
    assert c1.dc_power_w + c2.dc_power_w == pytest.approx(20_000.0)
    assert c1.dc_power_w == pytest.approx(10_000.0)  # both far from their limits
    bounds = model.setpoint_bounds(15)
    assert bounds == PowerBounds(-50_000.0, 50_000.0)


def test_inverter_exclusion_zone_is_part_of_its_bounds() -> None:
    model = MicrogridModel(load_scenario("depot"))
    bounds = model.setpoint_bounds(13)
    assert bounds is not None
    assert bounds.to_ranges() == [(-30_000.0, -1000.0), (1000.0, 30_000.0)]
    assert not bounds.allows(500.0)


def test_stopped_or_faulty_components_carry_no_power() -> None:
    model = home()
    model.set_active_power(BATTERY_INVERTER, 2000.0, lifetime_s=60)
    model.set_error(BATTERY_INVERTER, True)
    model.advance_to(1.0)
    assert model.component(BATTERY_INVERTER).active_power_w == 0.0
    model.set_error(BATTERY_INVERTER, False)
    model.set_operation(PV_INVERTER, Operation.OFF)
    model.advance_to(2.0)
    assert model.component(PV_INVERTER).active_power_w == 0.0


def test_energy_counters_integrate_power() -> None:
    model = home()
    model.set_active_power(BATTERY_INVERTER, 3600.0, lifetime_s=900)
    model.advance_to(600.0)
    energy = model.component(BATTERY_INVERTER).energy
    assert energy.consumed_wh == pytest.approx(600.0)
    assert energy.delivered_wh == 0.0
    assert model.component(PV_INVERTER).energy.delivered_wh > 0.0


def test_shipped_scenarios_have_the_documented_shape() -> None:
    home_scenario = load_scenario("home")
    kinds = [c.kind for c in home_scenario.components]
    assert kinds.count(Kind.EV_CHARGER) == 2
    assert home_scenario.component(GRID).fuse_current_a == 40
    depot = load_scenario("depot")
    depot_kinds = [c.kind for c in depot.components]
    assert depot_kinds.count(Kind.EV_CHARGER) == 22
    assert depot_kinds.count(Kind.PV_INVERTER) == 2
    assert len(depot.children(15)) == 2
    garage = depot.component(50)  # the garage feeder: its own 80 A per phase
    assert garage.kind is Kind.METER
    assert garage.fuse_current_a == 80
    assert [c.id for c in depot.children(50)] == list(range(51, 61))


@pytest.mark.parametrize("count", [2, 7, 100, 1000])
def test_generated_scenario_has_exactly_n_components(count: int) -> None:
    scenario = generate_scenario(count)
    assert len(scenario.components) == count
    model = MicrogridModel(scenario)
    model.advance_to(10.0)
    assert model.component(2).active_power_w != 0.0
