"""A loopback gRPC gateway that demands an API key in front of the simulator.

Real microgrids authenticate with an API key (metadata `key`); the simulator does
not. To test the config flow's `invalid_auth`, setup's `ConfigEntryAuthFailed` and a
key revoked while running, this gateway forwards every Microgrid API call as raw
bytes to the simulator — but only for callers sending the accepted key; the others
get UNAUTHENTICATED, as from a real API. Assets API calls are forwarded the same way
(`assets_url`), for the Assets key's errors. Changing `accepted_key` revokes the old key
at once, including on streams already open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from frequenz.api.microgrid.v1alpha18 import microgrid_pb2
from frequenz.api.platformassets.v1alpha1 import platformassets_pb2
import grpc
from grpc import aio

SERVICE = microgrid_pb2.DESCRIPTOR.services_by_name["Microgrid"]
ASSETS_SERVICE = platformassets_pb2.DESCRIPTOR.services_by_name["PlatformAssetsService"]
SERVICES = {service.full_name: service for service in (SERVICE, ASSETS_SERVICE)}


class AuthGateway:
    """Forwards Microgrid API calls to `upstream` for callers with the right key."""

    def __init__(self, upstream_url: str, *, accepted_key: str) -> None:
        """Prepare a gateway to `upstream_url` (`grpc://host:port`)."""
        self.upstream_target = upstream_url.removeprefix("grpc://").split("?")[0]
        self.accepted_key = accepted_key
        self.rejected_calls = 0
        self._server: aio.Server | None = None
        self._channel: aio.Channel | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The gateway's URL, for the client."""
        return f"grpc://127.0.0.1:{self.port}"

    @property
    def assets_url(self) -> str:
        """The gateway's URL for the Assets API client (which assumes TLS)."""
        return f"{self.url}?ssl=false"

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._channel = aio.insecure_channel(self.upstream_target)
        self._server = aio.server()
        self._server.add_generic_rpc_handlers((_Handler(self),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()

    async def stop(self) -> None:
        """Stop listening and close the upstream channel."""
        if self._server is not None:
            await self._server.stop(None)
            self._server = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    def authorised(self, context: aio.ServicerContext[Any, Any]) -> bool:
        """Whether the caller sent the currently accepted key."""
        metadata = dict(context.invocation_metadata() or ())
        return metadata.get("key") == self.accepted_key

    async def reject(self, context: aio.ServicerContext[Any, Any]) -> None:
        """Answer like an API that does not know the key."""
        self.rejected_calls += 1
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid API key")

    def unary(self, method: str) -> Callable[..., Any]:
        """Return a forwarder for a unary call."""

        async def forward(
            request: bytes, context: aio.ServicerContext[Any, Any]
        ) -> Any:
            if not self.authorised(context):
                await self.reject(context)
            assert self._channel is not None
            try:
                call: aio.UnaryUnaryMultiCallable[bytes, bytes] = (
                    self._channel.unary_unary(method)
                )
                return await call(request)
            except aio.AioRpcError as err:
                await context.abort(err.code(), err.details() or "")

        return forward

    def stream(self, method: str) -> Callable[..., AsyncIterator[bytes]]:
        """Return a forwarder for a server-streaming call."""

        async def forward(
            request: bytes, context: aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[bytes]:
            if not self.authorised(context):
                await self.reject(context)
            assert self._channel is not None
            open_stream: aio.UnaryStreamMultiCallable[bytes, bytes] = (
                self._channel.unary_stream(method)
            )
            call = open_stream(request)
            try:
                async for message in call:
                    if not self.authorised(context):
                        call.cancel()
                        await self.reject(context)
                    yield message
            except aio.AioRpcError as err:
                await context.abort(err.code(), err.details() or "")

        return forward


class _Handler(grpc.GenericRpcHandler):
    """Routes every Microgrid method to the gateway's forwarders."""

    def __init__(self, gateway: AuthGateway) -> None:
        self._gateway = gateway

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = handler_call_details.method
        service_name, _, name = method.lstrip("/").rpartition("/")
        service = SERVICES.get(service_name)
        descriptor = None if service is None else service.methods_by_name.get(name)
        if descriptor is None:
            return None
        if descriptor.server_streaming:
            return grpc.unary_stream_rpc_method_handler(self._gateway.stream(method))
        return grpc.unary_unary_rpc_method_handler(self._gateway.unary(method))
