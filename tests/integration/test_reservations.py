"""Reservations through Home Assistant, on the simulator over real gRPC.

Issue 16, capability 2, as a user meets it: the `home` microgrid (40 A fuse, two
3-phase 32 A wallboxes) without its scripted EV arrivals. Bookings go in through
the actions and through Home Assistant's calendar (its services and websocket
commands, what the calendar UI sends); refused ones leave the book and the store
as they were; a booking survives a restart; a booking whose car doesn't come
within the grace period (the option, set through the options flow) is released,
and one whose car plugs in within it is kept. The simulator's overload counter
stays 0 (`serving`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import copy
from datetime import datetime, timedelta
import math
from typing import Any, cast

from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.frequenz_microgrid.const import CONF_RESERVATION_GRACE_MIN
from custom_components.frequenz_microgrid.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.frequenz_microgrid.hub_reservations import (
    EVENT_RESERVATION_RELEASED,
    HubReservations,
)
from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import EvSpec, MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.scenario import (
    scenario_from_dict,
)

from .conftest import entity_id_of, microgrid_entry, serving, wait_for
from .steering_helpers import (
    DRIVEWAY_WALLBOX,
    GARAGE_WALLBOX,
    call_action,
    home_without_arrivals,
    setup_steerable,
)

VOLTAGE_V = 230.0
HOME = home_without_arrivals()
FUSE_A = next(
    row["fuse_current_a"] for row in HOME["topology"] if row["kind"] == "grid"
)
WALLBOX_A = next(row["max_current_a"] for row in HOME["topology"] if row["id"] == 6)
WALLBOX_W = WALLBOX_A * 3 * VOLTAGE_V
"""The wallboxes' rated charge power (32 A on three phases)."""


@pytest.fixture
async def sim(hass: HomeAssistant) -> AsyncIterator[MicrogridSimulator]:
    async with serving(hass, scenario_from_dict(home_without_arrivals())) as simulator:
        yield simulator


def _hub(entry: FrequenzMicrogridConfigEntry) -> HubReservations:
    hub = entry.runtime_data.reservations
    assert hub is not None
    return hub


def _at(minutes: float) -> datetime:
    """A time `minutes` from now, in Home Assistant's time zone."""
    return dt_util.now() + timedelta(minutes=minutes)


def _reserve(
    entry: FrequenzMicrogridConfigEntry, start: datetime, end: datetime, **data: Any
) -> dict[str, Any]:
    return {
        "config_entry_id": entry.entry_id,
        "start": start.isoformat(),
        "end": end.isoformat(),
        **data,
    }


def _calendar(hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry) -> str:
    return entity_id_of(hass, f"{entry.unique_id}_reservations", ("calendar",))


def _reserved(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, charger: int
) -> str:
    return entity_id_of(
        hass, f"{entry.unique_id}_{charger}_reserved", ("binary_sensor",)
    )


def _stored(hass_storage: dict[str, Any], entry: FrequenzMicrogridConfigEntry) -> Any:
    stored = hass_storage.get(f"frequenz_microgrid.{entry.entry_id}.reservations")
    return None if stored is None else copy.deepcopy(stored["data"])


# -- booking through the actions -----------------------------------------------------


