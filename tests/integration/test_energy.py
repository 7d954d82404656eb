"""Energy totals: meter counters, integration from power, resets, gaps and restore."""

from __future__ import annotations

from datetime import timedelta
import math

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.sensor import ATTR_STATE_CLASS, SensorStateClass
from homeassistant.const import ATTR_UNIT_OF_MEASUREMENT, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant, State
from hypothesis import given, strategies as st
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    mock_restore_cache_with_extra_data,
)

from custom_components.frequenz_microgrid import sensor
from custom_components.frequenz_microgrid.engine.energy import EnergyTotal
from custom_components.frequenz_microgrid.engine.snapshot import (
    BatteryPoolSnapshot,
    EnergySnapshot,
    MicrogridSnapshot,
)
from custom_components.frequenz_microgrid.simulator import EvSpec, MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.scenario import (
    Kind,
    generated_component,
)

from .conftest import HOME_MICROGRID_ID, state_of, state_or_none, wait_for
from .microgrid_factory import (
    ENTRY_KEY,
    T0,
    HandFedPlatforms,
    home_topology,
    let_a_second_pass,
    snapshot_at,
)


def _state(hass: HomeAssistant, key: str) -> State:
    return state_of(hass, f"{ENTRY_KEY}_{key}", ("sensor",))


# --- EnergyTotal: the arithmetic ----------------------------------------------------


def test_trapezoid_between_consecutive_samples() -> None:
    total = EnergyTotal()
    total.add_power_sample(T0, 3600.0)
    assert total.total_wh is None  # one sample is no energy yet (and no made-up 0)
    total.add_power_sample(T0 + timedelta(seconds=1), 7200.0)
    total.add_power_sample(T0 + timedelta(seconds=2), 7200.0)
    # (3600 + 7200) / 2 W for 1 s + 7200 W for 1 s = 5400 + 7200 Ws = 3.5 Wh
    assert total.total_wh == pytest.approx(3.5)


def test_nothing_is_invented_over_a_gap() -> None:
    total = EnergyTotal()
    total.add_power_sample(T0, 3600.0)
    total.add_power_sample(T0 + timedelta(seconds=1), 3600.0)  # +1 Wh
    total.add_power_sample(T0 + timedelta(seconds=2), None)  # stale
    total.add_power_sample(T0 + timedelta(seconds=10), 3600.0)  # new segment
    total.add_power_sample(T0 + timedelta(seconds=11), 3600.0)  # +1 Wh
    # A long silence without a `None` in between is a gap too.
    total.add_power_sample(T0 + timedelta(seconds=100), 3600.0)
    assert total.total_wh == pytest.approx(2.0)


def test_meter_counter_is_followed_and_resets_keep_it_monotonic() -> None:
    total = EnergyTotal()
    total.add_meter_reading(5000.0)
    assert total.total_wh == 5000.0  # the first reading is the device's own total
    total.add_meter_reading(5200.0)
    total.add_meter_reading(40.0)  # the meter was reset (or replaced)
    total.add_meter_reading(90.0)
    assert total.total_wh == pytest.approx(5250.0)
    # While its counter is unknown (a member silent), power bridges the gap...
    total.add_power_sample(T0, 3600.0)
    total.add_power_sample(T0 + timedelta(seconds=1), 3600.0)
    assert total.total_wh == pytest.approx(5251.0)
    # ...and the counter's rise over the gap is added net of it, not twice.
    total.add_meter_reading(95.0)
    assert total.total_wh == pytest.approx(5255.0)


def test_a_sum_over_other_meters_is_followed_from_its_new_level() -> None:
    """A wallbox joins with 1 MWh on its meter: the EV total does not jump.

    The same when one leaves (its counter drops out of the sum) and when the
    set changed while Home Assistant was down (the stored set differs).
    """
    total = EnergyTotal()
    total.add_meter_reading(5000.0, frozenset({6, 7}))
    total.add_meter_reading(5100.0, frozenset({6, 7}))
    total.add_meter_reading(1_005_100.0, frozenset({6, 7, 22}))  # 22 joined
    total.add_meter_reading(1_005_150.0, frozenset({6, 7, 22}))
    assert total.total_wh == pytest.approx(5150.0)
    total.add_meter_reading(5160.0, frozenset({6, 7}))  # 22 left: no drop, no jump
    total.add_meter_reading(5170.0, frozenset({6, 7}))
    assert total.total_wh == pytest.approx(5160.0)

    restored = EnergyTotal.from_dict(total.as_dict())
    assert restored.meters == (6, 7)
    restored.add_meter_reading(2_005_300.0, frozenset({6, 7, 30}))  # 30, while down
    restored.add_meter_reading(2_005_310.0, frozenset({6, 7, 30}))
    assert restored.total_wh == pytest.approx(5170.0)
    # Stored before the meters were: the next reading counts as the same sum.
    old = EnergyTotal.from_dict({"total_wh": 100.0, "last_reading_wh": 50.0})
    old.add_meter_reading(60.0, frozenset({6}))
    assert old.total_wh == pytest.approx(110.0)


