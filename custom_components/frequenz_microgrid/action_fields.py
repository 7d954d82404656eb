"""What every action module shares: the entry field, number coercion, refusals.

Each action names the config entry it steers with the same field and selector,
converts numbers the same way (so an overflowing number is a schema error, never
an escaping `OverflowError`) and turns the engine's `ProposalRefusedError` into its
own translated error. Keeping these here keeps the action modules from importing
each other's private names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
import math
from typing import Any, Final, cast

from homeassistant.core import ServiceCall
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import config_validation as cv, service
from homeassistant.helpers.selector import ConfigEntrySelector
from homeassistant.util import dt as dt_util
import probatio as vol

from .const import DOMAIN
from .engine.power_manager import ProposalRefusedError
from .runtime import FrequenzMicrogridConfigEntry

ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"

ENTRY_FIELD: Final = vol.Required(ATTR_CONFIG_ENTRY_ID)
"""Schema key of the entry an action steers (required in every action)."""
ENTRY_SELECTOR: Final = ConfigEntrySelector({"integration": DOMAIN})
"""Schema value of `ENTRY_FIELD`: one of this integration's config entries."""


def coerce[N: (int, float)](kind: type[N]) -> Callable[[Any], N]:
    """Return a validator converting a value to `kind`, refusing what won't convert.

    Unlike `vol.Coerce`, whose compiled form lets the `OverflowError` of an integer
    beyond a float's range (or of an infinite float made an int) escape as no
    validation error at all, every failed conversion is a schema error here. Nor
    is anything truncated or read as a number that is none: an int is refused a
    fraction (`int(1.5)` would steer priority 1, or component 3 for 3.9) and
    either kind a boolean.
    """
    whole = cast(type, kind) is int

    def coerce_value(value: Any) -> N:
        if isinstance(value, bool):
            raise vol.Invalid(f"expected {kind.__name__}, got a boolean")
        if (
            whole
            and isinstance(value, float)
            and math.isfinite(value)
            and not value.is_integer()
        ):
            raise vol.Invalid("expected int: a whole number")
        try:
            return kind(value)
        except OverflowError as err:
            raise vol.Invalid(
                f"expected {kind.__name__}: the number is too large"
            ) from err
        except (TypeError, ValueError) as err:
            raise vol.Invalid(f"expected {kind.__name__}") from err

    return coerce_value


def utc_datetime(value: Any) -> datetime:
    """Return a date and time (naive: Home Assistant's time zone) in UTC.

    The one conversion every action (and the calendar) uses. A time with no UTC
    equivalent (year 1 east of UTC, year 9999 west of it) makes `as_utc` raise
    `OverflowError`, which a schema would let escape as an unknown error; here it
    is a validation error like any other bad time.
    """
    parsed = cv.datetime(value)
    try:
        return dt_util.as_utc(parsed)
    except OverflowError as err:
        raise vol.Invalid("date and time out of range") from err


def loaded_entry(call: ServiceCall) -> FrequenzMicrogridConfigEntry:
    """Return the call's config entry (its `runtime_data` is the running engine).

    An entry that is unknown or not loaded is Home Assistant's own translated
    `ServiceValidationError`, raised before any of the action's work.
    """
    entry: FrequenzMicrogridConfigEntry = service.async_get_config_entry(
        call.hass, DOMAIN, call.data[ATTR_CONFIG_ENTRY_ID]
    )
    return entry


@contextmanager
def refusal_as(make_error: Callable[[str], HomeAssistantError]) -> Iterator[None]:
    """Re-raise the engine's `ProposalRefusedError` as the caller's error.

    `make_error` gets the refusal's text and builds the translated error; the
    caller spells its `translation_key` out literally (the translation tests
    check every key is a literal with a message). Any other error passes as is.
    """
    try:
        yield
    except ProposalRefusedError as err:
        raise make_error(str(err)) from err
