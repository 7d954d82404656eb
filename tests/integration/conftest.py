"""Fixtures for the Home Assistant layer: the simulator over real gRPC, and entries.

Order matters at teardown: entries of this integration are unloaded (their client
disconnected, their monitor stopped) before the simulator they talk to stops, so
no client task lingers retrying a dead server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
import time
from typing import Any, cast

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.frequenz_microgrid.const import CONF_URL, DOMAIN
from custom_components.frequenz_microgrid.runtime import (
    FrequenzMicrogridConfigEntry,
)
from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    Scenario,
    TelemetryTiming,
    load_scenario,
    running_simulator,
)

from .auth_gateway import AuthGateway
from .deprecation_watch import DeprecationWatch
from .microgrid_factory import HandFedPlatforms, all_entities_enabled_by_default

HOME_MICROGRID_ID = load_scenario("home").microgrid_id
"""The microgrid id the `home` scenario reports (the entry's unique id)."""

API_KEY = "the-right-key"

ENTITY_DOMAINS = ("sensor", "binary_sensor", "number", "button")
"""The platforms this integration adds entities to."""


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load the integration from `custom_components/`."""


@pytest.fixture(autouse=True)
def grpc_events_of_closed_loops_ignored(hass: HomeAssistant) -> None:
    """Drop gRPC's completions that belong to an earlier test's closed loop.

    gRPC's one poller thread serves every event loop of the process: a call an
    earlier test's loop left in flight may complete while this test's loop reads
    the poller, which then hands it to the closed loop and raises "Event loop is
    closed". Nothing of this test is involved; Home Assistant's harness would
    still fail it at teardown. Any other exception still fails the test.
    """
    handler = hass.loop.get_exception_handler()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if (
            isinstance(error, RuntimeError)
            and str(error) == "Event loop is closed"
            and "PollerCompletionQueue._handle_events" in repr(context.get("handle"))
        ):
            return
        if handler is None:
            loop.default_exception_handler(context)
        else:
            handler(loop, context)

    hass.loop.set_exception_handler(handle)


@pytest.fixture(autouse=True)
def no_deprecated_calls() -> Iterator[DeprecationWatch]:
    """Fail a test during which Home Assistant reports a deprecated call of ours."""
    with DeprecationWatch() as watch:
        yield watch
    assert not watch.reports, "\n".join(watch.reports)


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Create every entity enabled, so snapshots cover the disabled-by-default ones."""
    with all_entities_enabled_by_default():
        yield


@pytest.fixture
async def platforms(hass: HomeAssistant) -> AsyncIterator[HandFedPlatforms]:
    """Real entity platforms on hand-fed coordinators, removed after the test."""
    hand_fed = HandFedPlatforms(hass)
    yield hand_fed
    await hand_fed.close()


async def unload_all_entries(hass: HomeAssistant) -> None:
    """Unload every loaded entry of this integration (disconnects its client)."""
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state in (ConfigEntryState.LOADED, ConfigEntryState.SETUP_RETRY):
            await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


@asynccontextmanager
async def serving(
    hass: HomeAssistant,
    scenario: Scenario,
    *,
    speed: float = 1.0,
    sample_period_s: float = 0.2,
    timing: TelemetryTiming | None = None,
) -> AsyncIterator[MicrogridSimulator]:
    """Run `scenario` on a free loopback port; unload our entries before it stops.

    Afterwards the simulator must not have carried current above a fuse.
    """
    async with running_simulator(
        scenario, speed=speed, sample_period_s=sample_period_s, timing=timing
    ) as sim:
        try:
            yield sim
        finally:
            await unload_all_entries(hass)
    assert sim.overload_ampere_seconds == 0.0, sim.overloads


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[MicrogridSimulator]:
    """Run the `home` scenario on a free loopback port for one test."""
    async with serving(hass, load_scenario("home")) as sim:
        yield sim


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


async def setup_entry(
    hass: HomeAssistant,
    url: str,
    *,
    data: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    unique_id: str = str(HOME_MICROGRID_ID),
) -> FrequenzMicrogridConfigEntry:
    """Add an entry for the microgrid at `url` and set it up; it must load."""
    entry = microgrid_entry(url, data=data, options=options, unique_id=unique_id)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    return cast(FrequenzMicrogridConfigEntry, entry)


@pytest.fixture
async def setup_integration(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> FrequenzMicrogridConfigEntry:
    """Set up an entry connected to the simulator."""
    return await setup_entry(hass, simulator.url)


def find_entity_id(
    hass: HomeAssistant, unique_id: str, domains: Sequence[str] = ENTITY_DOMAINS
) -> str | None:
    """Return the entity id of our entity with `unique_id`, `None` if there is none."""
    registry = er.async_get(hass)
    for domain in domains:
        if found := registry.async_get_entity_id(domain, DOMAIN, unique_id):
            return found
    return None


def entity_id_of(
    hass: HomeAssistant, unique_id: str, domains: Sequence[str] = ENTITY_DOMAINS
) -> str:
    """Return the entity id of our entity with `unique_id`; it must exist."""
    found = find_entity_id(hass, unique_id, domains)
    assert found is not None, f"no entity with unique id {unique_id}"
    return found


def state_of(
    hass: HomeAssistant, unique_id: str, domains: Sequence[str] = ENTITY_DOMAINS
) -> State:
    """Return the state of our entity with `unique_id`; it must have one."""
    found = hass.states.get(entity_id_of(hass, unique_id, domains))
    assert found is not None, f"no state for unique id {unique_id}"
    return found


def state_or_none(
    hass: HomeAssistant, unique_id: str, domains: Sequence[str] = ENTITY_DOMAINS
) -> State | None:
    """Return the state of our entity with `unique_id`, `None` while it has none."""
    entity_id = find_entity_id(hass, unique_id, domains)
    return hass.states.get(entity_id) if entity_id else None


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
