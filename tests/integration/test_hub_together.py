"""The charging hub's pieces together, the way a user runs them (issue 15).

Circuits, steering, sessions and occupancy each have their own tests; here the
shipped `depot` scenario runs fast with its own random garage traffic, so several
EVs charge behind the 80 A garage feeder (circuit ``meter_50``) at once, and
everything the hub records is checked against the simulator's own truth.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
import json
import math
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest

from custom_components.frequenz_microgrid.const import DOMAIN
from custom_components.frequenz_microgrid.simulator import EvSpec, MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.physics.ev_charger import (
    CableState,
)
from custom_components.frequenz_microgrid.simulator.scenario import (
    load_scenario,
    scenario_from_dict,
)

from .conftest import entity_id_of, serving, setup_entry, state_of, wait_for
from .steering_helpers import (
    EventLog,
    call_action,
    home_without_arrivals,
    setup_steerable,
)

DEPOT = load_scenario("depot")
DEPOT_ID = str(DEPOT.microgrid_id)
GARAGE_CHARGERS = tuple(range(51, 61))
ALL_CHARGERS = (*range(31, 43), *GARAGE_CHARGERS)
# Simulated seconds per real second: the garage's first three EVs (seed 1)
# arrive at 2 205, 2 464 and 2 541 s, the one at 52 leaves at 5 277 s.
DEPOT_SPEED = 300.0


def plugged(sim: MicrogridSimulator) -> set[int]:
    """Chargers whose cable is in, by the simulator's own state."""
    sim.model.advance_to(sim.clock.now())
    now = sim.clock.now()
    found = set()
    for charger_id in ALL_CHARGERS:
        charger = sim.model.component(charger_id).ev_charger
        assert charger is not None
        if charger.cable_state(now) is not CableState.UNPLUGGED:
            found.add(charger_id)
    return found


def garage_charging(sim: MicrogridSimulator) -> int:
    sim.model.advance_to(sim.clock.now())
    count = 0
    for charger_id in GARAGE_CHARGERS:
        charger = sim.model.component(charger_id).ev_charger
        assert charger is not None
        if charger.current_a > 1.0:
            count += 1
    return count


async def test_the_depot_garage_charges_several_evs_within_its_feeder(
    hass: HomeAssistant,
) -> None:
    """Random garage traffic at speed: no overload, sessions and occupancy true."""
    async with serving(hass, DEPOT, speed=DEPOT_SPEED, sample_period_s=0.05) as sim:
        sessions = EventLog(hass)
        await setup_entry(hass, sim.url, unique_id=DEPOT_ID)
        most_at_once = 0

        def three_in_the_garage() -> bool:
            nonlocal most_at_once
            most_at_once = max(most_at_once, garage_charging(sim))
            return most_at_once >= 3

        await wait_for(three_in_the_garage, timeout_s=15, what="3 garage EVs")
        await wait_for(
            lambda: (
                any(
                    r.charger_id in GARAGE_CHARGERS for r in sim.model.finished_sessions
                )
                and len(sessions.of_type("session_ended"))
                >= len(sim.model.finished_sessions)
            ),
            timeout_s=15,
            what="a garage session to end and be recorded",
        )
        await wait_for(
            lambda: (
                int(state_of(hass, f"{DEPOT_ID}_chargers_occupied", ("sensor",)).state)
                == len(plugged(sim))
            ),
            what="occupancy to match the plugged EVs",
        )
        # Each session HA recorded is one the simulator finished, with its energy.
        truth: dict[int, list[float]] = {}
        for finished in sorted(
            sim.model.finished_sessions, key=lambda r: r.plugged_at_s
        ):
            truth.setdefault(finished.charger_id, []).append(finished.charged_wh / 1000)
        assert (
            len(sessions.of_type("session_ended"))
            == len(sim.model.finished_sessions)
            > 0
        )
        for record in sessions.of_type("session_ended"):
            expected = truth[int(record["charger_id"])].pop(0)
            assert float(record["energy_kwh"]) == pytest.approx(expected, abs=1e-3)
        sessions.remove()
        assert sim.unsafe_setpoint_count == 0
    assert sim.overload_ampere_seconds == 0.0


