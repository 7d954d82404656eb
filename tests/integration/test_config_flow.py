"""The config flow against the simulator over real gRPC: every step and error.

Entry setup is replaced by a no-op here: the unit under test is the flow (setup has
its own tests in `test_init.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
import math
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.frequenz_microgrid.config_flow import EXAMPLE_URL
from custom_components.frequenz_microgrid.const import (
    ASSETS_SETTINGS,
    CONF_API_KEY,
    CONF_DEFAULT_PRIORITY,
    CONF_DEMO,
    CONF_FRESHNESS_S,
    CONF_REAPPLY_SETPOINTS,
    CONF_RESERVATION_GRACE_MIN,
    CONF_SCENARIO,
    CONF_SIGNING_SECRET,
    CONF_URL,
    DEFAULT_FRESHNESS_S,
    DEFAULT_PRIORITY,
    DEFAULT_REAPPLY_SETPOINTS,
    DEFAULT_RESERVATION_GRACE_MIN,
    DOMAIN,
    FORECAST_SETTINGS,
)
from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    load_scenario,
    running_simulator,
)

from .auth_gateway import AuthGateway
from .conftest import API_KEY, HOME_MICROGRID_ID, microgrid_entry


@pytest.fixture(autouse=True)
def no_entry_setup() -> Iterator[None]:
    """Create entries without connecting them."""
    with patch(
        "custom_components.frequenz_microgrid.async_setup_entry", return_value=True
    ):
        yield


def _schema(result: Any) -> dict[Any, Any]:
    """Return the markers of a form result's schema."""
    schema = result["data_schema"]
    assert schema is not None
    markers: dict[Any, Any] = schema.schema
    return markers


async def _connect_form(hass: HomeAssistant) -> str:
    """Open the flow, pick "connect" in the menu; return the flow id."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["connect", "demo"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "connect"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "connect"
    assert result["errors"] == {}
    assert result["description_placeholders"] == {"example_url": EXAMPLE_URL}
    return str(result["flow_id"])


async def test_connect_creates_entry(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    flow_id = await _connect_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: f" {simulator.url} ", CONF_API_KEY: ""}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_URL: simulator.url}, "empty key is not stored"
    assert result["result"].unique_id == str(HOME_MICROGRID_ID)
    assert result["title"] == "Simulated home", "the microgrid's own name"


async def test_connect_with_key_and_secret(
    hass: HomeAssistant, gateway: AuthGateway
) -> None:
    flow_id = await _connect_form(hass)
    user_input = {
        CONF_URL: gateway.url,
        CONF_API_KEY: API_KEY,
        CONF_SIGNING_SECRET: "s3cret",
    }
    result = await hass.config_entries.flow.async_configure(flow_id, user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == user_input


@pytest.mark.parametrize(
    ("url", "field", "error"),
    [
        ("http://127.0.0.1:1", CONF_URL, "invalid_url"),
        ("grpc://127.0.0.1:1?colour=blue", CONF_URL, "invalid_url"),
        ("grpc://:1234", CONF_URL, "invalid_url"),
        # No port: gRPC has no default one; guessing one would hide the typo.
        ("grpc://127.0.0.1", CONF_URL, "invalid_url"),
        ("grpc://localhost?ssl=false", CONF_URL, "invalid_url"),
        ("not a url", CONF_URL, "invalid_url"),
    ],
)
async def test_connect_invalid_url_then_recovers(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    url: str,
    field: str,
    error: str,
) -> None:
    flow_id = await _connect_form(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_URL: url})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: error}
    schema_url = next(k for k in _schema(result) if k == CONF_URL)
    assert schema_url.description == {"suggested_value": url}, "input is kept"

    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: simulator.url}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_connect_cannot_connect(hass: HomeAssistant) -> None:
    """A port where the simulator ran but no longer listens."""
    async with running_simulator(load_scenario("home")) as sim:
        dead_url = sim.url

    flow_id = await _connect_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: dead_url}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_URL: "cannot_connect"}


async def test_connect_invalid_auth_then_recovers(
    hass: HomeAssistant, gateway: AuthGateway
) -> None:
    flow_id = await _connect_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: gateway.url, CONF_API_KEY: "wrong"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_API_KEY: "invalid_auth"}
    assert gateway.rejected_calls >= 1
    # The key is not sent back to the browser.
    schema = _schema(result)
    assert all(k.description is None for k in schema if k != CONF_URL)

    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: gateway.url, CONF_API_KEY: API_KEY}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_API_KEY] == API_KEY


async def test_connect_without_key_where_one_is_needed(
    hass: HomeAssistant, gateway: AuthGateway
) -> None:
    flow_id = await _connect_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: gateway.url}
    )
    assert result["errors"] == {CONF_API_KEY: "invalid_auth"}


async def test_connect_unexpected_error_is_logged(
    hass: HomeAssistant, simulator: MicrogridSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    flow_id = await _connect_form(hass)
    with patch(
        "custom_components.frequenz_microgrid.config_flow.probe_microgrid",
        side_effect=RuntimeError("boom"),
    ):
        result = await hass.config_entries.flow.async_configure(
            flow_id, {CONF_URL: simulator.url}
        )
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error while connecting to the microgrid" in caplog.text

    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: simulator.url}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_connect_same_microgrid_twice_aborts(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    microgrid_entry("grpc://elsewhere:1").add_to_hass(hass)
    flow_id = await _connect_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: simulator.url}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


# --- demo ----------------------------------------------------------------------------


async def _demo_form(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "demo"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "demo"
    return str(result["flow_id"])


@pytest.mark.parametrize("scenario", ["home", "depot"])
async def test_demo_creates_entry(hass: HomeAssistant, scenario: str) -> None:
    flow_id = await _demo_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_SCENARIO: scenario}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_DEMO: True, CONF_SCENARIO: scenario}
    assert result["result"].unique_id == f"demo_{scenario}"

    # One demo entry per scenario.
    result = await hass.config_entries.flow.async_configure(
        await _demo_form(hass), {CONF_SCENARIO: scenario}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_demo_rejects_unknown_scenario(hass: HomeAssistant) -> None:
    flow_id = await _demo_form(hass)
    with pytest.raises(Exception, match="scenario"):
        await hass.config_entries.flow.async_configure(
            flow_id, {CONF_SCENARIO: "moon_base"}
        )


# --- reauth --------------------------------------------------------------------------


def _add_entry(hass: HomeAssistant, url: str, **kwargs: Any) -> MockConfigEntry:
    entry = microgrid_entry(url, **kwargs)
    entry.add_to_hass(hass)
    return entry


async def test_reauth_with_new_key(hass: HomeAssistant, gateway: AuthGateway) -> None:
    entry = _add_entry(
        hass,
        gateway.url,
        data={CONF_API_KEY: "revoked", CONF_SIGNING_SECRET: "old-secret"},
    )
    result = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"] == {"name": entry.title}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: "still-wrong"}
    )
    assert result["errors"] == {CONF_API_KEY: "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: API_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    # A new key comes with its own secret: none given, so the old one is gone
    # (sent with an unsigned key it would fail at a gateway that checks it).
    assert dict(entry.data) == {CONF_URL: gateway.url, CONF_API_KEY: API_KEY}


async def test_reauth_with_a_new_key_and_its_secret_stores_both(
    hass: HomeAssistant, gateway: AuthGateway
) -> None:
    entry = _add_entry(
        hass,
        gateway.url,
        data={CONF_API_KEY: "revoked", CONF_SIGNING_SECRET: "old-secret"},
    )
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: API_KEY, CONF_SIGNING_SECRET: "new-secret"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert dict(entry.data) == {
        CONF_URL: gateway.url,
        CONF_API_KEY: API_KEY,
        CONF_SIGNING_SECRET: "new-secret",
    }


async def test_reauth_with_the_microgrid_away_says_so_on_the_form(
    hass: HomeAssistant,
) -> None:
    """The URL is not on the reauth form: "cannot connect" is the form's error."""
    async with running_simulator(load_scenario("home")) as sim:
        gone = sim.url
    entry = _add_entry(hass, gone, data={CONF_API_KEY: "revoked"})
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: API_KEY}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert entry.data[CONF_API_KEY] == "revoked"


