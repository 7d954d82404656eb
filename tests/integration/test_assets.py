"""An entry with the Assets API, against the simulator's Assets API over real gRPC.

Devices take their names, makers and models from the inventory; components outside
their operational lifetime are shown as such and never steered; an Assets API
outage raises a repair issue while telemetry goes on, and recovery clears it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
import json
from typing import Any
from unittest.mock import patch

from frequenz.client.assets import Location
from homeassistant.components.diagnostics import REDACTED
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.frequenz_microgrid.assets import AssetsInventory, timezone_of
from custom_components.frequenz_microgrid.assets_sync import assets_issue_id
from custom_components.frequenz_microgrid.const import (
    CONF_API_KEY,
    CONF_ASSETS_API_KEY,
    CONF_ASSETS_SIGNING_SECRET,
    CONF_ASSETS_URL,
    CONF_DEMO,
    CONF_SCENARIO,
    CONF_SIGNING_SECRET,
    DOMAIN,
)
from custom_components.frequenz_microgrid.diagnostics import _safe_url
from custom_components.frequenz_microgrid.engine.health import OUT_OF_SERVICE
from custom_components.frequenz_microgrid.runtime import (
    FrequenzMicrogridConfigEntry,
)
from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    load_scenario,
)
from custom_components.frequenz_microgrid.simulator.assets import (
    ComponentAssets,
    MicrogridAssets,
)
from tests.observations import setpoints_to

from .auth_gateway import AuthGateway
from .conftest import API_KEY, serving, setup_entry, state_of, wait_for
from .steering_helpers import call_action, propose

NOW = datetime.now(UTC)
SITE_ASSETS = MicrogridAssets(
    name="Garage site",
    enterprise_id=42,
    components={
        4: ComponentAssets(  # the home battery, decommissioned yesterday
            operational_start=NOW - timedelta(days=700),
            operational_end=NOW - timedelta(days=1),
        ),
        6: ComponentAssets(name="Wallbox east", manufacturer="ABL", model="eMH3"),
        7: ComponentAssets(operational_start=NOW + timedelta(days=30)),  # not yet
    },
)
"""The inventory of the `home` site: renamed hub and charger, lifetimes."""


@pytest.fixture
async def site(hass: HomeAssistant) -> AsyncIterator[MicrogridSimulator]:
    """The `home` scenario, with the inventory above in its Assets API."""
    scenario = replace(load_scenario("home"), assets=SITE_ASSETS)
    async with serving(hass, scenario, speed=60.0, sample_period_s=0.1) as sim:
        yield sim


async def _setup(
    hass: HomeAssistant, sim: MicrogridSimulator
) -> FrequenzMicrogridConfigEntry:
    return await setup_entry(hass, sim.url, options={CONF_ASSETS_URL: sim.assets_url})


def _inventory_of(entry: FrequenzMicrogridConfigEntry) -> AssetsInventory | None:
    """The entry's latest inventory (the entry must have an Assets API)."""
    assets = entry.runtime_data.assets
    assert assets is not None
    return assets.inventory


def _device(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, suffix: str
) -> dr.DeviceEntry:
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, f"{entry.unique_id}{suffix}"), entry.entry_id
    )
    assert device is not None
    return device


async def test_devices_take_names_makers_and_models_from_the_inventory(
    hass: HomeAssistant, site: MicrogridSimulator
) -> None:
    entry = await _setup(hass, site)

    hub = _device(hass, entry, "")
    assert hub.name == "Garage site", "not the Microgrid API's 'Simulated home'"
    charger = _device(hass, entry, "_6")
    assert (charger.name, charger.manufacturer, charger.model) == (
        "Wallbox east",
        "ABL",
        "eMH3",
    )
    # Without a record of its own, a component keeps what both APIs say.
    spec = site.scenario.component(5)
    inverter = _device(hass, entry, "_5")
    assert (inverter.name, inverter.manufacturer, inverter.model) == (
        spec.name,
        spec.manufacturer,
        spec.model,
    )
    assert state_of(hass, f"{entry.unique_id}_microgrid_status").state == "active"


