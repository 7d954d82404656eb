"""Actions for circuits: set and clear a circuit's power limits over time.

`set_power_limits` replaces a circuit's envelope (datafev's `enter_power_limits`:
steps with a start, a lower and an upper limit in W, forward-filled, and a
tolerance in W). Everything is validated before anything changes – an unknown
circuit, steps out of order or starting together, a lower limit above the upper,
NaN or infinite numbers are a translated `ServiceValidationError`, and then
nothing is stored and nothing is sent. The response is the envelope now in force
and, honestly, what the steering cannot do: a step whose upper limit is below
what the circuit's other loads draw now cannot be held by the EV chargers alone.
"""

from __future__ import annotations

from datetime import datetime
import math
import time
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

from .action_fields import ENTRY_FIELD, ENTRY_SELECTOR, loaded_entry, utc_datetime
from .const import DOMAIN
from .engine.hub.circuits import ROOT_CIRCUIT_ID
from .engine.hub.envelope import (
    EnvelopeProblem,
    InvalidEnvelopeError,
    LimitEnvelope,
    LimitStep,
)
from .engine.hub.limits import CircuitLimits

SERVICE_SET_POWER_LIMITS = "set_power_limits"
SERVICE_CLEAR_POWER_LIMITS = "clear_power_limits"

ATTR_CIRCUIT = "circuit"
ATTR_STEPS = "steps"
ATTR_TOLERANCE = "tolerance"
ATTR_START = "start"
ATTR_LOWER = "lower"
ATTR_UPPER = "upper"

MAX_STEPS = 1000
"""Most steps one call may set (a day in 96 quarter hours fits ten times)."""


def _number(value: Any) -> float:
    """A float, refusing what won't convert (NaN and inf pass: refused later)."""
    try:
        return float(value)
    except (OverflowError, TypeError, ValueError) as err:
        raise vol.Invalid("expected a number") from err


_STEP = vol.Schema(
    {
        vol.Required(ATTR_START): utc_datetime,
        vol.Optional(ATTR_LOWER): _number,
        vol.Required(ATTR_UPPER): _number,
    }
)
_CIRCUIT = vol.Optional(ATTR_CIRCUIT, default=ROOT_CIRCUIT_ID)
_CIRCUIT_VALUE = vol.All(cv.string, vol.Length(min=1, max=100))

SET_POWER_LIMITS_SCHEMA = vol.Schema(
    {
        ENTRY_FIELD: ENTRY_SELECTOR,
        _CIRCUIT: _CIRCUIT_VALUE,
        vol.Required(ATTR_STEPS): vol.All(
            cv.ensure_list, [_STEP], vol.Length(min=1, max=MAX_STEPS)
        ),
        vol.Optional(ATTR_TOLERANCE, default=0.0): _number,
    }
)
CLEAR_POWER_LIMITS_SCHEMA = vol.Schema(
    {ENTRY_FIELD: ENTRY_SELECTOR, _CIRCUIT: _CIRCUIT_VALUE}
)


