"""Binary sensor "reserved" of each EV charger: a booking is in force now.

Its attributes name the booking in force (id, vehicle, until) and the next one,
so an automation or a dashboard sees at a glance which charger is promised to
whom. It follows the reservation book (every change is shown at once) and the
clock (re-rendered with every snapshot, so it turns on when a booking starts).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from frequenz.client.microgrid.component import Component
from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.util import dt as dt_util

from .charging_hub_entity import ChargingHubEntity, chargers
from .hub_reservations import iso

if TYPE_CHECKING:
    from .hub_reservations import HubReservations
    from .runtime import FrequenzMicrogridConfigEntry

RESERVED = BinarySensorEntityDescription(key="reserved", translation_key="reserved")


def reserved_sensors(
    entry: FrequenzMicrogridConfigEntry, only: Collection[int] | None = None
) -> list[ReservedBinarySensor]:
    """A "reserved" sensor per EV charger, `only` those (none without a book)."""
    hub = entry.runtime_data.reservations
    if hub is None:
        return []
    return [
        ReservedBinarySensor(entry, hub, charger) for charger in chargers(entry, only)
    ]


class ReservedBinarySensor(ChargingHubEntity, BinarySensorEntity):
    """On while a booking of the charger is in force."""

    def __init__(
        self,
        entry: FrequenzMicrogridConfigEntry,
        hub: HubReservations,
        charger: Component,
    ) -> None:
        """Follow `charger`'s bookings in `hub`."""
        super().__init__(entry, RESERVED, charger)
        self.hub = hub
        self.charger_id = int(charger.id)

    async def async_added_to_hass(self) -> None:
        """Also show every change of the book at once."""
        await super().async_added_to_hass()
        self.async_on_remove(self.hub.book.listen(self.async_write_ha_state))

    @property
    def is_on(self) -> bool:
        """Whether a booking of this charger is in force now."""
        return self.hub.book.in_force(self.charger_id) is not None

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The booking in force and the next one (`None` where there is none)."""
        book = self.hub.book
        current = book.in_force(self.charger_id)
        after = current.end if current is not None else dt_util.utcnow().timestamp()
        following = next(
            (r for r in book.of_charger(self.charger_id) if r.start >= after), None
        )
        return {
            "reservation_id": None if current is None else current.reservation_id,
            "vehicle": None if current is None else current.vehicle,
            "until": None if current is None else iso(current.end),
            "plugged_in": None if current is None else current.claimed,
            "next_start": None if following is None else iso(following.start),
            "next_vehicle": None if following is None else following.vehicle,
        }