async def test_components_outside_their_lifetime_are_shown_and_never_steered(
    hass: HomeAssistant, site: MicrogridSimulator
) -> None:
    entry = await _setup(hass, site)
    uid = entry.unique_id
    assert state_of(hass, f"{uid}_4_lifetime_state").state == "retired"
    assert state_of(hass, f"{uid}_7_lifetime_state").state == "not_yet_operational"
    assert state_of(hass, f"{uid}_6_lifetime_state").state == "operational"
    controller = entry.runtime_data.engine.controller
    statuses = {s.component_id: s for s in controller.status().components}
    for out in (4, 7):
        assert statuses[out].out_of_service
        assert statuses[out].excluded
        assert statuses[out].problem == OUT_OF_SERVICE
    assert not statuses[6].out_of_service
    await wait_for(
        lambda: state_of(hass, f"{uid}_6_excluded").state == "off",
        what="charger 6 steerable",
    )
    excluded = state_of(hass, f"{uid}_4_excluded")
    assert excluded.state == "on"
    assert excluded.attributes["reason"] == OUT_OF_SERVICE

    # The only battery is out of service: a battery request reaches nobody.
    response = await call_action(
        hass, "propose_power", propose(entry, "batteries", power=3000)
    )
    assert response["result"]["kind"] != "success", response
    # EVs at both chargers: only the one in operation is sent power.
    site.plug_ev(6)
    site.plug_ev(7)
    await wait_for(
        lambda: any(p > 0 for p in setpoints_to(site, 6)), what="charger 6 charging"
    )
    await call_action(hass, "propose_power", propose(entry, "ev_chargers", power=8000))
    assert setpoints_to(site, 3) == [], "the retired battery's inverter got a setpoint"
    assert setpoints_to(site, 7) == [], "the charger not yet in operation got one"
    assert site.unsafe_setpoint_count == 0


async def test_assets_outage_raises_a_repair_while_telemetry_goes_on(
    hass: HomeAssistant, site: MicrogridSimulator
) -> None:
    site.assets_outage = True
    with patch(
        "custom_components.frequenz_microgrid.assets_sync.ASSETS_RETRY_MIN_S", 0.2
    ):
        entry = await _setup(hass, site)
        runtime = entry.runtime_data
        assets = runtime.assets
        assert assets is not None
        assert _inventory_of(entry) is None
        issue_id = assets_issue_id(entry.entry_id)
        issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
        assert issue is not None
        assert issue.translation_key == "assets_unavailable"
        placeholders = issue.translation_placeholders
        assert placeholders is not None
        assert "unavailable" in placeholders["error"].lower()

        # Live data goes on; the inventory's sensors wait for it.
        await wait_for(
            lambda: runtime.coordinator.data.grid_power_w is not None,
            what="telemetry during the Assets outage",
        )
        lifetime = f"{entry.unique_id}_6_lifetime_state"
        assert state_of(hass, lifetime).state == STATE_UNAVAILABLE
        assert _device(hass, entry, "_6").name == "Wallbox garage"

        # The Assets API comes back: the next retry reads it and clears the issue.
        site.assets_outage = False
        await wait_for(
            lambda: ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None,
            what="the repair issue to clear",
        )
    assert _inventory_of(entry) is not None
    assert _device(hass, entry, "_6").name == "Wallbox east", "renamed after recovery"
    assert _device(hass, entry, "").name == "Garage site"
    await wait_for(
        lambda: state_of(hass, lifetime).state == "operational",
        what="lifetime sensor after recovery",
    )
    statuses = {
        s.component_id: s for s in runtime.engine.controller.status().components
    }
    assert statuses[4].out_of_service, "lifetimes apply from the first good read"

    # A later outage keeps the last inventory in use, and raises the issue only
    # once it lasted (a passing one is no matter for the user).
    site.assets_outage = True
    with patch(
        "custom_components.frequenz_microgrid.assets_sync.ASSETS_ISSUE_AFTER_S", 1.0
    ):
        assert not await assets.async_refresh()
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
        assert assets.last_error is not None
        await asyncio.sleep(1.1)
        assert not await assets.async_refresh()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    assert _inventory_of(entry) is not None
    assert state_of(hass, lifetime).state == "operational"
    assert runtime.coordinator.data.reachable


async def test_an_outage_is_retried_when_its_grace_ends_and_raised_on_time(
    hass: HomeAssistant, site: MicrogridSimulator
) -> None:
    """A retry lands when the grace ends, not at the back-off's next doubling."""
    sync = "custom_components.frequenz_microgrid.assets_sync"
    with (
        patch(f"{sync}.ASSETS_REFRESH_S", 0.3),
        patch(f"{sync}.ASSETS_RETRY_MIN_S", 60.0),
        patch(f"{sync}.ASSETS_ISSUE_AFTER_S", 1.5),
    ):
        entry = await _setup(hass, site)
        assets = entry.runtime_data.assets
        assert assets is not None
        assert assets.inventory is not None
        issue_id = assets_issue_id(entry.entry_id)
        site.assets_outage = True
        await wait_for(lambda: assets.last_error is not None, what="a failed read")
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
        seconds = await wait_for(
            lambda: ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None,
            timeout_s=5.0,
            what="the issue once the grace ended",
        )
        assert seconds < 5.0


