"""Actions `set_charging_target` and `clear_charging_target` (issue 16 §1).

A target is the energy a charger's session should deliver by a departure time
(`engine.hub.targets`). The response says the target, when the hub expects to
meet it, whether it is at risk and the energy the hub forecasts to miss under
the circuits' limits and envelopes – so an automation knows at once.

Checked before anything is stored: an unknown charger, no amount or two, NaN or
infinity, an energy ≤ 0 or above the vehicle's capacity (when given), a SoC (the
Microgrid API reports no vehicle SoC, so a SoC target cannot be steered by), a
departure in the past or more than a week ahead – each a translated
`ServiceValidationError`, and nothing changes.
"""

from __future__ import annotations

from typing import Any

from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
import probatio as vol

from .action_fields import (
    ENTRY_FIELD,
    ENTRY_SELECTOR,
    coerce,
    loaded_entry,
    utc_datetime,
)
from .const import DOMAIN
from .engine.hub.targets import (
    ChargingTarget,
    ChargingTargets,
    InvalidTargetError,
    TargetProblem,
    TargetState,
    validate_target,
)

SERVICE_SET_CHARGING_TARGET = "set_charging_target"
SERVICE_CLEAR_CHARGING_TARGET = "clear_charging_target"

ATTR_CHARGER = "charger"
ATTR_ENERGY_KWH = "energy_kwh"
ATTR_SOC = "soc"
ATTR_DEPARTURE = "departure"
ATTR_VEHICLE_CAPACITY_KWH = "vehicle_capacity_kwh"

SET_CHARGING_TARGET_SCHEMA = vol.Schema(
    {
        ENTRY_FIELD: ENTRY_SELECTOR,
        vol.Required(ATTR_CHARGER): coerce(int),
        vol.Optional(ATTR_ENERGY_KWH): coerce(float),
        vol.Optional(ATTR_SOC): coerce(float),
        vol.Required(ATTR_DEPARTURE): utc_datetime,
        vol.Optional(ATTR_VEHICLE_CAPACITY_KWH): coerce(float),
    }
)
CLEAR_CHARGING_TARGET_SCHEMA = vol.Schema(
    {ENTRY_FIELD: ENTRY_SELECTOR, vol.Required(ATTR_CHARGER): coerce(int)}
)


@callback
def async_setup_target_actions(hass: HomeAssistant) -> None:
    """Register the target actions (once, from `async_setup`)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_SET_CHARGING_TARGET,
        _async_set_charging_target,
        schema=SET_CHARGING_TARGET_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_CLEAR_CHARGING_TARGET,
        _async_clear_charging_target,
        schema=CLEAR_CHARGING_TARGET_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )


def target_as_response(state: TargetState, targets: ChargingTargets) -> dict[str, Any]:
    """The target in kWh, its forecast, and the hub's unmet energy."""
    record = state.as_dict()
    energy = state.target.energy_wh
    unmet = state.unmet_wh
    return {
        "charger": state.target.charger_id,
        "energy_kwh": None if energy is None else round(energy / 1000.0, 3),
        "soc": state.target.soc_pct,
        "departure": record["departure"],
        "booking_id": state.target.booking_id,
        "session_id": state.target.session_id,
        "delivered_kwh": round(state.delivered_wh / 1000.0, 3),
        "remaining_kwh": round(state.remaining_wh / 1000.0, 3),
        "expected_completion": record["expected_completion"],
        "at_risk": state.at_risk,
        "unmet_kwh": None if unmet is None else round(unmet / 1000.0, 3),
        "hub_unmet_kwh": round(targets.unmet_wh / 1000.0, 3),
    }


async def _async_set_charging_target(call: ServiceCall) -> ServiceResponse:
    entry = loaded_entry(call)
    runtime = entry.runtime_data
    targets = runtime.engine.controller.charging_targets
    energy: float | None = call.data.get(ATTR_ENERGY_KWH)
    capacity: float | None = call.data.get(ATTR_VEHICLE_CAPACITY_KWH)
    wanted = ChargingTarget(
        charger_id=call.data[ATTR_CHARGER],
        energy_wh=None if energy is None else energy * 1000.0,
        soc_pct=call.data.get(ATTR_SOC),
        departure=call.data[ATTR_DEPARTURE],
    )
    if capacity is not None and not capacity > 0.0:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="target_invalid_capacity"
        )
    try:
        validate_target(
            wanted,
            now=dt_util.utcnow(),
            charger_ids=targets.charger_ids,
            capacity_wh=None if capacity is None else capacity * 1000.0,
        )
    except InvalidTargetError as err:
        raise target_error(err, targets) from err
    if runtime.targets is not None:
        runtime.targets.sync_sessions()
    state = targets.set(wanted)
    if runtime.targets is not None:
        runtime.targets.refresh()
    current = targets.state(wanted.charger_id)
    return target_as_response(current or state, targets)


async def _async_clear_charging_target(call: ServiceCall) -> ServiceResponse:
    entry = loaded_entry(call)
    targets = entry.runtime_data.engine.controller.charging_targets
    charger_id: int = call.data[ATTR_CHARGER]
    if charger_id not in targets.charger_ids:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_charger",
            translation_placeholders={
                "charger": str(charger_id),
                "chargers": ", ".join(map(str, sorted(targets.charger_ids))) or "-",
            },
        )
    return {"charger": charger_id, "cleared": targets.clear(charger_id)}


def target_error(
    err: InvalidTargetError, targets: ChargingTargets
) -> ServiceValidationError:
    """The translated error of a refused target (each key spelled out)."""
    match err.problem:
        case TargetProblem.UNKNOWN_CHARGER:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_charger",
                translation_placeholders={
                    "charger": err.details.get("charger", "?"),
                    "chargers": ", ".join(map(str, sorted(targets.charger_ids))) or "-",
                },
            )
        case TargetProblem.NO_AMOUNT:
            return ServiceValidationError(
                translation_domain=DOMAIN, translation_key="target_no_amount"
            )
        case TargetProblem.BOTH_AMOUNTS:
            return ServiceValidationError(
                translation_domain=DOMAIN, translation_key="target_both_amounts"
            )
        case TargetProblem.NOT_FINITE:
            return ServiceValidationError(
                translation_domain=DOMAIN, translation_key="target_not_finite"
            )
        case TargetProblem.ENERGY_NOT_POSITIVE:
            return ServiceValidationError(
                translation_domain=DOMAIN, translation_key="target_energy_not_positive"
            )
        case TargetProblem.ABOVE_CAPACITY:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="target_above_capacity",
                translation_placeholders={
                    "capacity": err.details.get("capacity_kwh", "?")
                },
            )
        case TargetProblem.SOC_OUT_OF_RANGE:
            return ServiceValidationError(
                translation_domain=DOMAIN, translation_key="target_soc_out_of_range"
            )
        case TargetProblem.SOC_NOT_REPORTED:
            return ServiceValidationError(
                translation_domain=DOMAIN, translation_key="target_soc_not_reported"
            )
        case TargetProblem.DEPARTURE_IN_PAST | TargetProblem.DEPARTURE_NOT_AWARE:
            return ServiceValidationError(
                translation_domain=DOMAIN, translation_key="target_departure_in_past"
            )
        case TargetProblem.DEPARTURE_TOO_FAR:
            return ServiceValidationError(
                translation_domain=DOMAIN, translation_key="target_departure_too_far"
            )
