"""Actions: steer a microgrid's pools from automations and scripts.

Each handler only validates, hands the request to the entry's steering controller
and turns the answer into a JSON-ready response: the arbitration, distribution and
keep-alive all live in the engine. Validation happens before anything is sent, so a
refused call changes nothing on the microgrid (a translated
`ServiceValidationError`); a failure at the microgrid itself is a
`HomeAssistantError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
import math
from typing import Any

from frequenz.client.base.exception import ApiClientError
from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid import Validity
from frequenz.client.microgrid.metrics import Bounds as MetricBounds, Metric
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
import probatio as vol

from .action_fields import (
    ENTRY_FIELD,
    ENTRY_SELECTOR,
    coerce,
    loaded_entry,
    refusal_as,
)
from .actors import action_source_id, ha_priority
from .const import (
    DOMAIN,
    MAX_PRIORITY,
    MIN_PRIORITY,
)
from .engine.bounds import Bounds, PowerBounds
from .engine.control import ControllerStatus, Pool, ProposalOutcome
from .engine.graph import Topology
from .engine.health import ComponentStatus
from .engine.results import result_as_dict
from .steering_errors import raise_if_nothing_accepted
from .steering_status import blocked_until_iso

SERVICE_PROPOSE_POWER = "propose_power"
SERVICE_WITHDRAW_PROPOSAL = "withdraw_proposal"
SERVICE_SET_COMPONENT_BOUNDS = "set_component_bounds"
SERVICE_GET_POWER_STATUS = "get_power_status"

ATTR_POOL = "pool"
ATTR_POWER = "power"
ATTR_LOWER = "lower"
ATTR_UPPER = "upper"
ATTR_PRIORITY = "priority"
ATTR_ACTOR = "actor"
ATTR_COMPONENTS = "components"
ATTR_COMPONENT = "component"
ATTR_VALIDITY = "validity"

DEFAULT_ACTOR = "default"
"""Actor of calls that name none: such calls replace each other's proposal."""

VALID_BOUNDS_LIFETIMES_S = tuple(validity.value for validity in Validity)
"""Lifetimes the Microgrid API accepts for added bounds (5 s, 1, 5 and 15 min)."""


_INT = coerce(int)
_POOL = vol.Required(ATTR_POOL)
_POOL_VALUE = vol.All(cv.string, vol.In([pool.value for pool in Pool]))
_ACTOR = vol.Optional(ATTR_ACTOR, default=DEFAULT_ACTOR)
_ACTOR_VALUE = vol.All(cv.string, vol.Length(min=1, max=100))
_PRIORITY_VALUE = vol.All(_INT, vol.Range(min=MIN_PRIORITY, max=MAX_PRIORITY))
_WATTS = coerce(float)

PROPOSE_POWER_SCHEMA = vol.Schema(
    {
        ENTRY_FIELD: ENTRY_SELECTOR,
        _POOL: _POOL_VALUE,
        vol.Optional(ATTR_POWER): _WATTS,
        vol.Optional(ATTR_LOWER): _WATTS,
        vol.Optional(ATTR_UPPER): _WATTS,
        vol.Optional(ATTR_PRIORITY): _PRIORITY_VALUE,
        _ACTOR: _ACTOR_VALUE,
        vol.Optional(ATTR_COMPONENTS): vol.All(
            cv.ensure_list, [_INT], vol.Length(min=1)
        ),
    }
)
WITHDRAW_PROPOSAL_SCHEMA = vol.Schema(
    {
        ENTRY_FIELD: ENTRY_SELECTOR,
        _POOL: _POOL_VALUE,
        _ACTOR: _ACTOR_VALUE,
        vol.Optional(ATTR_PRIORITY): _PRIORITY_VALUE,
    }
)
SET_COMPONENT_BOUNDS_SCHEMA = vol.Schema(
    {
        ENTRY_FIELD: ENTRY_SELECTOR,
        vol.Required(ATTR_COMPONENT): _INT,
        vol.Required(ATTR_LOWER): _WATTS,
        vol.Required(ATTR_UPPER): _WATTS,
        vol.Optional(ATTR_VALIDITY, default=Validity.ONE_MINUTE.value): _INT,
    }
)
GET_POWER_STATUS_SCHEMA = vol.Schema({ENTRY_FIELD: ENTRY_SELECTOR})


