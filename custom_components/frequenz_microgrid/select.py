"""Selects: each EV charger's mode (off, fast, solar, boost, smart).

*Off* holds the charger at 0 W with the EV plugged in; *fast* charges as much as
the fuse and the pool target allow; *solar* only from PV surplus; *boost* charges
first, before every other EV, for the hub's boost duration and then returns to
the mode before it (the attributes say when and to which); *smart* follows the
hub's charging plan (`engine.hub.planner`). The engine applies the
mode on its next round (at once); the choice is kept across restarts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from frequenz.client.microgrid.component import Component
from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from .charging_hub_entity import ChargingHubEntity, chargers
from .engine.hub.modes import ChargerMode
from .topology_refresh import async_add_entities_on_topology_change

if TYPE_CHECKING:
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .runtime import FrequenzMicrogridConfigEntry

PARALLEL_UPDATES = 0
"""Setting a mode only changes the engine's table: nothing to serialise."""

CHARGER_MODE = SelectEntityDescription(
    key="charger_mode",
    translation_key="charger_mode",
    options=[mode.value for mode in ChargerMode],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up a mode select for every EV charger."""
    async_add_entities(
        ChargerModeSelect(entry, CHARGER_MODE, charger) for charger in chargers(entry)
    )
    async_add_entities_on_topology_change(
        hass,
        entry,
        async_add_entities,
        lambda change: [
            ChargerModeSelect(entry, CHARGER_MODE, charger)
            for charger in chargers(entry)
            if int(charger.id) in change.added
        ],
    )


class ChargerModeSelect(ChargingHubEntity, SelectEntity):
    """The mode of one EV charger."""

    _attributes_are_shown = True

    def __init__(
        self,
        entry: FrequenzMicrogridConfigEntry,
        description: SelectEntityDescription,
        charger: Component,
    ) -> None:
        """Show and set the mode of `charger`."""
        super().__init__(entry, description, charger)
        self.charger_id = int(charger.id)

    @property
    def current_option(self) -> str:
        """The charger's mode now (a boost that ran out shows the next mode)."""
        return self.controller.charger_modes.mode(self.charger_id).value

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """When a boost ends and which mode follows it (`None` without a boost)."""
        modes = self.controller.charger_modes
        remaining = modes.boost_remaining_s(self.charger_id)
        if remaining is None:
            return {"boost_until": None, "after_boost": None}
        until = dt_util.utcnow() + timedelta(seconds=remaining)
        return {
            "boost_until": until.replace(microsecond=0).isoformat(),
            "after_boost": modes.state(self.charger_id).after_boost.value,
        }

    async def async_select_option(self, option: str) -> None:
        """Set the mode; a boost lasts the hub's boost duration."""
        self.controller.charger_modes.set_mode(self.charger_id, ChargerMode(option))
        self._settings_changed()
