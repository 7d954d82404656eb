"""User-defined circuits through the config subentry flow, over real gRPC (issue 15).

On the garage-feeder site, a user adds a 10 A circuit for two garage bays (no
meter of its own): the form refuses bad input with translated errors, the entry
reloads with the circuit, the steering holds it at the simulated chargers (only
one of the two fits the 6 A minimum twice into 10 A), and removing the circuit
reloads the entry without it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util

import custom_components.frequenz_microgrid as integration
from custom_components.frequenz_microgrid.circuit_flow import SUBENTRY_CIRCUIT
from custom_components.frequenz_microgrid.const import DOMAIN
from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import EvSpec, MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.scenario import scenario_from_dict
from tests.circuit_scenario import GARAGE_CHARGERS, GARAGE_METER, garage_scenario

from .conftest import serving, setup_entry, wait_for

MICROGRID = str(garage_scenario().microgrid_id)
BAYS = GARAGE_CHARGERS[:2]


def charger_current_a(sim: MicrogridSimulator, charger_id: int) -> float:
    sim.model.advance_to(sim.clock.now())
    charger = sim.model.component(charger_id).ev_charger
    assert charger is not None
    return charger.current_a


async def submit(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, data: dict[str, Any]
) -> dict[str, Any]:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_CIRCUIT), context={"source": "user"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return dict(
        await hass.config_entries.subentries.async_configure(result["flow_id"], data)
    )


def runtime_tree_ids(entry: FrequenzMicrogridConfigEntry) -> list[str]:
    return entry.runtime_data.engine.controller.circuit_limits.tree.ids


async def add_circuit(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    data: dict[str, Any],
    circuit_id: str,
) -> None:
    """Add a circuit through the form; wait for the entry to reload with it."""
    result = await submit(hass, entry, data)
    assert result["type"] is FlowResultType.CREATE_ENTRY, result.get("errors")
    await hass.async_block_till_done()
    await wait_for(
        lambda: (
            entry.state is ConfigEntryState.LOADED
            and circuit_id in runtime_tree_ids(entry)
        ),
        what=f"the entry reloaded with circuit {circuit_id}",
    )


async def open_reconfigure(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, subentry_id: str
) -> dict[str, Any]:
    """Open the reconfigure form of a circuit."""
    result = dict(
        await hass.config_entries.subentries.async_init(
            (entry.entry_id, SUBENTRY_CIRCUIT),
            context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
        )
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    return result


async def reconfigure(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    subentry_id: str,
    data: dict[str, Any],
) -> dict[str, Any]:
    """Change a circuit through its reconfigure form; return the result."""
    result = await open_reconfigure(hass, entry, subentry_id)
    return dict(
        await hass.config_entries.subentries.async_configure(result["flow_id"], data)
    )


BAD_FORMS: list[tuple[dict[str, Any], dict[str, str]]] = [
    ({"name": "Bays", "chargers": [str(c) for c in BAYS]}, {"base": "no_limit"}),
    (
        {"name": "grid", "chargers": [str(BAYS[0])], "fuse_a": 10},
        {"name": "name_taken"},
    ),
    (
        {"name": "Bays", "chargers": [str(BAYS[0])], "fuse_a": float("nan")},
        {"fuse_a": "not_a_positive_number"},
    ),
    (
        {"name": "Bays", "chargers": [], "fuse_a": 10},
        {"chargers": "no_chargers_chosen"},
    ),
    (
        {"name": "!!!", "chargers": [str(BAYS[0])], "fuse_a": 10},
        {"name": "invalid_name"},
    ),
]


async def test_a_user_circuit_is_added_held_and_removed(hass: HomeAssistant) -> None:
    async with serving(hass, garage_scenario()) as sim:
        entry = await setup_entry(hass, sim.url, unique_id=MICROGRID)
        for data, errors in BAD_FORMS:
            result = await submit(hass, entry, data)
            assert result["type"] is FlowResultType.FORM, data
            assert result["errors"] == errors, data
        assert entry.subentries == {}

        result = await submit(
            hass,
            entry,
            {"name": "Garage bays", "chargers": [str(c) for c in BAYS], "fuse_a": 10},
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        assert result["title"] == "Garage bays"
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        assert runtime_tree_ids(entry) == [
            "grid",
            f"meter_{GARAGE_METER}",
            "garage_bays",
        ]
        circuit = entry.runtime_data.engine.controller.circuit_limits.circuit(
            "garage_bays"
        )
        assert circuit is not None
        assert circuit.charger_ids == frozenset(BAYS)
        assert circuit.phase_limit_a == 10.0
        assert circuit.meter_id is None

        for charger_id in BAYS:
            sim.plug_ev(charger_id, EvSpec(phases=3, max_current_a=32.0))
        # 10 A hold one EV at 10 A; the other waits (two minimums are 12 A).
        await wait_for(
            lambda: sorted(charger_current_a(sim, c) for c in BAYS) == [0.0, 10.0],
            what="one bay at 10 A, the other waiting",
        )

        (subentry_id,) = entry.subentries
        # The circuit's device and entities belong to its subentry, so Home
        # Assistant lists them under it and removes them with it.
        devices = dr.async_get(hass)
        entities = er.async_get(hass)
        (device,) = [
            d
            for d in dr.async_entries_for_config_entry(devices, entry.entry_id)
            if d.name == "Garage bays"
        ]
        assert device.config_subentry_id == subentry_id
        circuit_entities = er.async_entries_for_device(entities, device.id)
        assert len(circuit_entities) == 6  # limit, 3 headrooms, energy, exceeded
        assert {e.config_subentry_id for e in circuit_entities} == {subentry_id}
        assert all(
            e.config_subentry_id is None
            for e in er.async_entries_for_config_entry(entities, entry.entry_id)
            if e.device_id != device.id
        )

        assert hass.config_entries.async_remove_subentry(entry, subentry_id)
        await hass.async_block_till_done()
        await wait_for(
            lambda: (
                entry.state is ConfigEntryState.LOADED
                and runtime_tree_ids(entry) == ["grid", f"meter_{GARAGE_METER}"]
            ),
            what="the entry reloaded without the circuit",
        )
        assert devices.async_get(device.id) is None
        assert not any(entities.async_get(e.entity_id) for e in circuit_entities)
        assert sim.unsafe_setpoint_count == 0


async def test_a_user_circuit_can_be_changed_and_keeps_its_id(
    hass: HomeAssistant,
) -> None:
    async with serving(hass, garage_scenario()) as sim:
        entry = await setup_entry(hass, sim.url, unique_id=MICROGRID)
        await add_circuit(
            hass,
            entry,
            {"name": "Garage bays", "chargers": [str(BAYS[0])], "fuse_a": 10},
            "garage_bays",
        )
        (subentry_id,) = entry.subentries

        result = await reconfigure(
            hass,
            entry,
            subentry_id,
            {
                "name": "Garage bays east",
                "chargers": [str(c) for c in BAYS],
                "power_limit_kw": 11,
            },
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done()
        await wait_for(
            lambda: (
                entry.state is ConfigEntryState.LOADED
                and (
                    c := entry.runtime_data.engine.controller.circuit_limits.circuit(
                        "garage_bays"
                    )
                )
                is not None
                and c.power_limit_w == 11_000.0
            ),
            what="the entry reloaded with the changed circuit",
        )
        circuit = entry.runtime_data.engine.controller.circuit_limits.circuit(
            "garage_bays"
        )
        assert circuit is not None
        assert circuit.name == "Garage bays east"
        assert circuit.charger_ids == frozenset(BAYS)
        assert circuit.phase_limit_a is None

        # Names stay unique as shown, renamed circuits' included; the renamed
        # circuit's old name is free again (its id is not: the new one numbers).
        for name in ("Garage bays east", "garage  BAYS east"):
            result = await submit(
                hass, entry, {"name": name, "chargers": [str(BAYS[0])], "fuse_a": 8}
            )
            assert result["type"] is FlowResultType.FORM, name
            assert result["errors"] == {"name": "name_taken"}, name
        again = {"name": "Garage bays", "chargers": [str(BAYS[0])], "fuse_a": 8}
        await add_circuit(hass, entry, again, "garage_bays_2")
        second = entry.runtime_data.engine.controller.circuit_limits.circuit(
            "garage_bays_2"
        )
        assert second is not None
        assert second.name == "Garage bays"
        (second_id,) = set(entry.subentries) - {subentry_id}
        result = await reconfigure(
            hass,
            entry,
            second_id,
            {"name": "Garage bays east", "chargers": [str(BAYS[0])], "fuse_a": 8},
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"name": "name_taken"}


async def test_a_circuit_device_of_an_older_version_moves_under_its_subentry(
    hass: HomeAssistant,
) -> None:
    """Devices and entities made before circuits were kept under their subentry.

    They are moved explicitly at set-up (re-registering a device under another
    subentry is deprecated; the autouse deprecation watch fails the test).
    """
    async with serving(hass, garage_scenario()) as sim:
        entry = await setup_entry(hass, sim.url, unique_id=MICROGRID)
        await add_circuit(
            hass,
            entry,
            {"name": "Bays", "chargers": [str(BAYS[0])], "fuse_a": 10},
            "bays",
        )
        (subentry_id,) = entry.subentries
        devices = dr.async_get(hass)
        entities = er.async_get(hass)
        (device,) = [
            d
            for d in dr.async_entries_for_config_entry(devices, entry.entry_id)
            if d.name == "Bays"
        ]
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
        # As an older version left them: under the entry, not the subentry.
        devices.async_update_device(device.id, new_config_subentry_id=None)
        for entity in er.async_entries_for_device(entities, device.id):
            entities.async_update_entity(entity.entity_id, config_subentry_id=None)
        assert devices.async_get(device.id).config_subentry_id is None  # type: ignore[union-attr]

        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        moved = devices.async_get(device.id)
        assert moved is not None
        assert moved.config_subentry_id == subentry_id
        circuit_entities = er.async_entries_for_device(entities, device.id)
        assert len(circuit_entities) == 6
        assert {e.config_subentry_id for e in circuit_entities} == {subentry_id}


async def test_a_circuit_change_reloads_the_entry_once(hass: HomeAssistant) -> None:
    """The unload that follows sends the entry's change signal again: no 2nd reload."""
    async with serving(hass, garage_scenario()) as sim:
        entry = await setup_entry(hass, sim.url, unique_id=MICROGRID)
        set_ups: list[str] = []
        set_up = integration.async_setup_entry

        async def counting(hass: HomeAssistant, entry: Any) -> bool:
            set_ups.append(entry.entry_id)
            return await set_up(hass, entry)

        with patch.object(integration, "async_setup_entry", counting):
            result = await submit(
                hass, entry, {"name": "Bays", "chargers": [str(BAYS[0])], "fuse_a": 10}
            )
            assert result["type"] is FlowResultType.CREATE_ENTRY
            await hass.async_block_till_done()
            await asyncio.sleep(1)
            await hass.async_block_till_done()
        assert set_ups == [entry.entry_id]
        assert entry.state is ConfigEntryState.LOADED