def test_round_trip_through_storage() -> None:
    total = EnergyTotal(total_wh=12.5, last_reading_wh=99.0, meters=(3, 7))
    restored = EnergyTotal.from_dict(total.as_dict())
    assert (restored.total_wh, restored.last_reading_wh) == (12.5, 99.0)
    assert restored.meters == (3, 7)
    assert EnergyTotal.from_dict({"total_wh": "junk"}).total_wh is None
    assert EnergyTotal.from_dict({"meters": [1, "x"]}).meters is None


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_a_non_finite_value_never_enters_the_total(bad: float) -> None:
    """Home Assistant refuses a non-finite state: one would break the sensor for good.

    A stored one (from a version before this check) is dropped on restore.
    """
    total = EnergyTotal()
    total.add_power_sample(T0, 3600.0)
    total.add_power_sample(T0 + timedelta(seconds=1), bad)  # a gap, not a sample
    total.add_power_sample(T0 + timedelta(seconds=2), 3600.0)
    total.add_power_sample(T0 + timedelta(seconds=3), 3600.0)
    assert total.total_wh == pytest.approx(1.0)
    meter = EnergyTotal()
    meter.add_meter_reading(100.0)
    meter.add_meter_reading(bad)
    meter.add_meter_reading(150.0)
    assert meter.total_wh == pytest.approx(150.0)
    restored = EnergyTotal.from_dict({"total_wh": bad, "last_reading_wh": bad})
    assert (restored.total_wh, restored.last_reading_wh) == (None, None)


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("meter"), st.floats(0, 1e9)),
            st.tuples(st.just("power"), st.one_of(st.none(), st.floats(0, 1e6))),
        ),
        max_size=40,
    ),
    st.one_of(st.none(), st.floats(0, 1e6)),
)
def test_total_never_decreases(
    steps: list[tuple[str, float | None]], restored: float | None
) -> None:
    total = EnergyTotal(total_wh=restored)
    previous = total.total_wh or 0.0
    for i, (kind, value) in enumerate(steps):
        if kind == "meter" and value is not None:
            total.add_meter_reading(value)
        else:
            total.add_power_sample(T0 + timedelta(seconds=i), value)
        current = total.total_wh or 0.0
        assert current >= previous
        previous = current


# --- EnergySensor: the entities ----------------------------------------------------


async def test_energy_sensors_integrate_power_by_direction(
    hass: HomeAssistant, platforms: HandFedPlatforms, freezer: FrozenDateTimeFactory
) -> None:
    """Import and export split the grid power; charge/discharge the battery's."""

    def grid_at(second: float, grid_w: float) -> MicrogridSnapshot:
        """The battery discharging at 1800 W and PV producing 7200 W throughout."""
        return snapshot_at(
            second,
            grid_power_w=grid_w,
            battery=BatteryPoolSnapshot(power_w=-1800.0),
            pv_power_w=-7200.0,
        )

    _, coordinator = await platforms.setup(sensor, home_topology(), grid_at(0, 3600.0))
    # No counter and one sample: no total yet, so unavailable (never a made-up 0).
    assert _state(hass, "grid_import_energy").state == STATE_UNAVAILABLE
    for second, grid_w in ((1, 3600.0), (2, -3600.0), (3, -3600.0)):
        coordinator.async_set_updated_data(grid_at(second, grid_w))
        await let_a_second_pass(hass, freezer)

    # Import: 3600 W for 0→1 s = 1 Wh; in the second where the flow reverses, each
    # direction gets the trapezoid of its own part: (3600 + 0) / 2 W → 0.5 Wh.
    # Export: that 0.5 Wh, then 3600 W for 2→3 s = 1 Wh.
    imported = _state(hass, "grid_import_energy")
    assert float(imported.state) == pytest.approx(1.5 / 1000)
    assert imported.attributes[ATTR_UNIT_OF_MEASUREMENT] == "kWh"
    assert imported.attributes[ATTR_STATE_CLASS] == SensorStateClass.TOTAL_INCREASING
    assert float(_state(hass, "grid_export_energy").state) == pytest.approx(1.5 / 1000)
    # Discharging at 1800 W for 3 s = 1.5 Wh; the battery did not charge.
    assert float(_state(hass, "battery_discharge_energy").state) == pytest.approx(
        1.5 / 1000
    )
    assert float(_state(hass, "battery_charge_energy").state) == 0.0
    # PV produced 7200 W for 3 s = 6 Wh.
    assert float(_state(hass, "pv_production_energy").state) == pytest.approx(
        6.0 / 1000
    )


async def test_energy_sensor_prefers_the_components_counter(
    hass: HomeAssistant, platforms: HandFedPlatforms, freezer: FrozenDateTimeFactory
) -> None:
    _, coordinator = await platforms.setup(
        sensor,
        home_topology(),
        snapshot_at(
            0, grid_power_w=3600.0, energy=EnergySnapshot(grid_import_wh=250_000.0)
        ),
    )
    assert float(_state(hass, "grid_import_energy").state) == pytest.approx(250.0)
    coordinator.async_set_updated_data(
        snapshot_at(
            1, grid_power_w=3600.0, energy=EnergySnapshot(grid_import_wh=251_000.0)
        )
    )
    await let_a_second_pass(hass, freezer)
    assert float(_state(hass, "grid_import_energy").state) == pytest.approx(251.0)