async def test_book_refuse_an_overlap_and_find_what_is_free(
    hass: HomeAssistant, sim: MicrogridSimulator
) -> None:
    entry = await setup_steerable(hass, sim)
    start, end = _at(60), _at(180)
    booked = await call_action(
        hass,
        "reserve_charger",
        _reserve(
            entry, start, end, charger=GARAGE_WALLBOX, energy_kwh=20, vehicle="Zoe"
        ),
    )
    assert booked["charger"] == GARAGE_WALLBOX
    assert booked["charger_name"] == "Wallbox garage"
    assert booked["vehicle"] == "Zoe"
    hours = (end - start).total_seconds() / 3600
    assert booked["max_energy_kwh"] == pytest.approx(WALLBOX_W * hours / 1000, abs=1e-3)
    # The booking's energy becomes its session's target, served least laxity
    # first: the other wallbox keeps only its minimum (6 A), so the 40 A fuse
    # (less the 600 W household) still carries this one at full power.
    assert FUSE_A * 3 * VOLTAGE_V - 6 * 3 * VOLTAGE_V - 600.0 > WALLBOX_W
    assert booked["guaranteed_energy_kwh"] == pytest.approx(
        WALLBOX_W * hours / 1000, abs=1e-3
    )
    assert booked["energy_guaranteed"] is True
    assert dt_util.parse_datetime(booked["start"]) == start

    reserved = hass.states.get(_reserved(hass, entry, GARAGE_WALLBOX))
    assert reserved is not None
    assert reserved.state == "off"  # not yet in force
    assert reserved.attributes["next_vehicle"] == "Zoe"

    # An overlap: refused with the translated message, nothing stored.
    before = list(_hub(entry).book)
    with pytest.raises(ServiceValidationError) as refused:
        await call_action(
            hass,
            "reserve_charger",
            _reserve(entry, _at(120), _at(240), charger=GARAGE_WALLBOX),
        )
    assert refused.value.translation_key == "reservation_overlap"
    assert booked["reservation_id"] in str(refused.value)
    assert list(_hub(entry).book) == before

    # "any" takes the other, free wallbox; then nothing is free for that period.
    other = await call_action(
        hass, "reserve_charger", _reserve(entry, _at(120), _at(240))
    )
    assert other["charger"] == DRIVEWAY_WALLBOX
    free = await call_action(
        hass,
        "find_available_chargers",
        {
            "config_entry_id": entry.entry_id,
            "start": _at(150).isoformat(),
            "end": _at(170).isoformat(),
        },
    )
    assert free["chargers"] == []
    free = await call_action(
        hass,
        "find_available_chargers",
        {
            "config_entry_id": entry.entry_id,
            "start": _at(1).isoformat(),
            "end": _at(31).isoformat(),
        },
    )
    # Equal power: the lower id first.
    assert [c["charger"] for c in free["chargers"]] == [
        GARAGE_WALLBOX,
        DRIVEWAY_WALLBOX,
    ]
    assert free["chargers"][0]["max_power_w"] == pytest.approx(WALLBOX_W)
    assert free["chargers"][0]["max_energy_kwh"] == pytest.approx(
        WALLBOX_W / 2000, abs=0.01
    )

    # Cancelling frees exactly that period.
    cancelled = await call_action(
        hass,
        "cancel_reservation",
        {"config_entry_id": entry.entry_id, "reservation_id": booked["reservation_id"]},
    )
    assert cancelled["cancelled"]["reservation_id"] == booked["reservation_id"]
    again = await call_action(
        hass, "reserve_charger", _reserve(entry, start, end, charger=GARAGE_WALLBOX)
    )
    assert again["charger"] == GARAGE_WALLBOX


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"start": 120, "end": 60}, "reservation_end_not_after_start"),
        ({"start": -120, "end": -60}, "reservation_in_the_past"),
        ({"charger": 99}, "reservation_unknown_charger"),
        ({"charger": 2}, "reservation_unknown_charger"),  # the grid meter
        ({"energy_kwh": math.nan}, "reservation_invalid_energy"),
        ({"energy_kwh": "nan"}, "reservation_invalid_energy"),
        ({"energy_kwh": -5}, "reservation_invalid_energy"),
        ({"start": 60, "end": 60 + 8 * 24 * 60}, "reservation_too_long"),
    ],
)
async def test_bad_bookings_are_refused_with_a_translated_error_and_nothing_is_stored(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    sim: MicrogridSimulator,
    data: dict[str, Any],
    key: str,
) -> None:
    entry = await setup_steerable(hass, sim)
    kept = await call_action(
        hass,
        "reserve_charger",
        _reserve(entry, _at(600), _at(660), charger=DRIVEWAY_WALLBOX),
    )
    await hass.async_block_till_done()
    stored = _stored(hass_storage, entry)
    request = _reserve(
        entry,
        _at(data.pop("start", 60)),
        _at(data.pop("end", 120)),
        **{"charger": GARAGE_WALLBOX, **data},
    )
    with pytest.raises(ServiceValidationError) as refused:
        await call_action(hass, "reserve_charger", request)
    assert refused.value.translation_key == key
    assert str(refused.value)  # the translated message, placeholders filled
    assert [r.reservation_id for r in _hub(entry).book] == [kept["reservation_id"]]
    await hass.async_block_till_done()
    assert _stored(hass_storage, entry) == stored


