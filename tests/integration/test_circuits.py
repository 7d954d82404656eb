"""Circuits through Home Assistant, against the simulator over real gRPC (issue 15).

The garage-feeder site (tests/circuit_scenario.py): the feeder meter states a
32 A rating, so the integration holds it as circuit ``meter_30``. Power limits
are set and cleared through the actions, hold at the simulated feeder meter,
show on the circuit's entities, survive a reload, and bad input changes
nothing. `serving` asserts no ampere-second above any rating afterwards.
"""

from __future__ import annotations

from datetime import timedelta
import math
from typing import Any

from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util
import pytest

from custom_components.frequenz_microgrid.const import DOMAIN
from custom_components.frequenz_microgrid.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import EvSpec, MicrogridSimulator
from tests.circuit_scenario import (
    BATTERY,
    BATTERY_INVERTER,
    GARAGE_BASE_LOAD_W,
    GARAGE_CHARGERS,
    GARAGE_CIRCUIT,
    GARAGE_METER,
    HOUSE_LOAD_W,
    VOLTAGE_V,
    YARD_CHARGER,
    garage_scenario,
    shaving_scenario,
)

from .conftest import microgrid_entry, serving, setup_entry, state_of, wait_for
from .steering_helpers import call_action, wait_until_working

MICROGRID = str(garage_scenario().microgrid_id)


def garage_power_w(sim: MicrogridSimulator) -> float:
    sim.model.advance_to(sim.clock.now())
    return sum(sim.model.component(GARAGE_METER).phases.currents(VOLTAGE_V)) * VOLTAGE_V


def charger_current_a(sim: MicrogridSimulator, charger_id: int) -> float:
    sim.model.advance_to(sim.clock.now())
    charger = sim.model.component(charger_id).ev_charger
    assert charger is not None
    return charger.current_a


def circuit_state(hass: HomeAssistant, key: str, circuit: str = GARAGE_CIRCUIT) -> str:
    return state_of(hass, f"{MICROGRID}_circuit_{circuit}_{key}").state


def limits_call(entry: FrequenzMicrogridConfigEntry, **data: Any) -> dict[str, Any]:
    return {"config_entry_id": entry.entry_id, "circuit": GARAGE_CIRCUIT, **data}


def iso(minutes_from_now: float) -> str:
    return (dt_util.utcnow() + timedelta(minutes=minutes_from_now)).isoformat()


async def start(
    hass: HomeAssistant, sim: MicrogridSimulator
) -> FrequenzMicrogridConfigEntry:
    entry = await setup_entry(hass, sim.url, unique_id=MICROGRID)
    for charger_id in (*GARAGE_CHARGERS, YARD_CHARGER):
        sim.plug_ev(charger_id, EvSpec(phases=3, max_current_a=32.0))
    await wait_for(
        lambda: all(charger_current_a(sim, c) > 8.0 for c in GARAGE_CHARGERS),
        what="the garage EVs charging",
    )
    return entry


async def test_a_stepped_limit_holds_the_garage_and_its_entities_show_it(
    hass: HomeAssistant,
) -> None:
    async with serving(hass, garage_scenario()) as sim:
        entry = await start(hass, sim)
        device = dr.async_get(hass).async_get_device_by_identifier(
            (DOMAIN, f"{MICROGRID}_circuit_{GARAGE_CIRCUIT}"), entry.entry_id
        )
        assert device is not None
        assert device.name == "Garage feeder"

        response = await call_action(
            hass,
            "set_power_limits",
            limits_call(
                entry,
                steps=[
                    {"start": iso(-1), "upper": 17_000},
                    {"start": iso(60), "lower": 0, "upper": 9000},
                ],
                tolerance=1000,
            ),
        )
        assert response["circuit"] == GARAGE_CIRCUIT
        assert response["in_force"]["upper"] == 17_000.0
        assert response["in_force"]["lower"] == 0.0
        assert response["envelope"]["tolerance"] == 1000.0
        assert len(response["envelope"]["steps"]) == 2
        assert response["next_change"] is not None
        assert response["warnings"] == []

        # The garage drew ~22 kW before: it is beyond the limit until the
        # chargers follow their new setpoints, a tick or two later.
        await wait_for(
            lambda: (
                garage_power_w(sim) <= 17_000.0 + 1.0
                and circuit_state(hass, "limit_in_force") == "17000.0"
                and circuit_state(hass, "limit_exceeded") == "off"
            ),
            what="the garage held at 17 kW",
        )
        share_a = (17_000.0 - GARAGE_BASE_LOAD_W) / (3 * VOLTAGE_V) / 3
        for charger_id in GARAGE_CHARGERS:
            assert abs(charger_current_a(sim, charger_id) - share_a) < 0.5
        assert float(circuit_state(hass, "energy_above_limit")) >= 0.0
        assert math.isfinite(float(circuit_state(hass, "headroom_l1")))

        # A limit below the garage's own other load cannot be held: the response
        # says so, the chargers stop, and the circuit shows the limit exceeded.
        response = await call_action(
            hass,
            "set_power_limits",
            limits_call(
                entry, steps=[{"start": iso(-1), "upper": 1000}], tolerance=500
            ),
        )
        assert len(response["warnings"]) == 1
        assert "cannot be held" in response["warnings"][0]
        await wait_for(
            lambda: (
                all(charger_current_a(sim, c) == 0.0 for c in GARAGE_CHARGERS)
                and circuit_state(hass, "limit_exceeded") == "on"
            ),
            what="the garage chargers off and the limit exceeded",
        )
        await wait_for(
            lambda: float(circuit_state(hass, "energy_above_limit")) > 0.0,
            what="energy above the limit counted",
        )

        # The energy counter continues its total across a reload (restored).
        counted = float(circuit_state(hass, "energy_above_limit"))
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        assert float(circuit_state(hass, "energy_above_limit")) >= counted
        await wait_for(
            lambda: float(circuit_state(hass, "energy_above_limit")) > counted,
            what="energy above the limit counted on after the reload",
        )

        response = await call_action(hass, "clear_power_limits", limits_call(entry))
        assert response == {"circuit": GARAGE_CIRCUIT, "cleared": True}
        # The chargers switched off wait out their on/off dwell (60 s) before
        # they charge again; the circuit has no limit any more at once.
        await wait_for(
            lambda: (
                circuit_state(hass, "limit_in_force") == "unknown"
                and circuit_state(hass, "limit_exceeded") == "off"
            ),
            what="the garage without a limit",
        )
        assert sim.unsafe_setpoint_count == 0


