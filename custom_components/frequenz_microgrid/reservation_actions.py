"""Actions `reserve_charger`, `cancel_reservation`, `find_available_chargers`.

datafev's `reserve` / `unreserve` / `query_availability`, overlap-checked (issue
16, capability 2). Every check runs in the engine's book before anything is
stored: start not before end, a period that already ended, one too long or too
far ahead, an unknown charger, a NaN or negative energy, an overlap with another
booking, no free charger — each a translated `ServiceValidationError`, and the
book stays as it was. The calendar entity maps its create / update / delete onto
the same book and the same errors (`reservation_error`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
import probatio as vol

from .action_fields import (
    ENTRY_FIELD,
    ENTRY_SELECTOR,
    coerce,
    loaded_entry,
    utc_datetime,
)
from .const import DOMAIN
from .engine.hub.reservations import (
    ANY_CHARGER,
    MAX_VEHICLE_LENGTH,
    Availability,
    ReservationError,
    ReservationProblem,
)
from .hub_reservations import HubReservations, iso, reservation_as_dict

SERVICE_RESERVE_CHARGER = "reserve_charger"
SERVICE_CANCEL_RESERVATION = "cancel_reservation"
SERVICE_FIND_AVAILABLE_CHARGERS = "find_available_chargers"

ATTR_CHARGER = "charger"
ATTR_START = "start"
ATTR_END = "end"
ATTR_ENERGY_KWH = "energy_kwh"
ATTR_VEHICLE = "vehicle"
ATTR_RESERVATION_ID = "reservation_id"

_INT = coerce(int)


def charger_or_any(value: Any) -> int | None:
    """A charger id, or `None` for "any" (the book picks a free charger)."""
    if isinstance(value, str) and value.strip().lower() == ANY_CHARGER:
        return None
    return _INT(value)


_PERIOD = {vol.Required(ATTR_START): utc_datetime, vol.Required(ATTR_END): utc_datetime}

RESERVE_CHARGER_SCHEMA = vol.Schema(
    {
        ENTRY_FIELD: ENTRY_SELECTOR,
        vol.Optional(ATTR_CHARGER, default=ANY_CHARGER): charger_or_any,
        **_PERIOD,
        vol.Optional(ATTR_ENERGY_KWH): coerce(float),
        vol.Optional(ATTR_VEHICLE): vol.All(
            cv.string, vol.Length(max=MAX_VEHICLE_LENGTH)
        ),
    }
)
CANCEL_RESERVATION_SCHEMA = vol.Schema(
    {
        ENTRY_FIELD: ENTRY_SELECTOR,
        vol.Required(ATTR_RESERVATION_ID): vol.All(cv.string, vol.Length(min=1)),
    }
)
FIND_AVAILABLE_CHARGERS_SCHEMA = vol.Schema({ENTRY_FIELD: ENTRY_SELECTOR, **_PERIOD})


@callback
def async_setup_reservation_actions(hass: HomeAssistant) -> None:
    """Register the reservation actions (once, from `async_setup`)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_RESERVE_CHARGER,
        _async_reserve_charger,
        schema=RESERVE_CHARGER_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_CANCEL_RESERVATION,
        _async_cancel_reservation,
        schema=CANCEL_RESERVATION_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_FIND_AVAILABLE_CHARGERS,
        _async_find_available_chargers,
        schema=FIND_AVAILABLE_CHARGERS_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )


def timestamp(value: datetime) -> float:
    """POSIX seconds of a datetime; a naive one is in Home Assistant's time zone.

    Raises `vol.Invalid` for a time with no UTC equivalent (see `utc_datetime`).
    """
    return utc_datetime(value).timestamp()


async def _async_reserve_charger(call: ServiceCall) -> ServiceResponse:
    hub = _reservations(call)
    try:
        booked = hub.book.reserve(
            call.data[ATTR_CHARGER],
            timestamp(call.data[ATTR_START]),
            timestamp(call.data[ATTR_END]),
            energy_kwh=call.data.get(ATTR_ENERGY_KWH),
            vehicle=call.data.get(ATTR_VEHICLE),
        )
    except ReservationError as err:
        raise reservation_error(err) from err
    return {
        **reservation_as_dict(booked),
        "charger_name": hub.charger_name(booked.charger_id),
    }


async def _async_cancel_reservation(call: ServiceCall) -> ServiceResponse:
    hub = _reservations(call)
    try:
        cancelled = hub.book.cancel(call.data[ATTR_RESERVATION_ID])
    except ReservationError as err:
        raise reservation_error(err) from err
    return {"cancelled": reservation_as_dict(cancelled)}


async def _async_find_available_chargers(call: ServiceCall) -> ServiceResponse:
    hub = _reservations(call)
    start = timestamp(call.data[ATTR_START])
    end = timestamp(call.data[ATTR_END])
    try:
        available = hub.book.find_available(start, end)
    except ReservationError as err:
        raise reservation_error(err) from err
    return {
        "start": iso(start),
        "end": iso(end),
        "chargers": [_availability_as_dict(hub, a) for a in available],
    }


def _availability_as_dict(hub: HubReservations, free: Availability) -> dict[str, Any]:
    return {
        "charger": free.charger_id,
        "name": hub.charger_name(free.charger_id),
        "max_power_w": free.max_power_w,
        "guaranteed_power_w": round(free.guaranteed_power_w, 1),
        "max_energy_kwh": round(free.max_kwh, 3),
        "guaranteed_energy_kwh": round(free.guaranteed_kwh, 3),
    }


def _reservations(call: ServiceCall) -> HubReservations:
    entry = loaded_entry(call)
    hub = entry.runtime_data.reservations
    if hub is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="reservations_unavailable"
        )
    return hub


def reservation_error(err: ReservationError) -> ServiceValidationError:
    """The translated error of a refused booking (the book changed nothing)."""
    details = dict(err.details)
    for key in ("start", "end"):
        if key in details:
            details[key] = iso(float(details[key]))
    # One literal key per problem: the translation checks read them from the source.
    match err.problem:
        case ReservationProblem.NOT_FINITE:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="reservation_not_finite",
                translation_placeholders=details,
            )
        case ReservationProblem.END_NOT_AFTER_START:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="reservation_end_not_after_start",
                translation_placeholders=details,
            )
        case ReservationProblem.IN_THE_PAST:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="reservation_in_the_past",
                translation_placeholders=details,
            )
        case ReservationProblem.TOO_LONG:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="reservation_too_long",
                translation_placeholders=details,
            )
        case ReservationProblem.TOO_FAR_AHEAD:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="reservation_too_far_ahead",
                translation_placeholders=details,
            )
        case ReservationProblem.INVALID_ENERGY:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="reservation_invalid_energy",
                translation_placeholders=details,
            )
        case ReservationProblem.INVALID_VEHICLE:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="reservation_invalid_vehicle",
                translation_placeholders=details,
            )
        case ReservationProblem.UNKNOWN_CHARGER:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="reservation_unknown_charger",
                translation_placeholders=details,
            )
        case ReservationProblem.OVERLAP:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="reservation_overlap",
                translation_placeholders=details,
            )
        case ReservationProblem.NO_CHARGER_FREE:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="reservation_no_charger_free",
                translation_placeholders=details,
            )
        case ReservationProblem.CHARGER_FULL:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="reservation_charger_full",
                translation_placeholders=details,
            )
        case ReservationProblem.UNKNOWN_RESERVATION:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_reservation",
                translation_placeholders=details,
            )
