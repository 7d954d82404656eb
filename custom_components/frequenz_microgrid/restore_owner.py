"""Restored data that belongs to the entity restoring it.

Home Assistant restores an entity's last state and extra data by entity id, and
keeps a removed entity's data for a week so that it comes back if the entity is
added again. Entity ids come from device names, which repeat across sites (every
microgrid has a "Grid connection", many a "Charge point 1"): a microgrid added
after another one was removed would continue the removed one's energy totals,
show (with *re-apply* on, even send) its battery setpoint, and show its last
session event and button press. So what an entity stores carries its unique id,
which holds the microgrid id, and `RestoresOwnData` restores nothing another
entity stored. Data stored before the owner was recorded has none and is
restored as before, so an upgrade loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.components.event import EventExtraStoredData
from homeassistant.components.sensor import SensorExtraStoredData
from homeassistant.core import State
from homeassistant.helpers.restore_state import ExtraStoredData, RestoreEntity

from .const import LOGGER

OWNER_KEY = "owner"
"""The stored data's key for the unique id of the entity that stored it."""


class RestoresOwnData(RestoreEntity):
    """Restores the last state and extra data only if this entity stored them.

    Put before the platform's restoring base class; the entity stores its
    unique id under `OWNER_KEY` in its extra data (the data classes below).
    """

    async def async_get_last_state(self) -> State | None:
        """The last state, unless another entity stored it."""
        if self._stored_by_another(await super().async_get_last_extra_data()):
            return None
        return await super().async_get_last_state()

    async def async_get_last_extra_data(self) -> ExtraStoredData | None:
        """The last extra data, unless another entity stored it."""
        extra = await super().async_get_last_extra_data()
        return None if self._stored_by_another(extra) else extra

    def _stored_by_another(self, extra: ExtraStoredData | None) -> bool:
        owner = None if extra is None else extra.as_dict().get(OWNER_KEY)
        if owner is None or owner == self.unique_id:
            return False
        LOGGER.info(
            "Not restoring %s: its last data was stored by another entity (%s)",
            self.entity_id,
            owner,
        )
        return True


@dataclass
class OwnerData(ExtraStoredData):
    """Only the owner: for an entity whose platform stores no extra data."""

    owner: str | None

    def as_dict(self) -> dict[str, Any]:
        """Return the owner."""
        return {OWNER_KEY: self.owner}


@dataclass
class OwnedSensorData(SensorExtraStoredData):
    """A sensor's stored state with the unique id of the sensor that stored it."""

    owner: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the sensor's stored state and its owner."""
        return super().as_dict() | {OWNER_KEY: self.owner}


@dataclass
class OwnedEventData(EventExtraStoredData):
    """An event entity's last event with the unique id of the entity that stored it."""

    owner: str | None = None
