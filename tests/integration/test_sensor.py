"""Sensor platform: descriptions, availability, per-phase sensors, coalescing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
import inspect
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from frequenz.client.microgrid.component import ComponentStateCode
from frequenz.client.microgrid.metrics import Metric
from homeassistant.config_entries import RELOAD_AFTER_UPDATE_DELAY, ConfigEntryState
from homeassistant.const import (
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
    STATE_UNAVAILABLE,
    Platform,
)
from homeassistant.core import Event, HomeAssistant, State, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.frequenz_microgrid import (
    entity as entity_module,
    sensor,
    sensor_descriptions,
)
from custom_components.frequenz_microgrid.const import CONF_FRESHNESS_S, DOMAIN
from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.monitor import DETAIL_METRICS
from custom_components.frequenz_microgrid.engine.snapshot import (
    BatteryPoolSnapshot,
)
from custom_components.frequenz_microgrid.simulator import Fault, MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.physics.ac import (
    NOMINAL_FREQUENCY_HZ,
    NOMINAL_VOLTAGE_V,
)
from custom_components.frequenz_microgrid.simulator.physics.model import (
    LOAD_REACTIVE_RATIO,
)
from custom_components.frequenz_microgrid.simulator.telemetry import (
    BATTERY_DC_VOLTAGE_V,
    PV_DC_VOLTAGE_V,
    inverter_temperature_c,
)

from .conftest import (
    HOME_MICROGRID_ID,
    entity_id_of,
    setup_entry,
    state_of,
    state_or_none,
    wait_for,
)
from .microgrid_factory import (
    BAT_INV,
    BATTERY,
    ENTRY_KEY,
    EV_CHARGER,
    GRID,
    GRID_METER,
    HOME_WIRING,
    HOUSE_METER,
    HandFedPlatforms,
    entity_snapshot,
    fresh_component,
    home_components,
    home_topology,
    let_a_second_pass,
    snapshot_at,
)
from .steering_helpers import (
    BATTERY as SIM_BATTERY,
    BATTERY_INVERTER,
    HOUSEHOLD,
    PV_INVERTER,
)

SENSOR = ("sensor",)


def _state(hass: HomeAssistant, unique_suffix: str) -> str:
    return state_of(hass, f"{ENTRY_KEY}_{unique_suffix}", SENSOR).state


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ({ComponentStateCode.READY, ComponentStateCode.CHARGING}, "charging"),
        ({ComponentStateCode.READY, ComponentStateCode.ERROR}, "error"),
        ({ComponentStateCode.STANDBY}, "standby"),
        ({ComponentStateCode.EV_CHARGING_CABLE_PLUGGED_AT_EV}, None),
        (set(), None),
    ],
)
def test_component_state_shows_the_most_important_state(
    states: set[ComponentStateCode], expected: str | None
) -> None:
    assert sensor_descriptions.component_state(fresh_component(1, *states)) == expected


def test_cable_state_prefers_the_most_connected_state() -> None:
    both = frozenset(
        {
            ComponentStateCode.EV_CHARGING_CABLE_PLUGGED_AT_STATION,
            ComponentStateCode.EV_CHARGING_CABLE_LOCKED_AT_EV,
        }
    )
    assert sensor_descriptions.cable_state(fresh_component(6, *both)) == "locked_at_ev"
    assert sensor_descriptions.cable_state(fresh_component(6)) is None


def test_enum_options_are_the_translated_state_names() -> None:
    by_key = {d.key: d for d in sensor_descriptions.COMPONENT_SENSORS}
    assert by_key["component_state"].options == [
        "error",
        "unavailable",
        "switching_off",
        "off",
        "switching_on",
        "standby",
        "charging",
        "discharging",
        "ready",
        "unknown",
    ]
    assert by_key["cable_state"].options == [
        "locked_at_ev",
        "plugged_at_ev",
        "locked_at_station",
        "plugged_at_station",
        "unplugged",
    ]


def test_on_demand_detail_sensors_are_disabled_by_default() -> None:
    """Enabled, a detail sensor widens every component's stream: opt-in only."""
    detail = {
        d.key: d.entity_registry_enabled_default
        for d in sensor_descriptions.COMPONENT_SENSORS
        if d.on_demand_metric is not None
    }
    assert detail == {
        **{f"power_l{phase}": False for phase in (1, 2, 3)},
        **{f"voltage_l{phase}": False for phase in (1, 2, 3)},
        "reactive_power": False,
        "frequency": False,
        "inverter_temperature": False,
        "dc_voltage": False,
        "dc_current": False,
    }