async def test_energy_total_is_restored_after_restart(
    hass: HomeAssistant, platforms: HandFedPlatforms, freezer: FrozenDateTimeFactory
) -> None:
    """An integrated total continues from the stored value, not from zero."""
    entity_id = "sensor.home_grid_import"
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(entity_id, "42.0"),
                {
                    "native_value": 42.0,
                    "native_unit_of_measurement": "kWh",
                    "total_wh": 42_000.0,
                    "last_reading_wh": None,
                },
            )
        ],
    )
    _, coordinator = await platforms.setup(
        sensor, home_topology(), snapshot_at(0, grid_power_w=3600.0)
    )
    assert _state(hass, "grid_import_energy").entity_id == entity_id
    assert float(_state(hass, "grid_import_energy").state) == pytest.approx(42.0)
    coordinator.async_set_updated_data(snapshot_at(1, grid_power_w=3600.0))
    await let_a_second_pass(hass, freezer)
    assert float(_state(hass, "grid_import_energy").state) == pytest.approx(42.001)


async def test_energy_sensors_follow_the_simulated_counters(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    setup_integration: MockConfigEntry,
) -> None:
    """The simulated components send energy counters: the totals follow them."""

    def produced_kwh() -> float | None:
        state = state_or_none(hass, f"{HOME_MICROGRID_ID}_pv_production_energy")
        if state is None or state.state == STATE_UNAVAILABLE:
            return None
        return float(state.state)

    await wait_for(lambda: (produced_kwh() or 0.0) > 0.0, what="PV production")
    first = produced_kwh()
    assert first is not None
    await wait_for(lambda: (produced_kwh() or 0.0) > first, what="more PV production")
    # The PV inverter's own delivered-energy counter, read from the physics; the
    # entity lags it by at most a tick and a write window (7 kW × 2 s ≈ 4 Wh).
    counter_kwh = simulator.model.component(5).energy.delivered_wh / 1000.0
    assert produced_kwh() == pytest.approx(counter_kwh, abs=0.004)


async def test_a_charger_joining_with_a_lifetime_counter_adds_no_energy(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    setup_integration: MockConfigEntry,
) -> None:
    """A used wallbox (1 MWh on its meter) is added live: the EV total stays."""

    def ev_kwh() -> float | None:
        state = state_or_none(hass, f"{HOME_MICROGRID_ID}_ev_charging_energy")
        if state is None or state.state in (STATE_UNAVAILABLE, "unknown"):
            return None
        return float(state.state)

    await wait_for(lambda: ev_kwh() is not None, what="the EV charging total")
    before = ev_kwh()
    assert before is not None
    simulator.add_component(generated_component(22, Kind.EV_CHARGER, 2))
    simulator.model.component(22).energy.consumed_wh = 1_000_000.0
    await setup_integration.runtime_data.topology_refresh.async_refresh()
    await hass.async_block_till_done()
    coordinator = setup_integration.runtime_data.coordinator
    sum_with_22 = sum(
        simulator.model.component(c).energy.consumed_wh for c in (6, 7, 22)
    )

    def summed_with_the_new_meter() -> bool:
        snapshot = coordinator.data
        counter = None if snapshot is None else snapshot.energy.ev_charging_wh
        return counter is not None and counter >= sum_with_22 - 1.0

    await wait_for(summed_with_the_new_meter, what="a sum with the new meter")
    await hass.async_block_till_done()
    after = ev_kwh()
    assert after is not None
    assert after - before < 1.0  # kWh; not the 1,000 kWh on the new meter


async def test_each_charger_has_its_own_energy_total(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    setup_integration: MockConfigEntry,
) -> None:
    """A wallbox is its own device on the Energy dashboard: its meter's total."""
    simulator.plug_ev(6, EvSpec(max_current_a=32.0))

    def charger_kwh(charger_id: int) -> float | None:
        state = state_or_none(hass, f"{HOME_MICROGRID_ID}_{charger_id}_charging_energy")
        if state is None or state.state in (STATE_UNAVAILABLE, "unknown"):
            return None
        return float(state.state)

    await wait_for(lambda: (charger_kwh(6) or 0.0) > 0.0, what="charger 6 charging")
    # Its own consumed-energy counter (the simulated meter's lifetime reading);
    # the entity lags it by at most a tick and a write window (22 kW × 2 s).
    counter_kwh = simulator.model.component(6).energy.consumed_wh / 1000.0
    assert charger_kwh(6) == pytest.approx(counter_kwh, abs=0.013)
    assert charger_kwh(7) == pytest.approx(
        simulator.model.component(7).energy.consumed_wh / 1000.0, abs=1e-6
    )
    state = state_of(hass, f"{HOME_MICROGRID_ID}_6_charging_energy", ("sensor",))
    assert state.attributes["state_class"] == "total_increasing"
    assert state.attributes["unit_of_measurement"] == "kWh"
    assert state.attributes["device_class"] == "energy"
