"""Fixtures for the Home Assistant layer: the simulator over real gRPC, and entries.

Order matters at teardown: entries of this integration are unloaded (their client
disconnected, their monitor stopped) before the simulator they talk to stops, so
no client task lingers retrying a dead server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import time
from typing import Any, cast

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.frequenz_microgrid.const import CONF_URL, DOMAIN
from custom_components.frequenz_microgrid.coordinator import (
    FrequenzMicrogridConfigEntry,
)
from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    load_scenario,
)

from .auth_gateway import AuthGateway

HOME_MICROGRID_ID = load_scenario("home").microgrid_id
"""The microgrid id the `home` scenario reports (the entry's unique id)."""

API_KEY = "the-right-key"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load the integration from `custom_components/`."""


async def unload_all_entries(hass: HomeAssistant) -> None:
    """Unload every loaded entry of this integration (disconnects its client)."""
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state in (ConfigEntryState.LOADED, ConfigEntryState.SETUP_RETRY):
            await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[MicrogridSimulator]:
    """Run the `home` scenario on a free loopback port for one test."""
    sim = MicrogridSimulator(load_scenario("home"), speed=1.0, sample_period_s=0.2)
    await sim.start(host="127.0.0.1", port=0)
    yield sim
    await unload_all_entries(hass)
    await sim.stop()


@pytest.fixture
async def gateway(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> AsyncIterator[AuthGateway]:
    """Put an API-key-checking gateway in front of the simulator."""
    gw = AuthGateway(simulator.url, accepted_key=API_KEY)
    await gw.start()
    yield gw
    await unload_all_entries(hass)
    await gw.stop()


def microgrid_entry(
    url: str,
    *,
    data: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    unique_id: str = str(HOME_MICROGRID_ID),
) -> MockConfigEntry:
    """Return an entry for the microgrid at `url`."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Home microgrid",
        unique_id=unique_id,
        data={CONF_URL: url, **(data or {})},
        options=options or {},
    )


@pytest.fixture
async def setup_integration(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> FrequenzMicrogridConfigEntry:
    """Set up an entry connected to the simulator."""
    entry = microgrid_entry(simulator.url)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    return cast(FrequenzMicrogridConfigEntry, entry)


async def wait_for(
    condition: Callable[[], bool], *, timeout_s: float = 10.0, what: str = "condition"
) -> float:
    """Wait in real time (gRPC doesn't follow frozen clocks) until `condition`.

    Returns the seconds it took.
    """
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start