async def test_reauth_for_another_microgrid_aborts(
    hass: HomeAssistant, gateway: AuthGateway
) -> None:
    entry = _add_entry(hass, gateway.url, unique_id="999")
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: API_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_microgrid"
    assert CONF_API_KEY not in entry.data


# --- reconfigure ---------------------------------------------------------------------


async def test_reconfigure_new_url(
    hass: HomeAssistant, simulator: MicrogridSimulator, gateway: AuthGateway
) -> None:
    entry = _add_entry(hass, simulator.url)
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    schema_url = next(k for k in _schema(result) if k == CONF_URL)
    assert schema_url.description == {"suggested_value": simulator.url}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: gateway.url}
    )
    assert result["errors"] == {CONF_API_KEY: "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: gateway.url, CONF_API_KEY: API_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert dict(entry.data) == {CONF_URL: gateway.url, CONF_API_KEY: API_KEY}


async def test_reconfigure_keeps_stored_key_when_left_empty(
    hass: HomeAssistant, gateway: AuthGateway
) -> None:
    stored = {CONF_API_KEY: API_KEY, CONF_SIGNING_SECRET: "secret"}
    entry = _add_entry(hass, "grpc://old-host:1", data=stored)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: gateway.url}
    )
    assert result["reason"] == "reconfigure_successful"
    assert dict(entry.data) == {CONF_URL: gateway.url, **stored}


async def test_reconfigure_with_a_new_key_and_no_secret_drops_the_old_secret(
    hass: HomeAssistant, gateway: AuthGateway
) -> None:
    entry = _add_entry(
        hass,
        gateway.url,
        data={CONF_API_KEY: "old-key", CONF_SIGNING_SECRET: "old-secret"},
    )
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: gateway.url, CONF_API_KEY: API_KEY}
    )
    assert result["reason"] == "reconfigure_successful"
    assert dict(entry.data) == {CONF_URL: gateway.url, CONF_API_KEY: API_KEY}


