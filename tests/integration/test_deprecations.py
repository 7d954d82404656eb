"""Nothing this integration does is reported as deprecated by Home Assistant.

Every integration test fails on such a report (the autouse `no_deprecated_calls`
fixture); this module walks one entry through its whole life on purpose — set-up
with every platform, steering through an action and the entities, unload — and
shows that the watch really catches a report.
"""

from __future__ import annotations

import logging

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, frame
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.frequenz_microgrid.const import DOMAIN
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator

from .deprecation_watch import FRAME_LOGGER, DeprecationWatch
from .steering_helpers import (
    BATTERY,
    BATTERY_INVERTER,
    call_action,
    press,
    propose,
    set_number,
    setup_steerable,
    wait_for_setpoint,
)


async def test_a_whole_entry_life_calls_nothing_deprecated(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    no_deprecated_calls: DeprecationWatch,
) -> None:
    entry = await setup_steerable(hass, simulator, BATTERY)

    # Component devices hang off the hub by its device id (`via_device_id`).
    registry = dr.async_get(hass)
    hub = registry.async_get_device_by_identifier(
        (DOMAIN, str(entry.unique_id)), entry.entry_id
    )
    assert hub is not None
    components = [
        device
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if device.id != hub.id
    ]
    assert components
    assert all(device.via_device_id == hub.id for device in components)

    await set_number(hass, entry, "batteries_setpoint", -500.0)
    await wait_for_setpoint(simulator, BATTERY_INVERTER, -500.0)
    await press(hass, entry, "batteries_release")
    response = await call_action(
        hass, "propose_power", propose(entry, "batteries", power=1000.0)
    )
    assert response["target_power"] == 1000.0
    await wait_for_setpoint(simulator, BATTERY_INVERTER, 1000.0)

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert no_deprecated_calls.reports == []


async def test_the_watch_catches_a_report_about_this_integration(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    no_deprecated_calls: DeprecationWatch,
) -> None:
    frame.report_usage(
        "calls a helper that a test pretends is deprecated",
        breaks_in_ha_version="2099.1.0",
        integration_domain=DOMAIN,
    )
    logging.getLogger(FRAME_LOGGER).warning(
        "Detected that custom integration 'another' calls something deprecated"
    )
    assert len(no_deprecated_calls.reports) == 1
    assert "pretends is deprecated" in no_deprecated_calls.reports[0]
    no_deprecated_calls.reports.clear()  # expected here: don't fail this test
