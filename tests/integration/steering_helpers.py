"""Helpers for the tests that steer the simulator: actions, entities, setpoints.

The steering entities are found by unique id (entity ids follow the device names of
the scenario), and read as plain values so the tests compare with the simulator's
own physics and recorded setpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
from typing import Any

from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State
from homeassistant.helpers import entity_registry as er

from custom_components.frequenz_microgrid.const import DOMAIN
from custom_components.frequenz_microgrid.engine.health import ComponentHealth
from custom_components.frequenz_microgrid.engine.hub.sessions import ChargingSession
from custom_components.frequenz_microgrid.runtime import (
    FrequenzMicrogridConfigEntry,
)
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.scenario import SCENARIO_DIR
from tests.observations import setpoints_to

from .conftest import entity_id_of, setup_entry, state_of, wait_for

GRID_METER, BATTERY_INVERTER, BATTERY, PV_INVERTER = 2, 3, 4, 5
GARAGE_WALLBOX, DRIVEWAY_WALLBOX, HOUSEHOLD = 6, 7, 8
"""Components of the `home` scenario."""


def home_without_arrivals(**changes: Any) -> dict[str, Any]:
    """The shipped `home` scenario as tables, without its EV arrivals, changed.

    A fresh copy each call: tests change it freely. Without the arrivals only the
    EVs a test plugs in itself charge.
    """
    data: dict[str, Any] = json.loads((SCENARIO_DIR / "home.json").read_text())
    data["ev_arrivals"] = []
    data.update(changes)
    return data


# --- actions -----------------------------------------------------------------------


async def call_action(
    hass: HomeAssistant, service: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Call one of the integration's actions and return its response."""
    response = await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


def propose(
    entry: FrequenzMicrogridConfigEntry, pool: str, **data: Any
) -> dict[str, Any]:
    """Return the data of a `propose_power` call for `entry`'s `pool`."""
    return {"config_entry_id": entry.entry_id, "pool": pool, **data}


async def wait_until_working(
    entry: FrequenzMicrogridConfigEntry, *component_ids: int
) -> None:
    """Wait until the controller sees every one of `component_ids` working."""
    controller = entry.runtime_data.engine.controller

    def all_working() -> bool:
        health = {c.component_id: c.health for c in controller.status().components}
        return all(health.get(cid) is ComponentHealth.WORKING for cid in component_ids)

    await wait_for(all_working, what=f"components {component_ids} working")


async def setup_steerable(
    hass: HomeAssistant, sim: MicrogridSimulator, *included: int
) -> FrequenzMicrogridConfigEntry:
    """Set up an entry on `sim`; wait until none of `included` is excluded any more.

    A component is excluded from steering until its first data has arrived, so
    this is when a setpoint for it can take effect.
    """
    entry = await setup_entry(hass, sim.url, unique_id=str(sim.scenario.microgrid_id))
    for component in included:
        await wait_for_state(hass, entry, f"{component}_excluded", "off")
    return entry


# --- entities ----------------------------------------------------------------------


def entity_id(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, key: str
) -> str:
    """Return the entity id of the entry's entity with unique id `{entry}_{key}`."""
    return entity_id_of(hass, f"{entry.unique_id}_{key}")


def state(hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, key: str) -> State:
    """Return the state of the entity with unique id `{entry}_{key}`."""
    return state_of(hass, f"{entry.unique_id}_{key}")


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


class EventLog:
    """What event entities fired, in order: each event's attributes.

    Only real firings count: an event entity's state is the time it last fired, so
    a state write that keeps the state (or makes it unavailable) is no new event.
    `entity_id` limits the log to one entity; `None` logs every event entity.
    """

    def __init__(self, hass: HomeAssistant, entity_id: str | None = None) -> None:
        self.fired: list[dict[str, Any]] = []

        def on_change(event: Event[EventStateChangedData]) -> None:
            new = event.data["new_state"]
            if (
                new is None
                or not new.entity_id.startswith("event.")
                or (entity_id is not None and new.entity_id != entity_id)
                or "event_type" not in new.attributes
                or new.state == "unavailable"
            ):
                return
            old = event.data["old_state"]
            if old is None or old.state != new.state:
                self.fired.append(dict(new.attributes))

        self.remove = hass.bus.async_listen(EVENT_STATE_CHANGED, on_change)

    def types(self) -> list[str]:
        """The event types fired, in order."""
        return [attributes["event_type"] for attributes in self.fired]

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        """The attributes of the events of `event_type`, in order."""
        return [a for a in self.fired if a["event_type"] == event_type]


# --- what reached the simulator ----------------------------------------------------


def last_setpoint(sim: MicrogridSimulator, component_id: int) -> float | None:
    """Return the last active-power setpoint `component_id` received, if any."""
    received = setpoints_to(sim, component_id)
    return received[-1] if received else None


async def wait_for_setpoint(
    sim: MicrogridSimulator, component_id: int, power: float, *, after: int = 0
) -> None:
    """Wait until the component's latest setpoint (past index `after`) is `power`."""

    def arrived() -> bool:
        received = setpoints_to(sim, component_id)[after:]
        return bool(received) and abs(received[-1] - power) < 1e-6

    await wait_for(arrived, what=f"setpoint {power} W at component {component_id}")


async def plug_ev_and_wait_for_charging(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    sim: MicrogridSimulator,
    charger: int,
    *,
    above_w: float = 0.0,
) -> float:
    """Plug an EV into `charger`; wait until it is sent more than `above_w`.

    Returns the setpoint it charges at, with no limit from Home Assistant yet.
    """
    sim.plug_ev(charger)
    await wait_for_state(hass, entry, f"{charger}_excluded", "off")
    await wait_for(
        lambda: (last_setpoint(sim, charger) or 0.0) > above_w,
        what=f"the EV at {charger} to charge at more than {above_w} W",
    )
    charging = last_setpoint(sim, charger)
    assert charging is not None
    return charging


async def open_session(
    entry: FrequenzMicrogridConfigEntry, charger_id: int
) -> ChargingSession:
    """Wait for the charger's session to open and return it.

    The steering reads a charger's plug state from the telemetry at once; its
    session opens with the next published snapshot (a tick later on a busy
    machine), which is what a target or a booking binds to.
    """
    sessions = entry.runtime_data.sessions
    assert sessions is not None
    await wait_for(
        lambda: charger_id in sessions.tracker.open,
        timeout_s=10.0,
        what=f"the session of charger {charger_id} to open",
    )
    return sessions.tracker.open[charger_id]
