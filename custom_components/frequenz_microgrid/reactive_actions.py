"""Reactive power action: `set_component_reactive_power` of one inverter.

The engine (`engine/reactive.py`) checks the setpoint against the reactive power
bounds the inverter reports, sends it and keeps it alive until a 0 var setpoint
releases it. Here the engine's refusal becomes a translated
`ServiceValidationError` (nothing was sent), a refusal of the microgrid a
`HomeAssistantError`, and the response says what was sent against which bounds.
"""

from __future__ import annotations

from typing import Any, Final

from frequenz.client.base.exception import ApiClientError
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import probatio as vol

from .action_fields import ENTRY_FIELD, ENTRY_SELECTOR, coerce, loaded_entry
from .const import DOMAIN
from .engine.bounds import PowerBounds
from .engine.reactive import ReactiveRefusedError

SERVICE_SET_COMPONENT_REACTIVE_POWER: Final = "set_component_reactive_power"

ATTR_COMPONENT: Final = "component"
ATTR_POWER: Final = "power"

SET_COMPONENT_REACTIVE_POWER_SCHEMA = vol.Schema(
    {
        ENTRY_FIELD: ENTRY_SELECTOR,
        vol.Required(ATTR_COMPONENT): coerce(int),
        vol.Required(ATTR_POWER): coerce(float),
    }
)


@callback
def async_setup_reactive_actions(hass: HomeAssistant) -> None:
    """Register the reactive power action (once, from `async_setup`)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_SET_COMPONENT_REACTIVE_POWER,
        _async_set_component_reactive_power,
        schema=SET_COMPONENT_REACTIVE_POWER_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )


async def _async_set_component_reactive_power(call: ServiceCall) -> ServiceResponse:
    entry = loaded_entry(call)
    reactive = entry.runtime_data.engine.reactive
    component_id: int = call.data[ATTR_COMPONENT]
    power: float = call.data[ATTR_POWER]
    try:
        outcome = await reactive.set(component_id, power)
    except ReactiveRefusedError as refusal:
        raise _validation_error(refusal, component_id, power) from refusal
    except ApiClientError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="microgrid_error",
            translation_placeholders={"error": str(err.description or err)},
        ) from err
    return {
        "component": outcome.component_id,
        "power": outcome.power_var,
        "bounds": _bounds_as_dict(outcome.bounds),
        "kept_alive": outcome.kept_alive,
        "valid_until": outcome.valid_until.isoformat() if outcome.valid_until else None,
    }


def _bounds_as_dict(bounds: PowerBounds) -> dict[str, Any]:
    return {"lower": bounds.inclusion_lower, "upper": bounds.inclusion_upper}


def _validation_error(
    refusal: ReactiveRefusedError,
    component_id: int,
    power: float,
) -> ServiceValidationError:
    """The translated error of a refused setpoint (each key spelled out)."""
    placeholders = {"component": str(component_id), "power": str(power)}
    match refusal.reason:
        case "not_finite":
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="not_finite",
                translation_placeholders={"field": ATTR_POWER, "value": str(power)},
            )
        case "not_an_inverter":
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="reactive_not_an_inverter",
                translation_placeholders={"component": str(component_id)},
            )
        case "no_bounds":
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="reactive_bounds_unknown",
                translation_placeholders=placeholders,
            )
        case _:
            bounds = refusal.bounds
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="reactive_out_of_bounds",
                translation_placeholders={
                    **placeholders,
                    "lower": str(bounds.inclusion_lower if bounds else None),
                    "upper": str(bounds.inclusion_upper if bounds else None),
                },
            )
