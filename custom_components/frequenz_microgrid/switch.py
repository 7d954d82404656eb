"""Switches of the charging hub.

* Per EV charger, *solar minimum current*: in solar mode, charge at least at the
  minimum current even without enough surplus (the rest from the grid), so an EV
  that must be charged by the evening still gets the sun's share on top.
* On the hub, *battery may charge EVs*: off, the home battery never discharges
  into the EVs — our own battery setpoints cover at most the rest of the site
  while EVs charge (see the number *battery floor SoC for EVs* for the SoC below
  which this holds even when on).

Both are kept across restarts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from frequenz.client.microgrid.component import Component
from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant

from .charging_hub_entity import ChargingHubEntity, chargers
from .topology_refresh import async_add_entities_on_topology_change

if TYPE_CHECKING:
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .runtime import FrequenzMicrogridConfigEntry

PARALLEL_UPDATES = 0
"""Switching only changes the engine's settings: nothing to serialise."""

SOLAR_MIN_CURRENT = SwitchEntityDescription(
    key="solar_min_current",
    translation_key="solar_min_current",
    entity_category=EntityCategory.CONFIG,
)


BATTERY_FOR_EVS = SwitchEntityDescription(
    key="battery_for_evs",
    translation_key="battery_for_evs",
    entity_category=EntityCategory.CONFIG,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the solar option per charger, and the hub switch with a battery."""
    async_add_entities(_switches(entry))
    async_add_entities_on_topology_change(
        hass,
        entry,
        async_add_entities,
        lambda change: _switches(entry, change.added),
    )


def _switches(
    entry: FrequenzMicrogridConfigEntry, only: frozenset[int] | None = None
) -> list[SwitchEntity]:
    """The switches the topology in use has a use for (chargers: `only` those)."""
    all_chargers = list(chargers(entry))
    switches: list[SwitchEntity] = [
        SolarMinCurrentSwitch(entry, SOLAR_MIN_CURRENT, charger)
        for charger in all_chargers
        if only is None or int(charger.id) in only
    ]
    topology = entry.runtime_data.engine.topology
    if all_chargers and topology.battery_ids:
        switches.append(BatteryForEvsSwitch(entry, BATTERY_FOR_EVS))
    return switches


class SolarMinCurrentSwitch(ChargingHubEntity, SwitchEntity):
    """Solar mode charges at least at the minimum current (one charger)."""

    def __init__(
        self,
        entry: FrequenzMicrogridConfigEntry,
        description: SwitchEntityDescription,
        charger: Component,
    ) -> None:
        """Show and switch the option of `charger`."""
        super().__init__(entry, description, charger)
        self.charger_id = int(charger.id)

    @property
    def is_on(self) -> bool:
        """Whether the option is on."""
        modes = self.controller.charger_modes
        return modes.state(self.charger_id).solar_min_current

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Charge at least at the minimum in solar mode."""
        self.controller.charger_modes.set_solar_min_current(self.charger_id, True)
        self._settings_changed()

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Charge from surplus only in solar mode."""
        self.controller.charger_modes.set_solar_min_current(self.charger_id, False)
        self._settings_changed()


class BatteryForEvsSwitch(ChargingHubEntity, SwitchEntity):
    """Whether the home battery may discharge into the EVs."""

    @property
    def is_on(self) -> bool:
        """Whether it may (above the floor SoC)."""
        return self.controller.battery_for_evs.allowed

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Let the battery feed the EVs (above the floor SoC)."""
        await self._set(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Keep the battery from feeding the EVs."""
        await self._set(False)

    async def _set(self, allowed: bool) -> None:
        self.controller.battery_for_evs.allowed = allowed
        self.controller.on_tick()  # bound (or free) the battery at once
        self._settings_changed()