async def test_cancelling_an_unknown_reservation_is_refused(
    hass: HomeAssistant, sim: MicrogridSimulator
) -> None:
    entry = await setup_steerable(hass, sim)
    with pytest.raises(ServiceValidationError) as refused:
        await call_action(
            hass,
            "cancel_reservation",
            {"config_entry_id": entry.entry_id, "reservation_id": "nope"},
        )
    assert refused.value.translation_key == "unknown_reservation"


# -- the calendar ----------------------------------------------------------------------


async def _events(hass: HomeAssistant, calendar: str) -> list[dict[str, Any]]:
    response = await hass.services.async_call(
        "calendar",
        "get_events",
        {
            "entity_id": calendar,
            "start_date_time": _at(-60).isoformat(),
            "end_date_time": _at(24 * 60).isoformat(),
        },
        blocking=True,
        return_response=True,
    )
    assert response is not None
    found = cast(dict[str, Any], response[calendar])
    return list(found["events"])


async def test_calendar_create_update_and_delete_go_through_the_same_checks(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    sim: MicrogridSimulator,
) -> None:
    entry = await setup_steerable(hass, sim)
    calendar = _calendar(hass, entry)
    book = _hub(entry).book
    client = await hass_ws_client(hass)

    # Created through the calendar UI: the location names the charger, the
    # description the energy, the summary the vehicle.
    await client.send_json_auto_id(
        {
            "type": "calendar/event/create",
            "entity_id": calendar,
            "event": {
                "summary": "Zoe",
                "location": str(GARAGE_WALLBOX),
                "description": "Energy: 12.5 kWh",
                "dtstart": _at(60).isoformat(),
                "dtend": _at(120).isoformat(),
            },
        }
    )
    assert (await client.receive_json())["success"]
    (created,) = list(book)
    assert (created.charger_id, created.vehicle, created.energy_kwh) == (
        GARAGE_WALLBOX,
        "Zoe",
        12.5,
    )
    # Through the calendar's create_event action: a "Charger <id>:" summary.
    await hass.services.async_call(
        "calendar",
        "create_event",
        {
            "entity_id": calendar,
            "summary": f"Charger {DRIVEWAY_WALLBOX}: Van",
            "start_date_time": _at(60).isoformat(),
            "end_date_time": _at(90).isoformat(),
        },
        blocking=True,
    )
    assert {(r.charger_id, r.vehicle) for r in book} == {
        (GARAGE_WALLBOX, "Zoe"),
        (DRIVEWAY_WALLBOX, "Van"),
    }
    events = await _events(hass, calendar)
    zoe = next(e for e in events if e["summary"] == "Wallbox garage: Zoe")
    assert zoe["location"] == str(GARAGE_WALLBOX)
    assert "Energy: 12.5 kWh" in zoe["description"]
    assert "Guaranteed:" in zoe["description"]

    # An overlapping create is refused with the translated message; nothing stored.
    before = list(book)
    await client.send_json_auto_id(
        {
            "type": "calendar/event/create",
            "entity_id": calendar,
            "event": {
                "summary": "Intruder",
                "location": str(GARAGE_WALLBOX),
                "dtstart": _at(90).isoformat(),
                "dtend": _at(150).isoformat(),
            },
        }
    )
    answer = await client.receive_json()
    assert not answer["success"]
    assert created.reservation_id in answer["error"]["message"]
    assert list(book) == before

    # Moved (dragged in the UI) keeping its summary: same booking, new period.
    await client.send_json_auto_id(
        {
            "type": "calendar/event/update",
            "entity_id": calendar,
            "uid": created.reservation_id,
            "event": {
                "summary": "Wallbox garage: Zoe",
                "location": str(GARAGE_WALLBOX),
                "description": "Energy: 12.5 kWh",
                "dtstart": _at(180).isoformat(),
                "dtend": _at(240).isoformat(),
            },
        }
    )
    assert (await client.receive_json())["success"]
    moved = book.get(created.reservation_id)
    assert moved is not None
    assert moved.vehicle == "Zoe"
    assert moved.start == pytest.approx(_at(180).timestamp(), abs=5)
    # Moved onto the Van's charger and period: refused, left where it was.
    await client.send_json_auto_id(
        {
            "type": "calendar/event/update",
            "entity_id": calendar,
            "uid": created.reservation_id,
            "event": {
                "summary": "Zoe",
                "location": str(DRIVEWAY_WALLBOX),
                "dtstart": _at(70).isoformat(),
                "dtend": _at(100).isoformat(),
            },
        }
    )
    assert not (await client.receive_json())["success"]
    assert book.get(created.reservation_id) == moved
    # Moved to the other charger in the UI, which sends the summary back as
    # shown, the old charger's name in it: the vehicle is still "Zoe".
    await client.send_json_auto_id(
        {
            "type": "calendar/event/update",
            "entity_id": calendar,
            "uid": created.reservation_id,
            "event": {
                "summary": "Wallbox garage: Zoe",
                "location": str(DRIVEWAY_WALLBOX),
                "dtstart": _at(180).isoformat(),
                "dtend": _at(240).isoformat(),
            },
        }
    )
    assert (await client.receive_json())["success"]
    moved = book.get(created.reservation_id)
    assert moved is not None
    assert (moved.charger_id, moved.vehicle) == (DRIVEWAY_WALLBOX, "Zoe")
    # A recurring booking is refused.
    await client.send_json_auto_id(
        {
            "type": "calendar/event/create",
            "entity_id": calendar,
            "event": {
                "summary": "Every day",
                "dtstart": _at(300).isoformat(),
                "dtend": _at(360).isoformat(),
                "rrule": "FREQ=DAILY",
            },
        }
    )
    assert not (await client.receive_json())["success"]
    assert len(book) == 2

    await client.send_json_auto_id(
        {
            "type": "calendar/event/delete",
            "entity_id": calendar,
            "uid": created.reservation_id,
        }
    )
    assert (await client.receive_json())["success"]
    assert [r.vehicle for r in book] == ["Van"]
    assert [e["summary"] for e in await _events(hass, calendar)] == [
        "Wallbox driveway: Van"
    ]
    state = hass.states.get(calendar)
    assert state is not None
    assert state.attributes["message"] == "Wallbox driveway: Van"


