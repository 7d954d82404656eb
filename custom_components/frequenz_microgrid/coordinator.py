"""The coordinator: one per config entry, pushing the engine's snapshots to entities.

The engine's `MicrogridMonitor` streams telemetry and computes a `MicrogridSnapshot`
once per tick; the coordinator only relays it (push: no polling interval), logs once
when the microgrid becomes unreachable and once when it is back, and starts a reauth
flow when the API rejects the key. Reconnecting is the monitor's job: no reload.

Each tick also drives the steering: the entry's `MicrogridController` re-checks its
setpoints against the new telemetry, and the `RepairTracker` raises or clears repair
issues from the controller's component health.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from frequenz.client.microgrid import MicrogridApiClient
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .const import DOMAIN, LOGGER
from .engine.control import MicrogridController
from .engine.graph import Topology
from .engine.monitor import MicrogridMonitor
from .engine.snapshot import MicrogridSnapshot
from .listener_chunks import ChunkedListenerCalls
from .repairs import RepairTracker
from .simulator import MicrogridSimulator
from .steering_entity import ControllerStatusFeed


@dataclass
class MicrogridRuntimeData:
    """What a loaded entry owns; everything here is released by `async_close`."""

    client: MicrogridApiClient
    topology: Topology
    monitor: MicrogridMonitor
    coordinator: MicrogridCoordinator
    controller: MicrogridController
    """Steers the pools: actions and number entities send their proposals here."""
    status_feed: ControllerStatusFeed
    """The controller's status, computed once per change for every platform."""
    simulator: MicrogridSimulator | None = None
    """The in-process simulator of a demo entry (`None` for a real microgrid)."""
    _closed: bool = field(default=False, init=False, repr=False)

    async def async_close(self) -> None:
        """Release the components, stop streaming, disconnect, stop a demo simulator.

        Runs on unload and on Home Assistant stop, possibly both: the second call
        does nothing. The controller goes first, while the client still works: it
        withdraws every proposal and sends the batteries back to 0 W, so nothing is
        left steering a component that nobody maintains any more. The client must be
        disconnected before its server stops, or its broadcaster tasks keep retrying.
        """
        if self._closed:
            return
        self._closed = True
        self.coordinator.repairs.clear()
        try:
            await self.controller.stop()
        finally:
            await self.monitor.stop()
            await self.client.disconnect()
            if self.simulator is not None:
                await self.simulator.stop()


type FrequenzMicrogridConfigEntry = ConfigEntry[MicrogridRuntimeData]


class MicrogridCoordinator(DataUpdateCoordinator[MicrogridSnapshot]):
    """Relays the monitor's snapshots of one microgrid to its entities."""

    config_entry: FrequenzMicrogridConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: FrequenzMicrogridConfigEntry,
        client: MicrogridApiClient,
        topology: Topology,
        *,
        freshness_s: float,
    ) -> None:
        """Create the coordinator and the (not yet started) monitor it listens to."""
        super().__init__(
            hass, LOGGER, config_entry=entry, name=f"{DOMAIN} {entry.title}"
        )
        self.client = client
        self.topology = topology
        self.monitor = MicrogridMonitor(
            client,
            topology,
            freshness_s=freshness_s,
            on_snapshot=self._handle_snapshot,
            on_reachability=self._handle_reachability,
            on_auth_error=self._handle_auth_error,
        )
        self.controller = MicrogridController(client, topology, self.monitor.store)
        self.repairs = RepairTracker(hass, entry.entry_id, entry.title, topology)
        self.unreachable_logged = False
        self._reauth_started = False
        self._listener_calls = ChunkedListenerCalls(hass.loop)
        self.status_feed = ControllerStatusFeed(self.controller, self)
        """The controller's status per snapshot, shared by repairs and entities."""
        self._repairs_due: asyncio.Handle | None = None

    async def _async_update_data(self) -> MicrogridSnapshot:
        """Return the monitor's latest snapshot (for the first refresh only).

        Updates are pushed by the monitor; this only gives entities a value to
        start from.
        """
        return self.monitor.snapshot()

    @callback
    def _handle_snapshot(self, snapshot: MicrogridSnapshot) -> None:
        """Steer with the new telemetry, publish to the entities, update repairs.

        Repairs are judged in a loop iteration of their own (every component's
        health, ≈1 ms on a large microgrid): what else is due, e.g. a proposal
        from an automation, need not wait for both.
        """
        self.controller.on_tick()
        self.async_set_updated_data(snapshot)
        if self._repairs_due is not None:
            self._repairs_due.cancel()  # the newer snapshot's judgement replaces it
        self._repairs_due = self.hass.loop.call_soon(
            self._update_repairs, snapshot.reachable
        )

    @callback
    def _update_repairs(self, reachable: bool) -> None:
        self._repairs_due = None
        self.repairs.update(
            reachable=reachable, components=self.status_feed.status.components
        )

    @callback
    def async_update_listeners(self) -> None:
        """Tell the entities in chunks: thousands at once would stall the loop."""
        self._listener_calls.call_all(self._listeners)

    async def async_shutdown(self) -> None:
        """Drop a round of entity updates still in progress, then shut down."""
        self._listener_calls.cancel()
        if self._repairs_due is not None:
            self._repairs_due.cancel()
            self._repairs_due = None
        await super().async_shutdown()

    @callback
    def _handle_reachability(self, reachable: bool) -> None:
        """Log the first time the microgrid is lost, and once when it is back."""
        if not reachable and not self.unreachable_logged:
            self.unreachable_logged = True
            # Info, not warning: an outage is expected now and then, and the
            # entities already show it (the quality scale's log-when-unavailable).
            LOGGER.info(
                "Microgrid %s is unreachable; its entities go unavailable until it "
                "answers again (reconnecting in the background)",
                self.config_entry.title,
            )
        elif reachable and self.unreachable_logged:
            self.unreachable_logged = False
            LOGGER.info("Microgrid %s is reachable again", self.config_entry.title)

    @callback
    def _handle_auth_error(self, err: Exception) -> None:
        """Start a reauth flow (once) when the API rejects the stored key."""
        if self._reauth_started:
            return
        self._reauth_started = True
        LOGGER.warning(
            "Microgrid %s rejected the API key: %s", self.config_entry.title, err
        )
        self.config_entry.async_start_reauth(self.hass)