# -- a stepped grid limit, charger modes and battery-for-EVs at once -----------------

SOLAR_BAY, BOOST_BAY, OFF_BAY, FAST_BAY = 31, 32, 33, 34
DEPOT_GRID_METER = 2
DEPOT_EV_METER = 30
DEPOT_BATTERY_METER = 10
LIMIT_TOLERANCE_W = 1000.0


def power_w(sim: MicrogridSimulator, component_id: int) -> float:
    sim.model.advance_to(sim.clock.now())
    return sim.model.component(component_id).active_power_w


def hub_entity(hass: HomeAssistant, key: str, component: int | None = None) -> str:
    middle = "" if component is None else f"{component}_"
    return entity_id_of(hass, f"{DEPOT_ID}_{middle}{key}", ("select", "switch"))


async def test_a_stepped_grid_limit_with_modes_and_no_battery_for_evs(
    hass: HomeAssistant,
) -> None:
    """The grid limit holds; the battery covers the site, never the EVs; off is off.

    Which wins when peak shaving meets battery-for-EVs off: both hold at once. The
    EVs yield first (their steering counts a battery discharge as absent), so the
    peak shaver only ever asks the batteries for what the unsteered loads draw
    above the limit, and the battery-for-EVs bound (the site's load without EVs
    and batteries) never cuts into that.
    """
    async with serving(hass, DEPOT, speed=1.0, sample_period_s=0.2) as sim:
        entry = await setup_entry(hass, sim.url, unique_id=DEPOT_ID)
        for bay in (SOLAR_BAY, BOOST_BAY, OFF_BAY, FAST_BAY):
            sim.plug_ev(bay, EvSpec(phases=3, max_current_a=32.0))
        await hass.services.async_call(
            "switch",
            "turn_off",
            {"entity_id": hub_entity(hass, "battery_for_evs")},
            blocking=True,
        )
        for bay, mode in ((SOLAR_BAY, "solar"), (OFF_BAY, "off")):
            await hass.services.async_call(
                "select",
                "select_option",
                {"entity_id": hub_entity(hass, "charger_mode", bay), "option": mode},
                blocking=True,
            )
        await call_action(
            hass,
            "set_charger_mode",
            {
                "config_entry_id": entry.entry_id,
                "charger": BOOST_BAY,
                "mode": "boost",
                "boost_minutes": 30,
            },
        )
        await wait_for(
            lambda: (
                power_w(sim, BOOST_BAY) > 10_000 and power_w(sim, FAST_BAY) > 10_000
            ),
            what="the boosted and the fast EV charging",
        )
        # A first step the EVs can meet by yielding, then one below the rest of
        # the site's own load: the EVs stop and the batteries cover the excess.
        before_w = power_w(sim, DEPOT_GRID_METER)
        site_w = (
            before_w
            - power_w(sim, DEPOT_EV_METER)
            - power_w(sim, 50)
            - power_w(sim, DEPOT_BATTERY_METER)
        )
        first_w, second_w = before_w - 8000.0, site_w - 3000.0
        now = dt_util.utcnow()
        step_at = now + timedelta(seconds=6)
        await call_action(
            hass,
            "set_power_limits",
            {
                "config_entry_id": entry.entry_id,
                "circuit": "grid",
                "steps": [
                    {
                        "start": (now - timedelta(minutes=1)).isoformat(),
                        "upper": first_w,
                    },
                    {"start": step_at.isoformat(), "upper": second_w},
                ],
                "tolerance": LIMIT_TOLERANCE_W,
            },
        )
        worst: dict[str, float] = {"over_w": -math.inf, "battery_into_evs_w": 0.0}

        def observe() -> None:
            grid = power_w(sim, DEPOT_GRID_METER)
            evs = power_w(sim, DEPOT_EV_METER) + power_w(sim, 50)
            battery = power_w(sim, DEPOT_BATTERY_METER)
            others = grid - evs - battery  # the site without EVs and batteries
            # What the batteries discharge beyond what the rest of the site takes
            # flows to the EVs as far as they draw (the rest to the grid).
            discharge = max(0.0, -battery)
            into_evs = min(max(evs, 0.0), discharge - max(others, 0.0))
            worst["battery_into_evs_w"] = max(worst["battery_into_evs_w"], into_evs)
            limit = second_w if dt_util.utcnow() >= step_at else first_w
            worst["over_w"] = max(worst["over_w"], grid - limit)
            assert power_w(sim, OFF_BAY) == 0.0

        await wait_for(
            lambda: power_w(sim, DEPOT_GRID_METER) <= first_w + LIMIT_TOLERANCE_W,
            what="the grid within the first step",
        )
        # From 2 s after the tick that applied each step on (a setpoint and the
        # simulated charger's answer), within the limit + tolerance. The grace
        # starts at that tick, not at the step's clock time: a loop stalled by
        # a busy machine delays the tick, not the reaction it starts.
        limits = entry.runtime_data.engine.controller.circuit_limits

        def second_step_applied() -> bool:
            status = limits.statuses.get("grid")
            return (
                status is not None
                and status.step is not None
                and status.step.upper_w == second_w
            )

        await asyncio.sleep(2.0)
        applied_at: datetime | None = None
        while applied_at is None or dt_util.utcnow() < applied_at + timedelta(
            seconds=6
        ):
            now = dt_util.utcnow()
            if applied_at is None and second_step_applied():
                applied_at = now
            if now < step_at or (
                applied_at is not None and now >= applied_at + timedelta(seconds=2)
            ):
                observe()
            assert now < step_at + timedelta(seconds=30), "the step never applied"
            await asyncio.sleep(0.2)
        assert worst["over_w"] <= LIMIT_TOLERANCE_W, worst
        assert worst["battery_into_evs_w"] <= 500.0, worst
        # Below the site's own load no EV may draw, boosted or not: the limit
        # wins over the boost, and the batteries (for the site, not the EVs,
        # which draw nothing) hold the grid at it.
        assert power_w(sim, BOOST_BAY) == 0.0
        assert power_w(sim, DEPOT_BATTERY_METER) < -1000.0
        assert sim.unsafe_setpoint_count == 0


