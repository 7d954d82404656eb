"""Setting up and unloading entries against the simulator over real gRPC."""

from __future__ import annotations

import asyncio
from typing import Any
from unittest.mock import patch

from frequenz.client.microgrid import MicrogridApiClient
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components import frequenz_microgrid
from custom_components.frequenz_microgrid.const import (
    CONF_API_KEY,
    CONF_DEFAULT_PRIORITY,
    CONF_DEMO,
    CONF_FRESHNESS_S,
    CONF_REAPPLY_SETPOINTS,
    CONF_RESERVATION_GRACE_MIN,
    CONF_SCENARIO,
    DEFAULT_PRIORITY,
    DOMAIN,
)
from custom_components.frequenz_microgrid.engine.hub.reservations import MAX_GRACE_S
from custom_components.frequenz_microgrid.runtime import (
    FrequenzMicrogridConfigEntry,
)
from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    load_scenario,
    running_simulator,
)
from custom_components.frequenz_microgrid.simulator.scenario import scenario_from_dict

from .auth_gateway import AuthGateway
from .conftest import (
    API_KEY,
    HOME_MICROGRID_ID,
    microgrid_entry,
    setup_entry,
    wait_for,
)


def _connected(client: MicrogridApiClient) -> bool:
    """Whether the client has a channel (a function, so mypy doesn't narrow it)."""
    return client.is_connected


async def _setup_fails(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    state: ConfigEntryState = ConfigEntryState.SETUP_ERROR,
) -> str:
    """Add `entry` and set it up, which must fail into `state`; return the reason."""
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is state
    return entry.reason or ""


async def test_setup_streams_and_unload_disconnects(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator,
) -> None:
    entry = setup_integration
    runtime = entry.runtime_data
    assert runtime.simulator is None
    assert _connected(runtime.client)
    assert sorted(runtime.engine.topology.components) == [
        spec.id for spec in simulator.scenario.components
    ]
    assert runtime.coordinator.update_interval is None, "push, not polling"

    await wait_for(
        lambda: runtime.coordinator.data.grid_power_w is not None,
        what="pushed telemetry",
    )
    assert runtime.coordinator.data.reachable
    monitor_tasks = [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith("frequenz-microgrid")
    ]
    assert monitor_tasks

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert not runtime.client.is_connected
    assert all(task.done() for task in monitor_tasks)
    # Unloading twice (e.g. after Home Assistant stop) is harmless.
    await runtime.async_close()


async def test_cannot_connect_retries_later(hass: HomeAssistant) -> None:
    async with running_simulator(load_scenario("home")) as sim:
        dead_url = sim.url

    entry = microgrid_entry(dead_url)
    reason = await _setup_fails(hass, entry, ConfigEntryState.SETUP_RETRY)
    assert "Could not connect" in reason
    await hass.config_entries.async_unload(entry.entry_id)


async def test_invalid_auth_starts_reauth(
    hass: HomeAssistant, gateway: AuthGateway
) -> None:
    entry = microgrid_entry(gateway.url, data={CONF_API_KEY: "revoked"})
    await _setup_fails(hass, entry)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_setup_with_the_right_key(
    hass: HomeAssistant, gateway: AuthGateway
) -> None:
    await setup_entry(hass, gateway.url, data={CONF_API_KEY: API_KEY})


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1", "grpc://127.0.0.1:1?x=1", "grpc://127.0.0.1"]
)
async def test_invalid_url_is_a_permanent_error(hass: HomeAssistant, url: str) -> None:
    """A URL that can never work needs the user: no retry, no reauth."""
    reason = await _setup_fails(hass, microgrid_entry(url))
    assert "not valid" in reason
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)


