"""A real Home Assistant in this process, with the integration on a microgrid URL.

Benchmarks need the integration running exactly as users run it — the real core,
state machine, registries on disk and the config flow — but without the pytest
harness (its event-loop debug mode and patched registries would distort timings)
and without the default integrations of a full bootstrap (frontend, automation, …),
which would only add noise. So this module does the core part of
`homeassistant.bootstrap.async_from_config_dict` by hand, in a throw-away config
directory, and adds the microgrid through the same config flow a user walks
through.

The simulator the integration talks to runs in a child process
(`simulator_process`), so its CPU is not charged to Home Assistant.

    async with home_assistant_with_generated_microgrid(1000) as (hass, entry):
        ...                                # measure

or, piece by piece (e.g. another simulator set-up):

    with simulator_process(1000) as (url, _sim):
        async with running_home_assistant() as hass:
            entry = await async_add_microgrid(hass, url)
            ...
            await async_remove_microgrid(hass, entry)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
import subprocess
import tempfile

from homeassistant import bootstrap, loader
from homeassistant.config_entries import (
    SOURCE_USER,
    ConfigEntries,
    ConfigEntry,
    ConfigEntryState,
)
from homeassistant.core import HomeAssistant
from homeassistant.core_config import async_process_ha_core_config
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
import psutil

from benchmarks.simulator_scale import start_server
from custom_components.frequenz_microgrid.const import CONF_URL, DOMAIN

CORE_CONFIG = {
    "name": "Benchmark microgrid",
    "unit_system": "metric",
    "time_zone": "UTC",
    "currency": "EUR",
    "country": "DE",
}
"""The `homeassistant:` section: fixed, so runs are comparable."""

SIMULATOR_STOP_TIMEOUT_S = 10.0


@contextmanager
def simulator_process(n_components: int) -> Iterator[tuple[str, psutil.Process]]:
    """Run the simulator on `generated:N` at 1 Hz in a child process.

    Yields its URL and the process (for psutil measurements of the server side).
    The child is terminated on exit, and killed if it does not stop in time.
    """
    process, url = start_server(n_components)
    try:
        yield url, psutil.Process(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=SIMULATOR_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


@asynccontextmanager
async def running_home_assistant() -> AsyncIterator[HomeAssistant]:
    """Start Home Assistant's core in a temporary config directory; stop it on exit.

    The integration is found as a custom integration because the repository root
    (where `custom_components/` lives) is on `sys.path`, as it is when benchmarks
    run with `scripts/python -m benchmarks.<name>` from the repository.
    """
    with tempfile.TemporaryDirectory(prefix="ha-bench-") as config_dir:
        hass = HomeAssistant(config_dir)
        try:
            await _async_bootstrap_core(hass)
            await hass.async_start()
            await hass.async_block_till_done()
            yield hass
        finally:
            # Stops every integration and waits for the final storage writes, so
            # nothing writes into the directory after it is removed.
            await hass.async_stop()


async def _async_bootstrap_core(hass: HomeAssistant) -> None:
    """Do what `bootstrap.async_from_config_dict` does, minus default integrations."""
    loader.async_setup(hass)
    hass.config.skip_pip = True  # the venv already has every requirement
    hass.config_entries = ConfigEntries(hass, {})
    await loader.async_get_custom_components(hass)
    await bootstrap.async_load_base_functionality(hass)
    if not await async_setup_component(hass, "homeassistant", {}):
        raise RuntimeError("Home Assistant's core integration did not set up")
    await async_process_ha_core_config(hass, dict(CORE_CONFIG))


async def async_add_microgrid(hass: HomeAssistant, url: str) -> ConfigEntry:
    """Add the microgrid at `url` through the user config flow; wait until loaded.

    Going through the flow (menu → connect → URL) gives the entry its real title and
    unique id, exactly as a user would get them.

    Raises:
        RuntimeError: the flow did not create an entry, or it did not load.
    """
    flow = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    if flow["type"] is FlowResultType.MENU:
        flow = await hass.config_entries.flow.async_configure(
            flow["flow_id"], {"next_step_id": "connect"}
        )
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_URL: url}
    )
    if result["type"] is not FlowResultType.CREATE_ENTRY:
        raise RuntimeError(f"the config flow did not create an entry: {result}")
    entry: ConfigEntry = result["result"]
    await hass.async_block_till_done()
    if entry.state is not ConfigEntryState.LOADED:
        raise RuntimeError(f"the entry did not load: {entry.state}")
    return entry


async def async_remove_microgrid(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Unload the entry (the client disconnects) before anything else stops."""
    if entry.state is ConfigEntryState.LOADED:
        await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


@asynccontextmanager
async def home_assistant_with_generated_microgrid(
    n_components: int,
) -> AsyncIterator[tuple[HomeAssistant, ConfigEntry]]:
    """Home Assistant with the integration on a `generated:N` simulator process.

    Tears down in the only safe order: unload the entry (its client disconnects),
    stop Home Assistant, then stop the simulator.
    """
    with simulator_process(n_components) as (url, _simulator):
        async with running_home_assistant() as hass:
            entry = await async_add_microgrid(hass, url)
            try:
                yield hass, entry
            finally:
                await async_remove_microgrid(hass, entry)
