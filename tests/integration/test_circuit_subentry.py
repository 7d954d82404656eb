"""User-defined circuits through the config subentry flow, over real gRPC (issue 15).

On the garage-feeder site, a user adds a 10 A circuit for two garage bays (no
meter of its own): the form refuses bad input with translated errors, the entry
reloads with the circuit, the steering holds it at the simulated chargers (only
one of the two fits the 6 A minimum twice into 10 A), and removing the circuit
reloads the entry without it.
"""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.frequenz_microgrid.circuit_flow import SUBENTRY_CIRCUIT
from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import EvSpec, MicrogridSimulator
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
        assert hass.config_entries.async_remove_subentry(entry, subentry_id)
        await hass.async_block_till_done()
        await wait_for(
            lambda: (
                entry.state is ConfigEntryState.LOADED
                and runtime_tree_ids(entry) == ["grid", f"meter_{GARAGE_METER}"]
            ),
            what="the entry reloaded without the circuit",
        )
        assert sim.unsafe_setpoint_count == 0


async def test_a_user_circuit_can_be_changed_and_keeps_its_id(
    hass: HomeAssistant,
) -> None:
    async with serving(hass, garage_scenario()) as sim:
        entry = await setup_entry(hass, sim.url, unique_id=MICROGRID)
        result = await submit(
            hass,
            entry,
            {"name": "Garage bays", "chargers": [str(BAYS[0])], "fuse_a": 10},
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
        (subentry_id,) = entry.subentries

        result = dict(
            await hass.config_entries.subentries.async_init(
                (entry.entry_id, SUBENTRY_CIRCUIT),
                context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
            )
        )
        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == "reconfigure"
        result = dict(
            await hass.config_entries.subentries.async_configure(
                result["flow_id"],
                {
                    "name": "Garage bays east",
                    "chargers": [str(c) for c in BAYS],
                    "power_limit_kw": 11,
                },
            )
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
