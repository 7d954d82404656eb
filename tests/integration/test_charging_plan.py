"""The charging plan through Home Assistant, on the simulator over real gRPC.

Issue 16 §3/§4 as a user meets it: the `home` microgrid (40 A fuse, two 32 A
wallboxes) without its scripted arrivals; a price sensor with Nord Pool's
``raw_today`` rows chosen in the options; a booking with an energy; the garage
wallbox in *smart* mode. The verdicts come from the simulator (the setpoints it
holds) and from `get_charging_plan`'s response. A demo entry plans with its
simulator's own price and PV series and starts with the scenario's bookings, one
of them at risk. The simulator's overload and unsafe counters stay 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
from datetime import datetime, timedelta
import math
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.frequenz_microgrid.const import (
    CONF_DEFAULT_PRIORITY,
    CONF_DEMO,
    CONF_FRESHNESS_S,
    CONF_PRICE_ENTITY,
    CONF_PV_FORECAST_ENTITY,
    CONF_REAPPLY_SETPOINTS,
    CONF_RESERVATION_GRACE_MIN,
    CONF_SCENARIO,
    DEFAULT_FRESHNESS_S,
    DEFAULT_PRIORITY,
    DOMAIN,
)
from custom_components.frequenz_microgrid.engine.hub.modes import ChargerMode
from custom_components.frequenz_microgrid.engine.hub.planner import SLOT_S
from custom_components.frequenz_microgrid.hub_plan import HubPlanner
from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import EvSpec, MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.scenario import (
    Kind,
    generated_component,
    scenario_from_dict,
)
from tests.observations import held_setpoint

from .conftest import entity_id_of, find_entity_id, serving, setup_entry, wait_for
from .steering_helpers import (
    DRIVEWAY_WALLBOX,
    GARAGE_WALLBOX,
    call_action,
    home_without_arrivals,
    open_session,
)

PRICE_SENSOR = "sensor.test_day_ahead_price"
NEW_CHARGER = 22
MIN_W = 6 * 3 * 230.0


def _slot_start(offset: int) -> datetime:
    """The start of the 15-minute slot `offset` slots from the current one."""
    now = dt_util.utcnow().timestamp()
    start = math.floor(now / SLOT_S) * SLOT_S + offset * SLOT_S
    return dt_util.utc_from_timestamp(start)


def _set_prices(hass: HomeAssistant, cheap_slots: set[int]) -> None:
    """Nord Pool's attribute form: 0.40 per kWh, 0.05 in `cheap_slots` (16 slots)."""
    rows = [
        {
            "start": _slot_start(i).isoformat(),
            "end": _slot_start(i + 1).isoformat(),
            "value": 0.05 if i in cheap_slots else 0.40,
        }
        for i in range(16)
    ]
    hass.states.async_set(
        PRICE_SENSOR,
        "0.4",
        {"raw_today": rows, "raw_tomorrow": [], "unit": "kWh", "currency": "EUR"},
    )


@contextlib.asynccontextmanager
async def _priced_home(
    hass: HomeAssistant, cheap_slots: set[int], speed: float = 1.0
) -> AsyncIterator[tuple[MicrogridSimulator, FrequenzMicrogridConfigEntry]]:
    """The home microgrid without arrivals, planning with the test's price sensor."""
    _set_prices(hass, cheap_slots)
    scenario = scenario_from_dict(home_without_arrivals())
    async with serving(hass, scenario, speed=speed) as sim:
        entry = await setup_entry(
            hass,
            sim.url,
            unique_id=str(sim.scenario.microgrid_id),
            options={CONF_PRICE_ENTITY: PRICE_SENSOR},
        )
        yield sim, entry


