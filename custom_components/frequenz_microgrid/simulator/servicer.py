"""The Microgrid API v1alpha18 service, answering from the simulated microgrid.

Handlers are registered by hand (not with the generated `add_..._to_server`) so
that the telemetry stream can send bytes serialised once per tick by the hub.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from frequenz.api.common.v1alpha8.grid import delivery_area_pb2
from frequenz.api.common.v1alpha8.metrics import metrics_pb2
from frequenz.api.common.v1alpha8.microgrid import microgrid_pb2 as common_microgrid_pb2
from frequenz.api.common.v1alpha8.types import location_pb2
from frequenz.api.microgrid.v1alpha18 import microgrid_pb2 as pb
from frequenz.client.base.conversion import to_timestamp
from google.protobuf.empty_pb2 import Empty
import grpc

from .component_protos import category_of, component_to_proto, connections_to_proto
from .control import (
    PowerControl,
    RequestRefusedError,
    SetpointNotAppliedError,
    SetpointTimeoutError,
)
from .physics.clock import SimClock
from .physics.model import Operation
from .scenario import Scenario
from .streams import END_OF_STREAM, Subscription
from .telemetry import MetricId

SERVICE_NAME = "frequenz.api.microgrid.v1alpha18.Microgrid"

type Context = grpc.aio.ServicerContext[Any, Any]


OPERATIONS: dict[str, tuple[Any, Operation]] = {
    "StartElectricalComponent": (pb.StartElectricalComponentRequest, Operation.RUNNING),
    "PutElectricalComponentInStandby": (
        pb.PutElectricalComponentInStandbyRequest,
        Operation.STANDBY,
    ),
    "StopElectricalComponent": (pb.StopElectricalComponentRequest, Operation.OFF),
}
"""The RPCs that switch a component, by name: their request type and the state they
switch to (STANDBY holds 0 W until a setpoint; OFF refuses setpoints until started)."""


def requested_lifetime(request: Any) -> float | None:
    """The request's lifetime in seconds, `None` when it leaves it to the default."""
    if request.HasField("request_lifetime"):
        return float(request.request_lifetime)
    return None


class ServedMicrogrid(Protocol):
    """What the handlers use of the simulator (`MicrogridSimulator` is one)."""

    scenario: Scenario
    clock: SimClock
    control: PowerControl

    def subscribe(
        self, component_id: int, metrics: frozenset[MetricId]
    ) -> Subscription:
        """Open a telemetry stream."""
        ...

    def unsubscribe(self, subscription: Subscription) -> None:
        """Close a telemetry stream."""
        ...


