"""`MicrogridSimulator`: the model, its clock, the gRPC server and fault switches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
import contextlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
import errno
import logging
import socket
from typing import Any

from frequenz.client.base.conversion import to_timestamp
from google.protobuf.timestamp_pb2 import Timestamp
import grpc

from .assets_service import AssetsService
from .control import PowerControl, ReceivedSetpoint
from .faults import Fault, FaultBook
from .physics.clock import SimClock
from .physics.ev_charger import EvSpec
from .physics.model import MicrogridModel
from .physics.overload import OverloadRecord
from .scenario import ComponentSpec, Scenario
from .servicer import MicrogridService
from .streams import STEPS_PER_ROUND, Subscription, TelemetryHub
from .telemetry import MetricId
from .timing import DeliverySchedule, TelemetryTiming

_logger = logging.getLogger(__name__)

ROUND_SPREAD = 0.5
"""The share of the sample period a round's parts are spread over (`_tick_forever`)."""


_GRPC_RPC_TASK = "rpc_task"
"""The name grpc.aio's server gives the task of each call it serves."""
_GRPC_HANDLER_TASK_PREFIX = "HandleExceptions["
"""The name of the task grpc.aio wraps a unary call's handler in."""
_RPC_UNWIND_S = 1.0
"""How long `stop` waits for the cancelled calls' tasks to unwind."""


