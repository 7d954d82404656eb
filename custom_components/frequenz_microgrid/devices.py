"""Devices: the microgrid hub and one device per component, linked to the hub.

Registered once per set-up, before the platforms run: the hub first (component
devices name it as their `via_device_id`), and devices of components that left
the topology are removed; while the entry runs, the topology refresh removes
the devices of components that leave (`async_remove_component_devices`).
Entities find their device through `MicrogridDevices`.
With an Assets API inventory, its names, makers and models win over the Microgrid
API's (`async_apply_inventory` updates them after each read).
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

from .assets import AssetsInventory, DeviceFacts
from .circuit_flow import circuit_subentries
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
    inventory: AssetsInventory | None = None
    """The Assets API inventory read at setup (`None`: none configured or read)."""

    def unique_id(self, key: str, component: Component | None = None) -> str:
        """Return the unique id of the entity `key` of the hub or of `component`."""
        return entity_unique_id(self.entry_key, key, component)

    def device_info(self, component: Component | None = None) -> DeviceInfo:
        """Describe the hub (no component) or one component's device."""
        if component is None:
            return _hub_device_info(self.entry_key, self.info, self.inventory)
        facts = (
            None
            if self.inventory is None
            else self.inventory.component_facts(int(component.id))
        )
        return _component_device_info(
            self.entry_key, component, self.hub_device_id, facts
        )

    def circuit_unique_id(self, circuit_id: str, key: str) -> str:
        """Return the unique id of the entity `key` of a circuit."""
        return f"{self.entry_key}_circuit_{circuit_id}_{key}"

    def circuit_device_info(
        self, circuit_id: str, name: str, *, root: bool = False
    ) -> DeviceInfo:
        """Describe a circuit's device (issue 15), linked to the hub device.

        The grid connection's circuit gets a translated name.
        """
        identifiers = {_circuit_identifier(self.entry_key, circuit_id)}
        if root:
            return DeviceInfo(
                identifiers=identifiers,
                manufacturer=MANUFACTURER,
                model="Circuit",
                via_device_id=self.hub_device_id,
                translation_key="grid_circuit",
            )
        return DeviceInfo(
            identifiers=identifiers,
            manufacturer=MANUFACTURER,
            model="Circuit",
            via_device_id=self.hub_device_id,
            name=name,
        )


def _hub_device_info(
    entry_key: str, info: MicrogridInfo, inventory: AssetsInventory | None = None
) -> DeviceInfo:
    """Describe the microgrid itself: the device pool entities belong to.

    The microgrid id goes into the serial number (it is what support asks for); the
    delivery area and location are shown by the hub's diagnostic sensors.
    """
    facts = None if inventory is None else inventory.hub_facts()
    return DeviceInfo(
        identifiers={_hub_identifier(entry_key)},
        manufacturer=(facts and facts.manufacturer) or MANUFACTURER,
        model=(facts and facts.model) or "Microgrid",
        name=(facts and facts.name) or microgrid_title(info),
        serial_number=microgrid_id(info),
    )


def _component_device_info(
    entry_key: str,
    component: Component,
    hub_device_id: str,
    facts: DeviceFacts | None = None,
) -> DeviceInfo:
    """Describe one component, linked to the hub device (`via_device_id`).

    The Assets API's name, maker and model (`facts`) win over the Microgrid
    API's; an unnamed component gets a translated name from its category and id.
    Built in one go, never changed afterwards: from Home Assistant 2026.11 a
    device info is a dataclass whose dict-style access is only a transition aid.
    """
    identifiers = {_component_identifier(entry_key, int(component.id))}
    manufacturer = (facts and facts.manufacturer) or component.manufacturer
    model = (facts and facts.model) or component.model_name
    serial_number = str(int(component.id))
    name = (facts and facts.name) or component.name
    if name:
        return DeviceInfo(
            identifiers=identifiers,
            manufacturer=manufacturer,
            model=model,
            serial_number=serial_number,
            via_device_id=hub_device_id,
            name=name,
        )
    return DeviceInfo(
        identifiers=identifiers,
        manufacturer=manufacturer,
        model=model,
        serial_number=serial_number,
        via_device_id=hub_device_id,
        translation_key=category_key(component.category),
        translation_placeholders={"component_id": serial_number},
    )