async def test_pool_sensors_follow_the_topology(
    hass: HomeAssistant, platforms: HandFedPlatforms
) -> None:
    """A site without EV charger and PV gets no EV or PV sensors."""
    keep = {GRID, GRID_METER, BAT_INV, BATTERY, HOUSE_METER}
    topology = home_topology(
        [c for c in home_components() if int(c.id) in keep],
        [(a, b) for a, b in HOME_WIRING if b in keep],
    )
    entry, _ = await platforms.setup(sensor, topology, snapshot_at())
    unique_ids = {
        e.unique_id
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    }
    assert f"{ENTRY_KEY}_grid_power" in unique_ids
    assert f"{ENTRY_KEY}_battery_soc" in unique_ids
    assert f"{ENTRY_KEY}_battery_charge_energy" in unique_ids
    assert not {u for u in unique_ids if "_ev_" in u or "_pv_" in u}
    assert f"{ENTRY_KEY}_{EV_CHARGER}_cable_state" not in unique_ids


async def test_pool_values_and_availability(
    hass: HomeAssistant, platforms: HandFedPlatforms, freezer: FrozenDateTimeFactory
) -> None:
    bounds = PowerBounds(-5000.0, float("inf"), -100.0, 100.0)
    _, coordinator = await platforms.setup(
        sensor,
        home_topology(),
        snapshot_at(
            grid_power_w=1234.5,
            grid_current_a=(5.0, None, 4.0),
            battery=BatteryPoolSnapshot(soc_pct=55.0, bounds=bounds),
        ),
    )
    assert _state(hass, "grid_power") == "1234.5"
    assert _state(hass, "grid_current_l1") == "5.0"
    # A phase without a value is unavailable, never a made-up 0.
    assert _state(hass, "grid_current_l2") == STATE_UNAVAILABLE
    assert _state(hass, "battery_soc") == "55.0"
    assert _state(hass, "battery_inclusion_lower") == "-5000.0"
    # An unbounded side has no number to show.
    assert _state(hass, "battery_inclusion_upper") == STATE_UNAVAILABLE
    assert _state(hass, "battery_exclusion_upper") == "100.0"
    assert _state(hass, "delivery_area") == "10YDE-EON------1"

    # The microgrid stops answering: everything telemetry-based goes unavailable.
    coordinator.async_set_updated_data(
        snapshot_at(1, reachable=False, grid_power_w=1.0)
    )
    await let_a_second_pass(hass, freezer)
    assert _state(hass, "grid_power") == STATE_UNAVAILABLE
    assert _state(hass, "battery_soc") == STATE_UNAVAILABLE
    # Metadata does not depend on telemetry.
    assert _state(hass, "delivery_area") == "10YDE-EON------1"


async def test_component_sensors_and_per_phase_sensors_once_measured(
    hass: HomeAssistant, platforms: HandFedPlatforms, freezer: FrozenDateTimeFactory
) -> None:
    registry = er.async_get(hass)
    meter = fresh_component(HOUSE_METER, metrics={Metric.AC_POWER_ACTIVE: 800.0})
    entry, coordinator = await platforms.setup(
        sensor, home_topology(), snapshot_at(components={HOUSE_METER: meter})
    )
    assert _state(hass, f"{HOUSE_METER}_power") == "800.0"
    # The battery sent nothing yet: its sensors exist but are unavailable.
    assert _state(hass, f"{BATTERY}_soc") == STATE_UNAVAILABLE
    # No phase measured yet: no per-phase sensors.
    current_uid = f"{ENTRY_KEY}_{HOUSE_METER}_current_l1"
    assert registry.async_get_entity_id("sensor", DOMAIN, current_uid) is None

    measured = fresh_component(
        HOUSE_METER,
        metrics={Metric.AC_POWER_ACTIVE: 900.0, Metric.AC_CURRENT_PHASE_1: 3.9},
    )
    coordinator.async_set_updated_data(
        snapshot_at(1, components={HOUSE_METER: measured})
    )
    await hass.async_block_till_done()
    entity_id = registry.async_get_entity_id("sensor", DOMAIN, current_uid)
    assert entity_id is not None
    # Per-component phase currents are noisy: created disabled by default.
    registry_entry = registry.async_get(entity_id)
    assert registry_entry is not None
    assert registry_entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert (
        registry.async_get_entity_id("sensor", DOMAIN, current_uid.replace("l1", "l2"))
        is None
    )
    entries = er.async_entries_for_config_entry(registry, entry.entry_id)
    assert len([e for e in entries if e.unique_id == current_uid]) == 1


