"""The Assets API fields of the config, reconfigure and options flows, over real gRPC.

The simulator serves the Assets API on its own port; an `AuthGateway` in front of
it demands a key. Entry setup is replaced by a no-op: the unit under test is the
flow (setup with an Assets API has its tests in `test_assets.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.frequenz_microgrid.const import (
    CONF_ASSETS_API_KEY,
    CONF_ASSETS_SIGNING_SECRET,
    CONF_ASSETS_URL,
    CONF_DEFAULT_PRIORITY,
    CONF_FRESHNESS_S,
    CONF_REAPPLY_SETPOINTS,
    CONF_RESERVATION_GRACE_MIN,
    CONF_URL,
    DEFAULT_RESERVATION_GRACE_MIN,
    DOMAIN,
)
from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    load_scenario,
    running_simulator,
)

from .auth_gateway import AuthGateway
from .conftest import API_KEY, microgrid_entry

OPTIONS = {
    CONF_FRESHNESS_S: 10,
    CONF_DEFAULT_PRIORITY: 0,
    CONF_REAPPLY_SETPOINTS: False,
    CONF_RESERVATION_GRACE_MIN: DEFAULT_RESERVATION_GRACE_MIN,
}


@pytest.fixture(autouse=True)
def no_entry_setup() -> Iterator[None]:
    """Create (and reload) entries without connecting them."""
    with (
        patch(
            "custom_components.frequenz_microgrid.async_setup_entry", return_value=True
        ),
        patch(
            "custom_components.frequenz_microgrid.async_unload_entry",
            return_value=True,
        ),
    ):
        yield


def _schema(result: Any) -> dict[Any, Any]:
    """Return the markers of a form result's schema."""
    schema = result["data_schema"]
    assert schema is not None
    markers: dict[Any, Any] = schema.schema
    return markers


async def _connect(hass: HomeAssistant, user_input: dict[str, Any]) -> Any:
    """Open the connect form and submit `user_input`; return the result."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "connect"}
    )
    assert result["step_id"] == "connect"
    assert CONF_ASSETS_URL in _schema(result), "the form asks for it"
    return await hass.config_entries.flow.async_configure(result["flow_id"], user_input)


async def test_connect_with_assets_stores_them_as_options(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    result = await _connect(
        hass, {CONF_URL: simulator.url, CONF_ASSETS_URL: f" {simulator.assets_url} "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_URL: simulator.url}
    assert result["result"].options == {CONF_ASSETS_URL: simulator.assets_url}


async def test_connect_without_assets_stores_none(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    result = await _connect(hass, {CONF_URL: simulator.url, CONF_ASSETS_API_KEY: "k"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].options == {}, "a key without a URL means no Assets API"


@pytest.mark.parametrize(
    ("assets_url", "error"),
    [
        ("http://127.0.0.1:1", "assets_invalid_url"),
        ("grpc://127.0.0.1:1?colour=blue", "assets_invalid_url"),
        ("grpc://127.0.0.1:1?ssl=false", "assets_cannot_connect"),
    ],
)
async def test_wrong_assets_url_shows_on_its_field(
    hass: HomeAssistant, simulator: MicrogridSimulator, assets_url: str, error: str
) -> None:
    result = await _connect(
        hass, {CONF_URL: simulator.url, CONF_ASSETS_URL: assets_url}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_ASSETS_URL: error}
    assert not hass.config_entries.async_entries(DOMAIN), "nothing was stored"

    # The URL is kept in the form; with the right one the entry is created.
    field = next(k for k in _schema(result) if k == CONF_ASSETS_URL)
    assert field.description == {"suggested_value": assets_url}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_URL: simulator.url, CONF_ASSETS_URL: simulator.assets_url},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_an_unexpected_assets_error_is_the_forms_and_logged(
    hass: HomeAssistant, simulator: MicrogridSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a connection problem: "unknown" for the form, the traceback to the log."""
    with patch(
        "custom_components.frequenz_microgrid.config_flow.probe_assets",
        side_effect=RuntimeError("surprise"),
    ):
        result = await _connect(
            hass, {CONF_URL: simulator.url, CONF_ASSETS_URL: simulator.assets_url}
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error while reading the Assets API" in caplog.text
    assert not hass.config_entries.async_entries(DOMAIN), "nothing was stored"


async def test_wrong_assets_key_shows_on_its_field(
    hass: HomeAssistant, simulator: MicrogridSimulator, gateway: AuthGateway
) -> None:
    """The gateway demands a key from Assets API callers as well."""
    rejected_before = gateway.rejected_calls
    result = await _connect(
        hass,
        {
            CONF_URL: simulator.url,
            CONF_ASSETS_URL: gateway.assets_url,
            CONF_ASSETS_API_KEY: "wrong",
        },
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_ASSETS_API_KEY: "assets_invalid_auth"}
    assert gateway.rejected_calls > rejected_before
    key_field = next(k for k in _schema(result) if k == CONF_ASSETS_API_KEY)
    assert not key_field.description, "the key is not sent back to the browser"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_URL: simulator.url,
            CONF_ASSETS_URL: gateway.assets_url,
            CONF_ASSETS_API_KEY: "sk-ø",
        },
    )
    assert result["errors"] == {CONF_ASSETS_API_KEY: "invalid_key_characters"}

    user_input = {
        CONF_URL: simulator.url,
        CONF_ASSETS_URL: gateway.assets_url,
        CONF_ASSETS_API_KEY: API_KEY,
        CONF_ASSETS_SIGNING_SECRET: "assets-secret",
    }
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].options == {
        CONF_ASSETS_URL: gateway.assets_url,
        CONF_ASSETS_API_KEY: API_KEY,
        CONF_ASSETS_SIGNING_SECRET: "assets-secret",
    }