async def test_demo_entry_reads_its_simulators_assets_api(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Demo",
        unique_id="demo_home",
        data={CONF_DEMO: True, CONF_SCENARIO: "home"},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    runtime = entry.runtime_data
    assert runtime.assets is not None
    inventory = runtime.assets.inventory
    assert inventory is not None
    assert inventory.microgrid.name == "Simulated home"
    assert sorted(inventory.components) == sorted(
        spec.id for spec in load_scenario("home").components
    )
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_diagnostics_show_steering_and_assets_but_no_credentials(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    site: MicrogridSimulator,
) -> None:
    """Both APIs behind key-checking gateways, each with its own key and secret."""
    assets_key = "assets-key-value"
    secrets = ("microgrid-secret-value", "assets-secret-value")
    microgrid_gateway = AuthGateway(site.url, accepted_key=API_KEY)
    assets_gateway = AuthGateway(site.url, accepted_key=assets_key)
    await microgrid_gateway.start()
    await assets_gateway.start()
    try:
        assert await async_setup_component(hass, "diagnostics", {})
        entry = await setup_entry(
            hass,
            microgrid_gateway.url,
            data={CONF_API_KEY: API_KEY, CONF_SIGNING_SECRET: secrets[0]},
            options={
                CONF_ASSETS_URL: assets_gateway.assets_url,
                CONF_ASSETS_API_KEY: assets_key,
                CONF_ASSETS_SIGNING_SECRET: secrets[1],
            },
        )
        assert _inventory_of(entry) is not None
        await wait_for(
            lambda: state_of(hass, f"{entry.unique_id}_6_excluded").state == "off",
            what="charger 6 steerable",
        )
        await call_action(
            hass, "propose_power", propose(entry, "ev_chargers", power=5000, priority=7)
        )
        diagnostics: dict[str, Any] = await get_diagnostics_for_config_entry(
            hass, hass_client, entry
        )
    finally:
        await hass.config_entries.async_unload(entry.entry_id)
        await microgrid_gateway.stop()
        await assets_gateway.stop()

    dumped = json.dumps(diagnostics)
    for secret in (API_KEY, assets_key, *secrets):
        assert secret not in dumped
    assert diagnostics["entry"]["options"][CONF_ASSETS_API_KEY] == REDACTED
    assert diagnostics["entry"]["options"][CONF_ASSETS_SIGNING_SECRET] == REDACTED

    # Steering: the proposal, the bounds of its priority, the last result, health.
    ev_sets = diagnostics["steering"]["pools"]["ev_chargers"]["component_sets"]
    (ev_set,) = [s for s in ev_sets if s["proposals"]]
    assert [(p["priority"], p["power"]) for p in ev_set["proposals"]] == [(7, 5000)]
    assert "7" in ev_set["bounds_by_priority"]
    assert ev_set["last_result"] is not None
    health = diagnostics["steering"]["components"]
    assert health["4"]["out_of_service"] is True
    assert health["6"]["out_of_service"] is False
    assert health["6"]["excluded"] is False, "idle without an EV, not excluded"
    assert diagnostics["steering"]["grid_currents_unknown"] is False

    # The inventory, with the site's coordinates redacted.
    assets = diagnostics["assets"]
    assert assets["microgrid"]["name"] == "Garage site"
    assert assets["microgrid"]["enterprise_id"] == 42
    assert assets["microgrid"]["location"]["latitude"] == REDACTED
    assert assets["components"]["4"]["lifetime_state"] == "retired"
    assert assets["last_error"] is None
    assert assets["timezone"] == "Europe/Berlin", "derived from the location"


def test_diagnostics_cut_credentials_out_of_urls() -> None:
    assert (
        _safe_url("grpc://user:pa55@grid.example.com:443?ssl=true&token=abc")
        == f"grpc://{REDACTED}@grid.example.com:443?ssl=true&token={REDACTED}"
    )
    assert _safe_url("grpc://127.0.0.1:1234") == "grpc://127.0.0.1:1234"
    assert _safe_url("grpc://[::1]:443?ssl=false") == "grpc://[::1]:443?ssl=false"


@pytest.mark.parametrize(
    ("latitude", "longitude", "country", "zone"),
    [
        (52.52, 13.405, "DE", "Europe/Berlin"),
        (47.99, 7.85, "DE", "Europe/Berlin"),  # Freiburg: Büsingen is nearer, same time
        (34.05, -118.24, "us", "America/Los_Angeles"),
        (30.27, -97.74, "US", None),  # Austin: Denver and Chicago, both near
        (40.42, -3.70, "ES", "Europe/Madrid"),  # the Canaries are far away
        (None, None, "IS", "Atlantic/Reykjavik"),  # one zone: no coordinates needed
        (None, None, "US", None),
        (52.52, 13.405, None, None),
        (0.0, 0.0, "XX", None),
    ],
)
def test_timezone_is_derived_from_the_location(
    latitude: float | None,
    longitude: float | None,
    country: str | None,
    zone: str | None,
) -> None:
    location = Location(latitude=latitude, longitude=longitude, country_code=country)
    assert timezone_of(location) == zone
