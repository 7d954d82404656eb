"""Binary sensors: EV plugged in, component problem, relay, excluded from control.

The problem sensor carries the component's error and warning codes as attributes,
named after the client's `ComponentErrorCode` members (lower case, the keys of
their translated state-attribute names); a code the client does not know yet
shows as `code_<number>`.

"Excluded" reads the steering controller's component health: a battery,
EV charger or PV inverter that may not receive power right now — bad or old
telemetry, or blocked for a while after a failed command. An EV charger that is
fine but has no vehicle connected is idle, not excluded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from frequenz.client.microgrid.component import (
    ComponentCategory,
    ComponentErrorCode,
    ComponentStateCode,
)
from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant

from .circuit_entities import CircuitLimitExceeded, circuit_binary_sensors
from .component_states import CABLE_STATES, STATEFUL_COMPONENTS, first_state
from .devices import has_device
from .engine import members
from .engine.control import Pool
from .engine.health import ComponentStatus
from .engine.snapshot import ComponentSnapshot
from .entity import MicrogridEntity, SteeringEntity, async_add_by_subentry
from .reserved_sensor import reserved_sensors
from .steering_status import blocked_until_iso
from .target_entities import target_binary_sensors
from .topology_refresh import async_add_entities_on_topology_change

if TYPE_CHECKING:
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .runtime import FrequenzMicrogridConfigEntry

PARALLEL_UPDATES = 0

CONNECTED_CABLE_STATES = frozenset(
    {
        ComponentStateCode.EV_CHARGING_CABLE_PLUGGED_AT_EV,
        ComponentStateCode.EV_CHARGING_CABLE_LOCKED_AT_EV,
    }
)
"""Cable states in which a vehicle is connected to the charger."""


def ev_connected(snapshot: ComponentSnapshot) -> bool | None:
    """Return whether a vehicle is plugged in; `None` without a cable state."""
    code = first_state(snapshot, CABLE_STATES)
    return None if code is None else code in CONNECTED_CABLE_STATES


def has_problem(snapshot: ComponentSnapshot) -> bool:
    """Return whether the component reports errors or is in its error state."""
    return bool(snapshot.errors) or members.ERROR_STATE in snapshot.states


def relay_closed(snapshot: ComponentSnapshot) -> bool | None:
    """Return whether the component's relay is closed; `None` without a relay state."""
    states = snapshot.states
    if ComponentStateCode.RELAY_CLOSED in states:
        return True
    if ComponentStateCode.RELAY_OPEN in states:
        return False
    return None


def diagnostic_name(code: ComponentErrorCode | int) -> str:
    """Return the readable name of an error or warning code."""
    if isinstance(code, ComponentErrorCode):
        return code.name.lower()
    return f"code_{code}"


def problem_details(snapshot: ComponentSnapshot) -> dict[str, Any]:
    """Return the component's error and warning codes by name (sorted)."""
    return {
        "errors": sorted(map(diagnostic_name, snapshot.errors)),
        "warnings": sorted(map(diagnostic_name, snapshot.warnings)),
    }


BLOCKED_REASON = "blocked after a failed command"


def exclusion_details(
    status: ComponentStatus, to_wall_time: Callable[[float], datetime]
) -> dict[str, Any]:
    """Return why a component is excluded and until when a block lasts.

    `to_wall_time` turns the block's end (on the controller's clock) into UTC.
    """
    return {
        "health": status.health.value,
        "reason": status.problem
        or (BLOCKED_REASON if status.blocked_until is not None else None),
        "blocked_until": blocked_until_iso(status, to_wall_time),
    }


@dataclass(frozen=True, kw_only=True)
class ComponentBinarySensorDescription(BinarySensorEntityDescription):
    """A yes/no fact about one component, for every component of `categories`."""

    is_on_fn: Callable[[ComponentSnapshot], bool | None]
    categories: frozenset[ComponentCategory]
    attributes_fn: Callable[[ComponentSnapshot], dict[str, Any]] | None = None
    """Extra state attributes, computed only when the state is written."""


COMPONENT_BINARY_SENSORS: tuple[ComponentBinarySensorDescription, ...] = (
    ComponentBinarySensorDescription(
        key="ev_connected",
        translation_key="ev_connected",
        device_class=BinarySensorDeviceClass.PLUG,
        categories=frozenset({ComponentCategory.EV_CHARGER}),
        is_on_fn=ev_connected,
    ),
    ComponentBinarySensorDescription(
        key="problem",
        translation_key="problem",
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
        categories=STATEFUL_COMPONENTS,
        is_on_fn=has_problem,
        attributes_fn=problem_details,
    ),
    ComponentBinarySensorDescription(
        key="relay",
        translation_key="relay",
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        categories=frozenset({ComponentCategory.BATTERY, ComponentCategory.RELAY}),
        is_on_fn=relay_closed,
    ),
)


