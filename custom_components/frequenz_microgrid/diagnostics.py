"""Diagnostics: what the integration knows about the microgrid, minus the secrets.

A support request usually needs three things: how the microgrid is wired (components,
connections, pools and the formulas derived from them), what data arrived lately and
how old it is, and the entry's settings. The API key, the signing secret and the
site's coordinates are redacted.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from frequenz.client.microgrid.component import Component
from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_API_KEY, CONF_SIGNING_SECRET
from .engine.control import MicrogridController
from .engine.graph import Topology
from .engine.snapshot import ComponentSnapshot, MicrogridSnapshot
from .engine.telemetry import TelemetryStore
from .hub_reservations import HubReservations
from .runtime import FrequenzMicrogridConfigEntry

TO_REDACT = {CONF_API_KEY, CONF_SIGNING_SECRET, "latitude", "longitude", "vehicle"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry
) -> dict[str, Any]:
    """Return the diagnostics of a loaded entry."""
    runtime = entry.runtime_data
    monitor = runtime.engine.monitor
    snapshot = runtime.coordinator.data or monitor.snapshot()
    return async_redact_data(
        {
            "entry": {"data": dict(entry.data), "options": dict(entry.options)},
            "demo": runtime.simulator is not None,
            "reachable": monitor.reachable,
            "topology": _topology(runtime.engine.topology),
            "snapshot": _snapshot(snapshot, monitor.store),
            "charging_hub": _charging_hub(runtime.engine.controller),
            "reservations": _reservations(runtime.reservations),
        },
        TO_REDACT,
    )


def _charging_hub(controller: MicrogridController) -> dict[str, Any]:
    """Charger modes, what solar mode sees, and the battery-for-EVs bound now."""
    modes = controller.charger_modes
    battery = controller.battery_for_evs
    return {
        "chargers": {
            str(charger_id): {
                "mode": modes.mode(charger_id).value,
                "boost_remaining_s": modes.boost_remaining_s(charger_id),
                "after_boost": modes.state(charger_id).after_boost.value,
                "solar_min_current": modes.state(charger_id).solar_min_current,
                "solar_charging": modes.solar.is_on(charger_id),
            }
            for charger_id in sorted(modes.charger_ids)
        },
        "boost_s": modes.default_boost_s,
        "solar_surplus_w": modes.last_surplus_w,
        "solar_delays_s": {
            "start": modes.solar.start_delay_s,
            "stop": modes.solar.stop_delay_s,
        },
        "battery_for_evs": {
            "allowed": battery.allowed,
            "floor_soc_pct": battery.floor_soc_pct,
            "discharge_limit_w": controller.battery_discharge_limit_w(),
        },
    }


def _reservations(hub: HubReservations | None) -> dict[str, Any] | None:
    """The booking book: what each charger promises, the bookings, what left."""
    if hub is None:
        return None
    book = hub.book
    return {
        "grace_s": book.grace_s,
        "capacities": {
            str(cid): asdict(capacity) for cid, capacity in book.capacities.items()
        },
        "bookings": [r.as_dict() for r in book],
        "recently_released": [
            {"reason": r.reason.value, "at": r.at, **r.reservation.as_dict()}
            for r in book.history
        ],
    }


def _topology(topology: Topology) -> dict[str, Any]:
    """Describe the microgrid, its wiring, pools and formulas."""
    info = topology.info
    return {
        "microgrid": {
            "id": int(info.id),
            "enterprise_id": int(info.enterprise_id),
            "name": info.name,
            "delivery_area": str(info.delivery_area) if info.delivery_area else None,
            "location": _location(topology),
        },
        "components": [
            _component(component, topology.parents_of(component_id))
            for component_id, component in sorted(topology.components.items())
        ],
        "connections": sorted(
            [int(c.source), int(c.destination)] for c in topology.connections
        ),
        "pools": {
            "grid_id": topology.grid_id,
            "battery_ids": sorted(topology.battery_ids),
            "battery_inverter_ids": sorted(topology.battery_inverter_ids),
            "pv_inverter_ids": sorted(topology.pv_inverter_ids),
            "ev_charger_ids": sorted(topology.ev_charger_ids),
            "meter_ids": sorted(topology.meter_ids),
        },
        "formulas": asdict(topology.formulas),
    }


def _location(topology: Topology) -> dict[str, Any] | None:
    location = topology.info.location
    if location is None:
        return None
    return {
        "latitude": location.latitude,
        "longitude": location.longitude,
        "country_code": location.country_code,
    }


def _component(component: Component, parents: tuple[int, ...]) -> dict[str, Any]:
    category = component.category
    return {
        "id": int(component.id),
        "type": type(component).__name__,
        "category": getattr(category, "name", category),
        "name": component.name,
        "manufacturer": component.manufacturer,
        "model_name": component.model_name,
        "parents": list(parents),
        "rated_bounds": {
            getattr(metric, "name", str(metric)): [bounds.lower, bounds.upper]
            for metric, bounds in component.rated_bounds.items()
        },
    }


def _snapshot(snapshot: MicrogridSnapshot, store: TelemetryStore) -> dict[str, Any]:
    """Describe the latest snapshot: pool values and each component's fresh data."""
    pools = asdict(snapshot)
    pools.pop("components")
    pools["taken_at"] = snapshot.taken_at.isoformat()
    battery_bounds = snapshot.battery.bounds
    pools["battery"]["bounds"] = (
        None if battery_bounds is None else battery_bounds.as_dict()
    )
    component_ids = sorted(store.component_ids | set(snapshot.components))
    return {
        **pools,
        "freshness_s": store.freshness_s,
        "components": {
            str(cid): _component_data(snapshot.component(cid), store.age_s(cid))
            for cid in component_ids
        },
    }


def _component_data(
    component: ComponentSnapshot | None, age_s: float | None
) -> dict[str, Any]:
    """One component's data age, latest fresh values, bounds and states."""
    data: dict[str, Any] = {
        "age_s": None if age_s is None else round(age_s, 3),
        "fresh": False,
    }
    if component is None:
        return data
    return data | {
        "fresh": component.fresh,
        "last_seen": component.last_seen.isoformat() if component.last_seen else None,
        "metrics": {metric.name: value for metric, value in component.metrics.items()},
        "bounds": {
            metric.name: bounds.as_dict() for metric, bounds in component.bounds.items()
        },
        "states": sorted(_code_name(code) for code in component.states),
        "warnings": sorted(_code_name(code) for code in component.warnings),
        "errors": sorted(_code_name(code) for code in component.errors),
    }


def _code_name(code: object) -> str:
    return str(getattr(code, "name", code))
