"""Devices: the microgrid hub and one device per component, linked to the hub.

Registered once per set-up, before the platforms run: the hub first (component
devices name it as their `via_device_id`), and devices of components that left
the topology are removed. Entities find their device through `MicrogridDevices`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from frequenz.client.microgrid import MicrogridInfo
from frequenz.client.microgrid.component import Component, ComponentCategory
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo

from .const import DOMAIN
from .engine.graph import Topology
from .identity import entity_unique_id, entry_key_of, microgrid_id, microgrid_title

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


def has_device(component: Component) -> bool:
    """Return whether a component gets its own device."""
    return component.category in DEVICE_CATEGORIES


def category_key(category: ComponentCategory | int) -> str:
    """Return a lower-case key for a component category (for translations)."""
    if isinstance(category, ComponentCategory):
        return category.name.lower()
    return "component"


def _hub_identifier(entry_key: str) -> tuple[str, str]:
    return (DOMAIN, entry_key)


def _component_identifier(entry_key: str, component_id: int) -> tuple[str, str]:
    return (DOMAIN, f"{entry_key}_{component_id}")


def _circuit_identifier(entry_key: str, circuit_id: str) -> tuple[str, str]:
    return (DOMAIN, f"{entry_key}_circuit_{circuit_id}")


@dataclass(frozen=True, slots=True)
class MicrogridDevices:
    """Where an entry's entities belong: the hub or their component's device."""

    entry_key: str
    info: MicrogridInfo
    hub_device_id: str
    """The hub's device-registry id, which component devices link to."""

    def unique_id(self, key: str, component: Component | None = None) -> str:
        """Return the unique id of the entity `key` of the hub or of `component`."""
        return entity_unique_id(self.entry_key, key, component)

    def device_info(self, component: Component | None = None) -> DeviceInfo:
        """Describe the hub (no component) or one component's device."""
        if component is None:
            return _hub_device_info(self.entry_key, self.info)
        return _component_device_info(self.entry_key, component, self.hub_device_id)

    def circuit_unique_id(self, circuit_id: str, key: str) -> str:
        """Return the unique id of the entity `key` of a circuit."""
        return f"{self.entry_key}_circuit_{circuit_id}_{key}"

    def circuit_device_info(
        self, circuit_id: str, name: str, *, root: bool = False
    ) -> DeviceInfo:
        """Describe a circuit's device (issue 15), linked to the hub device.

        The grid connection's circuit gets a translated name.
        """
        device = DeviceInfo(
            identifiers={_circuit_identifier(self.entry_key, circuit_id)},
            manufacturer=MANUFACTURER,
            model="Circuit",
            via_device_id=self.hub_device_id,
        )
        if root:
            device["translation_key"] = "grid_circuit"
        else:
            device["name"] = name
        return device


def _hub_device_info(entry_key: str, info: MicrogridInfo) -> DeviceInfo:
    """Describe the microgrid itself: the device pool entities belong to.

    The microgrid id goes into the serial number (it is what support asks for); the
    delivery area and location are shown by the hub's diagnostic sensors.
    """
    return DeviceInfo(
        identifiers={_hub_identifier(entry_key)},
        manufacturer=MANUFACTURER,
        model="Microgrid",
        name=microgrid_title(info),
        serial_number=microgrid_id(info),
    )


def _component_device_info(
    entry_key: str, component: Component, hub_device_id: str
) -> DeviceInfo:
    """Describe one component, linked to the hub device (`via_device_id`).

    An unnamed component gets a translated name from its category and id.
    """
    device = DeviceInfo(
        identifiers={_component_identifier(entry_key, int(component.id))},
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


@callback
def async_register_devices(
    hass: HomeAssistant,
    entry: ConfigEntry[Any],
    topology: Topology,
    circuit_ids: Iterable[str] = (),
) -> MicrogridDevices:
    """Remove devices of components and circuits gone; register the hub.

    Only component and circuit devices are candidates for removal; the hub
    device always stays.
    """
    entry_key = entry_key_of(entry)
    wanted = {
        _component_identifier(entry_key, int(component.id))
        for component in topology.components.values()
        if has_device(component)
    }
    wanted.add(_hub_identifier(entry_key))
    wanted.update(_circuit_identifier(entry_key, c) for c in circuit_ids)
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        ours = {ident for ident in device.identifiers if ident[0] == DOMAIN}
        if ours and not ours & wanted:
            registry.async_remove_device(device.id)
    hub = registry.async_get_or_create(
        config_entry_id=entry.entry_id, **_hub_device_info(entry_key, topology.info)
    )
    return MicrogridDevices(entry_key, topology.info, hub.id)
