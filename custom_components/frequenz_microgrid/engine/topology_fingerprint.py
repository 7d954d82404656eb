"""A cheap way to tell that a microgrid's topology has not changed.

Decoding the API's answers about a 1,000-component microgrid into the client's
component objects takes tens of milliseconds of the event loop; nearly every
periodic re-read finds the same answers. The raw answers (the protobuf
messages, serialized deterministically) are compared instead: equal bytes are
an unchanged topology, and only a difference is decoded and compared for real.
The same bytes are what the topology is then decoded and built from
(`graph.load_topology`, `graph.build_topology_off_loop`): no second read.
"""

from __future__ import annotations

import asyncio

from frequenz.api.microgrid.v1alpha18 import microgrid_pb2
from frequenz.client.base.client import call_stub_method
from frequenz.client.microgrid import MicrogridApiClient
from google.protobuf.empty_pb2 import Empty

from .topology_worker import RawTopology

CALL_TIMEOUT_S = 60.0
"""Per call, as the client's own unary calls."""

type TopologyFingerprint = RawTopology
"""The microgrid's metadata, components and connections as the API sent them."""


async def read_fingerprint(client: MicrogridApiClient) -> TopologyFingerprint:
    """Ask for the metadata, components and connections; return their raw bytes.

    The same three calls as `load_topology`, through the client's stub (its
    credentials and error translation apply), without decoding the answers.

    Raises:
        frequenz.client.microgrid.ApiClientError: a call failed.
    """
    stub = client.stub
    info, components, connections = await asyncio.gather(
        call_stub_method(
            client,
            lambda: stub.GetMicrogrid(Empty(), timeout=CALL_TIMEOUT_S),
            method_name="GetMicrogrid",
        ),
        call_stub_method(
            client,
            lambda: stub.ListElectricalComponents(
                microgrid_pb2.ListElectricalComponentsRequest(),
                timeout=CALL_TIMEOUT_S,
            ),
            method_name="ListComponents",
        ),
        call_stub_method(
            client,
            lambda: stub.ListElectricalComponentConnections(
                microgrid_pb2.ListElectricalComponentConnectionsRequest(),
                timeout=CALL_TIMEOUT_S,
            ),
            method_name="ListConnections",
        ),
    )
    return (
        info.SerializeToString(deterministic=True),
        components.SerializeToString(deterministic=True),
        connections.SerializeToString(deterministic=True),
    )