@callback
def async_setup_circuit_actions(hass: HomeAssistant) -> None:
    """Register the circuit actions (once, from `async_setup`)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_SET_POWER_LIMITS,
        _async_set_power_limits,
        schema=SET_POWER_LIMITS_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_CLEAR_POWER_LIMITS,
        _async_clear_power_limits,
        schema=CLEAR_POWER_LIMITS_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )


async def _async_set_power_limits(call: ServiceCall) -> ServiceResponse:
    entry = loaded_entry(call)
    limits = entry.runtime_data.engine.controller.circuit_limits
    circuit_id = _known_circuit(limits, call.data[ATTR_CIRCUIT])
    envelope = envelope_from_call(call.data[ATTR_STEPS], call.data[ATTR_TOLERANCE])
    limits.set(circuit_id, envelope)
    store = entry.runtime_data.circuit_store
    if store is not None:
        await store.async_save(limits)
    return {
        "circuit": circuit_id,
        **envelope_response(limits, circuit_id),
        "warnings": envelope_warnings(
            limits,
            circuit_id,
            envelope,
            has_batteries=bool(entry.runtime_data.engine.topology.battery_ids),
        ),
    }


async def _async_clear_power_limits(call: ServiceCall) -> ServiceResponse:
    entry = loaded_entry(call)
    limits = entry.runtime_data.engine.controller.circuit_limits
    circuit_id = _known_circuit(limits, call.data[ATTR_CIRCUIT])
    cleared = limits.clear(circuit_id)
    store = entry.runtime_data.circuit_store
    if cleared and store is not None:
        await store.async_save(limits)
    return {"circuit": circuit_id, "cleared": cleared}


# --- Validation ------------------------------------------------------------------


def _known_circuit(limits: CircuitLimits, circuit_id: str) -> str:
    if limits.circuit(circuit_id) is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_circuit",
            translation_placeholders={
                "circuit": circuit_id,
                "known": ", ".join(limits.tree.ids),
            },
        )
    return circuit_id


def envelope_from_call(
    steps: list[dict[str, Any]], tolerance_w: float
) -> LimitEnvelope:
    """Build the envelope of a call, or raise its translated validation error.

    A step without a lower limit gets the smaller of 0 W and its upper limit (no
    lower limit on consumption worth naming).
    """
    built = []
    for step in steps:
        upper = float(step[ATTR_UPPER])
        lower = step.get(ATTR_LOWER)
        start: datetime = step[ATTR_START]
        built.append(
            LimitStep(
                start.timestamp(),
                min(0.0, upper) if lower is None else float(lower),
                upper,
            )
        )
    try:
        return LimitEnvelope.of(built, float(tolerance_w))
    except InvalidEnvelopeError as err:
        raise _envelope_error(err) from err


def _envelope_error(err: InvalidEnvelopeError) -> ServiceValidationError:
    """The translated error of an envelope problem, naming the step (1-based).

    One literal translation key per problem (the keys are checked against the
    translations).
    """
    step = {"step": "-" if err.step_index is None else str(err.step_index + 1)}
    match err.problem:
        case EnvelopeProblem.NO_STEPS:
            return ServiceValidationError(
                translation_domain=DOMAIN, translation_key="envelope_no_steps"
            )
        case EnvelopeProblem.NOT_FINITE:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="envelope_not_finite",
                translation_placeholders=step,
            )
        case EnvelopeProblem.UNORDERED_STEPS:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="envelope_unordered_steps",
                translation_placeholders=step,
            )
        case EnvelopeProblem.DUPLICATE_START:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="envelope_duplicate_start",
                translation_placeholders=step,
            )
        case EnvelopeProblem.LOWER_ABOVE_UPPER:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="envelope_lower_above_upper",
                translation_placeholders=step,
            )
        case EnvelopeProblem.NEGATIVE_TOLERANCE:  # one for the whole envelope
            return ServiceValidationError(
                translation_domain=DOMAIN, translation_key="envelope_negative_tolerance"
            )


# --- Responses -------------------------------------------------------------------


def _iso(at: float | None) -> str | None:
    return None if at is None else dt_util.utc_from_timestamp(at).isoformat()


def _step_as_dict(step: LimitStep) -> dict[str, Any]:
    return {"start": _iso(step.start), "lower": step.lower_w, "upper": step.upper_w}


def envelope_response(limits: CircuitLimits, circuit_id: str) -> dict[str, Any]:
    """The circuit's envelope, the step in force now and the next change."""
    envelope = limits.envelope(circuit_id)
    if envelope is None:
        return {"envelope": None, "in_force": None, "next_change": None}
    now = time.time()
    step = envelope.in_force(now)
    return {
        "envelope": {
            "steps": [_step_as_dict(s) for s in envelope.steps],
            "tolerance": envelope.tolerance_w,
        },
        "in_force": None if step is None else _step_as_dict(step),
        "next_change": _iso(envelope.next_change(now)),
    }


def envelope_warnings(
    limits: CircuitLimits,
    circuit_id: str,
    envelope: LimitEnvelope,
    *,
    has_batteries: bool,
) -> list[str]:
    """What the steering cannot do about the envelope, said plainly.

    A step whose upper limit is below what the circuit's other loads draw now
    cannot be held by the EV chargers (they go to 0 W and the rest is not ours
    to switch); at the grid connection of a site with batteries, the batteries
    discharge the rest while they have energy and power. Steps that ended
    already are not used (and dropped at the next restart).
    """
    circuit = limits.circuit(circuit_id)
    shaved = has_batteries and circuit is not None and circuit.root
    warnings: list[str] = []
    status = limits.statuses.get(circuit_id)
    uncontrollable = math.nan if status is None else status.uncontrollable_w
    now = time.time()
    for index, step in enumerate(envelope.steps):
        following = (
            envelope.steps[index + 1] if index + 1 < len(envelope.steps) else None
        )
        if following is not None and following.start <= now:
            warnings.append(
                f"Step {index + 1} (from {_iso(step.start)}) ended already; "
                "it is not used."
            )
            continue
        if math.isfinite(uncontrollable) and step.upper_w < uncontrollable:
            consequence = (
                "the EV chargers get 0 W and the batteries must discharge the rest; "
                "it holds only while they have the energy and power"
                if shaved
                else "it cannot be held; the EV chargers on it get 0 W"
            )
            warnings.append(
                f"Step {index + 1} (from {_iso(step.start)}): the upper limit "
                f"{step.upper_w:.0f} W is below the circuit's uncontrollable load "
                f"(about {uncontrollable:.0f} W now): {consequence}."
            )
    return warnings
