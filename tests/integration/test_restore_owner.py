"""A microgrid added after another was removed never takes over its restored data.

Home Assistant restores by entity id and keeps a removed entity's data for a week;
two sites whose devices share names (every site has a "Grid connection") get the
same entity ids. Found with two real simulators, one microgrid replacing another.
"""

from __future__ import annotations

import asyncio

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.frequenz_microgrid.const import (
    CONF_REAPPLY_SETPOINTS,
    CONF_URL,
    DOMAIN,
)
from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.scenario import (
    Scenario,
    scenario_from_dict,
)
from tests.observations import setpoints_to

from .conftest import entity_id_of, serving, state_of, wait_for
from .steering_helpers import (
    BATTERY,
    BATTERY_INVERTER,
    GARAGE_WALLBOX,
    call_action,
    home_without_arrivals,
    set_number,
    wait_until_working,
)


def _home_as(microgrid_id: int) -> Scenario:
    """The home site under another microgrid id: the same device names."""
    return scenario_from_dict(home_without_arrivals(microgrid_id=microgrid_id))


async def _add(
    hass: HomeAssistant, sim: MicrogridSimulator, **options: object
) -> FrequenzMicrogridConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"Site {sim.scenario.microgrid_id}",
        unique_id=str(sim.scenario.microgrid_id),
        data={CONF_URL: sim.url},
        options=options,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    result: FrequenzMicrogridConfigEntry = entry
    return result


async def test_a_new_microgrid_never_sends_a_removed_ones_setpoint(
    hass: HomeAssistant,
) -> None:
    """Site A's battery setpoint stays with A, even with re-apply on at site C."""
    async with serving(hass, _home_as(1)) as site_a:
        entry_a = await _add(hass, site_a)
        await wait_until_working(entry_a, BATTERY)
        number_a = entity_id_of(hass, "1_batteries_setpoint", ("number",))
        await wait_for(
            lambda: state_of(hass, "1_batteries_setpoint").attributes["min"] < 0
        )
        await set_number(hass, entry_a, "batteries_setpoint", -2500)
        await hass.config_entries.async_remove(entry_a.entry_id)
        await hass.async_block_till_done()
    async with serving(hass, _home_as(7)) as site_c:
        entry_c = await _add(hass, site_c, **{CONF_REAPPLY_SETPOINTS: True})
        number_c = entity_id_of(hass, "7_batteries_setpoint", ("number",))
        assert number_c == number_a  # the names collide: the case at stake
        await wait_until_working(entry_c, BATTERY)
        await asyncio.sleep(1.5)  # a re-apply would have been sent by now
        assert state_of(hass, "7_batteries_setpoint").state == "unknown"
        assert -2500.0 not in setpoints_to(site_c, BATTERY_INVERTER)


async def test_a_new_microgrid_starts_its_own_energy_totals(
    hass: HomeAssistant,
) -> None:
    """Energy totals and energy above a limit start afresh for another microgrid."""
    async with serving(hass, _home_as(1)) as site_a:
        entry_a = await _add(hass, site_a)
        await call_action(
            hass,
            "set_power_limits",
            {
                "config_entry_id": entry_a.entry_id,
                "steps": [
                    {
                        "start": dt_util.now().isoformat(),
                        "lower": -20000,
                        "upper": -15000,
                    }
                ],
            },
        )
        above_a = entity_id_of(hass, "1_circuit_grid_energy_above_limit", ("sensor",))
        await wait_for(
            lambda: (
                float(state_of(hass, "1_circuit_grid_energy_above_limit").state) > 0.0
            ),
            timeout_s=15,
            what="energy above the limit",
        )
        pv_a = entity_id_of(hass, "1_pv_production_energy", ("sensor",))
        await wait_for(
            lambda: float(state_of(hass, "1_pv_production_energy").state) > 0.0,
            timeout_s=15,
        )
        pv_total_a = float(state_of(hass, "1_pv_production_energy").state)
        await hass.config_entries.async_remove(entry_a.entry_id)
        await hass.async_block_till_done()
    async with serving(hass, _home_as(7)) as site_c:
        await _add(hass, site_c)
        above_c = entity_id_of(hass, "7_circuit_grid_energy_above_limit", ("sensor",))
        pv_c = entity_id_of(hass, "7_pv_production_energy", ("sensor",))
        assert (above_c, pv_c) == (above_a, pv_a)
        above_limit = state_of(hass, "7_circuit_grid_energy_above_limit")
        assert float(above_limit.state) == 0.0
        await wait_for(
            lambda: state_of(hass, "7_pv_production_energy").state != "unavailable"
        )
        assert float(state_of(hass, "7_pv_production_energy").state) < pv_total_a


async def test_a_new_microgrid_shows_no_removed_ones_session_event_or_press(
    hass: HomeAssistant,
) -> None:
    """The last session event (with its record) and button press stay with A."""
    session_event = f"{GARAGE_WALLBOX}_session"
    async with serving(hass, _home_as(1)) as site_a:
        entry_a = await _add(hass, site_a)
        site_a.plug_ev(GARAGE_WALLBOX)
        await wait_for(
            lambda: (
                state_of(hass, f"1_{session_event}", ("event",)).state
                not in ("unknown", "unavailable")
            ),
            timeout_s=20,
            what="a session event at site A",
        )
        release_a = entity_id_of(hass, "1_batteries_release", ("button",))
        await hass.services.async_call(
            "button", "press", {"entity_id": release_a}, blocking=True
        )
        await hass.config_entries.async_remove(entry_a.entry_id)
        await hass.async_block_till_done()
    async with serving(hass, _home_as(7)) as site_c:
        await _add(hass, site_c)
        assert entity_id_of(hass, "7_batteries_release", ("button",)) == release_a
        assert state_of(hass, f"7_{session_event}", ("event",)).state == "unknown"
        assert state_of(hass, "7_batteries_release", ("button",)).state == "unknown"
