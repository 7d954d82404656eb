"""Base entities: the hub device, one device per component, and coalesced writes.

Every entity of a microgrid reads the same `MicrogridSnapshot`, which the monitor
pushes once a second. Writing every entity's state on every push would flood the
recorder on a large site, so the base entity writes only when what it shows changed
and at most once per `min_interval`; a change inside that window is written once the
window closes, so the last value always lands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any, ClassVar, Final

from frequenz.client.microgrid import MicrogridInfo
from frequenz.client.microgrid.component import Component, ComponentCategory
from homeassistant.components.binary_sensor import BinarySensorEntity
from homeassistant.components.number import NumberEntity
from homeassistant.components.sensor import SensorEntity
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import (
    CoordinatorEntity,
    DataUpdateCoordinator,
)

from .const import DOMAIN
from .engine.snapshot import ComponentSnapshot, MicrogridSnapshot

DEFAULT_MIN_INTERVAL: Final = timedelta(seconds=1)
"""Shortest time between two state writes of one entity."""

MANUFACTURER: Final = "Frequenz"

DEVICE_CATEGORIES: Final = frozenset(
    {
        ComponentCategory.METER,
        ComponentCategory.INVERTER,
        ComponentCategory.BATTERY,
        ComponentCategory.EV_CHARGER,
    }
)
"""Component categories that get a device (those that have entities)."""

type SnapshotCoordinator = DataUpdateCoordinator[MicrogridSnapshot]
"""What the entities need from the integration's coordinator: pushed snapshots."""


def entry_key_of(entry: ConfigEntry[Any]) -> str:
    """Return the prefix of the entry's unique ids and device identifiers.

    The microgrid id (the entry's unique id) keeps ids stable across re-adding the
    same microgrid; the entry id stands in for entries that have none.
    """
    return entry.unique_id or entry.entry_id


def hub_identifier(entry_key: str) -> tuple[str, str]:
    """Return the device-registry identifier of the microgrid hub device."""
    return (DOMAIN, entry_key)


def component_identifier(entry_key: str, component_id: int) -> tuple[str, str]:
    """Return the device-registry identifier of one component's device."""
    return (DOMAIN, f"{entry_key}_{component_id}")


def hub_device_info(entry_key: str, info: MicrogridInfo) -> DeviceInfo:
    """Describe the microgrid itself: the device pool entities belong to.

    The microgrid id goes into the serial number (it is what support asks for); the
    delivery area and location are shown by the hub's diagnostic sensors.
    """
    return DeviceInfo(
        identifiers={hub_identifier(entry_key)},
        manufacturer=MANUFACTURER,
        model="Microgrid",
        name=info.name or f"Microgrid {int(info.id)}",
        serial_number=str(int(info.id)),
    )


@callback
def async_create_hub_device(
    hass: HomeAssistant, entry_id: str, entry_key: str, info: MicrogridInfo
) -> str:
    """Register the hub device (if needed) and return its device-registry id.

    Component devices are linked to the hub by that id (`via_device_id`), so every
    platform that adds component entities gets it from here first; registering is
    idempotent, and the hub is always there before any component device.
    """
    hub = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry_id, **hub_device_info(entry_key, info)
    )
    return hub.id


def component_device_info(
    entry_key: str, component: Component, hub_device_id: str
) -> DeviceInfo:
    """Describe one component, linked to the hub device (`via_device_id`).

    An unnamed component gets a translated name from its category and id.
    """
    device = DeviceInfo(
        identifiers={component_identifier(entry_key, int(component.id))},
        manufacturer=component.manufacturer,
        model=component.model_name,
        serial_number=str(int(component.id)),
        via_device_id=hub_device_id,
    )
    if component.name:
        device["name"] = component.name
    else:
        device["translation_key"] = category_key(component.category)
        device["translation_placeholders"] = {"component_id": str(int(component.id))}
    return device


def category_key(category: ComponentCategory | int) -> str:
    """Return a lower-case key for a component category (for translations)."""
    if isinstance(category, ComponentCategory):
        return category.name.lower()
    return "component"


def has_device(component: Component) -> bool:
    """Return whether a component gets its own device."""
    return component.category in DEVICE_CATEGORIES


@callback
def async_remove_stale_devices(
    hass: HomeAssistant, entry_id: str, entry_key: str, component_ids: Iterable[int]
) -> None:
    """Remove devices of this entry whose component is gone from the topology.

    Only component devices are candidates; the hub device always stays.
    """
    wanted = {component_identifier(entry_key, cid) for cid in component_ids}
    wanted.add(hub_identifier(entry_key))
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry_id):
        ours = {ident for ident in device.identifiers if ident[0] == DOMAIN}
        if ours and not ours & wanted:
            registry.async_remove_device(device.id)


def _shown_value_getter(entity: Entity) -> Callable[[Any], object]:
    """Return what decides an entity's shown state, the cheapest way to get it.

    A sensor's or number's state is its native value converted by the entity's unit
    and precision, which do not change while it runs (a registry change writes the
    state by itself), so the native value decides the state, without the conversion
    work of `SensorEntity.state`. A binary sensor's state is `is_on`.
    """
    if isinstance(entity, SensorEntity | NumberEntity):
        return attrgetter("native_value")
    if isinstance(entity, BinarySensorEntity):
        return attrgetter("is_on")
    return attrgetter("state")


