"""Components connected or disconnected while the entry runs (issue 17 §2).

Against the simulator over real gRPC: one topology refresh gives new components
their devices and entities and puts them in the pools; a component that is
disconnected loses its device and entities, leaves the pools and is never sent
a setpoint again; an unchanged topology changes no entity and no device.
"""

from __future__ import annotations

from dataclasses import replace
import time
from typing import Any

from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest

from custom_components.frequenz_microgrid.const import CONF_FRESHNESS_S, DOMAIN
from custom_components.frequenz_microgrid.engine.control import Pool
from custom_components.frequenz_microgrid.engine.monitor import DETAIL_METRICS
from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    load_scenario,
)
from custom_components.frequenz_microgrid.simulator.scenario import (
    Kind,
    generated_component,
)
from custom_components.frequenz_microgrid.topology_refresh import (
    TOPOLOGY_REFRESH_INTERVAL,
)
from tests.observations import held_setpoint

from .conftest import (
    HOME_MICROGRID_ID,
    find_entity_id,
    serving,
    setup_entry,
    state_or_none,
    wait_for,
)

KEY = str(HOME_MICROGRID_ID)
_DETAIL_METRIC_IDS = {metric.value for metric in DETAIL_METRICS}
GRID_METER = 2
HOME_INVERTER = 3
NEW_INVERTER = 20
NEW_BATTERY = 21
NEW_CHARGER = 22


def _device(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, cid: int
) -> dr.DeviceEntry | None:
    return dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, f"{KEY}_{cid}"), entry.entry_id
    )


def _number(hass: HomeAssistant, unique_id: str) -> float | None:
    state = state_or_none(hass, unique_id)
    if state is None or state.state in ("unknown", "unavailable"):
        return None
    return float(state.state)


def _connect(sim: MicrogridSimulator) -> None:
    sim.add_component(
        generated_component(NEW_INVERTER, Kind.BATTERY_INVERTER, GRID_METER)
    )
    sim.add_component(generated_component(NEW_BATTERY, Kind.BATTERY, NEW_INVERTER))
    sim.add_component(generated_component(NEW_CHARGER, Kind.EV_CHARGER, GRID_METER))


def test_the_refresh_interval_is_a_few_minutes() -> None:
    assert TOPOLOGY_REFRESH_INTERVAL.total_seconds() == 300


async def test_components_come_and_go_without_a_reload(hass: HomeAssistant) -> None:
    async with serving(
        hass, load_scenario("home"), speed=10.0, sample_period_s=0.1
    ) as sim:
        entry = await setup_entry(hass, sim.url)
        runtime = entry.runtime_data
        assert runtime.topology_refresh is not None
        capacity = f"{KEY}_battery_usable_capacity"
        await wait_for(lambda: _number(hass, capacity) is not None, what="capacity")
        before = _number(hass, capacity)
        assert before is not None
        assert _device(hass, entry, NEW_CHARGER) is None

        _connect(sim)
        change = await runtime.topology_refresh.async_refresh()
        await hass.async_block_till_done()

        assert change is not None
        assert change.added == {NEW_INVERTER, NEW_BATTERY, NEW_CHARGER}
        # Devices and entities appear; the pools include them.
        await wait_for(
            lambda: _number(hass, f"{KEY}_{NEW_BATTERY}_soc") is not None,
            what="the new battery's SoC sensor",
        )
        await wait_for(
            lambda: _number(hass, f"{KEY}_{NEW_CHARGER}_power") is not None,
            what="the new charger's power sensor",
        )
        await wait_for(
            lambda: (_number(hass, capacity) or 0.0) > before, what="pool capacity"
        )
        for cid in (NEW_INVERTER, NEW_BATTERY, NEW_CHARGER):
            device = _device(hass, entry, cid)
            assert device is not None
            assert device.via_device_id == _device_hub(hass, entry).id
        assert (
            find_entity_id(hass, f"{KEY}_{NEW_CHARGER}_charger_mode", ("select",))
            is not None
        )
        # Their detail sensors are new, hence disabled: nothing more is streamed.
        registry = er.async_get(hass)
        for cid, key in ((NEW_BATTERY, "dc_voltage"), (NEW_CHARGER, "frequency")):
            detail = find_entity_id(hass, f"{KEY}_{cid}_{key}")
            assert detail is not None
            detail_entry = registry.async_get(detail)
            assert detail_entry is not None
            assert detail_entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
            assert sim.hub.requested_metrics[cid]
            assert not sim.hub.requested_metrics[cid] & _DETAIL_METRIC_IDS
        assert runtime.sessions is not None
        assert NEW_CHARGER in runtime.sessions.tracker.charger_ids
        assert runtime.engine.controller.pool_components(Pool.BATTERIES) == {
            4,
            NEW_BATTERY,
        }

        # Steer both batteries, then disconnect the new pair.
        await runtime.engine.controller.propose(
            Pool.BATTERIES, source_id="test", priority=1, power=3000.0
        )
        await wait_for(
            lambda: held_setpoint(sim, NEW_INVERTER) is not None, what="split"
        )
        soc_entity = find_entity_id(hass, f"{KEY}_{NEW_BATTERY}_soc")
        assert soc_entity is not None

        sim.remove_component(NEW_INVERTER)
        change = await runtime.topology_refresh.async_refresh()
        await hass.async_block_till_done()
        sent = sim.control.requests_by_component[NEW_INVERTER]

        assert change is not None
        assert change.removed == {NEW_INVERTER, NEW_BATTERY}
        assert _device(hass, entry, NEW_INVERTER) is None
        assert _device(hass, entry, NEW_BATTERY) is None
        assert _device(hass, entry, NEW_CHARGER) is not None
        assert er.async_get(hass).async_get(soc_entity) is None
        assert hass.states.get(soc_entity) is None
        await wait_for(
            lambda: held_setpoint(sim, HOME_INVERTER) == 3000.0, what="re-split"
        )
        await wait_for(lambda: _number(hass, capacity) == before, what="capacity back")
        deadline = time.monotonic() + 1.0
        await wait_for(lambda: time.monotonic() > deadline)
        assert sim.control.requests_by_component[NEW_INVERTER] == sent
        assert sim.unsafe_setpoint_count == 0