@callback
def async_setup_actions(hass: HomeAssistant) -> None:
    """Register the integration's actions (once, from `async_setup`)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_PROPOSE_POWER,
        _async_propose_power,
        schema=PROPOSE_POWER_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_WITHDRAW_PROPOSAL,
        _async_withdraw_proposal,
        schema=WITHDRAW_PROPOSAL_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_SET_COMPONENT_BOUNDS,
        _async_set_component_bounds,
        schema=SET_COMPONENT_BOUNDS_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_POWER_STATUS,
        _async_get_power_status,
        schema=GET_POWER_STATUS_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )


# --- Handlers --------------------------------------------------------------------


async def _async_propose_power(call: ServiceCall) -> ServiceResponse:
    entry = loaded_entry(call)
    pool = Pool(call.data[ATTR_POOL])
    power: float | None = call.data.get(ATTR_POWER)
    bounds = Bounds(call.data.get(ATTR_LOWER), call.data.get(ATTR_UPPER))
    _check_finite(power=power, lower=bounds.lower, upper=bounds.upper)
    _check_power_sign(pool, power)
    if bounds.is_empty():
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="lower_above_upper",
            translation_placeholders={
                "lower": str(bounds.lower),
                "upper": str(bounds.upper),
            },
        )
    if power is None and bounds.lower is None and bounds.upper is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="empty_proposal"
        )
    controller = entry.runtime_data.engine.controller
    component_ids = _pool_subset(
        pool, call.data.get(ATTR_COMPONENTS), controller.pool_components(pool)
    )
    priority = int(call.data.get(ATTR_PRIORITY, ha_priority(entry)))
    # A component set overlapping another one, or not the pool's, is bad input.
    with refusal_as(
        lambda error: ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_proposal",
            translation_placeholders={"error": error},
        )
    ):
        outcome = await controller.propose(
            pool,
            source_id=action_source_id(call.data[ATTR_ACTOR]),
            priority=priority,
            power=power,
            bounds=bounds,
            component_ids=component_ids,
            keep_alive=True,
        )
    raise_if_nothing_accepted(outcome.result)
    return {**_outcome_as_dict(outcome), "priority": priority}


async def _async_withdraw_proposal(call: ServiceCall) -> ServiceResponse:
    entry = loaded_entry(call)
    outcome = await entry.runtime_data.engine.controller.withdraw(
        Pool(call.data[ATTR_POOL]),
        source_id=action_source_id(call.data[ATTR_ACTOR]),
        priority=call.data.get(ATTR_PRIORITY),
    )
    return _outcome_as_dict(outcome)


async def _async_set_component_bounds(call: ServiceCall) -> ServiceResponse:
    entry = loaded_entry(call)
    component_id: int = call.data[ATTR_COMPONENT]
    lower: float = call.data[ATTR_LOWER]
    upper: float = call.data[ATTR_UPPER]
    _check_finite(lower=lower, upper=upper)
    if lower > upper:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="lower_above_upper",
            translation_placeholders={"lower": str(lower), "upper": str(upper)},
        )
    validity_s: int = call.data[ATTR_VALIDITY]
    if validity_s not in VALID_BOUNDS_LIFETIMES_S:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_validity",
            translation_placeholders={
                "validity": str(validity_s),
                "allowed": ", ".join(str(s) for s in VALID_BOUNDS_LIFETIMES_S),
            },
        )
    metric = _bounds_metric(entry.runtime_data.engine.topology, component_id)
    try:
        valid_until = await entry.runtime_data.client.add_component_bounds(
            ComponentId(component_id),
            metric,
            [MetricBounds(lower=lower, upper=upper)],
            validity=Validity(validity_s),
        )
    except ApiClientError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="microgrid_error",
            translation_placeholders={"error": str(err.description or err)},
        ) from err
    entry.runtime_data.engine.bounds_set(component_id, metric, lower, upper, validity_s)
    return {
        "component": component_id,
        "lower": lower,
        "upper": upper,
        "valid_until": valid_until.isoformat() if valid_until else None,
    }


async def _async_get_power_status(call: ServiceCall) -> ServiceResponse:
    entry = loaded_entry(call)
    controller = entry.runtime_data.engine.controller
    return status_as_dict(controller.status(), controller.to_wall_time)


# --- Validation ------------------------------------------------------------------


def _check_finite(**values: float | None) -> None:
    """Refuse NaN and infinities: they would reach the arithmetic of every pool."""
    for name, value in values.items():
        if value is not None and not math.isfinite(value):
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="not_finite",
                translation_placeholders={"field": name, "value": str(value)},
            )


def _check_power_sign(pool: Pool, power: float | None) -> None:
    """Refuse powers a pool can never take (passive sign convention).

    EV chargers only consume (≥ 0 W) and PV inverters only produce (≤ 0 W); a
    proposal of the wrong sign is a mistake in the automation, not a request to
    clamp.
    """
    if power is None:
        return
    if pool is Pool.EV_CHARGERS and power < 0:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="negative_ev_power",
            translation_placeholders={"power": str(power)},
        )
    if pool is Pool.PV and power > 0:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="positive_pv_power",
            translation_placeholders={"power": str(power)},
        )


def _pool_subset(
    pool: Pool, requested: Iterable[int] | None, pool_components: frozenset[int]
) -> frozenset[int] | None:
    """Return the requested components (`None`: whole pool) if all are the pool's."""
    if requested is None:
        return None
    component_ids = frozenset(requested)
    if unknown := component_ids - pool_components:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_component",
            translation_placeholders={
                "components": ", ".join(str(c) for c in sorted(unknown)),
                "pool": pool.value,
                "known": ", ".join(str(c) for c in sorted(pool_components)) or "-",
            },
        )
    return component_ids


