"""`MicrogridEngine`: the engine of one microgrid, wired in one place.

Watching and steering share the telemetry: the monitor streams it into its store
and publishes a snapshot per tick; the controller distributes from that same store
and re-checks its setpoints once per snapshot. That wiring is the same wherever the
engine runs (the Home Assistant integration, the control bench of the tests, the
benchmarks), so it lives here once; the caller only says what to do with each
snapshot, with a change of reachability and with a rejected key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from frequenz.client.microgrid import MicrogridApiClient
from frequenz.client.microgrid.metrics import Metric

from .control import MicrogridController
from .graph import Topology
from .hub.site import SiteFlows
from .monitor import MicrogridMonitor
from .pools import CompiledFormulas
from .reactive import ReactivePowerSteering
from .set_power import CompletingSetPowerClient
from .snapshot import MicrogridSnapshot
from .telemetry import DEFAULT_FRESHNESS_S
from .topology_change import TopologyChange, topology_change


class MicrogridEngine:
    """The monitor of one microgrid and the controller its snapshots tick."""

    def __init__(
        self,
        client: MicrogridApiClient,
        topology: Topology,
        *,
        on_snapshot: Callable[[MicrogridSnapshot], None],
        on_reachability: Callable[[bool], None] | None = None,
        on_auth_error: Callable[[Exception], None] | None = None,
        freshness_s: float = DEFAULT_FRESHNESS_S,
        tick_s: float = 1.0,
        detail_metrics: Mapping[int, frozenset[Metric]] | None = None,
        **controller_options: Any,
    ) -> None:
        """Wire the monitor and the controller; `start()` sets them running.

        `detail_metrics`: per component id, what to stream beyond what the engine
        reads (the monitor's `detail_metrics`: metrics only sensors show).
        `controller_options` are `MicrogridController`'s keyword arguments (its
        clock, set-power lifetime and timeout, distribution tuning).
        """
        self.topology = topology
        self._publish = on_snapshot
        self.monitor = MicrogridMonitor(
            client,
            topology,
            freshness_s=freshness_s,
            tick_s=tick_s,
            on_snapshot=self._steer_then_publish,
            on_reachability=on_reachability,
            on_auth_error=on_auth_error,
            detail_metrics=detail_metrics,
        )
        self.controller = MicrogridController(
            client, topology, self.monitor.store, **controller_options
        )
        self._reactive_sender = CompletingSetPowerClient(client)
        self.reactive = ReactivePowerSteering(
            self._reactive_sender,
            lambda: self.topology.battery_inverter_ids | self.topology.pv_inverter_ids,
            self.monitor.store.bounds,
            lifetime_s=controller_options.get("lifetime_s", 60.0),
        )
        """Reactive power of the inverters (per inverter, outside the pools)."""

    async def start(self) -> None:
        """Start streaming telemetry and accept proposals."""
        await self.monitor.start()
        await self.controller.start()

    async def stop(self) -> None:
        """Release every component, then stop streaming (the caller disconnects).

        The steering goes first, while telemetry and the client still work: the
        inverters' reactive setpoints are released (0 var), the controller
        withdraws every proposal and sends the batteries back to 0 W.
        """
        try:
            try:  # reactive setpoints back to 0 var, whatever happens to them
                await self.reactive.stop()
                await self._reactive_sender.finish()
            finally:
                await self.controller.stop()
        finally:
            await self.monitor.stop()

    def bounds_set(
        self,
        component_id: int,
        metric: Metric,
        lower: float,
        upper: float,
        validity_s: float,
    ) -> None:
        """Bounds the microgrid just took for a component: they hold here at once.

        Its telemetry shows them only with the next sample; until then steering
        would send setpoints outside them (`TelemetryStore.request_bounds`). The
        steering re-checks every pool now, so a setpoint in force outside the
        new bounds is corrected at once rather than on the next tick.
        """
        self.monitor.store.request_bounds(
            component_id, metric, lower, upper, validity_s
        )
        self.controller.on_tick()

    async def follow_topology(
        self, topology: Topology, formulas: CompiledFormulas | None = None
    ) -> TopologyChange:
        """Watch and steer a re-read topology; return what changed (falsy: nothing).

        An unchanged topology changes nothing at all. Otherwise the controller
        goes first, so no setpoint goes to a component that left once this
        starts (it waits for a distribution in flight); then the monitor stops
        streaming the components that left, streams the newcomers and computes
        the pools with the new graph's formulas (`formulas`, if the caller
        compiled them already) from the next tick on.
        """
        change = topology_change(self.topology, topology)
        if not change:
            return change
        self.topology = topology
        self.reactive.forget(change.removed)
        await self.controller.follow_topology(topology, change.removed)
        await self.monitor.follow_topology(topology, change.removed, formulas)
        return change

    def _steer_then_publish(self, snapshot: MicrogridSnapshot) -> None:
        """Re-check the setpoints with the new telemetry, then hand the snapshot on.

        The controller only schedules its tick here, so publishing is not held up.
        """
        self.controller.observe_site(SiteFlows.from_snapshot(snapshot))
        self.controller.on_tick()
        self._publish(snapshot)