async def test_state_writes_are_coalesced(
    hass: HomeAssistant, platforms: HandFedPlatforms, freezer: FrozenDateTimeFactory
) -> None:
    """Only changes are written, at most once a second, and the last one lands."""
    _, coordinator = await platforms.setup(
        sensor, home_topology(), snapshot_at(grid_power_w=100.0)
    )
    entity_id = entity_id_of(hass, f"{ENTRY_KEY}_grid_power", SENSOR)
    changed: list[str] = []
    reported: list[str] = []

    @callback
    def _ours(event_data: Mapping[str, Any]) -> bool:
        return bool(event_data["entity_id"] == entity_id)

    @callback
    def _record(event: Event[Any]) -> None:
        target = changed if event.event_type == EVENT_STATE_CHANGED else reported
        target.append(_state(hass, "grid_power"))

    hass.bus.async_listen(EVENT_STATE_CHANGED, _record, _ours)
    hass.bus.async_listen(EVENT_STATE_REPORTED, _record, _ours)

    # Unchanged values are not written at all.
    for i in range(5):
        coordinator.async_set_updated_data(snapshot_at(i, grid_power_w=100.0))
    await hass.async_block_till_done()
    assert (changed, reported) == ([], [])

    # A burst of changes: the first is written at once, the rest wait for the window.
    for i, watts in enumerate((200.0, 300.0, 400.0, 500.0)):
        coordinator.async_set_updated_data(snapshot_at(5 + i * 0.1, grid_power_w=watts))
    await hass.async_block_till_done()
    assert changed == ["200.0"]

    await let_a_second_pass(hass, freezer)
    assert changed == ["200.0", "500.0"]

    # A change that is undone inside the window is not written.
    coordinator.async_set_updated_data(snapshot_at(7, grid_power_w=600.0))
    coordinator.async_set_updated_data(snapshot_at(7.5, grid_power_w=500.0))
    await let_a_second_pass(hass, freezer)
    assert changed == ["200.0", "500.0"]
    assert reported == []