def _bounds_metric(topology: Topology, component_id: int) -> Metric:
    """Return the metric a component's power bounds are set on.

    Batteries take DC power bounds; inverters and EV chargers AC active power
    bounds. Anything else has no power to bound.
    """
    if component_id in topology.battery_ids:
        return Metric.DC_POWER
    if component_id in (
        topology.battery_inverter_ids
        | topology.pv_inverter_ids
        | topology.ev_charger_ids
    ):
        return Metric.AC_POWER_ACTIVE
    controllable = sorted(
        topology.battery_ids
        | topology.battery_inverter_ids
        | topology.pv_inverter_ids
        | topology.ev_charger_ids
    )
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="unknown_component",
        translation_placeholders={
            "components": str(component_id),
            "pool": "batteries, inverters, EV chargers",
            "known": ", ".join(str(c) for c in controllable) or "-",
        },
    )


# --- Responses -------------------------------------------------------------------


def _bounds_as_dict(bounds: PowerBounds | None) -> dict[str, float] | None:
    return None if bounds is None else bounds.as_dict()


def _outcome_as_dict(outcome: ProposalOutcome) -> dict[str, Any]:
    return {
        "pool": outcome.pool.value,
        "components": sorted(outcome.component_ids),
        "target_power": outcome.target_power,
        "bounds": _bounds_as_dict(outcome.bounds),
        "result": None if outcome.result is None else result_as_dict(outcome.result),
    }


def _component_as_dict(
    status: ComponentStatus, to_wall_time: Callable[[float], datetime]
) -> dict[str, Any]:
    """Describe a component's health; its block expiry as a UTC time."""
    blocked_until = blocked_until_iso(status, to_wall_time)
    return {
        "component": status.component_id,
        "kind": status.kind.value,
        "health": status.health.value,
        "problem": status.problem,
        "blocked_until": blocked_until,
    }


def status_as_dict(
    status: ControllerStatus, to_wall_time: Callable[[float], datetime]
) -> dict[str, Any]:
    """Return a JSON-ready view of the controller's status (responses, diagnostics).

    `to_wall_time` (the controller's) turns its monotonic times into UTC.
    """
    return {
        "pools": {
            pool.value: {
                "components": sorted(pool_status.component_ids),
                "component_sets": [
                    {
                        "components": sorted(component_set.component_ids),
                        "target_power": component_set.target_power,
                        "system_bounds": _bounds_as_dict(component_set.system_bounds),
                        "proposals": [
                            {
                                "source_id": proposal.source_id,
                                "priority": proposal.priority,
                                "power": proposal.power,
                                "lower": proposal.bounds.lower,
                                "upper": proposal.bounds.upper,
                                "age_s": proposal.age_s,
                                "keep_alive": proposal.keep_alive,
                            }
                            for proposal in component_set.proposals
                        ],
                        "bounds_by_priority": {
                            str(priority): _bounds_as_dict(bounds)
                            for priority, bounds in sorted(
                                component_set.bounds_by_priority.items(), reverse=True
                            )
                        },
                        "last_result": component_set.last_result,
                    }
                    for component_set in pool_status.component_sets
                ],
            }
            for pool, pool_status in status.pools.items()
        },
        "components": [_component_as_dict(c, to_wall_time) for c in status.components],
    }