async def test_microgrid_mismatch_between_the_apis_is_refused(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """The Assets API of another site (microgrid 99) does not know microgrid 1."""
    other_site = replace(load_scenario("home"), microgrid_id=99)
    async with running_simulator(other_site) as other:
        result = await _connect(
            hass, {CONF_URL: simulator.url, CONF_ASSETS_URL: other.assets_url}
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "assets_microgrid_mismatch"}
    assert not hass.config_entries.async_entries(DOMAIN)


async def test_reconfigure_adds_and_removes_the_assets_api(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = microgrid_entry(simulator.url, options=dict(OPTIONS))
    entry.add_to_hass(hass)

    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: simulator.url, CONF_ASSETS_URL: "grpc://:1"}
    )
    assert result["errors"] == {CONF_ASSETS_URL: "assets_invalid_url"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_URL: simulator.url,
            CONF_ASSETS_URL: simulator.assets_url,
            CONF_ASSETS_API_KEY: "kept",
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.options == OPTIONS | {
        CONF_ASSETS_URL: simulator.assets_url,
        CONF_ASSETS_API_KEY: "kept",
    }, "the other options stay"

    # The form shows the stored Assets URL; an empty key keeps the stored one.
    result = await entry.start_reconfigure_flow(hass)
    field = next(k for k in _schema(result) if k == CONF_ASSETS_URL)
    assert field.description == {"suggested_value": simulator.assets_url}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_URL: simulator.url, CONF_ASSETS_URL: simulator.assets_url},
    )
    assert entry.options[CONF_ASSETS_API_KEY] == "kept"

    # Clearing the URL removes the Assets API with its key.
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: simulator.url}
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.options == OPTIONS


async def test_options_add_the_assets_api_and_refuse_a_mismatch(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = microgrid_entry(simulator.url, options=dict(OPTIONS))
    entry.add_to_hass(hass)

    other_site = replace(load_scenario("home"), microgrid_id=99)
    async with running_simulator(other_site) as other:
        result = await hass.config_entries.options.async_init(entry.entry_id)
        assert CONF_ASSETS_URL in _schema(result)
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], OPTIONS | {CONF_ASSETS_URL: other.assets_url}
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "assets_microgrid_mismatch"}
    assert entry.options == OPTIONS, "nothing changed"

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], OPTIONS | {CONF_ASSETS_URL: simulator.assets_url}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == OPTIONS | {CONF_ASSETS_URL: simulator.assets_url}


async def test_demo_options_have_no_assets_fields(hass: HomeAssistant) -> None:
    """A demo entry reads its own simulator's Assets API."""
    entry = microgrid_entry("grpc://unused:1", unique_id="demo_home")
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry, data={"demo": True, "scenario": "home"}
    )
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert CONF_ASSETS_URL not in _schema(result)


async def test_options_change_during_an_assets_outage_when_assets_unchanged(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """Stored Assets settings are not probed again; new ones are."""
    stored = {CONF_ASSETS_URL: simulator.assets_url, CONF_ASSETS_API_KEY: "k"}
    entry = microgrid_entry(simulator.url, options=OPTIONS | stored)
    entry.add_to_hass(hass)
    simulator.assets_outage = True

    result = await hass.config_entries.options.async_init(entry.entry_id)
    field = next(k for k in _schema(result) if k == CONF_ASSETS_URL)
    assert field.description == {"suggested_value": simulator.assets_url}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        OPTIONS | {CONF_FRESHNESS_S: 20, CONF_ASSETS_URL: simulator.assets_url},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == OPTIONS | {CONF_FRESHNESS_S: 20.0} | stored

    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        OPTIONS | {CONF_ASSETS_URL: simulator.assets_url, CONF_ASSETS_API_KEY: "new"},
    )
    assert result["errors"] == {CONF_ASSETS_URL: "assets_cannot_connect"}
    assert entry.options[CONF_ASSETS_API_KEY] == "k"
