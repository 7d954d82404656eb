"""Charger modes and the battery for EVs, through Home Assistant, on the simulator.

Issue 15, capability 2, as a user meets it: the `home` microgrid (40 A fuse, two
3-phase wallboxes, 8 kW PV, a 10 kWh battery, a 600 W household) built with
`scenario_from_dict`, served over real gRPC. The verdicts come from the
simulator: the setpoints it received and what its model carries; its overload and
unsafe-setpoint counters stay 0 in every test.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
import math
from typing import Any, cast
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
import pytest

from custom_components.frequenz_microgrid.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.frequenz_microgrid.engine.hub.modes import ChargerMode
from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import EvSpec, MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.scenario import (
    scenario_from_dict,
)
from tests.observations import held_setpoint, setpoints_to

from .conftest import entity_id_of, microgrid_entry, serving, wait_for
from .steering_helpers import (
    BATTERY,
    BATTERY_INVERTER,
    DRIVEWAY_WALLBOX,
    GARAGE_WALLBOX,
    GRID_METER,
    call_action,
    home_without_arrivals,
    last_setpoint,
    propose,
    set_number,
    setup_steerable,
    wait_for_state,
)

HOUSEHOLD_W = 600.0
WATTS_PER_AMP = 3 * 230.0
MIN_W = 6 * WATTS_PER_AMP
DOMAINS = ("select", "switch", "number", "binary_sensor", "sensor")


def with_fuse(data: dict[str, Any], fuse_a: int) -> dict[str, Any]:
    for row in data["topology"]:
        if row["kind"] == "grid":
            row["fuse_current_a"] = fuse_a
    return data


async def _entry(
    hass: HomeAssistant, sim: MicrogridSimulator
) -> FrequenzMicrogridConfigEntry:
    return await setup_steerable(hass, sim, GARAGE_WALLBOX, DRIVEWAY_WALLBOX, BATTERY)


def _entity(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    key: str,
    component: int | None = None,
) -> str:
    middle = "" if component is None else f"{component}_"
    return entity_id_of(hass, f"{entry.unique_id}_{middle}{key}", DOMAINS)


async def select_mode(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, charger: int, mode: str
) -> None:
    await hass.services.async_call(
        "select",
        "select_option",
        {"entity_id": _entity(hass, entry, "charger_mode", charger), "option": mode},
        blocking=True,
    )


async def switch(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, key: str, on: bool
) -> None:
    await hass.services.async_call(
        "switch",
        "turn_on" if on else "turn_off",
        {"entity_id": _entity(hass, entry, key)},
        blocking=True,
    )


def grid_power_w(sim: MicrogridSimulator) -> float:
    sim.model.advance_to(sim.clock.now())
    return sim.model.component(GRID_METER).active_power_w


def charger_power_w(sim: MicrogridSimulator, charger: int) -> float:
    sim.model.advance_to(sim.clock.now())
    return sim.model.component(charger).active_power_w


# -- off -----------------------------------------------------------------------------


async def test_off_holds_a_plugged_ev_at_0_w_at_the_simulator(
    hass: HomeAssistant,
) -> None:
    async with serving(hass, scenario_from_dict(home_without_arrivals())) as sim:
        entry = await _entry(hass, sim)
        sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))
        await wait_for(
            lambda: (held_setpoint(sim, GARAGE_WALLBOX) or 0.0) > MIN_W,
            what="the EV to charge fast",
        )

        await select_mode(hass, entry, GARAGE_WALLBOX, "off")

        await wait_for(lambda: held_setpoint(sim, GARAGE_WALLBOX) == 0.0, what="0 W")
        await wait_for(
            lambda: charger_power_w(sim, GARAGE_WALLBOX) == 0.0, what="no current"
        )
        off_at = len(setpoints_to(sim, GARAGE_WALLBOX)) - 1
        await _sleep_ticks(hass, 3)
        # Held at 0 W (a released charger would charge at full power again),
        # with the EV still plugged in: its session goes on.
        assert held_setpoint(sim, GARAGE_WALLBOX) == 0.0
        assert charger_power_w(sim, GARAGE_WALLBOX) == 0.0
        assert set(setpoints_to(sim, GARAGE_WALLBOX)[off_at:]) == {0.0}
        mode = hass.states.get(_entity(hass, entry, "charger_mode", GARAGE_WALLBOX))
        assert mode is not None
        assert mode.state == "off"
        plugged = hass.states.get(_entity(hass, entry, "ev_connected", GARAGE_WALLBOX))
        assert plugged is not None
        assert plugged.state == "on"
        assert sim.unsafe_setpoint_count == 0


# -- solar ---------------------------------------------------------------------------


async def test_solar_follows_the_pv_surplus_and_stops_without_it(
    hass: HomeAssistant,
) -> None:
    scenario = home_without_arrivals(
        ev_arrivals=[
            {
                "charger": GARAGE_WALLBOX,
                "arrive_s": 4,
                "capacity_wh": 60000,
                "soc_pct": 30,
                "phases": 3,
                "max_current_a": 32,
            }
        ]
    )
    async with serving(hass, scenario_from_dict(scenario)) as sim:
        entry = await _entry(hass, sim)
        # Hysteresis of this test: start at once, stop after 3 s.
        await set_number(hass, entry, "solar_start_delay", 0)
        await set_number(hass, entry, "solar_stop_delay", 3)
        await select_mode(hass, entry, GARAGE_WALLBOX, "solar")
        # Noon: the PV makes its 7 kW peak, the house takes 600 W.
        surplus = 7000.0 - HOUSEHOLD_W

        await wait_for(
            lambda: (held_setpoint(sim, GARAGE_WALLBOX) or 0.0) > 0.0,
            timeout_s=20.0,
            what="the arriving EV to charge from the sun",
        )
        await wait_for(
            lambda: (
                abs(charger_power_w(sim, GARAGE_WALLBOX) - surplus) <= WATTS_PER_AMP
            ),
            what=f"the EV to draw the {surplus} W surplus",
        )
        # Not from the grid: the site still exports (or is balanced).
        assert grid_power_w(sim) <= WATTS_PER_AMP
        hub = (await async_get_config_entry_diagnostics(hass, entry))["charging_hub"]
        assert hub["chargers"][str(GARAGE_WALLBOX)]["mode"] == "solar"
        assert hub["chargers"][str(GARAGE_WALLBOX)]["solar_charging"] is True
        assert abs(hub["solar_surplus_w"] - surplus) <= WATTS_PER_AMP

        # A cloud (the PV curtailed to 5 kW): the EV follows the surplus down.
        await call_action(hass, "propose_power", propose(entry, "pv", power=-5000.0))
        smaller = 5000.0 - HOUSEHOLD_W
        await wait_for(
            lambda: (
                abs(charger_power_w(sim, GARAGE_WALLBOX) - smaller) <= WATTS_PER_AMP
            ),
            what=f"the EV to follow the surplus down to {smaller} W",
        )
        assert grid_power_w(sim) <= WATTS_PER_AMP

        # Less than the minimum (6 A) left: after the stop delay, 0 W.
        await call_action(hass, "propose_power", propose(entry, "pv", power=-2000.0))
        await wait_for(
            lambda: held_setpoint(sim, GARAGE_WALLBOX) == 0.0,
            what="solar charging to stop without surplus",
        )
        assert sim.unsafe_setpoint_count == 0


# -- boost ---------------------------------------------------------------------------


async def test_boost_wins_the_minimum_current_when_the_fuse_only_fits_one(
    hass: HomeAssistant,
) -> None:
    # 10 A per phase: one EV at 6 A fits, two do not.
    scenario = with_fuse(home_without_arrivals(start_time_of_day="22:00"), 10)
    async with serving(hass, scenario_from_dict(scenario)) as sim:
        entry = await _entry(hass, sim)
        sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))
        await wait_for(
            lambda: (held_setpoint(sim, GARAGE_WALLBOX) or 0.0) >= MIN_W,
            what="the first EV to charge",
        )
        sim.plug_ev(DRIVEWAY_WALLBOX, EvSpec(max_current_a=32.0))

        response = await call_action(
            hass,
            "set_charger_mode",
            {
                "config_entry_id": entry.entry_id,
                "charger": DRIVEWAY_WALLBOX,
                "mode": "boost",
                "boost_minutes": 30,
            },
        )
        assert response["mode"] == "boost"
        assert response["after_boost"] == "fast"

        await wait_for(
            lambda: (
                (held_setpoint(sim, DRIVEWAY_WALLBOX) or 0.0) >= MIN_W
                and held_setpoint(sim, GARAGE_WALLBOX) == 0.0
            ),
            what="the boosted EV to take the fuse",
        )
        select = hass.states.get(_entity(hass, entry, "charger_mode", DRIVEWAY_WALLBOX))
        assert select is not None
        assert select.state == "boost"
        assert select.attributes["after_boost"] == "fast"
        assert select.attributes["boost_until"] is not None
        assert sim.overload_ampere_seconds == 0.0
        assert sim.unsafe_setpoint_count == 0


# -- battery for EVs -----------------------------------------------------------------


async def test_the_battery_does_not_discharge_into_the_evs_when_disallowed(
    hass: HomeAssistant,
) -> None:
    # Night: no PV, so every watt the battery gives beyond the house feeds the EV.
    async with serving(
        hass, scenario_from_dict(home_without_arrivals(start_time_of_day="22:00"))
    ) as sim:
        entry = await _entry(hass, sim)
        await call_action(
            hass, "propose_power", propose(entry, "batteries", power=-5000.0)
        )
        assert last_setpoint(sim, BATTERY_INVERTER) == -5000.0
        sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))
        await wait_for(
            lambda: charger_power_w(sim, GARAGE_WALLBOX) > MIN_W,
            what="the EV to charge",
        )

        await switch(hass, entry, "battery_for_evs", on=False)
        sent_at = len(setpoints_to(sim, BATTERY_INVERTER))
        await wait_for(
            lambda: (
                (last_setpoint(sim, BATTERY_INVERTER) or -math.inf)
                >= -HOUSEHOLD_W - 100.0
            ),
            what="the battery to cover only the house",
        )
        # From then on it never gives more than the house takes.
        settled = len(setpoints_to(sim, BATTERY_INVERTER))
        await _sleep_ticks(hass, 3)
        assert all(
            power >= -HOUSEHOLD_W - 100.0
            for power in setpoints_to(sim, BATTERY_INVERTER)[settled - 1 :]
        )
        assert len(setpoints_to(sim, BATTERY_INVERTER)) > sent_at
        hub = (await async_get_config_entry_diagnostics(hass, entry))["charging_hub"]
        assert hub["battery_for_evs"]["allowed"] is False
        assert 0.0 <= hub["battery_for_evs"]["discharge_limit_w"] <= HOUSEHOLD_W + 100
        # The grid carries the EV: the battery fed the house only.
        assert grid_power_w(sim) >= charger_power_w(sim, GARAGE_WALLBOX) - 200.0

        # Allowed again, but not below a floor above the battery's 50 %.
        await switch(hass, entry, "battery_for_evs", on=True)
        await wait_for(
            lambda: last_setpoint(sim, BATTERY_INVERTER) == -5000.0,
            what="the battery to feed the EV again",
        )
        await set_number(hass, entry, "battery_floor_soc_for_evs", 60)
        await wait_for(
            lambda: (
                (last_setpoint(sim, BATTERY_INVERTER) or -math.inf)
                >= -HOUSEHOLD_W - 100.0
            ),
            what="the floor SoC to hold the battery back",
        )
        assert sim.unsafe_setpoint_count == 0


async def _sleep_ticks(hass: HomeAssistant, ticks: int) -> None:
    for _ in range(ticks):
        await asyncio.sleep(1.0)
        await hass.async_block_till_done()


# -- the action's validation and restarts --------------------------------------------


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"charger": 99, "mode": "off"}, "unknown_charger"),
        ({"charger": BATTERY, "mode": "off"}, "unknown_charger"),
        (
            {"charger": GARAGE_WALLBOX, "mode": "boost", "boost_minutes": 0},
            "invalid_boost_duration",
        ),
        (
            {"charger": GARAGE_WALLBOX, "mode": "boost", "boost_minutes": "nan"},
            "invalid_boost_duration",
        ),
        (
            {"charger": GARAGE_WALLBOX, "mode": "boost", "boost_minutes": 1441},
            "invalid_boost_duration",
        ),
        (
            {"charger": GARAGE_WALLBOX, "mode": "fast", "boost_minutes": 10},
            "boost_minutes_without_boost",
        ),
    ],
)
async def test_set_charger_mode_refuses_bad_input_and_changes_nothing(
    hass: HomeAssistant, data: dict[str, Any], key: str
) -> None:
    async with serving(hass, scenario_from_dict(home_without_arrivals())) as sim:
        entry = await _entry(hass, sim)
        modes = entry.runtime_data.engine.controller.charger_modes
        before = modes.states()
        with pytest.raises(ServiceValidationError) as refused:
            await call_action(
                hass,
                "set_charger_mode",
                {"config_entry_id": entry.entry_id, **data},
            )
        assert refused.value.translation_key == key
        assert str(refused.value)  # the translated message, placeholders filled
        assert modes.states() == before


async def test_modes_and_hub_settings_are_kept_across_a_restart(
    hass: HomeAssistant,
) -> None:
    async with serving(hass, scenario_from_dict(home_without_arrivals())) as sim:
        entry = await _entry(hass, sim)
        await select_mode(hass, entry, GARAGE_WALLBOX, "off")
        await call_action(
            hass,
            "set_charger_mode",
            {
                "config_entry_id": entry.entry_id,
                "charger": DRIVEWAY_WALLBOX,
                "mode": "boost",
                "boost_minutes": 90,
            },
        )
        await hass.services.async_call(
            "switch",
            "turn_on",
            {"entity_id": _entity(hass, entry, "solar_min_current", GARAGE_WALLBOX)},
            blocking=True,
        )
        await switch(hass, entry, "battery_for_evs", on=False)
        await set_number(hass, entry, "boost_duration", 45)
        await set_number(hass, entry, "solar_stop_delay", 600)

        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()

        controller = entry.runtime_data.engine.controller
        modes = controller.charger_modes
        assert modes.mode(GARAGE_WALLBOX) is ChargerMode.OFF
        assert modes.state(GARAGE_WALLBOX).solar_min_current
        assert modes.mode(DRIVEWAY_WALLBOX) is ChargerMode.BOOST
        remaining = modes.boost_remaining_s(DRIVEWAY_WALLBOX)
        assert remaining is not None
        assert (
            timedelta(minutes=89)
            < timedelta(seconds=remaining)
            <= timedelta(minutes=90)
        )
        assert modes.default_boost_s == 45 * 60.0
        assert modes.solar.stop_delay_s == 600.0
        assert controller.battery_for_evs.allowed is False
        garage = hass.states.get(_entity(hass, entry, "charger_mode", GARAGE_WALLBOX))
        assert garage is not None
        assert garage.state == "off"
        # Off from the first setpoint on: never a moment of charging after the restart.
        sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))
        await wait_for_state(hass, entry, f"{GARAGE_WALLBOX}_ev_connected", "on")
        await _sleep_ticks(hass, 2)
        assert held_setpoint(sim, GARAGE_WALLBOX) == 0.0
        assert charger_power_w(sim, GARAGE_WALLBOX) == 0.0


@pytest.mark.parametrize(
    ("stored", "garage"),
    [
        ({"chargers": {"6": {"mode": "warp"}}}, ChargerMode.FAST),
        ({"boost_s": "nan"}, ChargerMode.FAST),
        ({"battery_for_evs": {"floor_soc_pct": 250}}, ChargerMode.FAST),
        ({"chargers": "oops"}, ChargerMode.FAST),
        ({"solar_delays_s": {"start": -1}}, ChargerMode.FAST),
        ({"chargers": {"6": "off"}}, ChargerMode.FAST),
        (
            {
                "chargers": {"6": {"mode": "off"}, "7": {"mode": "warp"}},
                "boost_s": "nan",
                "battery_for_evs": {"floor_soc_pct": 250},
            },
            ChargerMode.OFF,
        ),
    ],
)
async def test_damaged_hub_settings_leave_the_defaults_and_the_entry_loads(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    stored: dict[str, Any],
    garage: ChargerMode,
) -> None:
    async with serving(hass, scenario_from_dict(home_without_arrivals())) as sim:
        entry = microgrid_entry(sim.url, unique_id=str(sim.scenario.microgrid_id))
        hass_storage[f"frequenz_microgrid.{entry.entry_id}.charging_hub"] = {
            "version": 1,
            "minor_version": 1,
            "key": f"frequenz_microgrid.{entry.entry_id}.charging_hub",
            "data": stored,
        }
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()

        loaded = cast(FrequenzMicrogridConfigEntry, entry)
        controller = loaded.runtime_data.engine.controller
        # Each setting and each charger on its own: a damaged one keeps its
        # default, the good ones apply (a charger set to off stays off).
        assert controller.charger_modes.mode(GARAGE_WALLBOX) is garage
        assert controller.charger_modes.mode(DRIVEWAY_WALLBOX) is ChargerMode.FAST
        assert controller.charger_modes.default_boost_s == 3600.0
        assert controller.battery_for_evs.floor_soc_pct == 0.0


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("boost_duration", "nan"),
        ("battery_floor_soc_for_evs", "nan"),
        ("solar_start_delay", "nan"),
    ],
)
async def test_a_nan_hub_setting_is_refused_and_changes_nothing(
    hass: HomeAssistant, key: str, value: str
) -> None:
    async with serving(hass, scenario_from_dict(home_without_arrivals())) as sim:
        entry = await _entry(hass, sim)
        controller = entry.runtime_data.engine.controller
        battery = controller.battery_for_evs
        solar = controller.charger_modes.solar
        before = (
            controller.charger_modes.default_boost_s,
            battery.floor_soc_pct,
            solar.start_delay_s,
        )
        shown = hass.states.get(_entity(hass, entry, key))
        assert shown is not None
        with pytest.raises(ServiceValidationError) as refused:
            await hass.services.async_call(
                "number",
                "set_value",
                {"entity_id": _entity(hass, entry, key), "value": value},
                blocking=True,
            )
        assert refused.value.translation_key == "invalid_hub_setting"
        # The value and the range, not the engine's English text.
        placeholders = refused.value.translation_placeholders
        assert placeholders is not None
        assert placeholders["value"] == "nan"
        assert set(placeholders) == {"value", "min", "max"}
        assert float(placeholders["min"]) < float(placeholders["max"])
        assert "nan" in str(refused.value)
        assert (
            controller.charger_modes.default_boost_s,
            battery.floor_soc_pct,
            solar.start_delay_s,
        ) == before
        after = hass.states.get(_entity(hass, entry, key))
        assert after is not None
        assert after.state == shown.state


async def test_solar_at_night_charges_only_with_the_minimum_current_option(
    hass: HomeAssistant,
) -> None:
    async with serving(
        hass, scenario_from_dict(home_without_arrivals(start_time_of_day="22:00"))
    ) as sim:
        entry = await _entry(hass, sim)
        await set_number(hass, entry, "solar_start_delay", 0)
        await select_mode(hass, entry, GARAGE_WALLBOX, "solar")
        sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))
        await wait_for_state(hass, entry, f"{GARAGE_WALLBOX}_ev_connected", "on")
        await _sleep_ticks(hass, 3)
        # No sun: nothing.
        assert held_setpoint(sim, GARAGE_WALLBOX) == 0.0
        assert charger_power_w(sim, GARAGE_WALLBOX) == 0.0

        await hass.services.async_call(
            "switch",
            "turn_on",
            {"entity_id": _entity(hass, entry, "solar_min_current", GARAGE_WALLBOX)},
            blocking=True,
        )
        # The minimum (6 A on three phases), and not a watt more.
        await wait_for(
            lambda: held_setpoint(sim, GARAGE_WALLBOX) == MIN_W,
            what="the minimum current",
        )
        await _sleep_ticks(hass, 2)
        assert held_setpoint(sim, GARAGE_WALLBOX) == MIN_W
        assert sim.unsafe_setpoint_count == 0


async def test_the_boost_minutes_are_checked_by_the_engine_check(
    hass: HomeAssistant,
) -> None:
    """The action keeps no copy of the bounds: a tighter engine check refuses too."""
    async with serving(hass, scenario_from_dict(home_without_arrivals())) as sim:
        entry = await _entry(hass, sim)
        modes = entry.runtime_data.engine.controller.charger_modes
        before = modes.states()

        def at_most_five_minutes(duration_s: float) -> None:
            if not duration_s <= 300.0:
                raise ValueError("too long")

        with (
            patch(
                "custom_components.frequenz_microgrid.charger_mode_actions"
                ".check_boost_duration",
                at_most_five_minutes,
            ),
            pytest.raises(ServiceValidationError) as refused,
        ):
            await call_action(
                hass,
                "set_charger_mode",
                {
                    "config_entry_id": entry.entry_id,
                    "charger": GARAGE_WALLBOX,
                    "mode": "boost",
                    "boost_minutes": 10,
                },
            )
        assert refused.value.translation_key == "invalid_boost_duration"
        assert modes.states() == before
