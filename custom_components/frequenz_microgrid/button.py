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

from .actors import ha_priority, ha_source_id, release_signal
from .engine.control import Pool
from .entity import MicrogridEntity, of_steerable_pools
from .restore_owner import OwnerData, RestoresOwnData
from .topology_refresh import async_add_entities_on_topology_change

if TYPE_CHECKING:
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .runtime import FrequenzMicrogridConfigEntry

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
    buttons = of_steerable_pools(entry, RELEASE_BUTTONS)
    async_add_entities(ReleaseButton(entry, description) for description in buttons)
    async_add_entities_on_topology_change(
        hass,
        entry,
        async_add_entities,
        lambda _: [
            ReleaseButton(entry, d) for d in of_steerable_pools(entry, RELEASE_BUTTONS)
        ],
        governs=(ReleaseButton,),
    )


class ReleaseButton(MicrogridEntity, RestoresOwnData, ButtonEntity):
    """Withdraws Home Assistant's own proposal for a pool.

    Always available: releasing is what must work when something is wrong, and the
    withdrawal takes effect in the controller even while the microgrid is away.
    """

    entity_description: ReleaseButtonDescription

    def _data_available(self) -> bool:
        """Always: releasing needs no telemetry."""
        return True

    @property
    def extra_restore_state_data(self) -> OwnerData:
        """Only whose last press is restored (`restore_owner`)."""
        return OwnerData(self.unique_id)

    async def async_press(self) -> None:
        """Withdraw the proposal and clear the number's restored value."""
        entry = self.coordinator.config_entry
        pool = self.entity_description.pool
        await entry.runtime_data.engine.controller.withdraw(
            pool, source_id=ha_source_id(pool), priority=ha_priority(entry)
        )
        async_dispatcher_send(self.hass, release_signal(entry.entry_id, pool))