# -- restarts and no-shows -------------------------------------------------------------


async def test_bookings_are_kept_across_a_restart(
    hass: HomeAssistant, sim: MicrogridSimulator
) -> None:
    entry = await setup_steerable(hass, sim)
    booked = await call_action(
        hass,
        "reserve_charger",
        _reserve(entry, _at(60), _at(120), charger=GARAGE_WALLBOX, vehicle="Zoe"),
    )
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    restored = _hub(entry).book.get(booked["reservation_id"])
    assert restored is not None
    assert (restored.charger_id, restored.vehicle) == (GARAGE_WALLBOX, "Zoe")
    with pytest.raises(ServiceValidationError):
        await call_action(
            hass,
            "reserve_charger",
            _reserve(entry, _at(90), _at(100), charger=GARAGE_WALLBOX),
        )
    assert [e["summary"] for e in await _events(hass, _calendar(hass, entry))] == [
        "Wallbox garage: Zoe"
    ]


async def _set_grace(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, minutes: float
) -> None:
    """Set the grace period through the options flow (the entry reloads)."""
    flow = await hass.config_entries.options.async_init(entry.entry_id)
    schema = flow["data_schema"]
    assert schema is not None
    options = {
        key.schema: entry.options.get(key.schema, key.default())
        for key in schema.schema
        if callable(key.default)  # the optional Assets API fields have none
    }
    result = await hass.config_entries.options.async_configure(
        flow["flow_id"], {**options, CONF_RESERVATION_GRACE_MIN: minutes}
    )
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    assert _hub(entry).book.grace_s == pytest.approx(minutes * 60)