class MicrogridSimulator:
    """A simulated microgrid served over the real Microgrid API (v1alpha18).

    The same server and port also answer the Assets API (`AssetsService`): the
    microgrid's and its components' inventory records (`url` serves both).

    The physics advance on one `SimClock` (`speed` simulated seconds per real
    second); every `sample_period_s` real seconds the model is advanced and each
    open telemetry stream gets one message.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        speed: float = 1.0,
        sample_period_s: float = 1.0,
        timing: TelemetryTiming | None = None,
    ) -> None:
        """Prepare the simulation; nothing runs until `start`.

        `timing` (default: the scenario's) spreads, orders, jitters and delays
        each round's messages (`set_telemetry_timing`); without one a round goes
        out in parts over half the sample period, in stream order.
        """
        if sample_period_s <= 0:
            raise ValueError("sample_period_s must be positive")
        self.scenario = scenario
        self.clock = SimClock(speed)
        self.sample_period_s = sample_period_s
        self.model = MicrogridModel(scenario)
        self.faults = FaultBook()
        self.control = PowerControl(self.model, self.faults)
        self.hub = TelemetryHub()
        timing = timing or scenario.telemetry_timing
        self._schedule = None if timing is None else DeliverySchedule(timing)
        self._deliveries: set[asyncio.TimerHandle] = set()
        self._last_delivery: dict[int, float] = {}
        self.clock_offset_s = 0.0
        """Added to every timestamp the simulator sends: a microgrid whose clock
        jumped (positive: ahead of the client's, negative: behind)."""
        self._sample_time = self._now_timestamp()
        self._service = MicrogridService(self)
        self._assets_service = AssetsService(self)
        self.assets_outage = False
        """While set, every Assets API call fails (UNAVAILABLE); telemetry goes on."""
        self._server: grpc.aio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self.rejecting_credentials = False
        """Whether every call is refused with UNAUTHENTICATED (`reject_credentials`)."""

    # --- lifecycle ---------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve on `host:port` (0 picks a free port); return the bound port."""
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        server = grpc.aio.server(
            interceptors=(_CredentialCheck(self),),
            # gRPC lets a second server bind a port that is taken (SO_REUSEPORT);
            # its clients would then reach either simulator. Off: a taken port
            # fails. A restart on our own port still binds: stop closed it.
            options=(("grpc.so_reuseport", 0),),
        )
        server.add_generic_rpc_handlers((self._service.generic_handler(),))
        self._assets_service.add_to(server)
        try:
            bound = server.add_insecure_port(f"{host}:{port}")
        except RuntimeError:  # gRPC's "Failed to bind to address"
            bound = 0
        if bound == 0:
            raise _bind_error(host, port)
        await server.start()
        self._server = server
        self._host, self._port = host, bound
        self.tick()
        self._ticker = asyncio.create_task(self._tick_forever(), name="sim-ticker")
        _logger.info("Simulator %s serving on %s", self.scenario.name, self.url)
        return bound

    async def stop(self) -> None:
        """Stop serving: every stream and pending call ends; the model is kept."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        for handle in self._deliveries:
            handle.cancel()
        self._deliveries.clear()
        server, self._server = self._server, None
        if server is not None:
            rpcs = {t for t in asyncio.all_tasks() if _serves_a_call(t)}
            await server.stop(None)
            # gRPC cancels the calls in flight but returns before their tasks
            # have unwound: give them a moment, so nothing of ours outlives stop.
            rpcs.update(t for t in asyncio.all_tasks() if _serves_a_call(t))
            pending = [t for t in rpcs if not t.done()]
            if pending:
                await asyncio.wait(pending, timeout=_RPC_UNWIND_S)

    async def restart(self) -> None:
        """Stop and start again on the same host and port (clients reconnect)."""
        await self.stop()
        await self.start(self._host, self._port)

    @property
    def running(self) -> bool:
        """Whether the gRPC server is serving."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port (0 before the first start)."""
        return self._port

    @property
    def url(self) -> str:
        """The URL to give the Microgrid API client."""
        return f"grpc://{self._host}:{self._port}"

    @property
    def assets_url(self) -> str:
        """The URL to give the Assets API client: the same port, without TLS.

        The Assets client assumes TLS unless the URL says otherwise (the
        Microgrid client assumes none).
        """
        return f"{self.url}?ssl=false"

    # --- observations --------------------------------------------------------------

    @property
    def setpoints(self) -> Sequence[ReceivedSetpoint]:
        """The active-power setpoints received, oldest first (the newest 10,000).

        Each is (sim_time, id, power_w, lifetime_s).
        """
        return self.control.setpoints

    @property
    def unsafe_setpoint_count(self) -> int:
        """Setpoints outside a component's inclusion bounds or in its exclusion zone."""
        return self.control.unsafe_setpoint_count

    @property
    def overloads(self) -> dict[int, OverloadRecord]:
        """Per rated meter (and the grid connection point): peak and overload."""
        self.model.advance_to(self.clock.now())
        return self.model.overloads

    @property
    def overload_ampere_seconds(self) -> float:
        """Current above a fuse or circuit rating, over phases, meters and time (A·s).

        The physical counterpart of `unsafe_setpoint_count`: setpoints each within
        their bounds can still add up to more than a shared fuse carries.
        """
        return sum(record.ampere_seconds for record in self.overloads.values())

    @property
    def telemetry_timing(self) -> TelemetryTiming | None:
        """How rounds are delivered (`None`: the default parts)."""
        return None if self._schedule is None else self._schedule.timing

    def set_telemetry_timing(self, timing: TelemetryTiming | None) -> None:
        """Spread, reorder, jitter or delay telemetry from the next round on."""
        self._schedule = None if timing is None else DeliverySchedule(timing)

    # --- faults and scenario events ------------------------------------------------

    def inject_fault(self, component_id: int, fault: Fault) -> None:
        """Make a component misbehave (see `Fault`); takes effect at once."""
        if not self.scenario.has_component(component_id):
            raise KeyError(component_id)
        self.faults.inject(component_id, fault)
        self._sync_error_states()

    def clear_fault(self, component_id: int, fault: Fault | None = None) -> None:
        """Remove one fault, or all of a component's faults when `fault` is None."""
        self.faults.clear(component_id, fault)
        self._sync_error_states()

    async def reject_credentials(self, rejecting: bool = True) -> None:
        """Refuse (or accept again) every call as if the API key had been revoked.

        Open streams end at once, so the client's reconnects meet the refusal.
        """
        self.rejecting_credentials = rejecting
        if rejecting:
            await self.end_all_streams()

    async def end_all_streams(self) -> None:
        """End every open telemetry stream abruptly (the client sees UNAVAILABLE)."""
        self.hub.end_all()
        await asyncio.sleep(0)

    # --- topology -----------------------------------------------------------------

    def add_component(self, spec: ComponentSpec) -> None:
        """Connect a new component live, behind `spec.parent`.

        From now on `ListElectricalComponents`/`…Connections` answer with it and
        it can be streamed and steered. Add a battery inverter before its
        battery.

        Raises:
            ValueError: the id is taken, or the parent is unknown.
        """
        if self.scenario.has_component(spec.id):
            raise ValueError(f"component {spec.id} exists already")
        self._follow(
            replace(self.scenario, components=(*self.scenario.components, spec))
        )

    def remove_component(self, component_id: int) -> frozenset[int]:
        """Disconnect a component live, with everything behind it; return their ids.

        They disappear from the component and connection lists, their telemetry
        streams end (a new one is refused with NOT_FOUND) and set-power requests
        for them are refused.

        Raises:
            KeyError: no such component.
        """
        scenario = self.scenario
        scenario.component(component_id)  # KeyError if unknown
        gone = {component_id}
        stack = [component_id]
        while stack:
            children = [c.id for c in scenario.children(stack.pop())]
            gone.update(children)
            stack.extend(children)
        self._follow(
            replace(
                scenario,
                components=tuple(c for c in scenario.components if c.id not in gone),
                ev_arrivals=tuple(
                    a for a in scenario.ev_arrivals if a.charger_id not in gone
                ),
            )
        )
        self.hub.end_component(gone)
        for component_id_gone in gone:
            self.faults.clear(component_id_gone)
        return frozenset(gone)

    def _follow(self, scenario: Scenario) -> None:
        """Serve `scenario` from now on; the model keeps what stays the same."""
        self.model.advance_to(self.clock.now())
        self.model.follow_scenario(scenario)
        self.scenario = scenario

    def plug_ev(
        self,
        charger_id: int,
        ev: EvSpec | None = None,
        *,
        stay_s: float | None = None,
    ) -> None:
        """Plug an EV into a charger now; it leaves after `stay_s` simulated seconds."""
        self.model.advance_to(self.clock.now())
        departs = None if stay_s is None else self.model.now_s + stay_s
        self.model.plug_ev(charger_id, ev, departs)

    def unplug_ev(self, charger_id: int) -> None:
        """Unplug the EV at a charger now."""
        self.model.advance_to(self.clock.now())
        self.model.unplug_ev(charger_id)

    # --- streaming ---------------------------------------------------------------

    def subscribe(
        self, component_id: int, metrics: frozenset[MetricId]
    ) -> Subscription:
        """Open a telemetry stream and hand it the current values at once."""
        subscription = self.hub.subscribe(component_id, metrics)
        self.hub.greet(subscription, self.model, self.faults, self._sample_time)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Close a telemetry stream."""
        self.hub.unsubscribe(subscription)

    def tick(self) -> None:
        """Advance the physics to the clock's time and publish one sample round."""
        self.hub.publish(self.model, self.faults, self._sample())

    def _sample(self) -> Timestamp:
        """Advance the model to now; return the sample time of what it shows.

        Taken just before advancing, with no await in between: a setpoint that
        arrived before that instant is in the values. A new stream's greeting
        carries the same time (the model has not moved since).
        """
        self._sample_time = self._now_timestamp()
        self.model.advance_to(self.clock.now())
        self.control.remember_bounds()
        return self._sample_time

    async def _tick_forever(self) -> None:
        """Advance and publish every sample period, spreading each round.

        A round's parts (`TelemetryHub.publish_in_steps`) start at even intervals,
        over at most `ROUND_SPREAD` of the period, as components that report at
        their own pace would send them: a set-power request that arrives
        meanwhile is answered within a part, while a burst of hundreds of streams
        would keep both ends of the connection busy for tens of milliseconds. All
        messages of a round carry the same sample time: the instant the model was
        advanced to (a setpoint received before it is in the round's values). With
        a `TelemetryTiming` each message leaves on its own schedule instead.
        """
        loop = asyncio.get_running_loop()
        interval = round_part_interval_s(self.sample_period_s)
        next_tick = loop.time()
        while True:
            next_tick += self.sample_period_s
            await asyncio.sleep(max(next_tick - loop.time(), 0.0))
            try:
                sample_time = self._sample()
                if self._schedule is not None:
                    self._schedule_round(self._schedule, sample_time)
                    continue
                await asyncio.sleep(0)  # requests that came meanwhile get a turn first
                due = loop.time()
                for part_complete in self.hub.publish_in_steps(
                    self.model, self.faults, sample_time
                ):
                    if part_complete:
                        due += interval
                        await asyncio.sleep(max(due - loop.time(), 0.0))
                    else:
                        await asyncio.sleep(0)  # requests that came go first
            except Exception:
                _logger.exception("Simulator tick failed")

    def _schedule_round(
        self, schedule: DeliverySchedule, sample_time: Timestamp
    ) -> None:
        """Build a round now and deliver each message at its own time.

        A component's messages never overtake each other (a lagging or jittered
        one is delivered after its previous one).
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._deliveries = {h for h in self._deliveries if h.when() > now}
        messages = self.hub.round_messages(self.model, self.faults, sample_time)
        delays = schedule.delays([component_id for component_id, _, _ in messages])
        for (component_id, subscriptions, payload), delay in zip(
            messages, delays, strict=True
        ):
            due = max(now + delay, self._last_delivery.get(component_id, now))
            self._last_delivery[component_id] = due
            self._deliveries.add(
                loop.call_at(due, self.hub.deliver, subscriptions, payload)
            )

    def _sync_error_states(self) -> None:
        for component_id in self.model.components:
            self.model.set_error(
                component_id, self.faults.has(component_id, Fault.ERROR_STATE)
            )

    def _now_timestamp(self) -> Timestamp:
        return to_timestamp(datetime.now(UTC) + timedelta(seconds=self.clock_offset_s))


class _CredentialCheck(grpc.aio.ServerInterceptor):
    """Refuses every call with UNAUTHENTICATED while the simulator says so."""

    def __init__(self, simulator: MicrogridSimulator) -> None:
        self._simulator = simulator

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails],
            Awaitable[grpc.RpcMethodHandler[Any, Any] | None],
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or not self._simulator.rejecting_credentials:
            return handler

        async def refuse(
            _request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid API key")

        async def refuse_stream(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            await refuse(request, context)
            yield  # pragma: no cover - a generator, for the streaming handler

        codec = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(refuse_stream, **codec)
        return grpc.unary_unary_rpc_method_handler(refuse, **codec)


def round_part_interval_s(sample_period_s: float) -> float:
    """Time between the starts of two parts of a publishing round."""
    return ROUND_SPREAD * sample_period_s / STEPS_PER_ROUND


@contextlib.asynccontextmanager
async def running_simulator(
    scenario: Scenario,
    *,
    speed: float = 1.0,
    sample_period_s: float = 1.0,
    host: str = "127.0.0.1",
    port: int = 0,
    timing: TelemetryTiming | None = None,
) -> AsyncIterator[MicrogridSimulator]:
    """Run a simulator in this event loop for the duration of a `with` block."""
    simulator = MicrogridSimulator(
        scenario, speed=speed, sample_period_s=sample_period_s, timing=timing
    )
    await simulator.start(host=host, port=port)
    try:
        yield simulator
    finally:
        await simulator.stop()


def _bind_error(host: str, port: int) -> OSError:
    """Why gRPC could not listen on `host:port`, as the operating system says it.

    gRPC only reports that binding failed; a plain bind of the same address
    (without port sharing, as the simulator's server) tells why.
    """
    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as err:
        return OSError(err.errno, f"cannot listen on {where}: {err.strerror}")
    for family, kind, proto, _, address in infos:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as err:
            reason = err.strerror or str(err)
            if err.errno == errno.EADDRINUSE:
                reason += f" (another simulator or program is using port {port})"
            return OSError(err.errno, f"cannot listen on {where}: {reason}")
    return OSError(f"cannot listen on {where}")


def _serves_a_call(task: asyncio.Task[object]) -> bool:
    """Whether grpc.aio runs one of the server's calls in `task`."""
    name = task.get_name()
    return name == _GRPC_RPC_TASK or name.startswith(_GRPC_HANDLER_TASK_PREFIX)
