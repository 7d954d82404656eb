"""Restored data that belongs to the entity restoring it.

Home Assistant restores an entity's last state and extra data by entity id, and
keeps a removed entity's data for a week so that it comes back if the entity is
added again. Entity ids come from device names, which repeat across sites (every
microgrid has a "Grid connection", many a "Charge point 1"): a microgrid added
after another one was removed would continue the removed one's energy totals,
and show (with *re-apply* on, even send) its battery setpoint. So what an entity
stores carries its unique id, which holds the microgrid id, and data another
entity stored is not restored. Data stored before the owner was recorded has
none and is restored as before, so an upgrade loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.components.sensor import SensorExtraStoredData
from homeassistant.helpers.restore_state import RestoreEntity

from .const import LOGGER

OWNER_KEY = "owner"
"""The stored data's key for the unique id of the entity that stored it."""


async def async_last_own_data(entity: RestoreEntity) -> dict[str, Any] | None:
    """The entity's restored extra data, unless another entity stored it."""
    extra = await entity.async_get_last_extra_data()
    if extra is None:
        return None
    data = extra.as_dict()
    owner = data.get(OWNER_KEY)
    if owner is not None and owner != entity.unique_id:
        LOGGER.info(
            "Not restoring %s: its last data was stored by another entity (%s)",
            entity.entity_id,
            owner,
        )
        return None
    return data


@dataclass
class OwnedSensorData(SensorExtraStoredData):
    """A sensor's stored state with the unique id of the sensor that stored it."""

    owner: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the sensor's stored state and its owner."""
        return super().as_dict() | {OWNER_KEY: self.owner}