async def test_a_no_show_is_released_after_the_grace_period(
    hass: HomeAssistant, sim: MicrogridSimulator
) -> None:
    entry = await setup_steerable(hass, sim)
    await _set_grace(hass, entry, 0.05)  # 3 s
    released: list[Event] = []
    hass.bus.async_listen(EVENT_RESERVATION_RELEASED, released.append)
    booked = await call_action(
        hass,
        "reserve_charger",
        _reserve(entry, _at(0), _at(60), charger=GARAGE_WALLBOX, vehicle="Late"),
    )
    reserved = _reserved(hass, entry, GARAGE_WALLBOX)
    await wait_for(
        lambda: getattr(hass.states.get(reserved), "state", None) == "on",
        what="the garage to show its booking",
    )
    state = hass.states.get(reserved)
    assert state is not None
    assert state.attributes["reservation_id"] == booked["reservation_id"]
    took = await wait_for(lambda: bool(released), what="the no-show to be released")
    assert took >= 1.0  # not before the grace period (3 s from the start)
    assert released[0].data["reservation_id"] == booked["reservation_id"]
    assert released[0].data["reason"] == "no_show"
    # Which microgrid and which wallbox: charger ids repeat across sites.
    assert released[0].data["config_entry_id"] == entry.entry_id
    assert released[0].data["charger_name"] == _hub(entry).charger_name(GARAGE_WALLBOX)
    assert len(_hub(entry).book) == 0
    await wait_for(
        lambda: getattr(hass.states.get(reserved), "state", None) == "off",
        what="the garage to be free again",
    )
    free = await call_action(
        hass,
        "find_available_chargers",
        {
            "config_entry_id": entry.entry_id,
            "start": _at(1).isoformat(),
            "end": _at(30).isoformat(),
        },
    )
    assert GARAGE_WALLBOX in [c["charger"] for c in free["chargers"]]
    # The released booking stays in the calendar, across a reload too.
    shown = [e["summary"] for e in await _events(hass, _calendar(hass, entry))]
    assert shown == ["Wallbox garage: Late"]
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    events = await _events(hass, _calendar(hass, entry))
    assert [e["summary"] for e in events] == shown
    assert "Released: no car within the grace period" in events[0]["description"]


async def test_a_car_plugged_in_within_the_grace_period_keeps_its_booking(
    hass: HomeAssistant, sim: MicrogridSimulator
) -> None:
    entry = await setup_steerable(hass, sim)
    await _set_grace(hass, entry, 0.05)  # 3 s
    booked = await call_action(
        hass,
        "reserve_charger",
        _reserve(entry, _at(0), _at(60), charger=GARAGE_WALLBOX, vehicle="Zoe"),
    )
    sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))
    book = _hub(entry).book
    await wait_for(
        lambda: getattr(book.get(booked["reservation_id"]), "claimed", False),
        what="the booking to see its car",
    )
    # Well past the grace period: still booked, and the unplugged driveway's
    # booking in the same period is released meanwhile.
    other = await call_action(
        hass,
        "reserve_charger",
        _reserve(entry, _at(0), _at(60), charger=DRIVEWAY_WALLBOX),
    )
    await wait_for(
        lambda: book.get(other["reservation_id"]) is None,
        what="the driveway's no-show to be released",
    )
    assert book.get(booked["reservation_id"]) is not None
    state = hass.states.get(_reserved(hass, entry, GARAGE_WALLBOX))
    assert state is not None
    assert state.state == "on"
    assert state.attributes["plugged_in"] is True


@pytest.mark.parametrize(
    "stored",
    [
        {"reservations": "oops"},
        {"reservations": [{"id": "x", "charger": "six", "start": 0, "end": 1}]},
        {"reservations": [{"charger": 6}]},
        {},
    ],
)
async def test_damaged_stored_bookings_leave_an_empty_book_and_the_entry_loads(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    sim: MicrogridSimulator,
    stored: dict[str, Any],
) -> None:
    entry = microgrid_entry(sim.url, unique_id=str(sim.scenario.microgrid_id))
    key = f"frequenz_microgrid.{entry.entry_id}.reservations"
    hass_storage[key] = {"version": 1, "minor_version": 1, "key": key, "data": stored}
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    loaded = cast(FrequenzMicrogridConfigEntry, entry)
    assert len(_hub(loaded).book) == 0
    booked = await call_action(
        hass, "reserve_charger", _reserve(loaded, _at(10), _at(20), charger="any")
    )
    assert booked["charger"] in (GARAGE_WALLBOX, DRIVEWAY_WALLBOX)


