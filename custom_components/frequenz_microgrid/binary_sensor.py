"""Binary sensors: is an EV plugged in, and does a component report a problem."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from frequenz.client.microgrid.component import (
    Component,
    ComponentCategory,
    ComponentStateCode,
)
from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant

from .engine.snapshot import ComponentSnapshot
from .entity import MicrogridComponentEntity, SnapshotCoordinator, has_device
from .sensor import CABLE_STATES, STATEFUL_COMPONENTS, first_state

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
    return bool(snapshot.errors) or ComponentStateCode.ERROR in snapshot.states


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
    entry_key = entry.unique_id or entry.entry_id
    async_add_entities(
        ComponentBinarySensor(
            runtime.coordinator,
            entry_key=entry_key,
            component=component,
            description=description,
        )
        for component in runtime.topology.components.values()
        if has_device(component)
        for description in COMPONENT_BINARY_SENSORS
        if component.category in description.categories
    )


class ComponentBinarySensor(MicrogridComponentEntity, BinarySensorEntity):
    """A yes/no fact about one component."""

    entity_description: ComponentBinarySensorDescription

    def __init__(
        self,
        coordinator: SnapshotCoordinator,
        *,
        entry_key: str,
        component: Component,
        description: ComponentBinarySensorDescription,
    ) -> None:
        """Create the binary sensor for `description` on the component's device."""
        super().__init__(
            coordinator, entry_key=entry_key, key=description.key, component=component
        )
        self.entity_description = description

    @property
    def is_on(self) -> bool | None:
        """Return the fact, `None` when the component's data is unknown or stale."""
        data = self.component_snapshot
        return None if data is None else self.entity_description.is_on_fn(data)

    @property
    def available(self) -> bool:
        """Available while the component's data is fresh and decides the fact."""
        return super().available and self.is_on is not None