class MicrogridEntity(CoordinatorEntity[SnapshotCoordinator]):
    """An entity fed by microgrid snapshots, with coalesced state writes.

    Available only while the coordinator has data and the microgrid API answers;
    platform entities add "and the value is known".
    """

    _attr_has_entity_name = True

    _value_decides_availability: ClassVar[bool] = False
    """Whether the entity is also unavailable while its value is unknown (`None`)."""

    def __init__(
        self,
        coordinator: SnapshotCoordinator,
        *,
        unique_id: str,
        device_info: DeviceInfo,
        min_interval: timedelta = DEFAULT_MIN_INTERVAL,
    ) -> None:
        """Create the entity; `min_interval` bounds how often its state is written."""
        super().__init__(coordinator)
        self._attr_unique_id = unique_id
        self._attr_device_info = device_info
        self._min_interval = min_interval
        self._written: tuple[bool, object] | None = None
        self._cooldown: CALLBACK_TYPE | None = None
        self._change_pending = False
        self._shown_value_of = _shown_value_getter(self)

    @property
    def snapshot(self) -> MicrogridSnapshot | None:
        """The latest snapshot, or `None` before the first one."""
        return self.coordinator.data

    @property
    def available(self) -> bool:
        """Whether the data is current (and, if it decides, the value known)."""
        return self._rendered()[0]

    def _data_available(self) -> bool:
        """Whether the data is current: coordinator healthy and microgrid reachable."""
        snapshot = self.snapshot
        return super().available and snapshot is not None and snapshot.reachable

    def _rendered(self) -> tuple[bool, object]:
        """What a state write would show; writes are skipped while it is unchanged.

        Runs for every entity on every snapshot (thousands a second on a large
        microgrid), so it compares the value the state is made from, not `state`,
        and evaluates that value once for both the availability and the state.
        """
        if not self._data_available():
            return (False, None)
        value = self._shown_value_of(self)
        if value is None and self._value_decides_availability:
            return (False, None)
        return (True, value)

    async def async_added_to_hass(self) -> None:
        """Start listening and make sure a pending trailing write dies with us."""
        await super().async_added_to_hass()
        self.async_on_remove(self._cancel_cooldown)

    @callback
    def _async_write_ha_state(self) -> None:
        """Write the state and remember what was written (for change detection).

        Home Assistant routes every state write through this hook (the public
        `async_write_ha_state` is final), whoever asks for it.
        """
        super()._async_write_ha_state()
        self._written = self._rendered()

    @callback
    def _handle_coordinator_update(self) -> None:
        """Write now if something changed and the window is open, else later."""
        if self._rendered() == self._written:
            self._change_pending = False
            return
        if self._cooldown is not None:
            self._change_pending = True
            return
        self._write_and_start_cooldown()

    @callback
    def _write_and_start_cooldown(self) -> None:
        """Write the state and close the window for `min_interval`."""
        self._change_pending = False
        self.async_write_ha_state()
        self._cooldown = async_call_later(
            self.hass, self._min_interval, self._cooldown_over
        )

    @callback
    def _cooldown_over(self, _now: datetime) -> None:
        """Open the window; write the change that arrived meanwhile, if any."""
        self._cooldown = None
        if self._change_pending and self._rendered() != self._written:
            self._write_and_start_cooldown()
        self._change_pending = False

    @callback
    def _cancel_cooldown(self) -> None:
        """Drop a scheduled trailing write (the entity is going away)."""
        if self._cooldown is not None:
            self._cooldown()
            self._cooldown = None


class MicrogridPoolEntity(MicrogridEntity):
    """An entity of the whole microgrid (a pool), attached to the hub device."""

    def __init__(
        self,
        coordinator: SnapshotCoordinator,
        *,
        entry_key: str,
        key: str,
        info: MicrogridInfo,
        min_interval: timedelta = DEFAULT_MIN_INTERVAL,
    ) -> None:
        """Create a pool entity with unique id `{entry}_{key}`."""
        super().__init__(
            coordinator,
            unique_id=f"{entry_key}_{key}",
            device_info=hub_device_info(entry_key, info),
            min_interval=min_interval,
        )


class MicrogridComponentEntity(MicrogridEntity):
    """An entity of one component, attached to that component's device."""

    def __init__(
        self,
        coordinator: SnapshotCoordinator,
        *,
        entry_key: str,
        key: str,
        component: Component,
        hub_device_id: str,
        min_interval: timedelta = DEFAULT_MIN_INTERVAL,
    ) -> None:
        """Create a component entity with unique id `{entry}_{component id}_{key}`."""
        super().__init__(
            coordinator,
            unique_id=f"{entry_key}_{int(component.id)}_{key}",
            device_info=component_device_info(entry_key, component, hub_device_id),
            min_interval=min_interval,
        )
        self.component_id = int(component.id)

    @property
    def component_snapshot(self) -> ComponentSnapshot | None:
        """This component's latest fresh data, or `None` if it is silent or stale."""
        snapshot = self.snapshot
        return None if snapshot is None else snapshot.component(self.component_id)