# -- a booking at a solar-mode charger ---------------------------------------------

HOME_GARAGE = 6


async def test_a_booked_car_at_a_solar_charger_keeps_its_booking_and_session_says_so(
    hass: HomeAssistant,
) -> None:
    """Booked, solar mode, the car plugs in within grace: the session names it."""
    data = home_without_arrivals()
    async with serving(hass, scenario_from_dict(data)) as sim:
        entry = await setup_steerable(hass, sim)
        started = EventLog(hass)
        await call_action(
            hass,
            "set_charger_mode",
            {
                "config_entry_id": entry.entry_id,
                "charger": HOME_GARAGE,
                "mode": "solar",
            },
        )
        now = dt_util.now()
        booked = await call_action(
            hass,
            "reserve_charger",
            {
                "config_entry_id": entry.entry_id,
                "charger": HOME_GARAGE,
                "start": now.isoformat(),
                "end": (now + timedelta(hours=1)).isoformat(),
                "vehicle": "Zoe",
            },
        )
        booking_id = booked["reservation_id"]
        sim.plug_ev(HOME_GARAGE, EvSpec(phases=3, max_current_a=32.0))
        await wait_for(
            lambda: len(started.of_type("session_started")) == 1,
            what="the session to start",
        )
        assert started.of_type("session_started")[0]["booking_id"] == booking_id
        hub = entry.runtime_data.reservations
        assert hub is not None
        await wait_for(
            lambda: getattr(hub.book.get(booking_id), "claimed", False),
            what="the booking to see its car",
        )
        sessions = entry.runtime_data.sessions
        assert sessions is not None
        session = sessions.tracker.current_or_last(HOME_GARAGE)
        assert session is not None
        assert session.is_open
        assert session.booking_id == booking_id
        started.remove()
        assert sim.unsafe_setpoint_count == 0