@contextlib.asynccontextmanager
async def _home_planner(
    hass: HomeAssistant,
) -> AsyncIterator[tuple[MicrogridSimulator, FrequenzMicrogridConfigEntry, HubPlanner]]:
    """The home microgrid without arrivals and its entry's planner."""
    async with serving(hass, scenario_from_dict(home_without_arrivals())) as sim:
        entry = await setup_entry(
            hass, sim.url, unique_id=str(sim.scenario.microgrid_id)
        )
        planner = entry.runtime_data.planner
        assert planner is not None
        yield sim, entry, planner


async def _book_garage(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    energy_kwh: float,
    *,
    end_in: timedelta,
    start_in: timedelta = timedelta(0),
) -> None:
    """Book the garage wallbox from now + `start_in` to now + `end_in`."""
    now = dt_util.now()
    await call_action(
        hass,
        "reserve_charger",
        {
            "config_entry_id": entry.entry_id,
            "charger": GARAGE_WALLBOX,
            "start": (now + start_in).isoformat(),
            "end": (now + end_in).isoformat(),
            "energy_kwh": energy_kwh,
        },
    )


async def _plan(hass: HomeAssistant, entry_id: str, **data: Any) -> dict[str, Any]:
    return await call_action(
        hass, "get_charging_plan", {"config_entry_id": entry_id, **data}
    )


async def test_smart_mode_waits_for_the_cheap_slot_then_charges(
    hass: HomeAssistant,
) -> None:
    async with _priced_home(hass, cheap_slots={6}) as (sim, entry):
        await _book_garage(hass, entry, 2.0, end_in=timedelta(hours=3))
        # In fast mode (the default) the car charges at once, whatever the
        # prices: the plan says so, and books it from the start of the booking.
        plan = await _plan(hass, entry.entry_id, refresh=True)
        (need,) = plan["chargers"][str(GARAGE_WALLBOX)]
        assert need["runs"] == "at_once"
        assert {s["source"] for s in need["slots"]} == {"at_once"}
        await hass.services.async_call(
            "select",
            "select_option",
            {
                "entity_id": entity_id_of(
                    hass, f"{entry.unique_id}_{GARAGE_WALLBOX}_charger_mode", ["select"]
                ),
                "option": "smart",
            },
            blocking=True,
        )

        async def planned_in_smart_mode() -> bool:
            plan = await _plan(hass, entry.entry_id)
            return [n["runs"] for n in plan["chargers"][str(GARAGE_WALLBOX)]] == [
                "planned"
            ]

        # The mode change alone re-plans (no refresh asked for).
        for _ in range(100):
            if await planned_in_smart_mode():
                break
            await asyncio.sleep(0.1)
        assert await planned_in_smart_mode()
        sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))

        plan = await _plan(hass, entry.entry_id, refresh=True)
        (need,) = plan["chargers"][str(GARAGE_WALLBOX)]
        assert plan["sources"]["price"] == PRICE_SENSOR
        assert need["unmet_kwh"] == 0.0
        assert need["planned_kwh"] == pytest.approx(2.0, abs=1e-3)
        assert {s["source"] for s in need["slots"]} == {"cheap"}
        assert {s["price"] for s in need["slots"]} == {0.05}
        assert need["cost"] == pytest.approx(0.05 * 2.0, abs=1e-3)
        # Now is not the cheap slot: the smart charger is held at 0 W.
        await wait_for(
            lambda: held_setpoint(sim, GARAGE_WALLBOX) == 0.0, what="held at 0 W"
        )
        # The charger's "planned power" sensor shows the slot now and the plan.
        sensor = hass.states.get(
            entity_id_of(
                hass, f"{entry.unique_id}_{GARAGE_WALLBOX}_planned_power", ["sensor"]
            )
        )
        assert sensor is not None
        assert float(sensor.state) == 0.0
        (shown,) = sensor.attributes["needs"]
        assert shown["slots"] == need["slots"]

        # The price sensor changes: now is the cheapest slot; the hub re-plans.
        _set_prices(hass, cheap_slots={0, 1})
        await wait_for(
            lambda: (held_setpoint(sim, GARAGE_WALLBOX) or 0.0) >= MIN_W,
            what="charging in the cheap slot now",
        )
        plan = await _plan(hass, entry.entry_id, charger=GARAGE_WALLBOX)
        (need,) = plan["chargers"][str(GARAGE_WALLBOX)]
        first = need["slots"][0]
        first_start = dt_util.parse_datetime(first["start"])
        assert first_start is not None
        assert first_start <= dt_util.utcnow()
        assert first["source"] == "cheap"
        # Never more than the plan's power (and never an unsafe setpoint).
        assert (held_setpoint(sim, GARAGE_WALLBOX) or 0.0) <= first["power_w"] + 1.0
        assert sim.unsafe_setpoint_count == 0


