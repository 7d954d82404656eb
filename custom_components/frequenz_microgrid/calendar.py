"""Calendar: the charging hub's reservations, bookable from Home Assistant's calendar.

One calendar per microgrid: every booking is an event whose summary names the
charger and the vehicle (``Garage wallbox: Zoe``), whose location is the
charger's id and whose description lists the energy asked for and what the hub
can guarantee. Bookings that ended or were released as no-shows stay visible for
a while (the book's short history).

Creating, moving and deleting events in the calendar UI goes through the same
book and checks as the actions: an overlap, a period in the past or an unknown
charger is refused with the same translated message and nothing changes. A new
or changed event names its charger by its *location* (the id, or ``any`` / empty
for any free charger) or, failing that, by a ``Charger <id>`` in its summary; the
rest of the summary is the vehicle, and a line ``Energy: 20 kWh`` in the
description asks for that energy. Recurring events are refused: a booking is one
visit.
"""

from __future__ import annotations

from datetime import date, datetime, time
import re
from typing import TYPE_CHECKING, Any

from homeassistant.components.calendar import (
    CalendarEntity,
    CalendarEntityDescription,
    CalendarEvent,
)
from homeassistant.components.calendar.const import (
    EVENT_DESCRIPTION,
    EVENT_END,
    EVENT_LOCATION,
    EVENT_RRULE,
    EVENT_START,
    EVENT_SUMMARY,
    CalendarEntityFeature,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
import probatio as vol

from .action_fields import utc_datetime
from .charging_hub_entity import ChargingHubEntity
from .const import DOMAIN
from .engine.hub.reservations import (
    ANY_CHARGER,
    ReleaseReason,
    Reservation,
    ReservationError,
)
from .reservation_actions import reservation_error

if TYPE_CHECKING:
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .hub_reservations import HubReservations
    from .runtime import FrequenzMicrogridConfigEntry

PARALLEL_UPDATES = 0
"""Bookings only change the engine's book: nothing to serialise."""

RESERVATIONS = CalendarEntityDescription(
    key="reservations", translation_key="reservations"
)

_CHARGER_IN_SUMMARY = re.compile(
    r"\b(?:ev\s+)?charger\s*#?\s*(\d+)\s*:?\s*", re.IGNORECASE
)
_CHARGER_ID = re.compile(r"[0-9]+")
_ENERGY_LINE = re.compile(
    r"^\s*energy\s*:\s*([0-9]+(?:[.,][0-9]+)?)\s*kwh\s*$",
    re.IGNORECASE | re.MULTILINE,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the hub's reservations calendar."""
    if entry.runtime_data.reservations is not None:
        async_add_entities([ReservationCalendar(entry, RESERVATIONS)])


class ReservationCalendar(ChargingHubEntity, CalendarEntity):
    """The bookings of every charger of the hub."""

    _attr_supported_features = (
        CalendarEntityFeature.CREATE_EVENT
        | CalendarEntityFeature.UPDATE_EVENT
        | CalendarEntityFeature.DELETE_EVENT
    )

    def __init__(
        self,
        entry: FrequenzMicrogridConfigEntry,
        description: CalendarEntityDescription,
    ) -> None:
        """Show the book of `entry` on the hub's device."""
        super().__init__(entry, description)
        hub = entry.runtime_data.reservations
        assert hub is not None  # set up only with a book
        self.hub: HubReservations = hub

    async def async_added_to_hass(self) -> None:
        """Also show every change of the book at once."""
        await super().async_added_to_hass()
        self.async_on_remove(self.hub.book.listen(self.async_write_ha_state))

    @property
    def event(self) -> CalendarEvent | None:
        """The booking in force now, else the next one."""
        upcoming = self.hub.book.upcoming()
        return None if upcoming is None else self._event(upcoming)

    async def async_get_events(
        self, hass: HomeAssistant, start_date: datetime, end_date: datetime
    ) -> list[CalendarEvent]:
        """The bookings overlapping the range, and those that ended recently."""
        start, end = start_date.timestamp(), end_date.timestamp()
        events = [
            self._event(released.reservation, released.reason)
            for released in self.hub.book.history
            if released.reason is not ReleaseReason.CANCELLED
            and released.reservation.start < end
            and min(released.reservation.end, released.at) > start
        ]
        events.extend(self._event(r) for r in self.hub.book.reservations(start, end))
        return events

    async def async_create_event(self, **kwargs: Any) -> None:
        """Book a charger from a new calendar event."""
        self._check_single(kwargs)
        charger, start, end, energy, vehicle = self._booking(kwargs)
        try:
            self.hub.book.reserve(
                charger, start, end, energy_kwh=energy, vehicle=vehicle
            )
        except ReservationError as err:
            raise reservation_error(err) from err

    async def async_update_event(
        self,
        uid: str,
        event: dict[str, Any],
        recurrence_id: str | None = None,
        recurrence_range: str | None = None,
    ) -> None:
        """Move or change a booking; refused changes leave it as it was."""
        self._check_single(event)
        charger, start, end, energy, vehicle = self._booking(event)
        try:
            self.hub.book.update(
                uid, charger, start, end, energy_kwh=energy, vehicle=vehicle
            )
        except ReservationError as err:
            raise reservation_error(err) from err

    async def async_delete_event(
        self,
        uid: str,
        recurrence_id: str | None = None,
        recurrence_range: str | None = None,
    ) -> None:
        """Cancel a booking."""
        try:
            self.hub.book.cancel(uid)
        except ReservationError as err:
            raise reservation_error(err) from err

    # -- mapping -------------------------------------------------------------------

    def _event(
        self, reservation: Reservation, released: ReleaseReason | None = None
    ) -> CalendarEvent:
        name = self.hub.charger_name(reservation.charger_id)
        summary = f"{name}: {reservation.vehicle}" if reservation.vehicle else name
        lines = [f"Charger: {name} ({reservation.charger_id})"]
        if reservation.vehicle:
            lines.append(f"Vehicle: {reservation.vehicle}")
        if reservation.energy_kwh is not None:
            lines.append(f"Energy: {reservation.energy_kwh:g} kWh")
        lines.append(f"Guaranteed: {reservation.guaranteed_kwh:.1f} kWh")
        lines.append(f"At most: {reservation.max_kwh:.1f} kWh")
        if reservation.claimed:
            lines.append("Plugged in")
        if released is ReleaseReason.NO_SHOW:
            lines.append("Released: no car within the grace period")
        return CalendarEvent(
            start=_local(reservation.start),
            end=_local(reservation.end),
            summary=summary,
            description="\n".join(lines),
            location=str(reservation.charger_id),
            uid=reservation.reservation_id,
        )

    def _booking(
        self, fields: dict[str, Any]
    ) -> tuple[int | None, float, float, float | None, str | None]:
        """Charger, period, energy and vehicle of an event from the calendar UI."""
        summary = str(fields.get(EVENT_SUMMARY) or "")
        charger = _charger_of(str(fields.get(EVENT_LOCATION) or ""), self.hub)
        if charger is None and (found := _CHARGER_IN_SUMMARY.search(summary)):
            charger = int(found.group(1))
        vehicle = _vehicle_of(summary, charger, self.hub)
        energy = None
        if found_energy := _ENERGY_LINE.search(
            str(fields.get(EVENT_DESCRIPTION) or "")
        ):
            energy = float(found_energy.group(1).replace(",", "."))
        return (
            charger,
            _as_timestamp(fields[EVENT_START]),
            _as_timestamp(fields[EVENT_END]),
            energy,
            vehicle,
        )

    @staticmethod
    def _check_single(fields: dict[str, Any]) -> None:
        if fields.get(EVENT_RRULE):
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="reservation_recurring"
            )


def _charger_of(location: str, hub: HubReservations) -> int | None:
    """The charger an event's location names (`None`: any charger).

    Exactly one of: empty or "any", a charger id (an unknown one is the book's
    refusal), or a charger's name as the calendar shows it, in any case. Anything
    else is refused: a loose match ("Bay 2 left" as charger 2, an unknown name as
    any charger) would book a charger the user did not mean.
    """
    text = location.strip()
    if not text or text.casefold() == ANY_CHARGER:
        return None
    if _CHARGER_ID.fullmatch(text):
        return int(text)
    named = [
        charger_id
        for charger_id in hub.book.charger_ids
        if hub.charger_name(charger_id).casefold() == text.casefold()
    ]
    if len(named) == 1:
        return named[0]
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="reservation_unknown_charger",
        translation_placeholders={
            "charger": text,
            "chargers": ", ".join(
                f"{charger_id} ({hub.charger_name(charger_id)})"
                for charger_id in hub.book.charger_ids
            )
            or "-",
        },
    )


