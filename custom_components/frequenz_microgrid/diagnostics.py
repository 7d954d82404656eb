"""Diagnostics: what the integration knows about the microgrid, minus the secrets.

A support request usually needs three things: how the microgrid is wired (components,
connections, pools and the formulas derived from them), what data arrived lately and
how old it is, and the entry's settings; for steering questions, the controller's
state (proposals, bounds per priority, last results, component health); with an
Assets API, its latest inventory. The keys, signing secrets and URLs of both APIs
(a URL may carry credentials) and the site's coordinates are redacted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from frequenz.client.microgrid.component import Component
from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.core import HomeAssistant

from .const import (
    CONF_API_KEY,
    CONF_ASSETS_API_KEY,
    CONF_ASSETS_SIGNING_SECRET,
    CONF_ASSETS_URL,
    CONF_SIGNING_SECRET,
    CONF_URL,
)
from .engine.bounds import Bounds, PowerBounds
from .engine.control import (
    ComponentSetStatus,
    ControllerStatus,
    MicrogridController,
    PoolStatus,
)
from .engine.graph import Topology
from .engine.health import ComponentStatus
from .engine.hub.limits import CircuitLimits
from .engine.snapshot import ComponentSnapshot, MicrogridSnapshot
from .engine.telemetry import TelemetryStore
from .hub_reservations import HubReservations
from .runtime import FrequenzMicrogridConfigEntry
from .session_recorder import SessionRecorder

TO_REDACT = {
    CONF_API_KEY,
    CONF_SIGNING_SECRET,
    CONF_ASSETS_API_KEY,
    CONF_ASSETS_SIGNING_SECRET,
    "latitude",
    "longitude",
    "vehicle",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry
) -> dict[str, Any]:
    """Return the diagnostics of a loaded entry."""
    runtime = entry.runtime_data
    monitor = runtime.engine.monitor
    snapshot = runtime.coordinator.data or monitor.snapshot()
    return async_redact_data(
        {
            "entry": {
                "data": _with_safe_urls(entry.data),
                "options": _with_safe_urls(entry.options),
            },
            "demo": runtime.simulator is not None,
            "reachable": monitor.reachable,
            "topology": _topology(runtime.engine.topology),
            "snapshot": _snapshot(snapshot, monitor.store),
            "detail_metrics": {
                str(component_id): sorted(metric.name for metric in metrics)
                for component_id, metrics in sorted(monitor.detail_metrics.items())
            },
            "charging_hub": _charging_hub(runtime.engine.controller),
            "steering": _steering(runtime.engine.controller),
            "assets": None if runtime.assets is None else runtime.assets.diagnostics(),
            "sessions": _sessions(runtime.sessions, snapshot.taken_at),
            "reservations": _reservations(runtime.reservations),
            "circuits": _circuits(runtime.engine.controller.circuit_limits),
        },
        TO_REDACT,
    )


URL_OPTIONS_SHOWN = frozenset(
    {"ssl", "keep_alive", "keep_alive_interval_s", "keep_alive_timeout_s"}
)
"""URL query options that configure the channel (any other may be a credential)."""


def _with_safe_urls(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return the entry's settings with credentials cut out of both APIs' URLs."""
    return {
        key: _safe_url(value) if key in (CONF_URL, CONF_ASSETS_URL) else value
        for key, value in settings.items()
    }


def _safe_url(url: object) -> str:
    """Return `url` without user info and with unknown query values redacted.

    Host and port stay (support needs them); a `user:password@` part or a token in
    the query string does not.
    """
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    if parts.username or parts.password:
        netloc = f"{REDACTED}@{netloc}"
    query = urlencode(
        [
            (name, value if name in URL_OPTIONS_SHOWN else REDACTED)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _charging_hub(controller: MicrogridController) -> dict[str, Any]:
    """Charger modes, what solar mode sees, the battery-for-EVs bound, targets."""
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
        "targets": {
            str(charger_id): state.as_dict()
            for charger_id in sorted(controller.charging_targets.targets())
            if (state := controller.charging_targets.state(charger_id)) is not None
        },
        "target_unmet_wh": controller.charging_targets.unmet_wh,
    }


def _steering(controller: MicrogridController) -> dict[str, Any]:
    """Per pool its proposals, bounds and last results; health; a blind grid fuse."""
    status: ControllerStatus = controller.status()
    return {
        "pools": {
            pool.value: _pool(pool_status) for pool, pool_status in status.pools.items()
        },
        "components": {
            str(component.component_id): _health(controller, component)
            for component in status.components
        },
        "grid_currents_unknown": status.grid_currents_unknown,
    }


def _pool(status: PoolStatus) -> dict[str, Any]:
    return {
        "component_ids": sorted(status.component_ids),
        "component_sets": [_component_set(s) for s in status.component_sets],
    }


def _component_set(status: ComponentSetStatus) -> dict[str, Any]:
    return {
        "component_ids": sorted(status.component_ids),
        "proposals": [
            {
                "source_id": proposal.source_id,
                "priority": proposal.priority,
                "power": proposal.power,
                "bounds": _bounds(proposal.bounds),
                "age_s": round(proposal.age_s, 3),
                "keep_alive": proposal.keep_alive,
            }
            for proposal in status.proposals
        ],
        "target_power": status.target_power,
        "system_bounds": _power_bounds(status.system_bounds),
        "bounds_by_priority": {
            str(priority): _power_bounds(bounds)
            for priority, bounds in status.bounds_by_priority.items()
        },
        "last_result": status.last_result,
    }


def _health(
    controller: MicrogridController, component: ComponentStatus
) -> dict[str, Any]:
    blocked_until = component.blocked_until
    return {
        "kind": component.kind.value,
        "health": component.health.value,
        "problem": component.problem,
        "excluded": component.excluded,
        "idle": component.idle,
        "out_of_service": component.out_of_service,
        "blocked_until": None
        if blocked_until is None
        else controller.to_wall_time(blocked_until).isoformat(),
    }


def _bounds(bounds: Bounds) -> dict[str, float | None]:
    return {"lower": bounds.lower, "upper": bounds.upper}


def _power_bounds(bounds: PowerBounds | None) -> dict[str, float] | None:
    return None if bounds is None else bounds.as_dict()


def _sessions(recorder: SessionRecorder | None, now: datetime) -> dict[str, Any] | None:
    """The charging sessions: how many are kept, and the open ones in full."""
    if recorder is None:
        return None
    tracker = recorder.tracker
    return {
        "kept": len(tracker.ended),
        "open": [session.record(now) for session in tracker.open.values()],
        "last_update": (
            None if tracker.last_update is None else tracker.last_update.isoformat()
        ),
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
            str(cid): _component_data(
                snapshot.component(cid), store.age_s(cid), store.last_seen(cid)
            )
            for cid in component_ids
        },
    }


def _component_data(
    component: ComponentSnapshot | None,
    age_s: float | None,
    last_seen: datetime | None,
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
        "last_seen": last_seen.isoformat() if last_seen else None,
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