async def test_a_boost_is_planned_at_once_until_it_ends_then_as_smart(
    hass: HomeAssistant,
) -> None:
    async with _priced_home(hass, cheap_slots={6}) as (_sim, entry):
        await _book_garage(hass, entry, 20.0, end_in=timedelta(hours=3))
        for mode, extra in (("smart", {}), ("boost", {"boost_minutes": 20})):
            response = await call_action(
                hass,
                "set_charger_mode",
                {
                    "config_entry_id": entry.entry_id,
                    "charger": GARAGE_WALLBOX,
                    "mode": mode,
                    **extra,
                },
            )
        assert response["after_boost"] == "smart"
        boost_until = dt_util.parse_datetime(response["boost_until"])
        assert boost_until is not None

        plan = await _plan(hass, entry.entry_id, refresh=True)
        (need,) = plan["chargers"][str(GARAGE_WALLBOX)]
        # After the boost the car is smart again: the plan says so, charges
        # at once only in the slots the boost reaches, and the rest cheaply.
        assert need["runs"] == "planned"
        planned_until = dt_util.parse_datetime(need["boost_until"])
        assert planned_until is not None
        assert abs((planned_until - boost_until).total_seconds()) < 2.0
        at_once = [s for s in need["slots"] if s["source"] == "at_once"]
        assert at_once
        for slot in at_once:
            start = dt_util.parse_datetime(slot["start"])
            assert start is not None
            assert start < boost_until
        assert any(s["source"] == "cheap" for s in need["slots"])
        assert need["unmet_kwh"] == 0.0


async def test_a_car_charging_outside_the_plan_leaves_the_smart_car_what_it_leaves(
    hass: HomeAssistant,
) -> None:
    """A fast car without a booking draws now: the plan holds its current.

    The plan follows the car by itself (no refresh asked for): held once it
    draws, let go once it is full and draws nothing, still plugged in.
    """
    async with _priced_home(hass, cheap_slots={0, 1, 2, 3}, speed=2.0) as (
        sim,
        entry,
    ):
        await call_action(
            hass,
            "set_charger_mode",
            {
                "config_entry_id": entry.entry_id,
                "charger": GARAGE_WALLBOX,
                "mode": "smart",
            },
        )
        await _book_garage(hass, entry, 20.0, end_in=timedelta(hours=3))
        # Full after about 20 s (at twice the speed), tapering from 80 %.
        small = EvSpec(max_current_a=32.0, capacity_wh=200.0, soc_pct=50.0)
        sim.plug_ev(DRIVEWAY_WALLBOX, small)

        async def plan_once(held: bool) -> dict[str, Any]:
            for _ in range(500):
                plan = await _plan(hass, entry.entry_id)
                outside = plan["charging_outside_the_plan"]
                if not held and not outside:
                    return plan
                if held and outside and max(outside[0]["currents_a"]) >= 20.0:
                    return plan
                await asyncio.sleep(0.1)
            raise AssertionError(f"the plan never held the fast car: {held}")

        plan = await plan_once(held=True)
        (outside,) = plan["charging_outside_the_plan"]
        assert outside["charger"] == DRIVEWAY_WALLBOX
        assert outside["until"] is None  # fast mode, no booking ahead
        (need,) = plan["chargers"][str(GARAGE_WALLBOX)]
        assert need["slots"]
        # The 40 A fuse less what the fast car draws is all the smart car gets.
        left_w = (40.0 - max(outside["currents_a"])) * 3 * 230.0
        assert max(s["power_w"] for s in need["slots"]) <= left_w + 1.0

        plan = await plan_once(held=False)
        charger = sim.model.component(DRIVEWAY_WALLBOX).ev_charger
        assert charger is not None
        assert charger.session is not None  # full, and still plugged in
        (need,) = plan["chargers"][str(GARAGE_WALLBOX)]
        assert max(s["power_w"] for s in need["slots"]) > left_w + 1.0
        assert sim.overload_ampere_seconds == 0.0
        assert sim.unsafe_setpoint_count == 0


