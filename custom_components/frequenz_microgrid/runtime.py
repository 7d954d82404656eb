"""What a loaded entry owns, each object once, and how it is released."""

from __future__ import annotations

from dataclasses import dataclass, field

from frequenz.client.microgrid import MicrogridApiClient
from homeassistant.config_entries import ConfigEntry

from .assets_sync import AssetsSync
from .charging_hub_store import ChargingHubSettings
from .circuit_store import CircuitLimitsStore
from .coordinator import MicrogridCoordinator
from .devices import MicrogridDevices
from .engine.microgrid import MicrogridEngine
from .hub_plan import HubPlanner
from .hub_reservations import HubReservations
from .repairs import RepairTracker
from .session_recorder import SessionRecorder
from .simulator import MicrogridSimulator
from .status_feed import ControllerStatusFeed
from .target_store import HubTargets
from .topology_refresh import TopologyRefresh


@dataclass
class MicrogridRuntimeData:
    """A loaded entry's client, engine and Home Assistant parts (`async_close`)."""

    client: MicrogridApiClient
    engine: MicrogridEngine
    """The monitor and the controller: actions and numbers propose to its controller."""
    coordinator: MicrogridCoordinator
    status_feed: ControllerStatusFeed
    """The controller's status, computed once per change for every platform."""
    repairs: RepairTracker
    devices: MicrogridDevices
    simulator: MicrogridSimulator | None = None
    """The in-process simulator of a demo entry (`None` for a real microgrid)."""
    sessions: SessionRecorder | None = None
    """The EV chargers' charging sessions (`None` where the entry tracks none)."""
    hub_settings: ChargingHubSettings | None = None
    """The charging hub's stored settings (charger modes, battery for EVs)."""
    assets: AssetsSync | None = None
    """The Assets API inventory and its reader (`None`: no Assets API)."""
    reservations: HubReservations | None = None
    """The charging hub's reservation book, kept across restarts."""
    targets: HubTargets | None = None
    """The deadline targets' store and their link to sessions and bookings."""
    circuit_store: CircuitLimitsStore | None = None
    """Where the circuits' power limit envelopes are kept across restarts."""
    topology_refresh: TopologyRefresh | None = None
    """Re-reads the topology periodically and on reconnect (`None`: not yet)."""
    planner: HubPlanner | None = None
    """The charging hub's plan, re-made when its inputs change."""
    _closed: bool = field(default=False, init=False, repr=False)

    async def async_close(self) -> None:
        """Release the components, stop streaming, disconnect, stop a demo simulator.

        Runs on unload and on Home Assistant stop, possibly both: the second call
        does nothing. The engine stops first, while the client still works (it
        withdraws every proposal and sends the batteries back to 0 W, so nothing is
        left steering a component that nobody maintains any more). The client must
        be disconnected before its server stops, or its broadcaster tasks keep
        retrying.
        """
        if self._closed:
            return
        self._closed = True
        self.repairs.clear()
        try:
            await self.engine.stop()
        finally:
            if self.sessions is not None:
                await self.sessions.async_flush()
            if self.assets is not None:
                await self.assets.async_close()
            await self.client.disconnect()
            if self.simulator is not None:
                await self.simulator.stop()


type FrequenzMicrogridConfigEntry = ConfigEntry[MicrogridRuntimeData]