def _vehicle_of(summary: str, charger: int | None, hub: HubReservations) -> str | None:
    """The vehicle in a summary: without a charger's name or ``Charger <id>:``.

    Any charger's name, not only the one booked: the calendar sends the summary
    back as shown ("Wallbox garage: Zoe") when an event moves to another
    charger, and the vehicle is still "Zoe".
    """
    text = summary.strip()
    named = [charger] if charger is not None else []
    named += [c for c in hub.book.charger_ids if c != charger]
    names = sorted({hub.charger_name(c) for c in named}, key=len, reverse=True)
    for name in names:
        if text == name:
            return None
        if text.startswith(f"{name}:"):
            return text.removeprefix(f"{name}:").strip() or None
    return _CHARGER_IN_SUMMARY.sub("", text, count=1).strip() or None


def _as_timestamp(value: date | datetime) -> float:
    """POSIX seconds of an event's start or end; an all-day date is local midnight."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(), tzinfo=dt_util.get_default_time_zone())
    try:
        return utc_datetime(value).timestamp()
    except vol.Invalid as err:  # no UTC time (year 1 or 9999 in a far time zone)
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="reservation_not_finite"
        ) from err


def _local(seconds: float) -> datetime:
    return dt_util.as_local(dt_util.utc_from_timestamp(seconds))