async def test_cars_outside_the_plan_re_plan_when_they_start_or_stop_at_once(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starting or stopping re-plans at once; a moving current at most every 30 s."""
    async with _home_planner(hass) as (_sim, _entry, planner):
        drawing: dict[int, tuple[float, float, float]] = {}
        requests: list[dict[int, tuple[float, float, float]]] = []
        monkeypatch.setattr(planner, "_drawing_at_once", lambda: dict(drawing))
        monkeypatch.setattr(planner, "request", lambda: requests.append(dict(drawing)))

        def told(**currents: float) -> bool:
            drawing.clear()
            drawing.update({int(k[1:]): (a, a, a) for k, a in currents.items()})
            before = len(requests)
            planner._on_snapshot()
            return len(requests) > before

        assert told(c7=10.0)  # starts drawing
        assert not told(c7=10.5)  # less than a 4 A step
        assert not told(c7=20.0)  # a step, but a re-plan came just now
        assert told(c7=20.0, c6=16.0)  # another starts: at once
        assert told(c6=16.0)  # one stops: at once
        planner._draw_replanned_at -= 31.0
        assert told(c6=24.0)  # a step, 30 s after the last re-plan
        assert not told(c6=24.0)  # nothing changed


async def test_a_boosting_car_outside_the_plan_is_held_past_its_boost_unless_smart(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A boost returning to fast charges on; one returning to smart stops."""
    async with _home_planner(hass) as (_sim, _entry, planner):
        modes = planner.controller.charger_modes
        monkeypatch.setattr(
            planner, "_drawing_at_once", lambda: {DRIVEWAY_WALLBOX: (16.0,) * 3}
        )
        now = dt_util.utcnow().timestamp()
        modes.set_mode(DRIVEWAY_WALLBOX, ChargerMode.BOOST, boost_s=600.0)
        (draw,) = planner.unplanned(now, [])
        assert draw.until == math.inf  # the boost returns to fast (the default)

        modes.set_mode(DRIVEWAY_WALLBOX, ChargerMode.SMART)
        modes.set_mode(DRIVEWAY_WALLBOX, ChargerMode.BOOST, boost_s=600.0)
        (draw,) = planner.unplanned(now, [])
        assert draw.until == pytest.approx(now + 600.0, abs=5.0)


BAD_INPUT: list[tuple[dict[str, Any], str]] = [
    ({"charger": 999}, "plan_unknown_charger"),
    (
        {"start": "2030-01-01T12:00:00+00:00", "end": "2030-01-01T11:00:00+00:00"},
        "plan_end_not_after_start",
    ),
    ({"end": "2020-01-01T11:00:00+00:00"}, "plan_in_the_past"),
    ({"charger": math.nan}, "plan_unknown_charger"),
    ({"charger": 6.5}, "plan_unknown_charger"),
]
"""Refused input and its translation key."""


async def test_get_charging_plan_refuses_bad_input(hass: HomeAssistant) -> None:
    async with _home_planner(hass) as (_sim, entry, planner):
        await wait_for(lambda: planner.plan is not None, what="the first plan")
        before, replans = planner.plan, planner.replans
        for data, key in BAD_INPUT:
            with pytest.raises(ServiceValidationError) as refused:
                await _plan(hass, entry.entry_id, refresh=True, **data)
            assert refused.value.translation_key == key, data
            assert refused.value.translation_domain == DOMAIN
            # Refused before anything was done: not even the asked re-plan.
            assert planner.plan is before, data
            assert planner.replans == replans, data
        # What is not a time at all is the schema's refusal.
        with pytest.raises(vol.Invalid):
            await _plan(hass, entry.entry_id, start="nan")


async def test_the_demo_plans_its_bookings_with_its_own_forecasts(
    hass: HomeAssistant,
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="demo_depot",
        title="Demo depot",
        data={CONF_DEMO: True, CONF_SCENARIO: "depot"},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    try:
        assert entry.state is ConfigEntryState.LOADED
        loaded: FrequenzMicrogridConfigEntry = entry
        reservations = loaded.runtime_data.reservations
        assert reservations is not None
        scenario = loaded.runtime_data.simulator
        assert scenario is not None
        assert len(reservations.book) == len(scenario.scenario.plan_inputs.bookings)

        plan = await _plan(hass, entry.entry_id, refresh=True)
        assert plan["sources"] == {"price": "simulator", "pv_forecast": "simulator"}
        booked = {
            int(cid)
            for cid, needs in plan["chargers"].items()
            for need in needs
            if need["origin"]
        }
        assert booked == {b.charger_id for b in scenario.scenario.plan_inputs.bookings}
        slots = [
            s for needs in plan["chargers"].values() for n in needs for s in n["slots"]
        ]
        assert all(s["price"] is not None for s in slots)
        # One booking is at risk: the garage feeder cannot deliver all three.
        at_risk = [
            (int(cid), need["unmet_kwh"])
            for cid, needs in plan["chargers"].items()
            for need in needs
            if need["unmet_kwh"] > 0.0
        ]
        assert [cid for cid, _ in at_risk] == [53]
        # Booked chargers start in smart mode.
        mode = hass.states.get(
            entity_id_of(hass, f"{entry.unique_id}_53_charger_mode", ["select"])
        )
        assert mode is not None
        assert mode.state == "smart"
    finally:
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


async def test_forecast_entities_are_chosen_and_cleared_in_the_options(
    hass: HomeAssistant,
) -> None:
    """The options flow stores the entities; the reloaded entry plans with them."""
    _set_prices(hass, cheap_slots={2})
    async with serving(hass, scenario_from_dict(home_without_arrivals())) as sim:
        entry = await setup_entry(
            hass, sim.url, unique_id=str(sim.scenario.microgrid_id)
        )
        required = {
            CONF_FRESHNESS_S: DEFAULT_FRESHNESS_S,
            CONF_DEFAULT_PRIORITY: DEFAULT_PRIORITY,
            CONF_REAPPLY_SETPOINTS: False,
            CONF_RESERVATION_GRACE_MIN: 15.0,
        }
        flow = await hass.config_entries.options.async_init(entry.entry_id)
        result = await hass.config_entries.options.async_configure(
            flow["flow_id"],
            {
                **required,
                CONF_PRICE_ENTITY: PRICE_SENSOR,
                CONF_PV_FORECAST_ENTITY: "sensor.solar_forecast",
            },
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
        assert entry.options[CONF_PRICE_ENTITY] == PRICE_SENSOR
        planner = entry.runtime_data.planner
        assert planner is not None
        assert planner.sources() == {
            "price": PRICE_SENSOR,
            "pv_forecast": "sensor.solar_forecast",
        }
        assert planner.prices().mean(
            _slot_start(2).timestamp(), _slot_start(3).timestamp()
        ) == pytest.approx(0.05)
        # A missing PV entity is no forecast, not an error.
        assert not planner.pv_forecast()

        flow = await hass.config_entries.options.async_init(entry.entry_id)
        await hass.config_entries.options.async_configure(flow["flow_id"], required)
        await hass.async_block_till_done()
        assert CONF_PRICE_ENTITY not in entry.options
        planner = entry.runtime_data.planner
        assert planner is not None
        assert planner.sources() == {"price": None, "pv_forecast": None}


async def test_replans_on_changes_not_on_ticks(hass: HomeAssistant) -> None:
    """Ticks leave the plan alone; a booking and an envelope each re-plan it."""
    async with _home_planner(hass) as (_sim, entry, planner):
        await wait_for(lambda: planner.plan is not None, what="the first plan")
        replans = planner.replans
        await asyncio.sleep(1.5)  # several telemetry rounds and steering ticks
        assert planner.replans == replans

        await _book_garage(
            hass, entry, 60.0, end_in=timedelta(hours=2), start_in=timedelta(minutes=30)
        )
        await wait_for(lambda: planner.replans > replans, what="a re-plan")
        plan = planner.plan
        assert plan is not None
        (booked,) = plan.of_charger(GARAGE_WALLBOX)
        # 60 kWh in 1.5 h is more than one 22 kW wallbox delivers: reported.
        assert booked.unmet_wh == pytest.approx(60_000.0 - booked.planned_wh)
        assert booked.unmet_wh > 0.0

        replans = planner.replans
        start = (dt_util.utcnow() - timedelta(minutes=1)).isoformat()
        await call_action(
            hass,
            "set_power_limits",
            {
                "config_entry_id": entry.entry_id,
                "circuit": "grid",
                "steps": [{"start": start, "upper": 5_000}],
            },
        )
        await wait_for(
            lambda: planner.replans > replans, what="a re-plan", timeout_s=5.0
        )
        plan = planner.plan
        assert plan is not None
        assert all(
            slot.power_w <= 5_000.0 + 1e-6
            for need in plan.of_charger(GARAGE_WALLBOX)
            for slot in need.slots
        )


async def test_a_target_set_by_hand_is_planned_and_a_bookings_only_once(
    hass: HomeAssistant,
) -> None:
    """Setting and clearing a target re-plans; a booking's target is planned once."""
    async with _home_planner(hass) as (sim, entry, planner):
        await wait_for(lambda: planner.plan is not None, what="the first plan")
        replans = planner.replans
        departure = dt_util.now() + timedelta(hours=3)
        await call_action(
            hass,
            "set_charging_target",
            {
                "config_entry_id": entry.entry_id,
                "charger": DRIVEWAY_WALLBOX,
                "energy_kwh": 12.0,
                "departure": departure.isoformat(),
            },
        )
        await wait_for(lambda: planner.replans > replans, what="a re-plan")
        plan = planner.plan
        assert plan is not None
        (planned,) = plan.of_charger(DRIVEWAY_WALLBOX)
        assert planned.need.origin == "target"
        assert planned.need.energy_wh == pytest.approx(12_000.0)
        assert planned.need.departure == pytest.approx(departure.timestamp())
        assert planned.planned_wh == pytest.approx(12_000.0, rel=1e-3)

        replans = planner.replans
        await call_action(
            hass,
            "clear_charging_target",
            {"config_entry_id": entry.entry_id, "charger": DRIVEWAY_WALLBOX},
        )
        await wait_for(lambda: planner.replans > replans, what="a re-plan")
        assert planner.plan is not None
        assert planner.plan.of_charger(DRIVEWAY_WALLBOX) == []

        # A booking with an energy: its session takes it as target when the car
        # plugs in; the plan still holds one need for it (the booking's).
        await _book_garage(hass, entry, 5.0, end_in=timedelta(hours=4))
        sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))
        targets = entry.runtime_data.engine.controller.charging_targets
        await wait_for(
            lambda: targets.get(GARAGE_WALLBOX) is not None, what="booking's target"
        )
        replans = planner.replans
        await wait_for(lambda: planner.replans > replans, what="a re-plan")
        plan = planner.plan
        assert plan is not None
        (booked,) = plan.of_charger(GARAGE_WALLBOX)
        assert booked.need.origin != "target"
        assert sim.unsafe_setpoint_count == 0


async def test_a_booking_after_a_hand_set_target_is_planned_from_its_departure(
    hass: HomeAssistant,
) -> None:
    """A target by hand until +2 h, a booking from +1:45 to +6 h: both planned.

    The hand-set target wins while they overlap; the booked car's energy is
    planned from the target's departure on, not left out of the plan.
    """
    async with _home_planner(hass) as (sim, entry, _planner):
        sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))
        await open_session(entry, GARAGE_WALLBOX)
        departure = dt_util.now() + timedelta(hours=2)
        await call_action(
            hass,
            "set_charging_target",
            {
                "config_entry_id": entry.entry_id,
                "charger": GARAGE_WALLBOX,
                "energy_kwh": 5.0,
                "departure": departure.isoformat(),
            },
        )
        await _book_garage(
            hass,
            entry,
            30.0,
            start_in=timedelta(hours=1, minutes=45),
            end_in=timedelta(hours=6),
        )
        plan = await _plan(hass, entry.entry_id, refresh=True)
        needs = plan["chargers"][str(GARAGE_WALLBOX)]
        assert len(needs) == 2, needs
        assert needs[0]["origin"] == "target"
        booked = needs[1]
        assert dt_util.parse_datetime(
            booked["earliest_start"]
        ) == dt_util.parse_datetime(needs[0]["departure"])
        assert booked["energy_kwh"] == pytest.approx(30.0)
        assert booked["unmet_kwh"] == pytest.approx(0.0)


