"""Set-power calls that end: the client's `set_component_power_active`, completed.

(And its `set_component_power_reactive`: the same request with another power type.)

`SetElectricalComponentPower` answers with a stream of two replies: the first says
whether the request was accepted (and until when it holds), the second is the final
status. `MicrogridApiClient.set_component_power_active` (0.18) returns the first and
leaves the call unread, and gRPC keeps a call open until its last reply is read: every
setpoint left a call (about 30 Python objects, and a call in gRPC's core) behind for
good — with the keep-alive, thousands a day, and garbage collections that grow longer
and longer.

`CompletingSetPowerClient` sends the very same request through the client's stub,
returns the same first answer, raises the client's own errors, and reads the rest of
the stream in the background, so that every call completes.

It also heeds what the client ignores, the replies' status: a REJECTED (invalid
parameters) or FAILED first reply raises `SetpointRefusedError`, and a FAILED final
reply (accepted, but the component did not reach the setpoint) is reported to
`on_failed`. Either way the setpoint is not in force, which a caller that took the
call for a success would never learn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from datetime import datetime, timedelta
import math
from typing import Protocol

from frequenz.api.microgrid.v1alpha18 import microgrid_pb2
from frequenz.client.base.conversion import to_datetime
from frequenz.client.base.exception import ApiClientError
from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid import MicrogridApiClient
import grpc
from grpc.aio import AioRpcError

CALL_TIMEOUT_S = 60.0
"""Deadline of one call, the final reply included (as the client's own calls)."""
LIFETIME_RANGE_S = (10, 900)
"""The request lifetimes the API accepts (seconds), as the client validates them."""
_OPERATION = "SetElectricalComponentPower"
_NOT_APPLIED = frozenset(
    {
        microgrid_pb2.SET_ELECTRICAL_COMPONENT_POWER_REQUEST_STATUS_REJECTED,
        microgrid_pb2.SET_ELECTRICAL_COMPONENT_POWER_REQUEST_STATUS_FAILED,
    }
)
"""Statuses saying the setpoint is not in force (OVERRIDDEN: a newer one is)."""


class SetPowerClient(Protocol):
    """What sends setpoints: the client's two set-power calls (easy to fake).

    `CompletingSetPowerClient` is the one in use (and `MicrogridApiClient` fits).
    The distributor sends active power through it, the reactive steering
    reactive power; each fake in the tests answers the one its subject sends
    and fails the other.
    """

    async def set_component_power_active(
        self,
        component: ComponentId,
        power: float,
        *,
        request_lifetime: timedelta | None = None,
        validate_arguments: bool = True,
    ) -> datetime | None:
        """Set a component's active power (W); return until when it holds."""
        ...

    async def set_component_power_reactive(
        self,
        component: ComponentId,
        power: float,
        *,
        request_lifetime: timedelta | None = None,
        validate_arguments: bool = True,
    ) -> datetime | None:
        """Set a component's reactive power (var); return until when it holds."""
        ...


class SetpointRefusedError(ApiClientError):
    """The microgrid answered the call with a REJECTED or FAILED status."""


class CompletingSetPowerClient:
    """`set_component_power_active` of a client, with every call read to its end."""

    def __init__(
        self,
        client: MicrogridApiClient,
        *,
        on_failed: Callable[[int, float], None] | None = None,
    ) -> None:
        """Send through `client` (its channel, stub and error types).

        `on_failed(component_id, power)` is called when a setpoint that was
        accepted ends with a FAILED status.
        """
        self._client = client
        self._on_failed = on_failed
        self._draining: set[asyncio.Task[None]] = set()

    async def finish(self, timeout_s: float = 1.0) -> None:
        """Let the calls in progress end (their final replies are due at once)."""
        if not self._draining:
            return
        _, late = await asyncio.wait(set(self._draining), timeout=timeout_s)
        for drain in late:
            drain.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def set_component_power_active(
        self,
        component: ComponentId,
        power: float,
        *,
        request_lifetime: timedelta | None = None,
        validate_arguments: bool = True,
    ) -> datetime | None:
        """Set a component's active power; return until when it holds.

        Same arguments, answer and errors as the client's method, and one more:
        a REJECTED or FAILED first reply, which the client takes for a success.

        Raises:
            ValueError: `power` is NaN or the lifetime is outside 10–900 s.
            SetpointRefusedError: The first reply's status was REJECTED or FAILED.
            ApiClientError: The microgrid refused the request or is unreachable.
        """
        return await self._set_power(
            component,
            power,
            microgrid_pb2.POWER_TYPE_ACTIVE,
            request_lifetime,
            validate_arguments,
        )

    async def set_component_power_reactive(
        self,
        component: ComponentId,
        power: float,
        *,
        request_lifetime: timedelta | None = None,
        validate_arguments: bool = True,
    ) -> datetime | None:
        """Set a component's reactive power (var); return until when it holds.

        The client's `set_component_power_reactive`, completed like the active one
        (same arguments, answer and errors).
        """
        return await self._set_power(
            component,
            power,
            microgrid_pb2.POWER_TYPE_REACTIVE,
            request_lifetime,
            validate_arguments,
        )

    async def _set_power(
        self,
        component: ComponentId,
        power: float,
        power_type: microgrid_pb2.PowerType.ValueType,
        request_lifetime: timedelta | None,
        validate_arguments: bool,
    ) -> datetime | None:
        """Send one set-power request of `power_type` and read its first reply."""
        lifetime_s = (
            None
            if request_lifetime is None
            else round(request_lifetime.total_seconds())
        )
        if validate_arguments:
            if math.isnan(power):
                raise ValueError("power cannot be NaN")
            low, high = LIFETIME_RANGE_S
            if lifetime_s is not None and not low <= lifetime_s <= high:
                raise ValueError("request_lifetime must be between 10 s and 15 min")
        call = self._client.stub.SetElectricalComponentPower(
            microgrid_pb2.SetElectricalComponentPowerRequest(
                electrical_component_id=int(component),
                power_type=power_type,
                power=power,
                request_lifetime=lifetime_s,
            ),
            timeout=CALL_TIMEOUT_S,
        )
        try:
            reply = await call.read()
        except AioRpcError as error:
            raise ApiClientError.from_grpc_error(
                server_url=self._client.server_url,
                operation=_OPERATION,
                grpc_error=error,
            ) from error
        if not isinstance(reply, microgrid_pb2.SetElectricalComponentPowerResponse):
            # EOF, no reply at all: nothing was accepted
            raise ApiClientError(
                server_url=self._client.server_url,
                operation=_OPERATION,
                description="the call ended without a reply",
                retryable=True,
            )
        if reply.status in _NOT_APPLIED:
            call.cancel()
            raise SetpointRefusedError(
                server_url=self._client.server_url,
                operation=_OPERATION,
                description="the microgrid answered "
                + microgrid_pb2.SetElectricalComponentPowerRequestStatus.Name(
                    reply.status
                ).removeprefix("SET_ELECTRICAL_COMPONENT_POWER_REQUEST_STATUS_"),
                retryable=False,
            )
        drain = asyncio.create_task(self._read_to_the_end(call, int(component), power))
        self._draining.add(drain)
        drain.add_done_callback(self._draining.discard)
        if reply.HasField("valid_until_time"):
            return to_datetime(reply.valid_until_time)
        return None

    async def _read_to_the_end(
        self,
        call: grpc.aio.UnaryStreamCall[
            microgrid_pb2.SetElectricalComponentPowerRequest,
            microgrid_pb2.SetElectricalComponentPowerResponse,
        ],
        component_id: int,
        power: float,
    ) -> None:
        """Read the remaining replies (so that gRPC lets the call go); heed a FAILED."""
        failed = microgrid_pb2.SET_ELECTRICAL_COMPONENT_POWER_REQUEST_STATUS_FAILED
        with contextlib.suppress(AioRpcError):  # the channel closed or the deadline
            while (reply := await call.read()) is not grpc.aio.EOF:
                if (
                    isinstance(reply, microgrid_pb2.SetElectricalComponentPowerResponse)
                    and reply.status == failed
                    and self._on_failed is not None
                ):
                    self._on_failed(component_id, power)