def _device_hub(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry
) -> dr.DeviceEntry:
    hub = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, KEY), entry.entry_id
    )
    assert hub is not None
    return hub


def _entities(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry
) -> set[tuple[str, str]]:
    registry = er.async_get(hass)
    return {
        (e.entity_id, e.unique_id)
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
    }


async def test_an_unchanged_topology_changes_no_entity(hass: HomeAssistant) -> None:
    async with serving(
        hass, load_scenario("home"), speed=10.0, sample_period_s=0.1
    ) as sim:
        entry = await setup_entry(hass, sim.url)
        runtime = entry.runtime_data
        assert runtime.topology_refresh is not None
        registry_events: list[str] = []

        @callback
        def _record(event: Event[Any]) -> None:
            registry_events.append(str(event.event_type))

        entities_before = _entities(hass, entry)
        unsubscribe = [
            hass.bus.async_listen(er.EVENT_ENTITY_REGISTRY_UPDATED, _record),
            hass.bus.async_listen(dr.EVENT_DEVICE_REGISTRY_UPDATED, _record),
        ]
        engine_topology = runtime.engine.topology
        try:
            change = await runtime.topology_refresh.async_refresh()
            await hass.async_block_till_done()
        finally:
            for remove in unsubscribe:
                remove()

        assert change is not None
        assert not change
        assert runtime.engine.topology is engine_topology
        assert registry_events == []
        assert _entities(hass, entry) == entities_before


async def test_a_reconnect_rereads_the_topology(hass: HomeAssistant) -> None:
    async with serving(
        hass, load_scenario("home"), speed=10.0, sample_period_s=0.1
    ) as sim:
        # The shortest freshness window: the outage shows after 2 s.
        entry = await setup_entry(hass, sim.url, options={CONF_FRESHNESS_S: 2.0})
        await sim.stop()
        _connect(sim)
        await wait_for(
            lambda: not entry.runtime_data.engine.monitor.reachable, what="outage"
        )
        await sim.restart()
        await wait_for(
            lambda: (
                _device(hass, entry, NEW_CHARGER) is not None
                or find_entity_id(
                    hass, f"{KEY}_{NEW_CHARGER}_charger_mode", ("select",)
                )
                is not None
            ),
            what="the new charger after the reconnect",
        )