async def test_diagnostics_show_the_book_without_vehicle_labels(
    hass: HomeAssistant, sim: MicrogridSimulator
) -> None:
    entry = await setup_steerable(hass, sim)
    booked = await call_action(
        hass,
        "reserve_charger",
        _reserve(entry, _at(60), _at(120), charger=GARAGE_WALLBOX, vehicle="B-XY 123"),
    )
    found = (await async_get_config_entry_diagnostics(hass, entry))["reservations"]
    (booking,) = found["bookings"]
    assert booking["id"] == booked["reservation_id"]
    assert booking["vehicle"] == "**REDACTED**"
    assert found["capacities"][str(GARAGE_WALLBOX)]["max_power_w"] == pytest.approx(
        WALLBOX_W
    )
    assert found["grace_s"] == _hub(entry).book.grace_s


async def test_removing_the_entry_deletes_its_bookings_and_hub_settings(
    hass: HomeAssistant, hass_storage: dict[str, Any], sim: MicrogridSimulator
) -> None:
    """Vehicle labels and charger modes do not stay on disk after the removal."""
    entry = await setup_steerable(hass, sim)
    await call_action(
        hass,
        "reserve_charger",
        _reserve(entry, _at(60), _at(120), charger=GARAGE_WALLBOX, vehicle="Zoe"),
    )
    await call_action(
        hass,
        "set_charger_mode",
        {"config_entry_id": entry.entry_id, "charger": GARAGE_WALLBOX, "mode": "off"},
    )
    keys = [
        f"frequenz_microgrid.{entry.entry_id}.reservations",
        f"frequenz_microgrid.{entry.entry_id}.charging_hub",
    ]
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert [key for key in keys if key in hass_storage] == keys  # kept on unload
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert [key for key in keys if key in hass_storage] == []


async def test_the_calendar_location_names_a_charger_exactly_or_is_refused(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    sim: MicrogridSimulator,
) -> None:
    """An id, "any"/empty or a charger's name (any case); never a loose match."""
    entry = await setup_steerable(hass, sim)
    calendar = _calendar(hass, entry)
    hub = _hub(entry)
    client = await hass_ws_client(hass)

    async def send(kind: str, location: str, **extra: Any) -> dict[str, Any]:
        await client.send_json_auto_id(
            {
                "type": f"calendar/event/{kind}",
                "entity_id": calendar,
                **extra,
                "event": {
                    "summary": "Zoe",
                    "location": location,
                    "dtstart": _at(60).isoformat(),
                    "dtend": _at(90).isoformat(),
                },
            }
        )
        answer: dict[str, Any] = await client.receive_json()
        return answer

    garage_name = hub.charger_name(GARAGE_WALLBOX)
    for location in ("Bay 2 left", f"{GARAGE_WALLBOX}a", "Carport", f"{garage_name}!"):
        answer = await send("create", location)
        assert not answer["success"], location
        # The translated reservation_unknown_charger message, naming it.
        assert "is not an EV charger" in answer["error"]["message"]
        assert location in answer["error"]["message"]
    assert len(hub.book) == 0

    assert (await send("create", garage_name.upper()))["success"]
    (booked,) = list(hub.book)
    assert booked.charger_id == GARAGE_WALLBOX
    # Moved by name onto the other charger; a loose name leaves it where it is.
    driveway_name = hub.charger_name(DRIVEWAY_WALLBOX)
    uid = {"uid": booked.reservation_id}
    assert (await send("update", driveway_name.lower(), **uid))["success"]
    moved = hub.book.get(booked.reservation_id)
    assert moved is not None
    assert moved.charger_id == DRIVEWAY_WALLBOX
    assert not (await send("update", f"Bay {GARAGE_WALLBOX}", **uid))["success"]
    assert hub.book.get(booked.reservation_id) == moved
