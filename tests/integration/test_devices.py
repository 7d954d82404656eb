"""Devices: the microgrid hub, one device per component, and stale-device cleanup."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.frequenz_microgrid import sensor
from custom_components.frequenz_microgrid.const import DOMAIN

from .conftest import HOME_MICROGRID_ID
from .microgrid_factory import (
    BAT_INV,
    BATTERY,
    ENTRY_KEY,
    EV_CHARGER,
    GRID,
    GRID_METER,
    HOME_WIRING,
    HandFedPlatforms,
    home_components,
    home_topology,
    snapshot_at,
)


def _device(hass: HomeAssistant, entry_id: str, identifier: str) -> dr.DeviceEntry:
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, identifier), entry_id
    )
    assert device is not None, identifier
    return device


async def test_hub_and_component_devices(
    hass: HomeAssistant, platforms: HandFedPlatforms
) -> None:
    entry, _ = await platforms.setup(sensor, home_topology(), snapshot_at())
    hub = _device(hass, entry.entry_id, ENTRY_KEY)
    assert (hub.name, hub.manufacturer, hub.model) == ("Home", "Frequenz", "Microgrid")
    assert hub.serial_number == ENTRY_KEY  # the microgrid id
    assert hub.via_device_id is None

    inverter = _device(hass, entry.entry_id, f"{ENTRY_KEY}_{BAT_INV}")
    assert (inverter.manufacturer, inverter.model) == ("Acme", "BI-5000")
    assert inverter.via_device_id == hub.id
    # Unnamed components are named from their category and id (translated).
    assert inverter.name == f"Inverter {BAT_INV}"
    assert (
        _device(hass, entry.entry_id, f"{ENTRY_KEY}_{BATTERY}").name
        == f"Battery {BATTERY}"
    )
    assert (
        _device(hass, entry.entry_id, f"{ENTRY_KEY}_{GRID_METER}").name == "Grid meter"
    )

    # The grid connection point sends no telemetry: no device of its own.
    registry = dr.async_get(hass)
    assert (
        registry.async_get_device_by_identifier(
            (DOMAIN, f"{ENTRY_KEY}_{GRID}"), entry.entry_id
        )
        is None
    )
    devices = dr.async_entries_for_config_entry(registry, entry.entry_id)
    # Hub, every component but the grid point, and the grid circuit (issue 15).
    assert len(devices) == 1 + len(home_components()) - 1 + 1
    circuit = _device(hass, entry.entry_id, f"{ENTRY_KEY}_circuit_grid")
    assert circuit.via_device_id == _device(hass, entry.entry_id, ENTRY_KEY).id


async def test_components_that_vanish_are_removed(
    hass: HomeAssistant, platforms: HandFedPlatforms
) -> None:
    entry, _ = await platforms.setup(sensor, home_topology(), snapshot_at())
    assert _device(hass, entry.entry_id, f"{ENTRY_KEY}_{EV_CHARGER}")
    await platforms.close()

    # The EV charger was removed from the site; set up again with the new topology.
    without_ev = home_topology(
        [c for c in home_components() if int(c.id) != EV_CHARGER],
        [(a, b) for a, b in HOME_WIRING if b != EV_CHARGER],
    )
    await platforms.setup(sensor, without_ev, snapshot_at(), entry=entry)
    registry = dr.async_get(hass)
    gone = registry.async_get_device_by_identifier(
        (DOMAIN, f"{ENTRY_KEY}_{EV_CHARGER}"), entry.entry_id
    )
    assert gone is None
    assert _device(hass, entry.entry_id, ENTRY_KEY)  # the hub stays
    assert _device(hass, entry.entry_id, f"{ENTRY_KEY}_{BATTERY}")


async def test_devices_of_the_simulated_home(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    """Manufacturer and model come from the API; components hang off the hub."""
    hub_key = str(HOME_MICROGRID_ID)
    entry_id = setup_integration.entry_id
    hub = _device(hass, entry_id, hub_key)
    assert hub.serial_number == hub_key
    inverter = _device(hass, entry_id, f"{hub_key}_3")
    assert (inverter.name, inverter.manufacturer, inverter.model) == (
        "Battery inverter",
        "SMA",
        "Sunny Island 5.0",
    )
    assert inverter.via_device_id == hub.id
    devices = dr.async_entries_for_config_entry(
        dr.async_get(hass), setup_integration.entry_id
    )
    # Hub + meters, inverters, battery and chargers (the grid point has no device)
    # + the grid connection's circuit.
    assert len(devices) == 1 + 7 + 1