async def test_a_deleted_circuits_limits_do_not_come_back(hass: HomeAssistant) -> None:
    """A circuit added again under the same name starts without the old limits."""
    async with serving(hass, garage_scenario()) as sim:
        entry = await setup_entry(hass, sim.url, unique_id=MICROGRID)
        first = {"name": "Garage", "chargers": [str(BAYS[0])], "fuse_a": 10}
        await add_circuit(hass, entry, first, "garage")
        start = (dt_util.utcnow() - timedelta(minutes=1)).isoformat()
        await hass.services.async_call(
            DOMAIN,
            "set_power_limits",
            {
                "config_entry_id": entry.entry_id,
                "circuit": "garage",
                "steps": [{"start": start, "upper": 1234}],
            },
            blocking=True,
            return_response=True,
        )
        limits = entry.runtime_data.engine.controller.circuit_limits
        assert limits.envelope("garage") is not None
        (subentry_id,) = entry.subentries
        assert hass.config_entries.async_remove_subentry(entry, subentry_id)
        await hass.async_block_till_done()
        await wait_for(
            lambda: (
                entry.state is ConfigEntryState.LOADED
                and "garage" not in runtime_tree_ids(entry)
            ),
            what="the entry reloaded without the circuit",
        )
        again = {"name": "Garage", "chargers": [str(BAYS[1])], "power_limit_kw": 20}
        await add_circuit(hass, entry, again, "garage")
        limits = entry.runtime_data.engine.controller.circuit_limits
        assert limits.envelope("garage") is None