EXCLUDED = BinarySensorEntityDescription(
    key="excluded",
    translation_key="excluded",
    device_class=BinarySensorDeviceClass.PROBLEM,
    entity_category=EntityCategory.DIAGNOSTIC,
)
"""The description of every steerable component's excluded-from-control sensor."""


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the binary sensors of every component."""
    async_add_entities(_component_binary_sensors(entry))
    entities: list[BinarySensorEntity] = []
    entities.extend(reserved_sensors(entry))
    entities.extend(circuit_binary_sensors(entry))
    entities.extend(target_binary_sensors(entry))
    async_add_by_subentry(async_add_entities, entities)
    async_add_entities_on_topology_change(
        hass,
        entry,
        async_add_entities,
        lambda change: [
            *_component_binary_sensors(entry, change.added),
            *reserved_sensors(entry, change.added),
            *circuit_binary_sensors(entry),
            *target_binary_sensors(entry, change.added),
        ],
        governs=(CircuitLimitExceeded,),
    )


def _component_binary_sensors(
    entry: FrequenzMicrogridConfigEntry, only: frozenset[int] | None = None
) -> list[BinarySensorEntity]:
    """The binary sensors of every component in use (or `only` of those)."""
    components = entry.runtime_data.engine.topology.components
    wanted = components.keys() if only is None else only & components.keys()
    entities: list[BinarySensorEntity] = [
        ComponentBinarySensor(entry, description, component)
        for component_id in sorted(wanted)
        if has_device(component := components[component_id])
        for description in COMPONENT_BINARY_SENSORS
        if component.category in description.categories
    ]
    controller = entry.runtime_data.engine.controller
    steerable = {
        s.component_id for s in entry.runtime_data.status_feed.status.components
    }.union(*(controller.pool_components(pool) for pool in Pool))
    entities.extend(
        ExcludedBinarySensor(entry, EXCLUDED, components[component_id])
        for component_id in sorted(steerable & wanted)
    )
    return entities


class ComponentBinarySensor(MicrogridEntity, BinarySensorEntity):
    """A yes/no fact about one component."""

    entity_description: ComponentBinarySensorDescription
    _value_decides_availability = True
    _shows_component_data_only = True

    @property
    def is_on(self) -> bool | None:
        """Return the fact, `None` when the component's data is unknown or stale."""
        data = self.component_snapshot
        return None if data is None else self.entity_description.is_on_fn(data)

    def _rendered(self) -> tuple[bool, object]:
        """What a write would show; with attributes, their codes count too.

        The codes (frozensets, cheap to compare on every update) stand for the
        attributes, so that a new warning while the state stays on is written.
        """
        available, state = super()._rendered()
        data = self.component_snapshot
        if (
            not available
            or data is None
            or self.entity_description.attributes_fn is None
        ):
            return (available, state)
        return (available, (state, data.errors, data.warnings))

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Return the description's attributes of the latest data, if it has any."""
        attributes_fn = self.entity_description.attributes_fn
        data = self.component_snapshot
        return None if attributes_fn is None or data is None else attributes_fn(data)


class ExcludedBinarySensor(SteeringEntity, BinarySensorEntity):
    """On while the controller keeps a steerable component from receiving power."""

    _value_decides_availability = True

    @property
    def _status(self) -> ComponentStatus | None:
        """The component's health (`None`: not tracked)."""
        assert self.component_id is not None
        return self.feed.component(self.component_id)

    def _render_inputs(self) -> tuple[object, ...]:
        """The data's availability and the component's status, which alone decide.

        The health tracker hands out the same status while it is the same: one
        sensor per steerable component, and most statuses stay, tick after tick.
        """
        snapshot = self.snapshot
        return (
            self.coordinator.last_update_success,
            snapshot is not None and snapshot.reachable,
            self._status,
        )

    @property
    def is_on(self) -> bool | None:
        """Return whether the component is excluded (`None`: not tracked)."""
        status = self._status
        return None if status is None else status.excluded

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Return the health, the reason and when a block ends."""
        status = self._status
        if status is None:
            return None
        return exclusion_details(status, self.feed.controller.to_wall_time)
