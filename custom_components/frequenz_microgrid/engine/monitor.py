"""Stream every component's telemetry and publish one snapshot per tick.

The async edge of the "seeing" side: one task per component stream writes the
latest samples into a `TelemetryStore` (cheap, on arrival); one tick task computes
the `MicrogridSnapshot` once per `tick_s` (formulas, battery pool, staleness) and
hands it to `on_snapshot`. Nothing here raises out of its tasks: a broken stream
is re-subscribed, a failing callback is logged, and the microgrid being away shows
up as `reachable = False` (and `None` values), never as an exception.

Streams: the monitor opens each component's stream itself, on the client's stub
(`TelemetryStream`), instead of asking the client for a broadcaster. It retries a
failed stream with the client's retry strategy and back-off, as the client's
`GrpcStreamBroadcaster` would, but decodes each message with `telemetry_from_proto`
(about a sixth of the client's conversion cost) and hands it to the store in the
same step: a broadcaster would pass every message through a channel to a second
task, an extra task switch and a few allocations per message — a thousand times
a second on a large site. These streams are the monitor's own, so `stop()` stops
them (the client's `disconnect()` only stops its own). A stream the server *ends*
normally finishes for good: the monitor then opens a new one after
`RESUBSCRIBE_DELAY_S`.

Only what something reads is requested (sensors, pools, the controller): every
extra metric costs decoding and storing for each component, every second. Detail
metrics only sensors show (`DETAIL_METRICS`) are streamed from the components the
caller names (`detail_metrics`: those whose sensor is enabled).

Ticks: computing a snapshot of a large microgrid takes a while, so the tick task
builds it in slices and yields to the event loop between the slices, the pools and
the publishing.

Auth errors do not surface through the client's streams (it retries them like any
other error), so while the microgrid looks unreachable the monitor probes it with a
cheap unary call; `OperationUnauthenticated` / `PermissionDenied` from that call
go to `on_auth_error`, once per outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
import contextlib
import dataclasses
from datetime import UTC, datetime
import logging
import time
from typing import cast

from frequenz.api.microgrid.v1alpha18 import microgrid_pb2
from frequenz.client.base.retry import LinearBackoff, Strategy
from frequenz.client.microgrid import (
    ApiClientError,
    MicrogridApiClient,
    OperationUnauthenticated,
    PermissionDenied,
)
from frequenz.client.microgrid.component import (
    Battery,
    Component,
    EvCharger,
    GridConnectionPoint,
    Inverter,
    SolarInverter,
)
from frequenz.client.microgrid.metrics import Metric
import grpc

from . import members
from .graph import Topology
from .pools import (
    CompiledFormulas,
    PairBoundsCache,
    PairedFormula,
    component_snapshots,
    snapshot_from_components,
)
from .snapshot import ComponentSnapshot, MicrogridSnapshot
from .telemetry import DEFAULT_FRESHNESS_S, TelemetryStore
from .telemetry_message import TelemetryMessage, telemetry_from_proto

_LOGGER = logging.getLogger(__name__)

AC_METRICS: tuple[Metric, ...] = (
    Metric.AC_POWER_ACTIVE,
    Metric.AC_CURRENT_PHASE_1,
    Metric.AC_CURRENT_PHASE_2,
    Metric.AC_CURRENT_PHASE_3,
    Metric.AC_ENERGY_ACTIVE_CONSUMED,
    Metric.AC_ENERGY_ACTIVE_DELIVERED,
)
"""What meters, EV chargers and other AC components are always asked for.

Power (pools, sensors, steering bounds), per-phase currents (grid and EV current,
the EV fuse) and the energy counters (Energy dashboard). Per-phase voltages are
detail metrics: only their (disabled by default) sensors read them.
"""

INVERTER_METRICS: tuple[Metric, ...] = (*AC_METRICS, Metric.AC_POWER_REACTIVE)
"""What inverters are always asked for: the AC metrics and reactive power, whose
bounds validate reactive steering (`reactive.py`)."""

PV_INVERTER_METRICS: tuple[Metric, ...] = tuple(
    metric for metric in INVERTER_METRICS if metric is not members.ENERGY_CONSUMED
)
"""A PV inverter's: only its delivered energy counts (PV production)."""

EV_CHARGER_METRICS: tuple[Metric, ...] = tuple(
    metric for metric in AC_METRICS if metric is not members.ENERGY_DELIVERED
)
"""An EV charger's: only its consumed energy counts (EV charging, sessions).

The energy counters read per component are those `pools.energy_counters` sums
and the sessions follow; a counter nothing reads is decoded and stored a
thousand times a second on a large site for nothing."""

