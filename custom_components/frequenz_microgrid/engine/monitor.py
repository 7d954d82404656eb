"""Stream every component's telemetry and publish one snapshot per tick.

The async edge of the "seeing" side: one task per component stream writes the
latest samples into a `TelemetryStore` (cheap, on arrival); one tick task computes
the `MicrogridSnapshot` once per `tick_s` (formulas, battery pool, staleness) and
hands it to `on_snapshot`. Nothing here raises out of its tasks: a broken stream
is re-subscribed, a failing callback is logged, and the microgrid being away shows
up as `reachable = False` (and `None` values), never as an exception.

Reconnection: the client's stream broadcaster retries failed streams by itself, but
a stream the server *ends* normally finishes the receiver and stays cached in the
client; the monitor then evicts the finished broadcaster and subscribes again.

Auth errors do not surface through the client's streams (it retries them like any
other error), so while the microgrid looks unreachable the monitor probes it with a
cheap unary call; `OperationUnauthenticated` / `PermissionDenied` from that call
go to `on_auth_error`, once per outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
import contextlib
from datetime import UTC, datetime
import logging
import time

from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid import (
    ApiClientError,
    MicrogridApiClient,
    OperationUnauthenticated,
    PermissionDenied,
)
from frequenz.client.microgrid.component import (
    Battery,
    Component,
    GridConnectionPoint,
)
from frequenz.client.microgrid.metrics import Metric

from .graph import Topology
from .pools import CompiledFormulas, compute_snapshot
from .snapshot import MicrogridSnapshot
from .telemetry import DEFAULT_FRESHNESS_S, TelemetryStore

_LOGGER = logging.getLogger(__name__)

AC_METRICS: tuple[Metric, ...] = (
    Metric.AC_POWER_ACTIVE,
    Metric.AC_POWER_ACTIVE_PHASE_1,
    Metric.AC_POWER_ACTIVE_PHASE_2,
    Metric.AC_POWER_ACTIVE_PHASE_3,
    Metric.AC_POWER_REACTIVE,
    Metric.AC_CURRENT_PHASE_1,
    Metric.AC_CURRENT_PHASE_2,
    Metric.AC_CURRENT_PHASE_3,
    Metric.AC_VOLTAGE_PHASE_1_N,
    Metric.AC_VOLTAGE_PHASE_2_N,
    Metric.AC_VOLTAGE_PHASE_3_N,
    Metric.AC_FREQUENCY,
    Metric.AC_ENERGY_ACTIVE_CONSUMED,
    Metric.AC_ENERGY_ACTIVE_DELIVERED,
)
"""What meters, inverters, EV chargers and other AC components are asked for."""

BATTERY_METRICS: tuple[Metric, ...] = (
    Metric.BATTERY_SOC_PCT,
    Metric.BATTERY_CAPACITY,
    Metric.BATTERY_TEMPERATURE,
    Metric.DC_POWER,
    Metric.DC_VOLTAGE,
    Metric.DC_CURRENT,
)
"""What batteries are asked for (SoC bounds ride on the SoC, power bounds on DC)."""

RESUBSCRIBE_DELAY_S = 1.0
"""Pause before re-subscribing a stream the server ended (avoids a hot loop)."""


def metrics_for(component: Component) -> tuple[Metric, ...]:
    """Return the metrics to stream from `component`."""
    return BATTERY_METRICS if isinstance(component, Battery) else AC_METRICS


def streamed_components(topology: Topology) -> list[Component]:
    """Return the components that send telemetry (not the grid connection point)."""
    streamed: list[Component] = []
    for component_id in sorted(topology.components):
        component = topology.components[component_id]
        if isinstance(component, GridConnectionPoint):
            continue
        with contextlib.suppress(ValueError):  # unspecified: assume it streams
            if not component.provides_telemetry():
                continue
        streamed.append(component)
    return streamed


def _forget_finished_streams(client: MicrogridApiClient) -> None:
    """Evict finished stream broadcasters from the client's cache.

    The client caches one broadcaster per (component, metrics) and hands out
    receivers of it; once the server ends a stream normally, that broadcaster is
    done for good, so a new subscription must start a new one. The client has no
    public API for this, hence the guarded private access.
    """
    broadcasters = getattr(client, "_component_data_broadcasters", None)
    if not isinstance(broadcasters, dict):
        return
    for key, broadcaster in list(broadcasters.items()):
        if not getattr(broadcaster, "is_running", True):
            del broadcasters[key]


class MicrogridMonitor:
    """Keep the latest telemetry of a microgrid and publish snapshots of it."""

    def __init__(
        self,
        client: MicrogridApiClient,
        topology: Topology,
        *,
        freshness_s: float = DEFAULT_FRESHNESS_S,
        tick_s: float = 1.0,
        on_snapshot: Callable[[MicrogridSnapshot], None],
        on_reachability: Callable[[bool], None] | None = None,
        on_auth_error: Callable[[Exception], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Prepare the monitor; `start()` subscribes to the streams."""
        self._client = client
        self._topology = topology
        self._freshness_s = freshness_s
        self._tick_s = tick_s
        self._on_snapshot = on_snapshot
        self._on_reachability = on_reachability
        self._on_auth_error = on_auth_error
        self._clock = clock
        self._store = TelemetryStore(freshness_s=freshness_s, clock=clock)
        self._formulas = CompiledFormulas.from_topology(topology)
        self._tasks: list[asyncio.Task[None]] = []
        self._started_at: float | None = None
        self._reachable = True
        self._auth_error_reported = False
        self._last_probe: float | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self._snapshot = MicrogridSnapshot(taken_at=datetime.now(UTC), reachable=True)

    @property
    def store(self) -> TelemetryStore:
        """Return the telemetry store (the distributor reads bounds and states)."""
        return self._store

    @property
    def reachable(self) -> bool:
        """Return whether data arrived within the freshness window."""
        return self._reachable

    def snapshot(self) -> MicrogridSnapshot:
        """Return the latest published snapshot."""
        return self._snapshot

    async def start(self) -> None:
        """Subscribe to every component's telemetry and start ticking."""
        if self._tasks:
            return
        self._started_at = self._clock()
        for component in streamed_components(self._topology):
            self._tasks.append(
                asyncio.create_task(
                    self._stream(int(component.id), metrics_for(component)),
                    name=f"frequenz-microgrid-telemetry-{int(component.id)}",
                )
            )
        self._tasks.append(
            asyncio.create_task(self._tick_forever(), name="frequenz-microgrid-tick")
        )

    async def stop(self) -> None:
        """Stop every task of the monitor (the caller disconnects the client)."""
        tasks = [*self._tasks]
        if self._probe_task is not None:
            tasks.append(self._probe_task)
        self._tasks.clear()
        self._probe_task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- Streams -----------------------------------------------------------------

    async def _stream(self, component_id: int, metrics: Iterable[Metric]) -> None:
        """Feed one component's samples into the store, re-subscribing when it ends."""
        metric_list = list(metrics)
        while True:
            try:
                receiver = self._client.receive_component_data_samples_stream(
                    ComponentId(component_id), metric_list
                )
            except Exception:  # a broken client must not kill the monitor
                _LOGGER.exception("Cannot subscribe to component %s", component_id)
                await asyncio.sleep(RESUBSCRIBE_DELAY_S)
                continue
            try:
                async for samples in receiver:
                    self._store.ingest(samples)
            except asyncio.CancelledError:
                receiver.close()
                raise
            except Exception:
                _LOGGER.exception("Telemetry stream of %s failed", component_id)
            _LOGGER.debug("Telemetry stream of %s ended; re-subscribing", component_id)
            _forget_finished_streams(self._client)
            await asyncio.sleep(RESUBSCRIBE_DELAY_S)

    # --- Ticks -------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            self.tick()
            deadline += self._tick_s
            now = loop.time()
            if deadline < now:  # fell behind (e.g. a blocked loop): do not burst
                deadline = now + self._tick_s
            await asyncio.sleep(deadline - now)

    def tick(self) -> MicrogridSnapshot:
        """Compute and publish one snapshot now (called by the tick task)."""
        reachable = self._data_is_fresh()
        if reachable != self._reachable:
            self._reachable = reachable
            if reachable:
                self._auth_error_reported = False
            self._call(self._on_reachability, reachable)
        if not reachable:
            self._maybe_probe()
        try:
            self._snapshot = compute_snapshot(
                self._topology, self._formulas, self._store, reachable=reachable
            )
        except Exception:
            _LOGGER.exception("Cannot compute the microgrid snapshot")
            return self._snapshot
        self._call(self._on_snapshot, self._snapshot)
        return self._snapshot

    def _data_is_fresh(self) -> bool:
        age = self._store.last_arrival_age_s()
        if age is None:  # nothing yet: grant one freshness window from start
            started = self._started_at if self._started_at is not None else 0.0
            return self._clock() - started <= self._freshness_s
        return age <= self._freshness_s

    def _call[T](self, callback: Callable[[T], None] | None, argument: T) -> None:
        if callback is None:
            return
        try:
            callback(argument)
        except Exception:
            _LOGGER.exception("Microgrid monitor callback %s failed", callback)

    # --- Auth probe --------------------------------------------------------------

    def _maybe_probe(self) -> None:
        now = self._clock()
        if (self._probe_task is not None and not self._probe_task.done()) or (
            self._last_probe is not None and now - self._last_probe < self._freshness_s
        ):
            return
        self._last_probe = now
        self._probe_task = asyncio.create_task(
            self._probe(), name="frequenz-microgrid-probe"
        )

    async def _probe(self) -> None:
        """Ask the API why it is silent: only auth failures need the user."""
        try:
            await self._client.get_microgrid_info()
        except (OperationUnauthenticated, PermissionDenied) as err:
            if not self._auth_error_reported:
                self._auth_error_reported = True
                self._call(self._on_auth_error, err)
        except ApiClientError as err:
            _LOGGER.debug("Microgrid API unreachable: %s", err)
        except Exception:
            _LOGGER.exception("Probing the microgrid API failed")