async def test_a_state_is_written_when_its_displayed_value_changes(
    hass: HomeAssistant, platforms: HandFedPlatforms, freezer: FrozenDateTimeFactory
) -> None:
    """Noise below the shown precision writes nothing; a shown change, at once.

    And a component sensor whose component hands out the same snapshot object
    again (nothing changed in the store) is not even re-rendered.
    """
    meter = fresh_component(HOUSE_METER, metrics={Metric.AC_POWER_ACTIVE: 800.0})
    _, coordinator = await platforms.setup(
        sensor, home_topology(), snapshot_at(components={HOUSE_METER: meter})
    )
    entity_id = entity_id_of(hass, f"{ENTRY_KEY}_{HOUSE_METER}_power", SENSOR)
    written: list[str] = []

    @callback
    def _ours(event_data: Mapping[str, Any]) -> bool:
        return bool(event_data["entity_id"] == entity_id)

    @callback
    def _record(event: Event[Any]) -> None:
        written.append(hass.states.get(entity_id).state)  # type: ignore[union-attr]

    hass.bus.async_listen(EVENT_STATE_CHANGED, _record, _ours)
    hass.bus.async_listen(EVENT_STATE_REPORTED, _record, _ours)
    await let_a_second_pass(hass, freezer)

    def push(seconds: float, watts: float | None = None) -> None:
        component = (
            meter
            if watts is None
            else fresh_component(HOUSE_METER, metrics={Metric.AC_POWER_ACTIVE: watts})
        )
        coordinator.async_set_updated_data(
            snapshot_at(seconds, components={HOUSE_METER: component})
        )

    push(0.5)  # the first update renders what was written when it was added
    await hass.async_block_till_done()
    # The same component object again: not rendered, not written.
    rendered = 0
    native_value = inspect.getattr_static(sensor.ComponentSensor, "native_value")
    assert isinstance(native_value, property)
    value_fn = native_value.fget
    assert value_fn is not None

    def counting(entity: sensor.ComponentSensor) -> Any:
        nonlocal rendered
        if entity.entity_id == entity_id:
            rendered += 1
        return value_fn(entity)

    with patch.object(sensor.ComponentSensor, "native_value", property(counting)):
        for i in range(3):
            push(1 + i)
            await hass.async_block_till_done()
        assert rendered == 0
        # An equal one (rebuilt after its values' freshness ran out): neither.
        push(4, 800.0)
        await hass.async_block_till_done()
        assert rendered == 0
        # Another value: rendered, but it shows the same (below).
        push(4.5, 800.2)
        await hass.async_block_till_done()
        assert rendered == 1
    assert written == []

    # Shown with 0 decimals (W): 800.3 W still shows 800 W.
    push(5, 800.3)
    await let_a_second_pass(hass, freezer)
    assert written == []
    # 800.6 W shows 801 W: written with the very update, not a second later.
    push(6, 800.6)
    await hass.async_block_till_done()
    assert written == ["800.6"]

    # The user shows two decimals: now a hundredth is a change.
    await let_a_second_pass(hass, freezer)
    er.async_get(hass).async_update_entity_options(
        entity_id, "sensor", {"display_precision": 2}
    )
    await hass.async_block_till_done()
    written.clear()
    await let_a_second_pass(hass, freezer)
    push(8, 800.61)
    await hass.async_block_till_done()
    assert written == ["800.61"]
    push(9, 800.614)
    await let_a_second_pass(hass, freezer)
    assert written == ["800.61"]


# --- Against the simulator over real gRPC -----------------------------------------

# The household meter has a 600 W base load, split 50/30/20 % over the phases.


async def _setup_sensors_only(
    hass: HomeAssistant, simulator: MicrogridSimulator, **options: Any
) -> MockConfigEntry:
    return await setup_entry(hass, simulator.url, options=options)


def _all_available(hass: HomeAssistant, entry: MockConfigEntry) -> bool:
    entries = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    states = [hass.states.get(e.entity_id) for e in entries if not e.disabled_by]
    return bool(states) and all(
        s is not None and s.state != STATE_UNAVAILABLE for s in states
    )


def _sim_state(hass: HomeAssistant, unique_suffix: str) -> State:
    return state_of(hass, f"{HOME_MICROGRID_ID}_{unique_suffix}", SENSOR)


def _sim_available(hass: HomeAssistant, unique_suffix: str) -> bool:
    return _sim_state(hass, unique_suffix).state != STATE_UNAVAILABLE


async def test_home_scenario_snapshot(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    entity_registry_enabled_by_default: None,
    snapshot: SnapshotAssertion,
) -> None:
    with patch("custom_components.frequenz_microgrid.PLATFORMS", [Platform.SENSOR]):
        entry = await _setup_sensors_only(hass, simulator)
        # Every entity was created enabled: after the reload that enabling causes,
        # the detail sensors' metrics are streamed too.
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        await wait_for(
            lambda: (
                _all_available(hass, entry)
                and _sim_available(hass, f"{HOUSEHOLD}_current_l3")
                # The EV pool's first distribution (0 W: no vehicle) is done.
                and _sim_state(hass, "ev_chargers_last_result").state == "success"
            ),
            what="every sensor to have a value",
        )
        await snapshot_platform(
            hass,
            er.async_get(hass),
            entity_snapshot(snapshot),
            entry.entry_id,
        )
        await hass.config_entries.async_unload(entry.entry_id)


