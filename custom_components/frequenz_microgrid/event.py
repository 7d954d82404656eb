"""Event entities: one per EV charger, firing when a charging session starts or ends.

Event types `session_started` and `session_ended`; the event's attributes are the
session record (energy and its solar / battery / grid split, start, end, duration,
peak power), so an automation can trigger on "a car finished charging" and use
what it got. The session accounting itself is `engine.hub.sessions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback

from .charging_hub_entity import chargers
from .engine.hub.sessions import SessionChange, SessionChangeKind
from .entity import MicrogridEntity
from .restore_owner import OwnedEventData, RestoresOwnData
from .topology_refresh import async_add_entities_on_topology_change

if TYPE_CHECKING:
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .runtime import FrequenzMicrogridConfigEntry

PARALLEL_UPDATES = 0

SESSION_EVENT = EventEntityDescription(
    key="session",
    translation_key="session",
    event_types=[kind.value for kind in SessionChangeKind],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a session event entity per EV charger."""
    if entry.runtime_data.sessions is None:
        return
    async_add_entities(_session_events(entry))
    async_add_entities_on_topology_change(
        hass,
        entry,
        async_add_entities,
        lambda change: _session_events(entry, change.added),
    )


def _session_events(
    entry: FrequenzMicrogridConfigEntry, only: frozenset[int] | None = None
) -> list[SessionEvent]:
    """A session event entity per EV charger (or per charger in `only`)."""
    return [
        SessionEvent(entry, SESSION_EVENT, charger)
        for charger in chargers(entry)
        if only is None or int(charger.id) in only
    ]


class SessionEvent(MicrogridEntity, RestoresOwnData, EventEntity):
    """Fires `session_started` / `session_ended` with the session's record."""

    @property
    def extra_restore_state_data(self) -> OwnedEventData:
        """The last event, stored with this entity's unique id (`restore_owner`)."""
        last = super().extra_restore_state_data
        return OwnedEventData(
            last.last_event_type, last.last_event_attributes, self.unique_id
        )

    def _data_available(self) -> bool:
        """Always: sessions are announced whenever they happen."""
        return True

    def _render_inputs(self) -> tuple[object, ...]:
        """Nothing a snapshot brings: the state changes only when an event fires.

        So the entity is not re-rendered on every tick (it writes when it fires).
        """
        return ()

    async def async_added_to_hass(self) -> None:
        """Also listen for the entry's session changes."""
        await super().async_added_to_hass()
        recorder = self.coordinator.config_entry.runtime_data.sessions
        assert recorder is not None
        self.async_on_remove(recorder.async_add_listener(self._handle_session_change))

    @callback
    def _handle_session_change(self, change: SessionChange) -> None:
        """Fire the event of one of this charger's sessions."""
        session = change.session
        if session.charger_id != self.component_id:
            return
        # A new session's record is at its start; an ended one's at its end.
        at = session.end_or(session.last_seen_connected)
        self._trigger_event(change.kind.value, session.record(at))
        self.async_write_ha_state()