BATTERY_METRICS: tuple[Metric, ...] = (
    Metric.BATTERY_SOC_PCT,
    Metric.BATTERY_CAPACITY,
    Metric.BATTERY_TEMPERATURE,
    Metric.DC_POWER,
)
"""What batteries are always asked for (SoC bounds ride on the SoC, power bounds
on DC)."""

DETAIL_METRICS: frozenset[Metric] = frozenset(
    {
        Metric.AC_POWER_ACTIVE_PHASE_1,
        Metric.AC_POWER_ACTIVE_PHASE_2,
        Metric.AC_POWER_ACTIVE_PHASE_3,
        Metric.AC_VOLTAGE_PHASE_1_N,
        Metric.AC_VOLTAGE_PHASE_2_N,
        Metric.AC_VOLTAGE_PHASE_3_N,
        Metric.AC_POWER_REACTIVE,
        Metric.AC_FREQUENCY,
        Metric.INVERTER_TEMPERATURE,
        Metric.DC_VOLTAGE,
        Metric.DC_CURRENT,
    }
)
"""Metrics only (disabled by default) detail sensors show, streamed on request.

Together they make decoding and storing a component's messages 20–40 % dearer,
so the caller names, per component, those it needs (`MicrogridMonitor`'s
`detail_metrics`). Reactive power is one of them for meters and EV chargers;
inverters always send it (`INVERTER_METRICS`).
"""

RESUBSCRIBE_DELAY_S = 1.0
"""Pause before re-subscribing a stream the server ended (avoids a hot loop)."""

SNAPSHOT_SLICE = 250
"""Components whose snapshots are taken per event-loop iteration of a tick."""

_TelemetryRequest = microgrid_pb2.ReceiveElectricalComponentTelemetryStreamRequest
_TelemetryResponse = microgrid_pb2.ReceiveElectricalComponentTelemetryStreamResponse


def metrics_for(
    component: Component, details: Iterable[Metric] = ()
) -> tuple[Metric, ...]:
    """Return the metrics to stream from `component`: its own plus `details`."""
    if isinstance(component, Battery):
        own = BATTERY_METRICS
    elif isinstance(component, SolarInverter):
        own = PV_INVERTER_METRICS
    elif isinstance(component, Inverter):
        own = INVERTER_METRICS
    elif isinstance(component, EvCharger):
        own = EV_CHARGER_METRICS
    else:
        own = AC_METRICS
    extra = set(details).difference(own)
    return (*own, *sorted(extra, key=lambda metric: metric.value))


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


def telemetry_request(
    component_id: int, metrics: Iterable[Metric]
) -> _TelemetryRequest:
    """The stream request for `metrics` of one component (each asked for once)."""
    return _TelemetryRequest(
        electrical_component_id=component_id,
        filter=_TelemetryRequest.ComponentTelemetryStreamFilter(
            metrics=sorted({metric.value for metric in metrics})
        ),
    )


def _retry_strategy_of(client: MicrogridApiClient) -> Strategy | None:
    """Return the client's stream retry strategy (`None`: the library's default).

    The client keeps it private; streams the monitor builds retry as the client's
    own would.
    """
    strategy = getattr(client, "_retry_strategy", None)
    return strategy if isinstance(strategy, Strategy) else None