async def test_reconfigure_to_another_microgrid_aborts(hass: HomeAssistant) -> None:
    entry = _add_entry(hass, "grpc://old-host:1")
    async with running_simulator(load_scenario("depot")) as depot:
        result = await entry.start_reconfigure_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: depot.url}
        )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_microgrid"
    assert entry.data[CONF_URL] == "grpc://old-host:1"


async def test_reconfigure_demo_aborts(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="demo_home",
        data={CONF_DEMO: True, CONF_SCENARIO: "home"},
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "demo_not_reconfigurable"


# --- options -------------------------------------------------------------------------


async def test_options_defaults_and_update(hass: HomeAssistant) -> None:
    entry = _add_entry(hass, "grpc://host:1")
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    defaults = {
        key.schema: key.default()
        for key in _schema(result)
        if key.schema not in (*ASSETS_SETTINGS, *FORECAST_SETTINGS)  # optional
    }
    assert defaults == {
        CONF_FRESHNESS_S: DEFAULT_FRESHNESS_S,
        CONF_DEFAULT_PRIORITY: DEFAULT_PRIORITY,
        CONF_REAPPLY_SETPOINTS: DEFAULT_REAPPLY_SETPOINTS,
        CONF_RESERVATION_GRACE_MIN: DEFAULT_RESERVATION_GRACE_MIN,
    }

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_FRESHNESS_S: 5,
            CONF_DEFAULT_PRIORITY: 20.0,
            CONF_REAPPLY_SETPOINTS: True,
            CONF_RESERVATION_GRACE_MIN: 2.5,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {
        CONF_FRESHNESS_S: 5.0,
        CONF_DEFAULT_PRIORITY: 20,
        CONF_REAPPLY_SETPOINTS: True,
        CONF_RESERVATION_GRACE_MIN: 2.5,
    }
    assert isinstance(entry.options[CONF_DEFAULT_PRIORITY], int)

    # The form shows the stored values next time.
    result = await hass.config_entries.options.async_init(entry.entry_id)
    defaults = {
        key.schema: key.default()
        for key in _schema(result)
        if key.schema not in (*ASSETS_SETTINGS, *FORECAST_SETTINGS)  # optional
    }
    assert defaults[CONF_FRESHNESS_S] == 5.0


async def test_options_reject_out_of_range(hass: HomeAssistant) -> None:
    entry = _add_entry(hass, "grpc://host:1")
    result = await hass.config_entries.options.async_init(entry.entry_id)
    with pytest.raises(Exception, match=r"freshness_s|value must be"):
        await hass.config_entries.options.async_configure(
            result["flow_id"],
            {
                CONF_FRESHNESS_S: 0.5,
                CONF_DEFAULT_PRIORITY: 0,
                CONF_REAPPLY_SETPOINTS: False,
            },
        )


@pytest.mark.parametrize("priority", [-100, 100])
async def test_options_accept_the_ends_of_the_priority_range(
    hass: HomeAssistant, priority: int
) -> None:
    entry = _add_entry(hass, "grpc://host:1")
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_FRESHNESS_S: 5,
            CONF_DEFAULT_PRIORITY: priority,
            CONF_REAPPLY_SETPOINTS: False,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_DEFAULT_PRIORITY] == priority


@pytest.mark.parametrize("priority", [-101, 101])
async def test_options_refuse_a_priority_beyond_the_range(
    hass: HomeAssistant, priority: int
) -> None:
    entry = _add_entry(hass, "grpc://host:1")
    before = dict(entry.options)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    with pytest.raises(Exception, match=r"default_priority|value must be"):
        await hass.config_entries.options.async_configure(
            result["flow_id"],
            {
                CONF_FRESHNESS_S: 5,
                CONF_DEFAULT_PRIORITY: priority,
                CONF_REAPPLY_SETPOINTS: False,
            },
        )
    assert dict(entry.options) == before


@pytest.mark.parametrize("key", ["schlüssel", "key\nwith-newline"])
async def test_connect_refuses_a_key_grpc_cannot_send(
    hass: HomeAssistant, gateway: AuthGateway, key: str
) -> None:
    """A key gRPC can't put in a header is a field error, not an unexpected one."""
    flow_id = await _connect_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: gateway.url, CONF_API_KEY: key}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_API_KEY: "invalid_key_characters"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (CONF_FRESHNESS_S, math.nan),  # NaN compares as inside any range
        (CONF_DEFAULT_PRIORITY, math.nan),
        (CONF_RESERVATION_GRACE_MIN, math.nan),
    ],
)
async def test_options_refuse_a_value_that_is_not_a_number(
    hass: HomeAssistant, field: str, value: float
) -> None:
    entry = _add_entry(hass, "grpc://host:1")
    before = dict(entry.options)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    user_input: dict[str, Any] = {
        CONF_FRESHNESS_S: 5.0,
        CONF_DEFAULT_PRIORITY: 0,
        CONF_REAPPLY_SETPOINTS: False,
        field: value,
    }
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], user_input
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: "not_a_number"}
    assert dict(entry.options) == before
