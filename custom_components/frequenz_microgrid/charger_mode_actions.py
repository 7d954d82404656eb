"""Action `set_charger_mode`: set an EV charger's mode from automations and scripts.

The same as the charger's mode select, plus a boost duration of its own. Checked
before anything changes: an unknown charger, a boost duration that is not a
finite number of minutes within a day, or a duration for a mode other than boost
is refused with a translated `ServiceValidationError`, and nothing changes.
"""

from __future__ import annotations

from datetime import timedelta
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
from homeassistant.util import dt as dt_util
import probatio as vol

from .action_fields import ENTRY_FIELD, ENTRY_SELECTOR, coerce, loaded_entry
from .const import DOMAIN
from .engine.hub.modes import (
    MAX_BOOST_S,
    ChargerMode,
    ChargerModes,
    check_boost_duration,
)

SERVICE_SET_CHARGER_MODE = "set_charger_mode"

ATTR_CHARGER = "charger"
ATTR_MODE = "mode"
ATTR_BOOST_MINUTES = "boost_minutes"


SET_CHARGER_MODE_SCHEMA = vol.Schema(
    {
        ENTRY_FIELD: ENTRY_SELECTOR,
        vol.Required(ATTR_CHARGER): coerce(int),
        vol.Required(ATTR_MODE): vol.All(
            cv.string, vol.In([mode.value for mode in ChargerMode])
        ),
        vol.Optional(ATTR_BOOST_MINUTES): coerce(float),
    }
)


@callback
def async_setup_charger_mode_actions(hass: HomeAssistant) -> None:
    """Register `set_charger_mode` (once, from `async_setup`)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_SET_CHARGER_MODE,
        _async_set_charger_mode,
        schema=SET_CHARGER_MODE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )


async def _async_set_charger_mode(call: ServiceCall) -> ServiceResponse:
    entry = loaded_entry(call)
    runtime = entry.runtime_data
    modes = runtime.engine.controller.charger_modes
    charger_id: int = call.data[ATTR_CHARGER]
    mode = ChargerMode(call.data[ATTR_MODE])
    minutes: float | None = call.data.get(ATTR_BOOST_MINUTES)
    if charger_id not in modes.charger_ids:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_charger",
            translation_placeholders={
                "charger": str(charger_id),
                "chargers": ", ".join(map(str, sorted(modes.charger_ids))) or "-",
            },
        )
    if minutes is not None:
        _check_boost_minutes(mode, minutes)
    modes.set_mode(
        charger_id, mode, boost_s=None if minutes is None else minutes * 60.0
    )
    if runtime.hub_settings is not None:
        runtime.hub_settings.changed()
    return charger_mode_as_dict(modes, charger_id)


def _check_boost_minutes(mode: ChargerMode, minutes: float) -> None:
    if mode is not ChargerMode.BOOST:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="boost_minutes_without_boost",
            translation_placeholders={"mode": mode.value},
        )
    try:
        check_boost_duration(minutes * 60.0)
    except ValueError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_boost_duration",
            translation_placeholders={
                "minutes": str(minutes),
                "max": f"{MAX_BOOST_S / 60.0:g}",
            },
        ) from err


def charger_mode_as_dict(modes: ChargerModes, charger_id: int) -> dict[str, Any]:
    """A charger's mode as a JSON-ready response."""
    state = modes.state(charger_id)
    remaining = modes.boost_remaining_s(charger_id)
    boost_until = (
        None
        if remaining is None
        else (dt_util.utcnow() + timedelta(seconds=remaining)).isoformat()
    )
    return {
        "charger": charger_id,
        "mode": state.mode.value,
        "boost_until": boost_until,
        "after_boost": state.after_boost.value if remaining is not None else None,
        "solar_min_current": state.solar_min_current,
    }