async def test_url_leading_to_another_microgrid_fails(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = microgrid_entry(simulator.url, unique_id="999")
    assert "999" in await _setup_fails(hass, entry)


async def test_demo_entry_runs_its_own_simulator(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Demo",
        unique_id="demo_home",
        data={CONF_DEMO: True, CONF_SCENARIO: "home"},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    runtime = entry.runtime_data
    simulator = runtime.simulator
    assert simulator is not None
    assert simulator.running
    assert simulator.url.startswith("grpc://127.0.0.1:")
    assert runtime.client.server_url == simulator.url
    await wait_for(
        lambda: runtime.coordinator.data.battery.soc_pct is not None,
        what="battery SoC from the demo",
    )

    assert await hass.config_entries.async_unload(entry.entry_id)
    assert not simulator.running
    assert not runtime.client.is_connected


async def test_demo_with_unknown_scenario_fails(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id="demo_x", data={CONF_DEMO: True, CONF_SCENARIO: "x"}
    )
    await _setup_fails(hass, entry)


async def test_options_change_reloads_with_new_freshness(
    hass: HomeAssistant, setup_integration: FrequenzMicrogridConfigEntry
) -> None:
    entry = setup_integration
    before = entry.runtime_data
    assert before.engine.monitor.store.freshness_s == 10.0

    # Data updates (as reauth/reconfigure make) don't reload by themselves.
    hass.config_entries.async_update_entry(entry, title="Renamed")
    await hass.async_block_till_done()
    assert entry.runtime_data is before

    # Options change through the options flow, which reloads the entry.
    flow = await hass.config_entries.options.async_init(entry.entry_id)
    await hass.config_entries.options.async_configure(
        flow["flow_id"],
        {
            CONF_FRESHNESS_S: 3,
            CONF_DEFAULT_PRIORITY: DEFAULT_PRIORITY,
            CONF_REAPPLY_SETPOINTS: False,
        },
    )
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is not before
    assert entry.runtime_data.engine.monitor.store.freshness_s == 3.0
    assert not before.client.is_connected, "the old client was released"


async def test_home_assistant_stop_releases_the_client(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = setup_integration.runtime_data
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    assert not runtime.client.is_connected
    # A later unload must neither fail nor log about the fired listener.
    assert await hass.config_entries.async_unload(setup_integration.entry_id)
    assert "Unable to remove unknown job listener" not in caplog.text


async def test_invalid_wiring_is_a_permanent_error(hass: HomeAssistant) -> None:
    """A battery straight below a meter (no inverter) is no valid microgrid."""
    scenario = scenario_from_dict(
        {
            "name": "miswired",
            "microgrid_id": HOME_MICROGRID_ID,
            "topology": [
                {"id": 1, "kind": "grid", "parent": None, "fuse_current_a": 40},
                {"id": 2, "kind": "meter", "parent": 1},
                {
                    "id": 3,
                    "kind": "battery",
                    "parent": 2,
                    "capacity_wh": 1000,
                    "max_charge_w": 1000,
                },
            ],
        }
    )
    async with running_simulator(scenario) as sim:
        reason = await _setup_fails(hass, microgrid_entry(sim.url))
    assert "not wired as a valid microgrid" in reason


async def test_failure_after_connecting_releases_everything(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """If a platform fails to set up, the client and monitor don't linger."""
    entry = microgrid_entry(simulator.url)
    with patch.object(
        hass.config_entries,
        "async_forward_entry_setups",
        side_effect=RuntimeError("platform broke"),
    ):
        await _setup_fails(hass, entry)
    assert not _connected(entry.runtime_data.client)


@pytest.mark.parametrize(
    "failing",
    [
        "custom_components.frequenz_microgrid.MicrogridEngine",
        "custom_components.frequenz_microgrid.HubReservations.async_load",
    ],
)
async def test_a_failed_set_up_stops_what_it_started_and_can_be_retried(
    hass: HomeAssistant, failing: str
) -> None:
    """Before the runtime exists (the engine) and after (loading the bookings)."""
    started: list[MicrogridSimulator] = []
    clients: list[MicrogridApiClient] = []
    integration = "custom_components.frequenz_microgrid"
    start_demo = frequenz_microgrid._async_start_demo
    connect = frequenz_microgrid._async_connect

    async def _start_demo(*args: Any) -> MicrogridSimulator:
        simulator: MicrogridSimulator = await start_demo(*args)
        started.append(simulator)
        return simulator

    async def _connect(*args: Any) -> Any:
        client, topology = await connect(*args)
        clients.append(client)
        return client, topology

    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="demo_home",
        data={CONF_DEMO: True, CONF_SCENARIO: "home"},
    )
    with (
        patch(f"{integration}._async_start_demo", _start_demo),
        patch(f"{integration}._async_connect", _connect),
        patch(failing, side_effect=RuntimeError("boom")),
    ):
        await _setup_fails(hass, entry)
    (simulator,) = started
    (client,) = clients
    assert not _connected(client)
    assert not simulator.running

    assert await hass.config_entries.async_reload(entry.entry_id)
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("grace", [-5, 1e9, float("nan"), "soon"])
async def test_a_bad_stored_grace_option_is_bounded_and_the_entry_loads(
    hass: HomeAssistant, simulator: MicrogridSimulator, grace: object
) -> None:
    entry = microgrid_entry(simulator.url, options={CONF_RESERVATION_GRACE_MIN: grace})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    loaded: FrequenzMicrogridConfigEntry = entry
    reservations = loaded.runtime_data.reservations
    assert reservations is not None
    assert 0.0 <= reservations.book.grace_s <= MAX_GRACE_S