async def test_a_wiring_that_is_no_microgrid_is_not_followed(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(
        hass, load_scenario("home"), speed=10.0, sample_period_s=0.1
    ) as sim:
        entry = await setup_entry(hass, sim.url)
        runtime = entry.runtime_data
        assert runtime.topology_refresh is not None
        topology = runtime.engine.topology
        # A battery straight behind a meter, without an inverter.
        sim.add_component(generated_component(30, Kind.BATTERY, GRID_METER))

        assert await runtime.topology_refresh.async_refresh() is None

        assert runtime.engine.topology is topology
        assert _device(hass, entry, 30) is None
        assert "is not a valid microgrid" in caplog.text


async def test_a_component_described_anew_updates_its_device(
    hass: HomeAssistant,
) -> None:
    household = 8
    async with serving(
        hass, load_scenario("home"), speed=10.0, sample_period_s=0.1
    ) as sim:
        entry = await setup_entry(hass, sim.url)
        runtime = entry.runtime_data
        assert runtime.topology_refresh is not None
        device = _device(hass, entry, household)
        assert device is not None
        assert device.name == "Household"
        spec = sim.scenario.component(household)
        sim.remove_component(household)
        sim.add_component(replace(spec, name="Kitchen"))

        change = await runtime.topology_refresh.async_refresh()

        assert change is not None
        assert change.updated == {household}
        assert not change.added
        assert not change.removed
        renamed = _device(hass, entry, household)
        assert renamed is not None
        assert renamed.id == device.id
        assert renamed.name == "Kitchen"


FEEDER = 30
FEEDER_CHARGER = 31
FEEDER_FUSE_A = 8  # its share (5.5 kW) is below the charger's 9.2 kW
PV_INVERTER = 5
GARAGE_CHARGER = 6


def _circuit_device(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, circuit_id: str
) -> dr.DeviceEntry | None:
    return dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, f"{KEY}_circuit_{circuit_id}"), entry.entry_id
    )


async def test_a_new_feeder_is_a_circuit_and_its_charger_bookable(
    hass: HomeAssistant,
) -> None:
    """A new rated meter with a charger: circuit device, entities and bookings.

    The booking of a charger that is then disconnected goes with it, as do the
    feeder's circuit device and entities when the feeder is disconnected.
    """
    async with serving(
        hass, load_scenario("home"), speed=10.0, sample_period_s=0.1
    ) as sim:
        entry = await setup_entry(hass, sim.url)
        runtime = entry.runtime_data
        assert runtime.topology_refresh is not None
        hub = runtime.reservations
        assert hub is not None
        circuit = f"meter_{FEEDER}"
        assert _circuit_device(hass, entry, circuit) is None
        now = time.time()
        garage_booking = hub.book.reserve(GARAGE_CHARGER, now + 3600, now + 7200)

        sim.add_component(
            replace(
                generated_component(FEEDER, Kind.METER, GRID_METER),
                fuse_current_a=FEEDER_FUSE_A,
            )
        )
        sim.add_component(generated_component(FEEDER_CHARGER, Kind.EV_CHARGER, FEEDER))
        change = await runtime.topology_refresh.async_refresh()
        await hass.async_block_till_done()
        assert change is not None
        assert change.added == {FEEDER, FEEDER_CHARGER}

        # The circuit: the controller enforces it, it has a device and entities.
        assert circuit in runtime.engine.controller.circuit_limits.tree.ids
        device = _circuit_device(hass, entry, circuit)
        assert device is not None
        limit_in_force = find_entity_id(hass, f"{KEY}_circuit_{circuit}_limit_in_force")
        exceeded = find_entity_id(hass, f"{KEY}_circuit_{circuit}_limit_exceeded")
        assert limit_in_force is not None
        assert exceeded is not None
        registry = er.async_get(hass)
        for entity_id in (limit_in_force, exceeded):
            registered = registry.async_get(entity_id)
            assert registered is not None
            assert registered.device_id == device.id
        # The new charger is bookable, its share is the feeder's fuse, it has
        # its reservation, target and plan entities, and its own name.
        assert FEEDER_CHARGER in hub.book.charger_ids
        share = hub.book.capacities[FEEDER_CHARGER].guaranteed_power_w
        assert share == pytest.approx(FEEDER_FUSE_A * 3 * 230.0)
        booking = hub.book.reserve(
            FEEDER_CHARGER, now + 3600, now + 7200, energy_kwh=5.0
        )
        assert booking.charger_id == FEEDER_CHARGER
        # The charging plan plans for it.
        assert runtime.planner is not None
        (need,) = [
            n for n in runtime.planner.needs(now) if n.charger_id == FEEDER_CHARGER
        ]
        assert need.energy_wh == pytest.approx(5000.0)
        assert need.max_current_a > 0.0
        assert hub.charger_name(FEEDER_CHARGER) == f"ev_charger {FEEDER_CHARGER}"
        for key in ("reserved", "charging_target", "target_at_risk"):
            assert find_entity_id(hass, f"{KEY}_{FEEDER_CHARGER}_{key}") is not None, (
                key
            )

        # The garage charger and the feeder leave: their bookings and circuit go.
        sim.remove_component(GARAGE_CHARGER)
        sim.remove_component(FEEDER)
        change = await runtime.topology_refresh.async_refresh()
        await hass.async_block_till_done()
        assert change is not None
        assert change.removed == {GARAGE_CHARGER, FEEDER, FEEDER_CHARGER}
        assert hub.book.get(garage_booking.reservation_id) is None
        assert hub.book.get(booking.reservation_id) is None
        assert GARAGE_CHARGER not in hub.book.charger_ids
        assert [r.reason.value for r in hub.book.history] == [
            "charger_gone",
            "charger_gone",
        ]
        assert circuit not in runtime.engine.controller.circuit_limits.tree.ids
        assert _circuit_device(hass, entry, circuit) is None
        assert registry.async_get(limit_in_force) is None
        assert registry.async_get(exceeded) is None
        assert hass.states.get(limit_in_force) is None


