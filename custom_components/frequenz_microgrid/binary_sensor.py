"""Binary sensors: EV plugged in, component problem, excluded from control.

"Excluded" reads the steering controller's component health (spec §3): a battery,
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
    Component,
    ComponentCategory,
    ComponentStateCode,
)
from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant

from .engine import members
from .engine.health import ComponentStatus
from .engine.snapshot import ComponentSnapshot
from .entity import (
    MicrogridComponentEntity,
    SnapshotCoordinator,
    async_create_hub_device,
    component_device_info,
    entry_key_of,
    has_device,
)
from .sensor_descriptions import CABLE_STATES, STATEFUL_COMPONENTS, first_state
from .steering_entity import ControllerStatusFeed, SteeringEntity, blocked_until_iso

if TYPE_CHECKING:
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import FrequenzMicrogridConfigEntry

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
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
        categories=STATEFUL_COMPONENTS,
        is_on_fn=has_problem,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the binary sensors of every component."""
    runtime = entry.runtime_data
    entry_key = entry_key_of(entry)
    hub_device_id = async_create_hub_device(
        hass, entry.entry_id, entry_key, runtime.topology.info
    )
    entities: list[BinarySensorEntity] = [
        ComponentBinarySensor(
            runtime.coordinator,
            entry_key=entry_key,
            component=component,
            hub_device_id=hub_device_id,
            description=description,
        )
        for component in runtime.topology.components.values()
        if has_device(component)
        for description in COMPONENT_BINARY_SENSORS
        if component.category in description.categories
    ]
    # Hand-fed platform tests run without a controller; a loaded entry has one.
    if (feed := runtime.status_feed) is not None:
        entities.extend(
            ExcludedBinarySensor(
                runtime.coordinator,
                feed=feed,
                entry_key=entry_key,
                component=runtime.topology.components[status.component_id],
                hub_device_id=hub_device_id,
            )
            for status in feed.status.components
            if status.component_id in runtime.topology.components
        )
    async_add_entities(entities)


class ComponentBinarySensor(MicrogridComponentEntity, BinarySensorEntity):
    """A yes/no fact about one component."""

    entity_description: ComponentBinarySensorDescription

    def __init__(
        self,
        coordinator: SnapshotCoordinator,
        *,
        entry_key: str,
        component: Component,
        hub_device_id: str,
        description: ComponentBinarySensorDescription,
    ) -> None:
        """Create the binary sensor for `description` on the component's device."""
        super().__init__(
            coordinator,
            entry_key=entry_key,
            key=description.key,
            component=component,
            hub_device_id=hub_device_id,
        )
        self.entity_description = description

    @property
    def is_on(self) -> bool | None:
        """Return the fact, `None` when the component's data is unknown or stale."""
        data = self.component_snapshot
        return None if data is None else self.entity_description.is_on_fn(data)

    _value_decides_availability = True


EXCLUDED = BinarySensorEntityDescription(
    key="excluded",
    translation_key="excluded",
    device_class=BinarySensorDeviceClass.PROBLEM,
    entity_category=EntityCategory.DIAGNOSTIC,
)


class ExcludedBinarySensor(SteeringEntity, BinarySensorEntity):
    """On while the controller keeps a steerable component from receiving power."""

    entity_description = EXCLUDED

    def __init__(
        self,
        coordinator: SnapshotCoordinator,
        *,
        feed: ControllerStatusFeed,
        entry_key: str,
        component: Component,
        hub_device_id: str,
    ) -> None:
        """Create the sensor on the component's device."""
        self.component_id = int(component.id)
        super().__init__(
            coordinator,
            feed=feed,
            unique_id=f"{entry_key}_{self.component_id}_{EXCLUDED.key}",
            device_info=component_device_info(entry_key, component, hub_device_id),
        )

    @property
    def is_on(self) -> bool | None:
        """Return whether the component is excluded (`None`: not tracked)."""
        status = self.feed.component(self.component_id)
        return None if status is None else status.excluded

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Return the health, the reason and when a block ends."""
        status = self.feed.component(self.component_id)
        if status is None:
            return None
        return exclusion_details(status, self.feed.controller.to_wall_time)

    _value_decides_availability = True
