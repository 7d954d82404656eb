"""Base of the charging hub's setting entities (charger modes, battery for EVs).

They show and change settings of the engine's charging hub, not telemetry: they
stay available while the microgrid is away (a mode set then takes effect once it
is back), and every change is stored (`ChargingHubSettings`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING

from frequenz.client.microgrid.component import Component

from .engine.control import MicrogridController
from .entity import MicrogridEntity

if TYPE_CHECKING:
    from .runtime import FrequenzMicrogridConfigEntry


class ChargingHubEntity(MicrogridEntity):
    """A setting of the charging hub, on the hub's or a charger's device."""

    @property
    def controller(self) -> MicrogridController:
        """The entry's steering controller, which holds the hub's settings."""
        return self.coordinator.config_entry.runtime_data.engine.controller

    def _data_available(self) -> bool:
        """Always: a setting needs no telemetry."""
        return True

    def _settings_changed(self) -> None:
        """Store the settings and show the change."""
        settings = self.coordinator.config_entry.runtime_data.hub_settings
        if settings is not None:
            settings.changed()
        self.async_write_ha_state()


def chargers(
    entry: FrequenzMicrogridConfigEntry, only: Collection[int] | None = None
) -> Iterator[Component]:
    """The microgrid's EV chargers, by id (each has a device and a mode).

    `only`: just those of these ids (say, the chargers a topology change added).
    """
    topology = entry.runtime_data.engine.topology
    for charger_id in sorted(topology.ev_charger_ids):
        if only is None or charger_id in only:
            yield topology.components[charger_id]