async def test_a_target_set_by_hand_replaces_the_booking_in_force_in_the_plan(
    hass: HomeAssistant,
) -> None:
    """The booked car is in; its driver sets a target: the car is planned once."""
    async with _home_planner(hass) as (sim, entry, _planner):
        await _book_garage(hass, entry, 30.0, end_in=timedelta(hours=6))
        sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))
        targets = entry.runtime_data.engine.controller.charging_targets
        await wait_for(
            lambda: targets.get(GARAGE_WALLBOX) is not None, what="booking's target"
        )
        await call_action(
            hass,
            "set_charging_target",
            {
                "config_entry_id": entry.entry_id,
                "charger": GARAGE_WALLBOX,
                "energy_kwh": 5.0,
                "departure": (dt_util.now() + timedelta(hours=2)).isoformat(),
            },
        )
        plan = await _plan(hass, entry.entry_id, refresh=True)
        needs = plan["chargers"][str(GARAGE_WALLBOX)]
        assert [need["origin"] for need in needs] == ["target"], needs
        assert needs[0]["energy_kwh"] == pytest.approx(5.0)


async def test_a_failing_forecast_source_plans_without_forecasts(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    async with _home_planner(hass) as (_sim, _entry, planner):
        await wait_for(lambda: planner.plan is not None, what="the first plan")
        replans = planner.replans

        def broken() -> Any:
            raise TypeError("a price sensor with odd attributes")

        planner.prices = broken  # type: ignore[method-assign]
        await planner.async_replan()
        assert planner.replans > replans, "planned anyway"
        assert planner.plan is not None
        assert "Cannot read the forecasts for the charging plan" in caplog.text


async def test_a_charger_connected_later_is_planned_without_a_reload(
    hass: HomeAssistant,
) -> None:
    """A topology change re-plans with the new charger (rated power, plan queries)."""
    async with serving(hass, scenario_from_dict(home_without_arrivals())) as sim:
        entry = await setup_entry(
            hass, sim.url, unique_id=str(sim.scenario.microgrid_id)
        )
        runtime = entry.runtime_data
        planner = runtime.planner
        assert planner is not None
        assert runtime.topology_refresh is not None
        await wait_for(lambda: planner.plan is not None, what="the first plan")
        with pytest.raises(ServiceValidationError) as refused:
            await _plan(hass, entry.entry_id, charger=NEW_CHARGER)
        assert refused.value.translation_key == "plan_unknown_charger"

        replans = planner.replans
        sim.add_component(generated_component(NEW_CHARGER, Kind.EV_CHARGER, 2))
        change = await runtime.topology_refresh.async_refresh()
        assert change is not None
        assert NEW_CHARGER in change.added
        await wait_for(lambda: planner.replans > replans, what="a re-plan")
        assert NEW_CHARGER in planner.topology.ev_charger_ids
        plan = await _plan(hass, entry.entry_id, charger=NEW_CHARGER)
        assert plan["chargers"] == {}  # known now, nothing planned for it yet
        # Its hub entities come without a reload: planned power, target, at risk.
        for key, platform in (
            ("planned_power", "sensor"),
            ("charging_target", "sensor"),
            ("target_at_risk", "binary_sensor"),
        ):
            unique_id = f"{entry.unique_id}_{NEW_CHARGER}_{key}"

            def present(unique_id: str = unique_id, platform: str = platform) -> bool:
                return find_entity_id(hass, unique_id, (platform,)) is not None

            await wait_for(present, what=f"the new charger's {key}")


async def test_a_smart_cars_risk_is_the_plans_which_knows_a_booked_car_comes(
    hass: HomeAssistant,
) -> None:
    """The live forecast sees one car and no risk; the plan sees the booked one.

    The garage car (smart) wants 35 kWh within 2 h: alone on the 40 A fuse it
    gets 22 kW, 44 kWh. But a car booked on the driveway from +15 min to
    +75 min takes 32 A of the fuse then, so the plan it follows cannot deliver:
    at risk, with the plan's unmet energy. In fast mode the car charges by the
    live forecast again, which (knowing no booking) says it makes it.
    """
    async with _home_planner(hass) as (sim, entry, _planner):
        now = dt_util.now()
        await call_action(
            hass,
            "reserve_charger",
            {
                "config_entry_id": entry.entry_id,
                "charger": DRIVEWAY_WALLBOX,
                "start": (now + timedelta(minutes=15)).isoformat(),
                "end": (now + timedelta(minutes=75)).isoformat(),
                "energy_kwh": 20.0,
            },
        )
        mode_entity = entity_id_of(
            hass, f"{entry.unique_id}_{GARAGE_WALLBOX}_charger_mode", ["select"]
        )
        await hass.services.async_call(
            "select",
            "select_option",
            {"entity_id": mode_entity, "option": "smart"},
            blocking=True,
        )
        sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))
        await open_session(entry, GARAGE_WALLBOX)
        target = {
            "config_entry_id": entry.entry_id,
            "charger": GARAGE_WALLBOX,
            "energy_kwh": 35.0,
            "departure": (now + timedelta(hours=2)).isoformat(),
        }
        await call_action(hass, "set_charging_target", target)
        plan = await _plan(hass, entry.entry_id, refresh=True)
        (garage,) = plan["chargers"][str(GARAGE_WALLBOX)]
        assert garage["origin"] == "target"
        assert garage["unmet_kwh"] > 1.0

        at_risk = entity_id_of(
            hass,
            f"{entry.unique_id}_{GARAGE_WALLBOX}_target_at_risk",
            ["binary_sensor"],
        )
        await wait_for(
            lambda: (s := hass.states.get(at_risk)) is not None and s.state == "on",
            what="at risk by the plan",
        )
        response = await call_action(hass, "set_charging_target", target)
        assert response["at_risk"] is True
        assert response["unmet_kwh"] == pytest.approx(garage["unmet_kwh"], abs=0.5)

        # Fast mode: the car does not wait for the plan; the live forecast says
        # it makes it (it knows of no booked car).
        await hass.services.async_call(
            "select",
            "select_option",
            {"entity_id": mode_entity, "option": "fast"},
            blocking=True,
        )
        await wait_for(
            lambda: (s := hass.states.get(at_risk)) is not None and s.state == "off",
            what="no longer at risk in fast mode",
        )
        assert sim.unsafe_setpoint_count == 0
