"""Diagnostic sensors of the Assets API inventory (only with an Assets API).

On the hub: the microgrid's status, enterprise, delivery-area code type and
creation time. On each component's device: where it stands in its operational
lifetime (a component outside it is never steered; this sensor says why) and the
lifetime's start and end. All are diagnostic; the ones people rarely need are
disabled by default. They show the latest good read, so an Assets API outage does
not make them unavailable; before the first good read they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from frequenz.client.assets import EnergyMarketCodeType, MicrogridStatus
from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .assets import AssetsInventory, LifetimeState
from .devices import has_device
from .entity import MicrogridEntity

if TYPE_CHECKING:
    from .runtime import FrequenzMicrogridConfigEntry

type AssetsValue = StateType | datetime


@dataclass(frozen=True, kw_only=True)
class AssetsSensorDescription(SensorEntityDescription):
    """A fact of the inventory: of the microgrid, or of one component (its id)."""

    value_fn: Callable[[AssetsInventory, int | None, datetime], AssetsValue]
    # Inventory facts are diagnostics, mostly of interest when looking into things.
    entity_category: EntityCategory | None = EntityCategory.DIAGNOSTIC
    entity_registry_enabled_default: bool = False


def _option(value: object) -> str | None:
    """An enum's lower-case name as a sensor option (`None` for unknown codes)."""
    name = getattr(value, "name", None)
    return None if name is None else str(name).lower()


def _lifetime_state(
    inventory: AssetsInventory, component_id: int | None, now: datetime
) -> str | None:
    if component_id is None:
        return None
    state = inventory.lifetime_state(component_id, now)
    return None if state is None else state.value


def _lifetime_edge(
    edge: str,
) -> Callable[[AssetsInventory, int | None, datetime], datetime | None]:
    def value(
        inventory: AssetsInventory, component_id: int | None, _now: datetime
    ) -> datetime | None:
        component = (
            None if component_id is None else inventory.components.get(component_id)
        )
        if component is None:
            return None
        moment: datetime | None = getattr(component.operational_lifetime, edge)
        return moment

    return value


HUB_ASSETS_SENSORS: tuple[AssetsSensorDescription, ...] = (
    AssetsSensorDescription(
        key="microgrid_status",
        translation_key="microgrid_status",
        entity_registry_enabled_default=True,
        device_class=SensorDeviceClass.ENUM,
        options=[member.name.lower() for member in MicrogridStatus],
        value_fn=lambda inventory, _id, _now: _option(inventory.microgrid.status),
    ),
    AssetsSensorDescription(
        key="timezone",
        translation_key="timezone",
        value_fn=lambda inventory, _id, _now: inventory.timezone,
    ),
    AssetsSensorDescription(
        key="enterprise_id",
        translation_key="enterprise_id",
        value_fn=lambda inventory, _id, _now: str(
            int(inventory.microgrid.enterprise_id)
        ),
    ),
    AssetsSensorDescription(
        key="delivery_area_code_type",
        translation_key="delivery_area_code_type",
        device_class=SensorDeviceClass.ENUM,
        options=[member.name.lower() for member in EnergyMarketCodeType],
        value_fn=lambda inventory, _id, _now: (
            None
            if inventory.microgrid.delivery_area is None
            else _option(inventory.microgrid.delivery_area.code_type)
        ),
    ),
    AssetsSensorDescription(
        key="microgrid_created",
        translation_key="microgrid_created",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda inventory, _id, _now: inventory.microgrid.create_timestamp,
    ),
)

COMPONENT_ASSETS_SENSORS: tuple[AssetsSensorDescription, ...] = (
    AssetsSensorDescription(
        key="lifetime_state",
        translation_key="lifetime_state",
        entity_registry_enabled_default=True,
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in LifetimeState],
        value_fn=_lifetime_state,
    ),
    AssetsSensorDescription(
        key="operational_since",
        translation_key="operational_since",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_lifetime_edge("start"),
    ),
    AssetsSensorDescription(
        key="operational_until",
        translation_key="operational_until",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_lifetime_edge("end"),
    ),
)


def assets_sensors(entry: FrequenzMicrogridConfigEntry) -> list[SensorEntity]:
    """The inventory's sensors of an entry; none without an Assets API."""
    runtime = entry.runtime_data
    if runtime.assets is None:
        return []
    sensors: list[SensorEntity] = [
        AssetsSensor(entry, description) for description in HUB_ASSETS_SENSORS
    ]
    sensors.extend(
        AssetsSensor(entry, description, component)
        for component in runtime.engine.topology.components.values()
        if has_device(component)
        for description in COMPONENT_ASSETS_SENSORS
    )
    return sensors


class AssetsSensor(MicrogridEntity, SensorEntity):
    """A fact from the latest good read of the Assets API."""

    entity_description: AssetsSensorDescription
    _value_decides_availability = True

    @property
    def native_value(self) -> AssetsValue:
        """Return the fact (`None` before the first good read)."""
        assets = self.coordinator.config_entry.runtime_data.assets
        inventory = None if assets is None else assets.inventory
        if inventory is None:
            return None
        return self.entity_description.value_fn(
            inventory, self.component_id, dt_util.utcnow()
        )

    def _data_available(self) -> bool:
        """Always: the inventory does not depend on telemetry."""
        return True
