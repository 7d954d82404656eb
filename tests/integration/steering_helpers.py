"""Helpers for the steering-entity tests: set up an entry, find and read entities.

The steering entities are found by unique id (entity ids follow the device names of
the scenario), and read as plain values so the tests compare with the simulator's
own physics and recorded setpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import entity_registry as er

from custom_components.frequenz_microgrid.const import DOMAIN
from custom_components.frequenz_microgrid.coordinator import (
    FrequenzMicrogridConfigEntry,
)
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator

from .conftest import microgrid_entry, wait_for

BATTERY_INVERTER, BATTERY, PV_INVERTER, GARAGE_WALLBOX, DRIVEWAY_WALLBOX = 3, 4, 5, 6, 7
"""Components of the `home` scenario."""


async def setup_entry(
    hass: HomeAssistant,
    sim: MicrogridSimulator,
    *,
    options: dict[str, Any] | None = None,
    unique_id: str | None = None,
) -> FrequenzMicrogridConfigEntry:
    """Set up an entry for `sim` with every platform."""
    kwargs: dict[str, Any] = {"options": options}
    if unique_id is not None:
        kwargs["unique_id"] = unique_id
    entry = microgrid_entry(sim.url, **kwargs)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    return cast(FrequenzMicrogridConfigEntry, entry)


def entity_id(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, key: str
) -> str:
    """Return the entity id of the entry's entity with unique id `{entry}_{key}`."""
    registry = er.async_get(hass)
    unique_id = f"{entry.unique_id}_{key}"
    for domain in ("number", "button", "sensor", "binary_sensor"):
        if found := registry.async_get_entity_id(domain, DOMAIN, unique_id):
            return found
    raise AssertionError(f"no entity with unique id {unique_id}")


def state(hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, key: str) -> State:
    """Return the state of the entity with unique id `{entry}_{key}`."""
    found = hass.states.get(entity_id(hass, entry, key))
    assert found is not None
    return found


async def wait_for_state(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    key: str,
    expected: str,
    *,
    timeout_s: float = 10.0,
) -> None:
    """Wait until the entity with unique id `{entry}_{key}` shows `expected`."""
    await wait_for(
        lambda: state(hass, entry, key).state == expected,
        timeout_s=timeout_s,
        what=f"{key} to be {expected} (is {state(hass, entry, key).state})",
    )


def setpoints_to(sim: MicrogridSimulator, component_id: int) -> list[float]:
    """Return every active-power setpoint the simulator received for a component."""
    return [s.power_w for s in sim.setpoints if s.component_id == component_id]


async def wait_for_setpoint(
    sim: MicrogridSimulator, component_id: int, power: float, *, after: int = 0
) -> None:
    """Wait until the component's latest setpoint (past index `after`) is `power`."""

    def arrived() -> bool:
        received = setpoints_to(sim, component_id)[after:]
        return bool(received) and abs(received[-1] - power) < 1e-6

    await wait_for(arrived, what=f"setpoint {power} W at component {component_id}")


async def set_number(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, key: str, value: float
) -> None:
    """Set a number entity through Home Assistant's own action."""
    await hass.services.async_call(
        "number",
        "set_value",
        {"entity_id": entity_id(hass, entry, key), "value": value},
        blocking=True,
    )


async def press(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, key: str
) -> None:
    """Press a button entity through Home Assistant's own action."""
    await hass.services.async_call(
        "button", "press", {"entity_id": entity_id(hass, entry, key)}, blocking=True
    )


def number_value(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, key: str
) -> float | None:
    """Return a number's value, `None` while unknown."""
    shown = state(hass, entry, key).state
    return None if shown == "unknown" else float(shown)


def steering_entries(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry
) -> Sequence[er.RegistryEntry]:
    """Return the registry entries of the entry's steering entities."""
    keys = (
        "_setpoint",
        "_limit",
        "_release",
        "_target_power",
        "_granted_",
        "_last_result",
        "_excluded",
    )
    return sorted(
        (
            e
            for e in er.async_entries_for_config_entry(
                er.async_get(hass), entry.entry_id
            )
            if any(k in e.unique_id for k in keys)
        ),
        key=lambda e: e.entity_id,
    )