class MicrogridService:
    """Request handlers; all state lives in the simulator they serve."""

    def __init__(self, simulator: ServedMicrogrid) -> None:
        """Serve `simulator`'s scenario, model and faults."""
        self._sim = simulator

    def generic_handler(self) -> grpc.GenericRpcHandler:
        """All implemented methods, for `server.add_generic_rpc_handlers`."""
        unary = grpc.unary_unary_rpc_method_handler
        stream = grpc.unary_stream_rpc_method_handler

        def plain(
            handler: Callable[..., Any], request: Any
        ) -> grpc.RpcMethodHandler[Any, Any]:
            return unary(
                handler,
                request_deserializer=request.FromString,
                response_serializer=_serialize,
            )

        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "GetMicrogrid": plain(self.get_microgrid, Empty),
            "ListElectricalComponents": plain(
                self.list_components, pb.ListElectricalComponentsRequest
            ),
            "ListElectricalComponentConnections": plain(
                self.list_connections, pb.ListElectricalComponentConnectionsRequest
            ),
            "ListSensors": plain(self.list_sensors, pb.ListSensorRequest),
            "ReceiveElectricalComponentTelemetryStream": stream(
                self.receive_telemetry,
                request_deserializer=(
                    pb.ReceiveElectricalComponentTelemetryStreamRequest.FromString
                ),
                response_serializer=None,  # the hub sends serialised bytes
            ),
            "SetElectricalComponentPower": stream(
                self.set_power,
                request_deserializer=pb.SetElectricalComponentPowerRequest.FromString,
                response_serializer=_serialize,
            ),
            "AugmentElectricalComponentBounds": plain(
                self.augment_bounds, pb.AugmentElectricalComponentBoundsRequest
            ),
            "AckElectricalComponentError": plain(
                self.ack_error, pb.AckElectricalComponentErrorRequest
            ),
        }
        for name, (request_type, operation) in OPERATIONS.items():
            handlers[name] = plain(self._operation_handler(operation), request_type)
        return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)

    # --- metadata ----------------------------------------------------------------

    async def get_microgrid(
        self, request: Empty, context: Context
    ) -> pb.GetMicrogridResponse:
        """The simulated microgrid's identity, location and delivery area."""
        scenario = self._sim.scenario
        return pb.GetMicrogridResponse(
            microgrid=common_microgrid_pb2.Microgrid(
                id=scenario.microgrid_id,
                enterprise_id=1,
                name=f"Simulated {scenario.name}",
                delivery_area=delivery_area_pb2.DeliveryArea(
                    code="10Y1001A1001A82H",
                    code_type=delivery_area_pb2.ENERGY_MARKET_CODE_TYPE_EUROPE_EIC,
                ),
                location=location_pb2.Location(
                    latitude=52.52, longitude=13.405, country_code="DE"
                ),
                status=common_microgrid_pb2.MICROGRID_STATUS_ACTIVE,
                create_timestamp=to_timestamp(datetime(2024, 1, 1, tzinfo=UTC)),
            )
        )

    async def list_components(
        self, request: pb.ListElectricalComponentsRequest, context: Context
    ) -> pb.ListElectricalComponentsResponse:
        """Components, filtered by ids and categories when given."""
        scenario = self._sim.scenario
        ids = set(request.electrical_component_ids)
        categories = set(request.electrical_component_categories)
        return pb.ListElectricalComponentsResponse(
            electrical_components=[
                component_to_proto(spec, scenario.microgrid_id)
                for spec in scenario.components
                if (not ids or spec.id in ids)
                and (not categories or category_of(spec) in categories)
            ]
        )

    async def list_connections(
        self, request: pb.ListElectricalComponentConnectionsRequest, context: Context
    ) -> pb.ListElectricalComponentConnectionsResponse:
        """Connections, filtered by source and destination ids when given."""
        sources = set(request.source_electrical_component_ids)
        destinations = set(request.destination_electrical_component_ids)
        return pb.ListElectricalComponentConnectionsResponse(
            electrical_component_connections=[
                connection
                for connection in connections_to_proto(self._sim.scenario)
                if (not sources or connection.source_electrical_component_id in sources)
                and (
                    not destinations
                    or connection.destination_electrical_component_id in destinations
                )
            ]
        )

    async def list_sensors(
        self, request: pb.ListSensorRequest, context: Context
    ) -> pb.ListSensorsResponse:
        """The simulated microgrids have no sensors."""
        return pb.ListSensorsResponse()

    # --- telemetry ---------------------------------------------------------------

    async def receive_telemetry(
        self,
        request: pb.ReceiveElectricalComponentTelemetryStreamRequest,
        context: Context,
    ) -> AsyncIterator[bytes]:
        """Stream a component's telemetry until the client cancels.

        The stream never finishes normally (a finished stream silently ends the
        client's receiver); `end_all_streams` makes it fail with UNAVAILABLE.
        """
        component_id = request.electrical_component_id
        if not self._sim.scenario.has_component(component_id):
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"no component with id {component_id}"
            )
        metrics = frozenset(request.filter.metrics)
        subscription = self._sim.subscribe(component_id, metrics)
        try:
            while True:
                payload = await subscription.queue.get()
                if payload == END_OF_STREAM:
                    await context.abort(
                        grpc.StatusCode.UNAVAILABLE, "telemetry stream ended (fault)"
                    )
                yield payload
        finally:
            self._sim.unsubscribe(subscription)

    # --- control -----------------------------------------------------------------

    async def set_power(
        self, request: pb.SetElectricalComponentPowerRequest, context: Context
    ) -> AsyncIterator[pb.SetElectricalComponentPowerResponse]:
        """Apply a setpoint: ACCEPTED then SUCCESS, or a gRPC error.

        The client only reads the first reply and ignores its status, so refusals
        are gRPC errors; the `REPLY_REJECTED` and `REPLY_FAILED` faults answer
        with status replies instead, as a real API service may.
        """
        lifetime = requested_lifetime(request)
        control = self._sim.control
        now = self._sim.clock.now()
        try:
            match request.power_type:
                case pb.POWER_TYPE_ACTIVE:
                    applied = control.set_active_power(
                        request.electrical_component_id, request.power, lifetime, now
                    )
                case pb.POWER_TYPE_REACTIVE:
                    applied = control.set_reactive_power(
                        request.electrical_component_id, request.power, lifetime, now
                    )
                case _:
                    raise RequestRefusedError(
                        grpc.StatusCode.INVALID_ARGUMENT, "power_type is unspecified"
                    )
        except RequestRefusedError as refusal:
            await context.abort(refusal.code, refusal.message)
        except SetpointTimeoutError:
            await asyncio.Event().wait()  # until the client gives up or we stop
        except SetpointNotAppliedError as not_applied:
            for reply in self._not_applied_replies(not_applied):
                yield reply
            return
        valid_until = to_timestamp(self._sim.clock.wall_time_after(applied))
        yield pb.SetElectricalComponentPowerResponse(
            status=pb.SET_ELECTRICAL_COMPONENT_POWER_REQUEST_STATUS_ACCEPTED,
            valid_until_time=valid_until,
        )
        yield pb.SetElectricalComponentPowerResponse(
            status=pb.SET_ELECTRICAL_COMPONENT_POWER_REQUEST_STATUS_SUCCESS,
            valid_until_time=valid_until,
        )

    def _not_applied_replies(
        self, not_applied: SetpointNotAppliedError
    ) -> list[pb.SetElectricalComponentPowerResponse]:
        if not not_applied.accepted_first:
            return [
                pb.SetElectricalComponentPowerResponse(
                    status=pb.SET_ELECTRICAL_COMPONENT_POWER_REQUEST_STATUS_REJECTED
                )
            ]
        valid_until = to_timestamp(
            self._sim.clock.wall_time_after(not_applied.lifetime_s)
        )
        return [
            pb.SetElectricalComponentPowerResponse(
                status=status, valid_until_time=valid_until
            )
            for status in (
                pb.SET_ELECTRICAL_COMPONENT_POWER_REQUEST_STATUS_ACCEPTED,
                pb.SET_ELECTRICAL_COMPONENT_POWER_REQUEST_STATUS_FAILED,
            )
        ]

    async def augment_bounds(
        self, request: pb.AugmentElectricalComponentBoundsRequest, context: Context
    ) -> pb.AugmentElectricalComponentBoundsResponse:
        """Narrow a component's power bounds until the lifetime lapses."""
        lifetime = requested_lifetime(request)
        ranges = [
            (
                b.lower if b.HasField("lower") else None,
                b.upper if b.HasField("upper") else None,
            )
            for b in request.bounds
        ]
        target = request.target_metric
        if target not in (
            metrics_pb2.METRIC_AC_POWER_ACTIVE,
            metrics_pb2.METRIC_DC_POWER,
        ):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "only AC_POWER_ACTIVE and DC_POWER bounds can be augmented",
            )
        try:
            applied = self._sim.control.augment_bounds(
                request.electrical_component_id,
                target == metrics_pb2.METRIC_DC_POWER,
                ranges,
                lifetime,
                self._sim.clock.now(),
            )
        except RequestRefusedError as refusal:
            await context.abort(refusal.code, refusal.message)
        return pb.AugmentElectricalComponentBoundsResponse(
            valid_until_time=to_timestamp(self._sim.clock.wall_time_after(applied))
        )

    def _operation_handler(
        self, operation: Operation
    ) -> Callable[[Any, Context], Awaitable[Empty]]:
        """A handler that switches the request's component to `operation`."""

        async def operate(request: Any, context: Context) -> Empty:
            try:
                self._sim.control.set_operation(
                    request.electrical_component_id, operation
                )
            except RequestRefusedError as refusal:
                await context.abort(refusal.code, refusal.message)
            return Empty()

        return operate

    async def ack_error(
        self, request: pb.AckElectricalComponentErrorRequest, context: Context
    ) -> Empty:
        """Acknowledge an error; injected ERROR faults persist until cleared."""
        if not self._sim.scenario.has_component(request.electrical_component_id):
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown component")
        return Empty()


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data