# -- unload and reload with everything active ---------------------------------------

HOME_DRIVEWAY = 7


async def test_a_reload_with_everything_active_writes_and_restores_it_all(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Modes, battery-for-EVs, a grid limit, a booking and an open session survive."""
    data = home_without_arrivals()
    async with serving(hass, scenario_from_dict(data)) as sim:
        entry = await setup_steerable(hass, sim)
        for charger, mode in ((HOME_GARAGE, "solar"), (HOME_DRIVEWAY, "off")):
            await call_action(
                hass,
                "set_charger_mode",
                {"config_entry_id": entry.entry_id, "charger": charger, "mode": mode},
            )
        await hass.services.async_call(
            "switch",
            "turn_off",
            {
                "entity_id": entity_id_of(
                    hass, f"{data['microgrid_id']}_battery_for_evs", ("switch",)
                )
            },
            blocking=True,
        )
        now = dt_util.now()
        await call_action(
            hass,
            "set_power_limits",
            {
                "config_entry_id": entry.entry_id,
                "circuit": "grid",
                "steps": [
                    {"start": (now - timedelta(minutes=1)).isoformat(), "upper": 20_000}
                ],
                "tolerance": 1000,
            },
        )
        booked = await call_action(
            hass,
            "reserve_charger",
            {
                "config_entry_id": entry.entry_id,
                "charger": HOME_GARAGE,
                "start": now.isoformat(),
                "end": (now + timedelta(hours=1)).isoformat(),
            },
        )
        sim.plug_ev(HOME_GARAGE, EvSpec(phases=3, max_current_a=32.0))
        sessions = entry.runtime_data.sessions
        assert sessions is not None
        await wait_for(
            lambda: HOME_GARAGE in sessions.tracker.open, what="the session to open"
        )
        session = sessions.tracker.current_or_last(HOME_GARAGE)
        assert session is not None
        assert session.is_open
        session_id = session.session_id

        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
        # Everything written on unload, nothing left running.
        prefix = f"{DOMAIN}.{entry.entry_id}"
        stored_sessions = json.dumps(hass_storage[f"{prefix}.sessions"]["data"])
        assert '"open": [{"charger_id": 6' in stored_sessions
        assert booked["reservation_id"] in stored_sessions
        stored_book = json.dumps(hass_storage[f"{prefix}.reservations"]["data"])
        assert booked["reservation_id"] in stored_book
        assert f"{prefix}.charging_hub" in hass_storage
        assert f"{DOMAIN}.circuit_limits.{entry.entry_id}" in hass_storage

        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        controller = entry.runtime_data.engine.controller
        assert controller.charger_modes.state(HOME_GARAGE).mode.value == "solar"
        assert controller.charger_modes.state(HOME_DRIVEWAY).mode.value == "off"
        assert controller.battery_for_evs.allowed is False
        envelope = controller.circuit_limits.envelope("grid")
        assert envelope is not None
        step = envelope.in_force(dt_util.utcnow().timestamp())
        assert step is not None
        assert step.upper_w == 20_000.0
        hub = entry.runtime_data.reservations
        assert hub is not None
        assert hub.book.get(booked["reservation_id"]) is not None
        reloaded = entry.runtime_data.sessions
        assert reloaded is not None
        restored = reloaded.tracker.current_or_last(HOME_GARAGE)
        assert restored is not None
        assert restored.session_id == session_id
        assert restored.is_open
        assert restored.booking_id == booked["reservation_id"]
        assert sim.unsafe_setpoint_count == 0