async def test_the_limit_sensor_follows_a_new_tolerance_and_next_change(
    hass: HomeAssistant,
) -> None:
    """Same limit in force, other tolerance and next change: the attributes follow."""
    async with serving(hass, garage_scenario()) as sim:
        entry = await setup_entry(hass, sim.url, unique_id=MICROGRID)

        def limit() -> State:
            return state_of(
                hass, f"{MICROGRID}_circuit_{GARAGE_CIRCUIT}_limit_in_force"
            )

        await call_action(
            hass,
            "set_power_limits",
            limits_call(
                entry, steps=[{"start": iso(-1), "upper": 12_000}], tolerance=700
            ),
        )
        await wait_for(
            lambda: (
                limit().state == "12000.0" and limit().attributes["tolerance"] == 700.0
            ),
            what="the limit with its tolerance",
        )
        assert limit().attributes["next_change"] is None
        response = await call_action(
            hass,
            "set_power_limits",
            limits_call(
                entry,
                steps=[
                    {"start": iso(-1), "upper": 12_000},
                    {"start": iso(30), "upper": 3000},
                ],
                tolerance=50,
            ),
        )
        await wait_for(
            lambda: (
                limit().attributes["tolerance"] == 50.0
                and limit().attributes["next_change"] is not None
            ),
            what="the new tolerance and next change shown",
        )
        assert limit().state == "12000.0"
        shown = dt_util.parse_datetime(limit().attributes["next_change"])
        assert shown == dt_util.parse_datetime(response["next_change"])


BAD_LIMITS: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown circuit",
        {
            "circuit": "meter_999",
            "steps": [{"start": "2026-01-01T00:00:00Z", "upper": 1}],
        },
        "unknown_circuit",
    ),
    (
        "unordered",
        {
            "steps": [
                {"start": "2026-01-02T00:00:00Z", "upper": 1},
                {"start": "2026-01-01T00:00:00Z", "upper": 1},
            ]
        },
        "envelope_unordered_steps",
    ),
    (
        "duplicate start",
        {
            "steps": [
                {"start": "2026-01-01T00:00:00Z", "upper": 1},
                {"start": "2026-01-01T00:00:00Z", "upper": 2},
            ]
        },
        "envelope_duplicate_start",
    ),
    (
        "lower above upper",
        {"steps": [{"start": "2026-01-01T00:00:00Z", "lower": 5, "upper": 1}]},
        "envelope_lower_above_upper",
    ),
    (
        "NaN upper",
        {"steps": [{"start": "2026-01-01T00:00:00Z", "upper": "nan"}]},
        "envelope_not_finite",
    ),
    (
        "infinite tolerance",
        {"steps": [{"start": "2026-01-01T00:00:00Z", "upper": 1}], "tolerance": "inf"},
        "envelope_not_finite",
    ),
    (
        "negative tolerance",
        {"steps": [{"start": "2026-01-01T00:00:00Z", "upper": 1}], "tolerance": -1},
        "envelope_negative_tolerance",
    ),
]