async def test_a_pool_without_components_loses_its_entities(
    hass: HomeAssistant,
) -> None:
    """The last PV inverter leaves: the PV pool's entities are removed, no others.

    Connected again, the pool's entities come back.
    """
    async with serving(
        hass, load_scenario("home"), speed=10.0, sample_period_s=0.1
    ) as sim:
        entry = await setup_entry(hass, sim.url)
        runtime = entry.runtime_data
        assert runtime.topology_refresh is not None
        pv_entities = {
            f"{KEY}_pv_power": ("sensor",),
            f"{KEY}_pv_limit": ("number",),
            f"{KEY}_pv_release": ("button",),
        }
        kept = [f"{KEY}_grid_power", f"{KEY}_batteries_setpoint"]
        entity_ids = {
            unique_id: find_entity_id(hass, unique_id, domains)
            for unique_id, domains in pv_entities.items()
        }
        assert None not in entity_ids.values()
        kept_ids = [find_entity_id(hass, unique_id) for unique_id in kept]
        assert None not in kept_ids
        unique_ids = {
            registered.entity_id: registered.unique_id
            for registered in er.async_entries_for_config_entry(
                er.async_get(hass), entry.entry_id
            )
        }
        registry_events: list[tuple[str, str]] = []

        @callback
        def _record(event: Event[Any]) -> None:
            registry_events.append((event.data["action"], event.data["entity_id"]))

        unsubscribe = hass.bus.async_listen(er.EVENT_ENTITY_REGISTRY_UPDATED, _record)
        try:
            sim.remove_component(PV_INVERTER)
            change = await runtime.topology_refresh.async_refresh()
            await hass.async_block_till_done()
        finally:
            unsubscribe()
        assert change is not None
        assert change.removed == {PV_INVERTER}

        for entity_id in entity_ids.values():
            assert entity_id is not None
            assert er.async_get(hass).async_get(entity_id) is None
            assert hass.states.get(entity_id) is None
            assert ("remove", entity_id) in registry_events
        for entity_id in kept_ids:
            assert entity_id is not None
            assert er.async_get(hass).async_get(entity_id) is not None
        # Only the PV inverter's own entities and the PV pool's went.
        removed = {
            unique_ids[entity_id]
            for action, entity_id in registry_events
            if action == "remove"
        }
        assert removed
        assert {
            unique_id
            for unique_id in removed
            if not unique_id.startswith((f"{KEY}_{PV_INVERTER}_", f"{KEY}_pv_"))
        } == set()
        assert not [event for event in registry_events if event[0] == "create"]

        sim.add_component(
            generated_component(PV_INVERTER, Kind.PV_INVERTER, GRID_METER)
        )
        change = await runtime.topology_refresh.async_refresh()
        await hass.async_block_till_done()
        assert change is not None
        assert change.added == {PV_INVERTER}
        for unique_id, domains in pv_entities.items():
            assert find_entity_id(hass, unique_id, domains) is not None, unique_id
