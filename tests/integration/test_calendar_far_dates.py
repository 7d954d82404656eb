"""Far dates in the reservations calendar, as the calendar UI and its action send them.

Year 9999 or year 1 in an event: every such date that reaches the calendar is
refused with a translated error and books nothing. Some never reach it: Home
Assistant's own calendar schema converts every date and time to the local time
zone first (`calendar.helper.as_local_timezone`), and a time with no local
equivalent (9999-12-31 late in a zone west of the local one, year 1 early in a
zone east of it) raises `OverflowError` there, before any integration's code —
an "Unknown error" for every calendar. Those are checked to book nothing and to
leave the calendar working.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.typing import (
    MockHAClientWebSocket,
    WebSocketGenerator,
)

from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.scenario import (
    scenario_from_dict,
)

from .conftest import entity_id_of, serving
from .steering_helpers import GARAGE_WALLBOX, home_without_arrivals, setup_steerable


@pytest.fixture
async def sim(hass: HomeAssistant) -> AsyncIterator[MicrogridSimulator]:
    async with serving(hass, scenario_from_dict(home_without_arrivals())) as simulator:
        yield simulator


def _calendar(hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry) -> str:
    return entity_id_of(hass, f"{entry.unique_id}_reservations", ("calendar",))


async def _send(
    client: MockHAClientWebSocket, calendar: str, kind: str, start: str, end: str
) -> dict[str, Any]:
    """Create an event, or move the only booking (`uid` in `kind`), via websocket."""
    command, _, uid = kind.partition(":")
    await client.send_json_auto_id(
        {
            "type": f"calendar/event/{command}",
            "entity_id": calendar,
            **({"uid": uid} if uid else {}),
            "event": {
                "summary": "Zoe",
                "location": str(GARAGE_WALLBOX),
                "dtstart": start,
                "dtend": end,
            },
        }
    )
    answer: dict[str, Any] = await client.receive_json()
    return answer


# Reach the calendar: the local zone (US/Pacific in the tests) holds them.
REACHING = [
    ("9999-12-30T10:00:00", "9999-12-30T11:00:00", "at most 366 days ahead"),
    ("9999-12-31T20:00:00+00:00", "9999-12-31T21:00:00+00:00", "at most 366 days"),
    ("9999-12-30", "9999-12-31", "at most 366 days ahead"),
]
# Overflow in Home Assistant's calendar schema (no time in US/Pacific).
BEFORE_THE_CALENDAR = [
    ("9999-12-31T20:00:00-12:00", "9999-12-31T21:00:00-12:00"),
    ("0001-01-01T01:00:00+14:00", "0001-01-01T02:00:00+14:00"),
]


async def test_far_dates_are_refused_translated_and_book_nothing(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, sim: MicrogridSimulator
) -> None:
    entry = await setup_steerable(hass, sim)
    calendar = _calendar(hass, entry)
    hub = entry.runtime_data.reservations
    assert hub is not None
    client = await hass_ws_client(hass)

    for start, end, message in REACHING:
        answer = await _send(client, calendar, "create", start, end)
        assert not answer["success"], (start, answer)
        assert message in answer["error"]["message"], answer  # ours, translated
        data = {"entity_id": calendar, "summary": f"Charger {GARAGE_WALLBOX}: Zoe"}
        if "T" in start:
            data |= {"start_date_time": start, "end_date_time": end}
        else:
            data |= {"start_date": start, "end_date": end}
        with pytest.raises(ServiceValidationError) as refused:
            await hass.services.async_call("calendar", "create_event", data, True)
        assert refused.value.translation_key == "reservation_too_far_ahead"
    for start, end in BEFORE_THE_CALENDAR:
        answer = await _send(client, calendar, "create", start, end)
        assert not answer["success"], (start, answer)
    assert list(hub.book) == []

    # A booking moved to a far date stays where it was.
    soon = dt_util.now() + timedelta(hours=1)
    booked = await _send(
        client,
        calendar,
        "create",
        soon.isoformat(),
        (soon + timedelta(hours=1)).isoformat(),
    )
    (reservation,) = list(hub.book)
    assert booked["success"]
    moving = f"update:{reservation.reservation_id}"
    for start, end, message in REACHING:
        answer = await _send(client, calendar, moving, start, end)
        assert not answer["success"], (start, answer)
        assert message in answer["error"]["message"], answer
    for start, end in BEFORE_THE_CALENDAR:
        assert not (await _send(client, calendar, moving, start, end))["success"]
    assert list(hub.book) == [reservation]
    state = hass.states.get(calendar)
    assert state is not None
    assert state.attributes["message"] == "Wallbox garage: Zoe"


async def test_year_one_east_of_utc_is_no_point_in_time(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, sim: MicrogridSimulator
) -> None:
    """An all-day event on 0001-01-01 where the day starts before year 1 in UTC.

    Dates pass Home Assistant's schema as they are; the calendar makes them local
    midnight, which has no UTC time in Tokyo (+9:19 then): refused as no real
    point in time.
    """
    await hass.config.async_set_time_zone("Asia/Tokyo")
    entry = await setup_steerable(hass, sim)
    hub = entry.runtime_data.reservations
    assert hub is not None
    client = await hass_ws_client(hass)
    answer = await _send(
        client, _calendar(hass, entry), "create", "0001-01-01", "0001-01-02"
    )
    assert not answer["success"], answer
    assert "must be real points in time" in answer["error"]["message"], answer
    assert list(hub.book) == []