async def test_the_circuit_form_needs_a_loaded_entry_with_chargers(
    hass: HomeAssistant,
) -> None:
    no_chargers = scenario_from_dict(
        {
            "name": "no_chargers",
            "microgrid_id": 8,
            "topology": [
                {"id": 1, "kind": "grid", "parent": None, "fuse_current_a": 40},
                {"id": 2, "kind": "meter", "parent": 1, "base_load_w": 500},
            ],
        }
    )
    async with serving(hass, no_chargers) as sim:
        entry = await setup_entry(hass, sim.url, unique_id="8")
        result = await hass.config_entries.subentries.async_init(
            (entry.entry_id, SUBENTRY_CIRCUIT), context={"source": "user"}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "no_chargers"
        assert await hass.config_entries.async_unload(entry.entry_id)
        result = await hass.config_entries.subentries.async_init(
            (entry.entry_id, SUBENTRY_CIRCUIT), context={"source": "user"}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "entry_not_loaded"
        assert entry.subentries == {}


async def test_the_reconfigure_form_shows_the_stored_circuit(
    hass: HomeAssistant,
) -> None:
    async with serving(hass, garage_scenario()) as sim:
        entry = await setup_entry(hass, sim.url, unique_id=MICROGRID)
        stored = {
            "name": "Bays",
            "chargers": [str(c) for c in BAYS],
            "fuse_a": 16,
            "meter": str(GARAGE_METER),
        }
        await add_circuit(hass, entry, stored, "bays")
        (subentry_id,) = entry.subentries
        result = await open_reconfigure(hass, entry, subentry_id)
        shown = {
            str(marker): (marker.description or {}).get("suggested_value")
            for marker in result["data_schema"].schema
        }
        assert shown == {**stored, "fuse_a": 16.0, "power_limit_kw": None}


async def test_a_new_circuit_never_takes_a_feeders_id(hass: HomeAssistant) -> None:
    """A new circuit named like a renamed one gets no feeder's id (``meter_2``)."""
    async with serving(hass, garage_scenario()) as sim:
        entry = await setup_entry(hass, sim.url, unique_id=MICROGRID)
        meter = {"name": "Meter", "chargers": [str(BAYS[0])], "fuse_a": 10}
        await add_circuit(hass, entry, meter, "meter")
        (subentry_id,) = entry.subentries
        result = await reconfigure(hass, entry, subentry_id, {**meter, "name": "Shed"})
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done()
        await wait_for(
            lambda: entry.state is ConfigEntryState.LOADED,
            what="the entry reloaded",
        )
        await add_circuit(hass, entry, meter, "meter_3")
        circuit = entry.runtime_data.engine.controller.circuit_limits.circuit("meter_3")
        assert circuit is not None
        assert circuit.name == "Meter"
        assert circuit.origin == "user"