@callback
def async_register_devices(
    hass: HomeAssistant,
    entry: ConfigEntry[Any],
    topology: Topology,
    inventory: AssetsInventory | None = None,
    circuit_ids: Iterable[str] = (),
) -> MicrogridDevices:
    """Remove devices of components and circuits gone; register the hub.

    Only component and circuit devices are candidates for removal; the hub
    device always stays. A user-defined circuit's device is put under its
    config subentry if it is not (made by an older version), as its entities
    are added there.
    """
    entry_key = entry_key_of(entry)
    wanted = {
        _component_identifier(entry_key, int(component.id))
        for component in topology.components.values()
        if has_device(component)
    }
    wanted.add(_hub_identifier(entry_key))
    wanted.update(_circuit_identifier(entry_key, c) for c in circuit_ids)
    subentry_of = {
        _circuit_identifier(entry_key, circuit_id): subentry_id
        for circuit_id, subentry_id in circuit_subentries(entry).items()
    }
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        ours = {ident for ident in device.identifiers if ident[0] == DOMAIN}
        if ours and not ours & wanted:
            registry.async_remove_device(device.id)
            continue
        subentry_id = next((subentry_of[i] for i in ours if i in subentry_of), None)
        if subentry_id is not None and device.config_subentry_id != subentry_id:
            # A user circuit's device made before it was kept under its subentry.
            registry.async_update_device(device.id, new_config_subentry_id=subentry_id)
    hub = registry.async_get_or_create(
        config_entry_id=entry.entry_id,
        **_hub_device_info(entry_key, topology.info, inventory),
    )
    return MicrogridDevices(entry_key, topology.info, hub.id, inventory)


@callback
def async_remove_component_devices(
    hass: HomeAssistant,
    entry_id: str,
    devices: MicrogridDevices,
    component_ids: Iterable[int],
) -> int:
    """Remove the devices of components that left the microgrid; return how many.

    The registry removes their entities with them (and Home Assistant the
    entities' states), as at setup for components gone while it was stopped.
    """
    registry = dr.async_get(hass)
    removed = 0
    for component_id in component_ids:
        device = registry.async_get_device_by_identifier(
            _component_identifier(devices.entry_key, component_id), entry_id
        )
        if device is not None:
            registry.async_remove_device(device.id)
            removed += 1
    return removed


@callback
def async_remove_circuit_devices(
    hass: HomeAssistant,
    entry_id: str,
    devices: MicrogridDevices,
    circuit_ids: Iterable[str],
) -> None:
    """Remove the devices of circuits that are gone (their feeder meter left)."""
    registry = dr.async_get(hass)
    for circuit_id in circuit_ids:
        device = registry.async_get_device_by_identifier(
            _circuit_identifier(devices.entry_key, circuit_id), entry_id
        )
        if device is not None:
            registry.async_remove_device(device.id)


@callback
def async_refresh_component_devices(
    hass: HomeAssistant,
    entry_id: str,
    devices: MicrogridDevices,
    components: Iterable[Component],
) -> None:
    """Describe these components' devices anew (the API re-described them).

    Only devices that exist are touched; a name the user gave stays.
    """
    registry = dr.async_get(hass)
    for component in components:
        identifier = _component_identifier(devices.entry_key, int(component.id))
        if registry.async_get_device_by_identifier(identifier, entry_id) is not None:
            registry.async_get_or_create(
                config_entry_id=entry_id, **devices.device_info(component)
            )


@callback
def async_apply_inventory(
    hass: HomeAssistant,
    entry_id: str,
    devices: MicrogridDevices,
    inventory: AssetsInventory,
) -> None:
    """Give the registered devices the names, makers and models of `inventory`.

    For reads after setup (the Assets API came back, or an asset was renamed); a
    name the user gave a device (`name_by_user`) is left alone by the registry.
    """
    registry = dr.async_get(hass)
    targets: list[tuple[tuple[str, str], DeviceFacts | None]] = [
        (_hub_identifier(devices.entry_key), inventory.hub_facts())
    ]
    targets.extend(
        (_component_identifier(devices.entry_key, component_id), facts)
        for component_id in inventory.components
        if (facts := inventory.component_facts(component_id)) is not None
    )
    for identifier, facts in targets:
        device = registry.async_get_device_by_identifier(identifier, entry_id)
        if device is None or facts is None:
            continue
        changes: dict[str, Any] = {}
        if facts.name and facts.name != device.name:
            changes["name"] = facts.name
        if facts.manufacturer and facts.manufacturer != device.manufacturer:
            changes["manufacturer"] = facts.manufacturer
        if facts.model and facts.model != device.model:
            changes["model"] = facts.model
        if changes:
            registry.async_update_device(device.id, **changes)
