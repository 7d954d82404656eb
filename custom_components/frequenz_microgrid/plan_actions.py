"""Action `get_charging_plan`: the hub's plan per charger, in 15-minute slots.

The response names, per charger, each planned need (its origin — a booking id
or a target —, its energy, what is planned and what cannot be met) with its
slots: start, end, mean power, the part from PV, the source (``pv``, ``cheap``
or ``deadline``), the forecast price and the slot's cost. `charger` narrows it to
one charger, `start`/`end` to the slots overlapping a period, `refresh` plans
anew first. A period whose end is not after its start, one that has already
ended, or an unknown charger is a translated `ServiceValidationError`; nothing
changes.
"""

from __future__ import annotations

import math
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

from .action_fields import (
    ENTRY_FIELD,
    ENTRY_SELECTOR,
    coerce,
    loaded_entry,
    utc_datetime,
)
from .const import DOMAIN
from .engine.hub.planner import ChargingPlan, NeedPlan, PlannedSlot
from .hub_plan import HubPlanner
from .hub_reservations import iso

SERVICE_GET_CHARGING_PLAN = "get_charging_plan"
ATTR_CHARGER = "charger"
ATTR_START = "start"
ATTR_END = "end"
ATTR_REFRESH = "refresh"

GET_CHARGING_PLAN_SCHEMA = vol.Schema(
    {
        ENTRY_FIELD: ENTRY_SELECTOR,
        # A float, so NaN and 31.5 reach the handler's translated refusal.
        vol.Optional(ATTR_CHARGER): coerce(float),
        vol.Optional(ATTR_START): utc_datetime,
        vol.Optional(ATTR_END): utc_datetime,
        vol.Optional(ATTR_REFRESH, default=False): cv.boolean,
    }
)


@callback
def async_setup_plan_actions(hass: HomeAssistant) -> None:
    """Register `get_charging_plan` (once, from `async_setup`)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_CHARGING_PLAN,
        _async_get_charging_plan,
        schema=GET_CHARGING_PLAN_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )


def _timestamp(call: ServiceCall, key: str) -> float | None:
    value = call.data.get(key)
    return None if value is None else float(value.timestamp())


async def _async_get_charging_plan(call: ServiceCall) -> ServiceResponse:
    entry = loaded_entry(call)
    planner = entry.runtime_data.planner
    if planner is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="plan_unavailable"
        )
    asked = call.data.get(ATTR_CHARGER)
    charger = None if asked is None or not asked.is_integer() else int(asked)
    if asked is not None and charger not in planner.topology.ev_charger_ids:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="plan_unknown_charger",
            translation_placeholders={"charger": f"{asked:g}"},
        )
    start = _timestamp(call, ATTR_START)
    end = _timestamp(call, ATTR_END)
    if start is not None and end is not None and end <= start:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="plan_end_not_after_start",
            translation_placeholders={"start": iso(start), "end": iso(end)},
        )
    if end is not None and end <= dt_util.utcnow().timestamp():
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="plan_in_the_past",
            translation_placeholders={"end": iso(end)},
        )
    if call.data[ATTR_REFRESH] or planner.plan is None:
        await planner.async_replan()
    return plan_response(planner, charger, start, end)


def plan_response(
    planner: HubPlanner,
    charger: int | None = None,
    start: float | None = None,
    end: float | None = None,
) -> dict[str, Any]:
    """The plan as the action answers it (also the plan sensor's attribute)."""
    plan: ChargingPlan | None = planner.plan
    chargers: dict[str, list[dict[str, Any]]] = {}
    needs = () if plan is None else plan.needs
    for need_plan in needs:
        cid = need_plan.need.charger_id
        if charger is not None and cid != charger:
            continue
        chargers.setdefault(str(cid), []).append(_need(need_plan, start, end))
    shown = [n for ns in chargers.values() for n in ns]
    return {
        "created": None if plan is None else iso(plan.created),
        "sources": planner.sources(),
        "unmet_kwh": round(sum(n["unmet_kwh"] for n in shown), 3),
        "cost": round(sum(n["cost"] for n in shown), 4),
        "chargers": chargers,
        "charging_outside_the_plan": [
            {
                "charger": draw.charger_id,
                "currents_a": [round(a, 2) for a in draw.held_a],
                "until": iso(draw.until) if math.isfinite(draw.until) else None,
            }
            for draw in (() if plan is None else plan.unplanned)
            if charger is None or draw.charger_id == charger
        ],
    }


def _need(
    need_plan: NeedPlan, start: float | None, end: float | None
) -> dict[str, Any]:
    need = need_plan.need
    slots = [
        _slot(slot)
        for slot in need_plan.slots
        if (start is None or slot.end > start) and (end is None or slot.start < end)
    ]
    return {
        "origin": need.origin,
        "runs": need.runs.value,
        "boost_until": None if need.at_once_until is None else iso(need.at_once_until),
        "earliest_start": iso(need.earliest_start),
        "departure": iso(need.departure),
        "energy_kwh": round(need.energy_wh / 1000.0, 3),
        "planned_kwh": round(need_plan.planned_wh / 1000.0, 3),
        "unmet_kwh": round(need_plan.unmet_wh / 1000.0, 3),
        "cost": round(need_plan.cost, 4),
        "slots": slots,
    }


def _slot(slot: PlannedSlot) -> dict[str, Any]:
    cost = slot.cost
    return {
        "start": iso(slot.start),
        "end": iso(slot.end),
        "power_w": round(slot.power_w, 1),
        "pv_w": round(slot.pv_w, 1),
        "source": slot.source.value,
        "price": slot.price,
        "energy_kwh": round(slot.energy_wh / 1000.0, 4),
        "cost": None if cost is None else round(cost, 4),
    }
