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
from .engine.graph import Topology
from .engine.hub.limits import CircuitLimits
from .engine.snapshot import ComponentSnapshot, MicrogridSnapshot
from .engine.telemetry import TelemetryStore
from .runtime import FrequenzMicrogridConfigEntry

TO_REDACT = {CONF_API_KEY, CONF_SIGNING_SECRET, "latitude", "longitude"}


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
            "circuits": _circuits(runtime.engine.controller.circuit_limits),
        },
        TO_REDACT,
    )


def _circuits(limits: CircuitLimits) -> list[dict[str, Any]]:
    """Each circuit: its chargers and limits, the envelope set, the last status."""
    described: list[dict[str, Any]] = []
    for circuit in limits.tree.circuits:
        envelope = limits.envelope(circuit.circuit_id)
        status = limits.statuses.get(circuit.circuit_id)
        described.append(
            {
                "id": circuit.circuit_id,
                "origin": circuit.origin,
                "chargers": sorted(circuit.charger_ids),
                "fuse_a": circuit.phase_limit_a,
                "power_limit_w": circuit.power_limit_w,
                "meter": circuit.meter_id,
                "envelope": None if envelope is None else envelope.as_dict(),
                "status": None if status is None else status.as_dict(),
            }
        )
    return described


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