class TelemetryStream:
    """One component's telemetry, decoded and handed on as each message arrives.

    The request and the retry behaviour of the client's
    `receive_component_data_samples_stream` (its `GrpcStreamBroadcaster`): a
    stream that fails is opened again after the retry strategy's interval, until
    the strategy gives up; a stream the server ends normally finishes. Unlike
    the broadcaster, the task that reads the call also decodes the message and
    calls `on_message`, with no channel and no second task in between.
    """

    def __init__(
        self,
        client: MicrogridApiClient,
        component_id: int,
        metrics: Iterable[Metric],
        on_message: Callable[[TelemetryMessage], None],
    ) -> None:
        """Start streaming (needs a running event loop); `stop()` ends it."""
        self._name = f"frequenz-microgrid-telemetry-{component_id}"
        self._stub = client.stub
        self._request = telemetry_request(component_id, metrics)
        strategy = _retry_strategy_of(client)
        self._retry = LinearBackoff() if strategy is None else strategy.copy()
        self._on_message = on_message
        self._task = asyncio.create_task(self._run(), name=self._name)

    @property
    def is_running(self) -> bool:
        """Whether the stream is still open or waiting to be opened again."""
        return not self._task.done()

    async def wait(self) -> None:
        """Wait until the stream finished (ended, gave up, stopped or failed).

        Raises:
            Exception: whatever `on_message` raised, which ends the stream.
        """
        await asyncio.wait([self._task])
        if not self._task.cancelled():
            self._task.result()

    async def stop(self) -> None:
        """Stop streaming (cancels the call)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def _deliver(
        self,
        response: _TelemetryResponse,
        on_message: Callable[[TelemetryMessage], None],
    ) -> None:
        """Decode one response and hand it on; a message that won't decode is logged."""
        try:
            message = telemetry_from_proto(response.telemetry)
        except Exception:  # one bad message must not end the stream
            _LOGGER.exception("%s: cannot decode %s", self._name, response)
            return
        on_message(message)

    async def _run(self) -> None:
        on_message = self._on_message
        while True:
            error: grpc.aio.AioRpcError | None = None
            _LOGGER.debug("%s: starting to stream", self._name)
            try:
                call = self._stub.ReceiveElectricalComponentTelemetryStream(
                    self._request
                )
                # `read()`, not `async for`: grpc's iterator keeps the last
                # message while it waits for the next one. Nothing of a message
                # is kept across the wait here: what every waiting stream
                # (thousands on a large site) holds outlives the young garbage
                # collections, and each of them traverses all of it.
                while (response := await call.read()) is not grpc.aio.EOF:
                    self._deliver(cast(_TelemetryResponse, response), on_message)
                    del response
            except grpc.aio.AioRpcError as err:
                error = err
            if error is None:
                _LOGGER.debug("%s: the server ended the stream", self._name)
                return
            interval = self._retry.next_interval()
            if interval is None:
                _LOGGER.error(
                    "%s: stream failed, retry limit exceeded (%s), giving up: %s",
                    self._name,
                    self._retry.get_progress(),
                    error,
                )
                return
            # Debug only: in an outage every stream fails (thousands, every few
            # seconds); the coordinator says once that the microgrid is away,
            # and a component whose stream alone fails shows in its health.
            _LOGGER.debug(
                "%s: stream failed, retrying %s in %0.3f seconds: %s",
                self._name,
                self._retry.get_progress(),
                interval,
                error,
            )
            await asyncio.sleep(interval)


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
        detail_metrics: Mapping[int, frozenset[Metric]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Prepare the monitor; `start()` subscribes to the streams.

        `detail_metrics`: per component id, the metrics to stream from it in
        addition to those the engine reads (for instance `DETAIL_METRICS` that
        an enabled sensor shows); fixed for the monitor's lifetime.
        """
        self._client = client
        self._detail_metrics: Mapping[int, frozenset[Metric]] = dict(
            detail_metrics or {}
        )
        self._topology = topology
        self._freshness_s = freshness_s
        self._tick_s = tick_s
        self._on_snapshot = on_snapshot
        self._on_reachability = on_reachability
        self._on_auth_error = on_auth_error
        self._clock = clock
        self._store = TelemetryStore(freshness_s=freshness_s, clock=clock)
        self._formulas = CompiledFormulas.from_topology(topology)
        self._pair_bounds = PairBoundsCache()
        self._consumer = PairedFormula(
            self._formulas.consumer, self._store, members.AC_POWER
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._stream_tasks: dict[int, asyncio.Task[None]] = {}
        """Per streamed component, the task feeding its telemetry into the store."""
        self._streams: dict[int, TelemetryStream] = {}
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
    def detail_metrics(self) -> Mapping[int, frozenset[Metric]]:
        """Return what is streamed beyond the engine's needs, per component id."""
        return self._detail_metrics

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
            self._start_stream(component)
        self._tasks.append(
            asyncio.create_task(self._tick_forever(), name="frequenz-microgrid-tick")
        )

    async def follow_topology(
        self,
        topology: Topology,
        removed: Iterable[int],
        formulas: CompiledFormulas | None = None,
    ) -> None:
        """Stream, store and compute the pools of a changed topology from now on.

        Components that left stop streaming and are forgotten (their values no
        longer count anywhere); new ones start streaming; the pool formulas are
        the new graph's (`formulas`, when the caller compiled them already:
        ~20 ms for 1,000 components, better done outside the event loop). The
        next tick computes its snapshot from the new graph.
        """
        gone = frozenset(removed)
        self._topology = topology
        self._formulas = formulas or CompiledFormulas.from_topology(topology)
        self._consumer = PairedFormula(
            self._formulas.consumer, self._store, members.AC_POWER
        )
        streamed = {int(c.id): c for c in streamed_components(topology)}
        stale = [cid for cid in self._stream_tasks if cid not in streamed]
        await self._stop_streams(stale)
        self._store.forget(gone | frozenset(stale))
        if self._tasks:  # started: stream the newcomers at once
            for component_id, component in streamed.items():
                if component_id not in self._stream_tasks:
                    self._start_stream(component)

    def _start_stream(self, component: Component) -> None:
        component_id = int(component.id)
        self._stream_tasks[component_id] = asyncio.create_task(
            self._stream(
                component_id,
                metrics_for(component, self._detail_metrics.get(component_id, ())),
            ),
            name=f"frequenz-microgrid-telemetry-{component_id}",
        )

    async def _stop_streams(self, component_ids: list[int]) -> None:
        """End the streams of these components and wait until they are gone."""
        tasks = [
            task
            for cid in component_ids
            if (task := self._stream_tasks.pop(cid, None)) is not None
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        streams = [
            stream
            for cid in component_ids
            if (stream := self._streams.pop(cid, None)) is not None
        ]
        await asyncio.gather(
            *(stream.stop() for stream in streams), return_exceptions=True
        )

    async def stop(self) -> None:
        """Stop every task and stream of the monitor (the caller disconnects)."""
        tasks = [*self._tasks, *self._stream_tasks.values()]
        if self._probe_task is not None:
            tasks.append(self._probe_task)
        self._tasks.clear()
        self._stream_tasks.clear()
        self._probe_task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        streams = [*self._streams.values()]
        self._streams.clear()
        await asyncio.gather(
            *(stream.stop() for stream in streams), return_exceptions=True
        )

    # --- Streams -----------------------------------------------------------------

    async def _stream(self, component_id: int, metrics: Iterable[Metric]) -> None:
        """Feed one component's messages into the store, re-subscribing when it ends."""
        metric_list = list(metrics)
        while True:
            try:
                stream = TelemetryStream(
                    self._client, component_id, metric_list, self._store.ingest_message
                )
            except Exception:  # a broken client must not kill the monitor
                _LOGGER.exception("Cannot subscribe to component %s", component_id)
                await asyncio.sleep(RESUBSCRIBE_DELAY_S)
                continue
            self._streams[component_id] = stream
            try:
                await stream.wait()
            except asyncio.CancelledError:
                await stream.stop()
                raise  # `stop()` stops the stream
            except Exception:
                _LOGGER.exception("Telemetry stream of %s failed", component_id)
            _LOGGER.debug("Telemetry stream of %s ended; re-subscribing", component_id)
            if self._streams.get(component_id) is stream:
                del self._streams[component_id]
            await stream.stop()
            await asyncio.sleep(RESUBSCRIBE_DELAY_S)

    # --- Ticks -------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            await self._tick_in_slices()
            deadline += self._tick_s
            now = loop.time()
            if deadline < now:  # fell behind (e.g. a blocked loop): do not burst
                deadline = now + self._tick_s
            await asyncio.sleep(deadline - now)

    async def _tick_in_slices(self) -> None:
        """Compute and publish one snapshot, letting others run in between.

        On a large microgrid a snapshot takes ~10 ms: its components are built
        `SNAPSHOT_SLICE` at a time, and the pools and the publishing (which starts
        every entity's update) each get an event-loop iteration of their own.
        """
        reachable = self._update_reachability()
        ids = list(self._store.component_ids)
        components: dict[int, ComponentSnapshot] = {}
        for start in range(0, len(ids), SNAPSHOT_SLICE):
            if start:
                await asyncio.sleep(0)
            components.update(self._components(ids[start : start + SNAPSHOT_SLICE]))
        await asyncio.sleep(0)
        if self._compute(components, reachable=reachable):
            await asyncio.sleep(0)
            self._call(self._on_snapshot, self._snapshot)

    def _update_reachability(self) -> bool:
        """Tell whether data is fresh, reporting a change; probe while it is not."""
        reachable = self._data_is_fresh()
        if reachable != self._reachable:
            self._reachable = reachable
            if reachable:
                self._auth_error_reported = False
            self._call(self._on_reachability, reachable)
        if not reachable:
            self._maybe_probe()
        return reachable

    def _components(self, component_ids: Iterable[int]) -> dict[int, ComponentSnapshot]:
        try:
            return component_snapshots(self._store, component_ids)
        except Exception:
            _LOGGER.exception("Cannot take the components' snapshots")
            return {}

    def _compute(
        self, components: dict[int, ComponentSnapshot], *, reachable: bool
    ) -> bool:
        """Compute the next snapshot; return whether there is one to publish."""
        try:
            snapshot = snapshot_from_components(
                self._topology,
                self._formulas,
                components,
                reachable=reachable,
                pair_cache=self._pair_bounds,
            )
            consumer = self._consumer.evaluate(self._store)
            if consumer is not None:  # readings of one instant: no made-up spikes
                snapshot = dataclasses.replace(snapshot, consumer_power_w=consumer)
            self._snapshot = snapshot
        except Exception:
            _LOGGER.exception("Cannot compute the microgrid snapshot")
            return False
        return True

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