async def test_pool_values_match_the_physics(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """Pool sensors against sums computed by hand from the simulated components."""
    entry = await _setup_sensors_only(hass, simulator)
    await wait_for(lambda: _all_available(hass, entry), what="pool values")
    model = simulator.model
    pv_w = model.component(5).active_power_w
    # Noon on a clear day: PV produces (negative, passive sign convention).
    assert pv_w < -1000.0

    def value(key: str) -> float:
        return float(_sim_state(hass, key).state)

    # Household base load from the scenario; nothing else consumes (no EV, idle
    # battery), so grid = household + PV.
    assert value("consumer_power") == pytest.approx(600.0)
    assert value("pv_power") == pytest.approx(pv_w, abs=1.0)
    assert value("pv_production_power") == pytest.approx(-pv_w, abs=1.0)
    assert value("producer_power") == pytest.approx(pv_w, abs=1.0)
    assert value("grid_power") == pytest.approx(600.0 + pv_w, abs=1.0)
    assert value(f"{HOUSEHOLD}_power") == pytest.approx(600.0)
    # Grid current L1: household 50 % of 600 W, PV a third of its power, at 230 V.
    assert value("grid_current_l1") == pytest.approx(
        (0.5 * 600.0 + pv_w / 3) / 230.0, abs=0.01
    )
    assert value("ev_power") == 0.0
    # Battery: SoC 50 % in a 10–90 % window → 50 % of the usable window;
    # usable capacity 10 kWh × 80 % = 8 kWh; ±5 kW inverter and battery limits.
    assert value("battery_soc") == pytest.approx(50.0)
    assert value("battery_usable_capacity") == pytest.approx(8.0)  # shown in kWh
    assert value("battery_inclusion_lower") == -5000.0
    assert value("battery_inclusion_upper") == 5000.0
    assert _sim_state(hass, "3_component_state").state == "ready"
    assert _sim_state(hass, "6_cable_state").state == "unplugged"


async def _enable_and_reload(
    hass: HomeAssistant, entry: MockConfigEntry, unique_suffixes: Iterable[str]
) -> None:
    """Enable these sensors as a user does; Home Assistant then reloads the entry."""
    registry = er.async_get(hass)
    runtime = entry.runtime_data
    for suffix in unique_suffixes:
        entity_id = _sim_entity_id(hass, suffix)
        registry.async_update_entity(entity_id, disabled_by=None)
    async_fire_time_changed(
        hass, dt_util.utcnow() + timedelta(seconds=RELOAD_AFTER_UPDATE_DELAY + 1)
    )
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is not runtime  # set up anew


def _sim_entity_id(hass: HomeAssistant, unique_suffix: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{HOME_MICROGRID_ID}_{unique_suffix}"
    )
    assert entity_id is not None, unique_suffix
    return entity_id


def _detail_metric_ids(simulator: MicrogridSimulator, component_id: int) -> set[int]:
    """The detail metrics any stream ever asked the simulator for."""
    details = {metric.value for metric in DETAIL_METRICS}
    return {int(m) for m in simulator.hub.requested_metrics[component_id] & details}


async def test_detail_metrics_are_streamed_only_while_a_sensor_wants_them(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """Disabled detail sensors exist at once; enabling one streams its metric."""
    entry = await _setup_sensors_only(hass, simulator)
    await wait_for(lambda: _all_available(hass, entry), what="the sensors")
    registry = er.async_get(hass)
    for suffix in (
        f"{HOUSEHOLD}_power_l1",
        f"{HOUSEHOLD}_voltage_l1",
        f"{HOUSEHOLD}_reactive_power",
        f"{HOUSEHOLD}_frequency",
        f"{SIM_BATTERY}_dc_voltage",
        f"{SIM_BATTERY}_dc_current",
        f"{PV_INVERTER}_dc_voltage",
    ):
        registry_entry = registry.async_get(_sim_entity_id(hass, suffix))
        assert registry_entry is not None
        assert registry_entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    # Nothing asks for a detail metric, but the inverters' reactive power: its
    # bounds validate reactive steering.
    reactive = {Metric.AC_POWER_REACTIVE.value}
    for component_id in (HOUSEHOLD, SIM_BATTERY):
        assert simulator.hub.requested_metrics[component_id]
        assert _detail_metric_ids(simulator, component_id) == set()
    for inverter in (PV_INVERTER, BATTERY_INVERTER):
        assert _detail_metric_ids(simulator, inverter) == reactive

    assert entry.runtime_data.engine.monitor.detail_metrics == {}
    await _enable_and_reload(hass, entry, [f"{SIM_BATTERY}_dc_voltage"])
    assert entry.runtime_data.engine.monitor.detail_metrics == {
        SIM_BATTERY: frozenset({Metric.DC_VOLTAGE})
    }
    await wait_for(
        lambda: (
            _sim_state(hass, f"{SIM_BATTERY}_dc_voltage").state
            == str(BATTERY_DC_VOLTAGE_V)
        ),
        what="the battery's DC voltage",
    )
    dc_voltage = {Metric.DC_VOLTAGE.value}
    assert _detail_metric_ids(simulator, SIM_BATTERY) == dc_voltage
    assert simulator.hub.streamed_metrics(SIM_BATTERY) & dc_voltage == dc_voltage
    # Only that component's stream asks for it: not the battery inverter's.
    assert _detail_metric_ids(simulator, BATTERY_INVERTER) == reactive
    assert _detail_metric_ids(simulator, HOUSEHOLD) == set()
    await hass.config_entries.async_unload(entry.entry_id)


async def test_detail_telemetry_arrives(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """Phase powers and voltages, reactive power, frequency and DC values arrive."""
    entry = await _setup_sensors_only(hass, simulator)
    wanted = (
        f"{HOUSEHOLD}_power_l1",
        f"{HOUSEHOLD}_power_l2",
        f"{HOUSEHOLD}_power_l3",
        f"{HOUSEHOLD}_voltage_l1",
        f"{HOUSEHOLD}_voltage_l2",
        f"{HOUSEHOLD}_voltage_l3",
        f"{HOUSEHOLD}_reactive_power",
        f"{PV_INVERTER}_reactive_power",
        f"{BATTERY_INVERTER}_frequency",
        f"{PV_INVERTER}_inverter_temperature",
        f"{SIM_BATTERY}_dc_voltage",
        f"{SIM_BATTERY}_dc_current",
        f"{BATTERY_INVERTER}_dc_voltage",
        f"{BATTERY_INVERTER}_dc_current",
        f"{PV_INVERTER}_dc_voltage",
        f"{PV_INVERTER}_dc_current",
    )
    await _enable_and_reload(hass, entry, wanted)
    await wait_for(
        lambda: all(
            (state := state_or_none(hass, f"{HOME_MICROGRID_ID}_{key}", SENSOR))
            is not None
            and state.state != STATE_UNAVAILABLE
            for key in wanted
        ),
        what="the detail sensors",
    )

    def value(key: str) -> float:
        return float(_sim_state(hass, key).state)

    # The household's 600 W base load is split 50/30/20 % over the phases.
    assert value(f"{HOUSEHOLD}_power_l1") == pytest.approx(300.0)
    assert value(f"{HOUSEHOLD}_power_l2") == pytest.approx(180.0)
    assert value(f"{HOUSEHOLD}_power_l3") == pytest.approx(120.0)
    for phase in (1, 2, 3):
        assert value(f"{HOUSEHOLD}_voltage_l{phase}") == NOMINAL_VOLTAGE_V
    # The household's load has a power factor of 0.95 (inductive).
    assert value(f"{HOUSEHOLD}_reactive_power") == pytest.approx(
        600.0 * LOAD_REACTIVE_RATIO
    )
    assert value(f"{HOUSEHOLD}_reactive_power") == pytest.approx(197.2, abs=0.1)
    pv = simulator.model.component(PV_INVERTER)
    assert value(f"{PV_INVERTER}_reactive_power") == pytest.approx(
        pv.reactive_power_w, abs=1.0
    )
    assert value(f"{BATTERY_INVERTER}_frequency") == NOMINAL_FREQUENCY_HZ
    # Producing at noon, the PV inverter's heat sink is above the ambient 25 °C.
    assert value(f"{PV_INVERTER}_inverter_temperature") == pytest.approx(
        inverter_temperature_c(pv), abs=0.5
    )
    assert value(f"{PV_INVERTER}_inverter_temperature") > 25.0
    assert value(f"{SIM_BATTERY}_dc_voltage") == BATTERY_DC_VOLTAGE_V
    battery = simulator.model.component(SIM_BATTERY).battery
    assert battery is not None
    assert value(f"{SIM_BATTERY}_dc_current") == pytest.approx(
        battery.dc_power_w / BATTERY_DC_VOLTAGE_V, abs=0.1
    )
    # Inverters: the battery inverter's DC side is its battery's, PV its strings'.
    assert value(f"{BATTERY_INVERTER}_dc_voltage") == BATTERY_DC_VOLTAGE_V
    assert value(f"{BATTERY_INVERTER}_dc_current") == pytest.approx(
        battery.dc_power_w / BATTERY_DC_VOLTAGE_V, abs=0.1
    )
    assert value(f"{PV_INVERTER}_dc_voltage") == PV_DC_VOLTAGE_V
    assert value(f"{PV_INVERTER}_dc_current") == pytest.approx(
        pv.active_power_w / PV_DC_VOLTAGE_V, abs=0.1
    )
    assert value(f"{PV_INVERTER}_dc_current") < 0  # producing
    await hass.config_entries.async_unload(entry.entry_id)


async def test_stale_component_goes_unavailable_and_recovers(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await _setup_sensors_only(hass, simulator, **{CONF_FRESHNESS_S: 2.0})
    await wait_for(lambda: _all_available(hass, entry), what="first values")

    simulator.inject_fault(HOUSEHOLD, Fault.STOP_DATA)
    await wait_for(
        lambda: not _sim_available(hass, f"{HOUSEHOLD}_power"),
        what="the silent meter to go unavailable",
    )
    # The rest of the microgrid still reports.
    assert _sim_available(hass, "pv_power")

    simulator.clear_fault(HOUSEHOLD)
    await wait_for(
        lambda: _sim_available(hass, f"{HOUSEHOLD}_power"),
        what="the meter to recover",
    )
    assert float(_sim_state(hass, f"{HOUSEHOLD}_power").state) == pytest.approx(600.0)

    # The whole microgrid goes away: everything based on telemetry is unavailable...
    port = simulator.port
    await simulator.stop()
    # Each stream's last sample ages on its own: the pools go within a sample
    # period of each other.
    await wait_for(
        lambda: (
            not _sim_available(hass, "grid_power")
            and not _sim_available(hass, "battery_soc")
        ),
        what="the pools to go unavailable",
    )
    # ...and comes back without a reload.
    await simulator.start(host="127.0.0.1", port=port)
    await wait_for(
        lambda: _sim_available(hass, "grid_power"), what="the pools to recover"
    )
    assert entry.state is ConfigEntryState.LOADED


@pytest.mark.parametrize(
    ("large_above", "components_enabled"), [(2, False), (100, True)]
)
async def test_a_large_sites_component_entities_start_disabled(
    hass: HomeAssistant,
    platforms: HandFedPlatforms,
    large_above: int,
    components_enabled: bool,
) -> None:
    """Above the size, components' entities start disabled; the hub's do not.

    Home Assistant would otherwise drop every enabled entity past 10,000 per
    entry, whichever came last.
    """
    registry = er.async_get(hass)
    meter = fresh_component(HOUSE_METER, metrics={Metric.AC_POWER_ACTIVE: 800.0})
    with patch.object(entity_module, "LARGE_SITE_COMPONENTS", large_above):
        assert entity_module.is_large_site(home_topology()) is not components_enabled
        await platforms.setup(
            sensor, home_topology(), snapshot_at(components={HOUSE_METER: meter})
        )

    def disabled(unique_suffix: str) -> bool:
        entity_id = registry.async_get_entity_id(
            "sensor", DOMAIN, f"{ENTRY_KEY}_{unique_suffix}"
        )
        assert entity_id is not None
        registry_entry = registry.async_get(entity_id)
        assert registry_entry is not None
        return registry_entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION

    assert disabled(f"{HOUSE_METER}_power") is not components_enabled
    assert disabled(f"{BATTERY}_soc") is not components_enabled
    assert not disabled("grid_power")
    assert state_or_none(hass, f"{ENTRY_KEY}_grid_power", SENSOR) is not None
    meter_power = state_or_none(hass, f"{ENTRY_KEY}_{HOUSE_METER}_power", SENSOR)
    assert (meter_power is not None) is components_enabled
    if meter_power is not None:
        assert meter_power.state == "800.0"
