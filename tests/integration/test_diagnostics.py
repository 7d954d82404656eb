"""Diagnostics through Home Assistant's HTTP API: content and redaction."""

from __future__ import annotations

import json
from typing import Any

from homeassistant.components.diagnostics import REDACTED
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.frequenz_microgrid.const import (
    CONF_API_KEY,
    CONF_SIGNING_SECRET,
    CONF_URL,
)
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator

from .auth_gateway import AuthGateway
from .conftest import API_KEY, HOME_MICROGRID_ID, setup_entry, wait_for

SECRET = "signing-secret-value"


async def test_diagnostics_content_and_redaction(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    gateway: AuthGateway,
    simulator: MicrogridSimulator,
) -> None:
    assert await async_setup_component(hass, "diagnostics", {})
    entry = await setup_entry(
        hass, gateway.url, data={CONF_API_KEY: API_KEY, CONF_SIGNING_SECRET: SECRET}
    )
    runtime = entry.runtime_data
    await wait_for(
        lambda: (
            runtime.coordinator.data.grid_power_w is not None
            and runtime.coordinator.data.battery.soc_pct is not None
        ),
        what="telemetry",
    )

    diagnostics: dict[str, Any] = await get_diagnostics_for_config_entry(
        hass, hass_client, entry
    )

    # Redaction: neither secret appears anywhere.
    assert diagnostics["entry"]["data"] == {
        CONF_URL: gateway.url,
        CONF_API_KEY: REDACTED,
        CONF_SIGNING_SECRET: REDACTED,
    }
    dumped = json.dumps(diagnostics)
    assert API_KEY not in dumped
    assert SECRET not in dumped

    # The site's coordinates are personal data; the country is not.
    topology = diagnostics["topology"]
    assert topology["microgrid"]["location"] == {
        "latitude": REDACTED,
        "longitude": REDACTED,
        "country_code": "DE",
    }
    assert "52.52" not in dumped

    # The graph, as the simulator's scenario describes it.
    assert topology["microgrid"]["id"] == HOME_MICROGRID_ID
    scenario = simulator.scenario
    assert [c["id"] for c in topology["components"]] == sorted(
        spec.id for spec in scenario.components
    )
    assert sorted(map(tuple, topology["connections"])) == sorted(scenario.connections())
    assert topology["pools"]["battery_ids"] == sorted(
        runtime.engine.topology.battery_ids
    )
    assert topology["pools"]["battery_ids"], "the home scenario has a battery"
    assert topology["formulas"]["grid"] == runtime.engine.topology.formulas.grid
    assert "#" in topology["formulas"]["grid"]
    battery = next(
        c
        for c in topology["components"]
        if c["id"] in runtime.engine.topology.battery_ids
    )
    assert battery["parents"] == list(
        runtime.engine.topology.parents_of(battery["id"])
    ), "the battery hangs below its inverter"

    # Latest samples with their age.
    snapshot = diagnostics["snapshot"]
    assert snapshot["reachable"] is True
    assert snapshot["grid_power_w"] is not None
    assert snapshot["freshness_s"] == 10.0
    component = snapshot["components"][str(battery["id"])]
    assert component["fresh"] is True
    assert 0 <= component["age_s"] < 10
    assert 0 <= component["metrics"]["BATTERY_SOC_PCT"] <= 100
    # Detail sensors are disabled by default: none of their metrics is streamed.
    assert diagnostics["detail_metrics"] == {}
    assert "DC_VOLTAGE" not in component["metrics"]
    assert diagnostics["reachable"] is True
    assert diagnostics["demo"] is False
