"""Buttons: release Home Assistant's control of a pool.

Pressing "Release control" withdraws the proposal of Home Assistant's own actor for
that pool (the one the pool's number sets). The pool falls back to what the other
actors ask for, or to its default when nobody does: batteries 0 W, EV chargers full
charging power, PV full production. Proposals of automations (actions) stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .engine.control import MicrogridController, Pool
from .entity import entry_key_of, hub_device_info
from .steering_entity import ha_priority, ha_source_id, release_signal

if TYPE_CHECKING:
    from frequenz.client.microgrid import MicrogridInfo
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import FrequenzMicrogridConfigEntry

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class ReleaseButtonDescription(ButtonEntityDescription):
    """The release button of one pool."""

    pool: Pool


RELEASE_BUTTONS: tuple[ReleaseButtonDescription, ...] = tuple(
    ReleaseButtonDescription(
        key=f"{pool.value}_release",
        translation_key=f"{pool.value}_release",
        pool=pool,
    )
    for pool in Pool
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up a release button for every pool the microgrid has."""
    runtime = entry.runtime_data
    controller = runtime.controller
    async_add_entities(
        ReleaseButton(
            controller, entry=entry, info=runtime.topology.info, description=d
        )
        for d in RELEASE_BUTTONS
        if controller.pool_components(d.pool)
    )


class ReleaseButton(ButtonEntity):
    """Withdraws Home Assistant's own proposal for a pool.

    Always available: releasing is what must work when something is wrong, and the
    withdrawal takes effect in the controller even while the microgrid is away.
    """

    _attr_has_entity_name = True
    entity_description: ReleaseButtonDescription

    def __init__(
        self,
        controller: MicrogridController,
        *,
        entry: FrequenzMicrogridConfigEntry,
        info: MicrogridInfo,
        description: ReleaseButtonDescription,
    ) -> None:
        """Create the button for `description` on the hub device."""
        entry_key = entry_key_of(entry)
        self.entity_description = description
        self._attr_unique_id = f"{entry_key}_{description.key}"
        self._attr_device_info = hub_device_info(entry_key, info)
        self._controller = controller
        self._priority = ha_priority(entry)
        self._entry_id = entry.entry_id

    async def async_press(self) -> None:
        """Withdraw the proposal and clear the number's restored value."""
        pool = self.entity_description.pool
        await self._controller.withdraw(
            pool, source_id=ha_source_id(pool), priority=self._priority
        )
        async_dispatcher_send(self.hass, release_signal(self._entry_id, pool))
