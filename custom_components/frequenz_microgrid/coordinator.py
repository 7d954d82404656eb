"""The coordinator: one per config entry, relaying the engine's snapshots to entities.

The engine's monitor streams telemetry and computes a `MicrogridSnapshot` once per
tick; the coordinator only relays it (push: no polling interval), logs once when
the microgrid becomes unreachable and once when it is back, and starts a reauth
flow when the API rejects the key. Reconnecting is the monitor's job: no reload.

Its listeners (one per entity) are told in chunks (`listener_chunks`): thousands
at once would stall the event loop on a large microgrid. A listener added with a
component id as its context shows that component's data alone: it is told only
when that component's snapshot object changed (the store hands out the same one
while the component repeats itself), or the coordinator's success or the
microgrid's reachability did. On a 1,000-component site that spares most of
~7,000 entity callbacks a second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, override

from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .const import DOMAIN, LOGGER
from .engine.snapshot import MicrogridSnapshot
from .listener_chunks import ChunkedListeners

if TYPE_CHECKING:
    from .runtime import FrequenzMicrogridConfigEntry


class MicrogridCoordinator(DataUpdateCoordinator[MicrogridSnapshot]):
    """Relays the snapshots of one microgrid to its entities."""

    config_entry: FrequenzMicrogridConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry
    ) -> None:
        """Create the coordinator; the engine pushes to `async_set_updated_data`."""
        super().__init__(
            hass, LOGGER, config_entry=entry, name=f"{DOMAIN} {entry.title}"
        )
        self._chunked_listeners = ChunkedListeners(hass.loop)
        self._told: tuple[bool, MicrogridSnapshot | None] = (False, None)
        """The success and the snapshot the listeners were last told of."""
        self._unreachable_logged = False
        self._reauth_started = False

    async def _async_update_data(self) -> MicrogridSnapshot:
        """Return the latest snapshot: nothing to fetch, the engine pushes.

        Only reached when somebody asks for a refresh (`homeassistant.update_entity`).
        """
        return self.data

    @callback
    @override
    def async_add_listener(
        self, update_callback: CALLBACK_TYPE, context: Any = None
    ) -> Callable[[], None]:
        """Listen for snapshots; told in chunks by `async_update_listeners`.

        `context`: `None`, or the id of the one component whose data alone the
        listener shows (then told only when that component changed). Nothing
        polls (no update interval), so there is no refresh to schedule for the
        first listener.
        """
        return self._chunked_listeners.add(update_callback, context)

    @callback
    @override
    def async_update_listeners(self) -> None:
        """Tell the entities in chunks: thousands at once would stall the loop.

        Only the components whose snapshot is another object than in the last
        snapshot told (every one when the success or reachability changed).
        """
        success, snapshot = self.last_update_success, self.data
        told_success, told = self._told
        self._told = (success, snapshot)
        if (
            told is None
            or snapshot is None
            or success != told_success
            or snapshot.reachable != told.reachable
        ):
            self._chunked_listeners.call_all()
            return
        now, before = snapshot.components, told.components
        changed = [cid for cid, data in now.items() if before.get(cid) is not data]
        changed.extend(cid for cid in before if cid not in now)
        self._chunked_listeners.call_changed(changed)

    async def async_shutdown(self) -> None:
        """Drop a round of entity updates still in progress, then shut down."""
        self._chunked_listeners.cancel()
        await super().async_shutdown()

    @callback
    def handle_reachability(self, reachable: bool) -> None:
        """Log the first time the microgrid is lost, and once when it is back."""
        if not reachable and not self._unreachable_logged:
            self._unreachable_logged = True
            # Info, not warning: an outage is expected now and then, and the
            # entities already show it (the quality scale's log-when-unavailable).
            LOGGER.info(
                "Microgrid %s is unreachable; its entities go unavailable until it "
                "answers again (reconnecting in the background)",
                self.config_entry.title,
            )
        elif reachable and self._unreachable_logged:
            self._unreachable_logged = False
            LOGGER.info("Microgrid %s is reachable again", self.config_entry.title)
            if self._reauth_started:
                self._drop_stale_reauth()

    @callback
    def _drop_stale_reauth(self) -> None:
        """Abort the reauth flow: data flows again, so the stored key works again.

        An API that rejected the key for a while (a glitch at the gateway, a key
        re-enabled) would otherwise leave a "reauthentication required" prompt for
        a key that needs no change; a later rejection starts a new flow.
        """
        self._reauth_started = False
        entry = self.config_entry
        for flow in entry.async_get_active_flows(self.hass, {SOURCE_REAUTH}):
            self.hass.config_entries.flow.async_abort(flow["flow_id"])
        LOGGER.info("Microgrid %s accepts the API key again", entry.title)

    @callback
    def handle_auth_error(self, err: Exception) -> None:
        """Start a reauth flow (once) when the API rejects the stored key."""
        if self._reauth_started:
            return
        self._reauth_started = True
        LOGGER.warning(
            "Microgrid %s rejected the API key: %s", self.config_entry.title, err
        )
        self.config_entry.async_start_reauth(self.hass)