async def test_bad_limits_are_refused_and_change_nothing(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    async with serving(hass, garage_scenario()) as sim:
        entry = await setup_entry(hass, sim.url, unique_id=MICROGRID)
        limits = entry.runtime_data.engine.controller.circuit_limits
        await call_action(
            hass,
            "set_power_limits",
            limits_call(entry, steps=[{"start": iso(-1), "upper": 20_000}]),
        )
        before = limits.envelopes
        stored = dict(hass_storage[f"{DOMAIN}.circuit_limits.{entry.entry_id}"])
        for name, data, key in BAD_LIMITS:
            with pytest.raises(ServiceValidationError) as raised:
                await call_action(hass, "set_power_limits", limits_call(entry, **data))
            assert raised.value.translation_key == key, name
            assert str(raised.value), name  # translated message
            assert limits.envelopes == before, name
            assert hass_storage[f"{DOMAIN}.circuit_limits.{entry.entry_id}"] == stored
        with pytest.raises(ServiceValidationError) as raised:
            await call_action(
                hass, "clear_power_limits", limits_call(entry, circuit="nowhere")
            )
        assert raised.value.translation_key == "unknown_circuit"
        assert limits.envelopes == before


async def test_limits_survive_a_reload_without_their_past_steps(
    hass: HomeAssistant,
) -> None:
    async with serving(hass, garage_scenario()) as sim:
        entry = await setup_entry(hass, sim.url, unique_id=MICROGRID)
        await call_action(
            hass,
            "set_power_limits",
            limits_call(
                entry,
                steps=[
                    {"start": iso(-120), "upper": 30_000},
                    {"start": iso(-60), "upper": 20_000},
                    {"start": iso(60), "upper": 10_000},
                ],
                tolerance=2000,
            ),
        )
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        limits = entry.runtime_data.engine.controller.circuit_limits
        envelope = limits.envelope(GARAGE_CIRCUIT)
        assert envelope is not None
        assert [s.upper_w for s in envelope.steps] == [20_000.0, 10_000.0]
        assert envelope.tolerance_w == 2000.0
        await wait_for(
            lambda: circuit_state(hass, "limit_in_force") == "20000.0",
            what="the restored limit in force",
        )
        diagnostics = await async_get_config_entry_diagnostics(hass, entry)
        garage = next(c for c in diagnostics["circuits"] if c["id"] == GARAGE_CIRCUIT)
        assert garage["meter"] == GARAGE_METER
        assert garage["envelope"]["tolerance_w"] == 2000.0
        assert garage["status"]["upper_limit_w"] == 20_000.0


async def test_the_grid_limit_is_shaved_by_the_battery_and_the_response_says_so(
    hass: HomeAssistant,
) -> None:
    """9 kW of household under a 6 kW grid limit: the battery gives the rest."""
    async with serving(hass, shaving_scenario()) as sim:
        entry = await setup_entry(
            hass, sim.url, unique_id=str(shaving_scenario().microgrid_id)
        )
        await wait_until_working(entry, BATTERY)
        # The warning judges the load measured now: wait until it is known.
        limits = entry.runtime_data.engine.controller.circuit_limits

        def household_measured() -> bool:
            status = limits.statuses.get("grid")
            return status is not None and status.uncontrollable_w > 8000.0

        await wait_for(household_measured, what="the household load measured")
        response = await call_action(
            hass,
            "set_power_limits",
            {
                "config_entry_id": entry.entry_id,
                "circuit": "grid",
                "steps": [{"start": iso(-1), "upper": 6000}],
                "tolerance": 500,
            },
        )
        (warning,) = response["warnings"]
        assert "batteries must discharge the rest" in warning

        def grid_w() -> float:
            sim.model.advance_to(sim.clock.now())
            return sim.model.component(2).active_power_w

        await wait_for(
            lambda: abs(grid_w() - 6000.0) < 300.0, what="the grid at the 6 kW limit"
        )
        sim.model.advance_to(sim.clock.now())
        assert sim.model.component(BATTERY_INVERTER).active_power_w < -(
            HOUSE_LOAD_W - 6000.0 - 300.0
        )
        assert sim.unsafe_setpoint_count == 0


@pytest.mark.parametrize(
    "stored", [["not", "a", "dict"], {"envelopes": ["a", "list"]}, {"envelopes": 7}]
)
async def test_a_damaged_limits_file_is_ignored_and_the_entry_loads(
    hass: HomeAssistant, hass_storage: dict[str, Any], stored: Any
) -> None:
    async with serving(hass, garage_scenario()) as sim:
        entry = microgrid_entry(sim.url, unique_id=MICROGRID)
        key = f"{DOMAIN}.circuit_limits.{entry.entry_id}"
        hass_storage[key] = {"version": 1, "key": key, "data": stored}
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        loaded: FrequenzMicrogridConfigEntry = entry
        assert loaded.runtime_data.engine.controller.circuit_limits.envelopes == {}
        await call_action(
            hass,
            "set_power_limits",
            limits_call(loaded, steps=[{"start": iso(-1), "upper": 20_000}]),
        )
        assert (await hass.config_entries.async_unload(entry.entry_id)) is True
