"""The Assets API (`frequenz.api.platformassets.v1alpha1`), answered from a scenario.

Served by the simulator's own gRPC server next to the Microgrid API, on the same
port: a demo entry and the tests read the inventory with the real
`frequenz-client-assets` client from a real server. Only the three calls about one
microgrid are implemented (`GetMicrogrid`, `ListMicrogridElectricalComponents`,
`ListMicrogridElectricalComponentConnections`); the generated base class answers
the others UNIMPLEMENTED. A request for another microgrid id gets NOT_FOUND, and
while `outage` is set every call gets UNAVAILABLE (a platform outage to test with).
"""

from __future__ import annotations

from typing import Any, Protocol

from frequenz.api.common.v1alpha8.grid import delivery_area_pb2
from frequenz.api.common.v1alpha8.microgrid import (
    lifetime_pb2,
    microgrid_pb2 as common_microgrid_pb2,
)
from frequenz.api.common.v1alpha8.microgrid.electrical_components import (
    electrical_components_pb2 as ec_pb2,
)
from frequenz.api.common.v1alpha8.types import location_pb2
from frequenz.api.platformassets.v1alpha1 import (
    platformassets_pb2 as pb,
    platformassets_pb2_grpc as pb_grpc,
)
from frequenz.client.base.conversion import to_timestamp
import grpc

from .assets import CodeType, MicrogridStatus
from .component_protos import category_of, component_to_proto, connections_to_proto
from .scenario import ComponentSpec, Scenario

type Context = grpc.aio.ServicerContext[Any, Any]

_CODE_TYPES = {
    CodeType.EUROPE_EIC: delivery_area_pb2.ENERGY_MARKET_CODE_TYPE_EUROPE_EIC,
    CodeType.US_NERC: delivery_area_pb2.ENERGY_MARKET_CODE_TYPE_US_NERC,
}
_STATUSES = {
    MicrogridStatus.ACTIVE: common_microgrid_pb2.MICROGRID_STATUS_ACTIVE,
    MicrogridStatus.INACTIVE: common_microgrid_pb2.MICROGRID_STATUS_INACTIVE,
}


class ServedInventory(Protocol):
    """What the Assets handlers use of the simulator (`MicrogridSimulator` is one)."""

    scenario: Scenario
    assets_outage: bool


def microgrid_to_proto(scenario: Scenario) -> common_microgrid_pb2.Microgrid:
    """The scenario's microgrid as the Assets API's `GetMicrogrid` returns it."""
    assets = scenario.assets
    return common_microgrid_pb2.Microgrid(
        id=scenario.microgrid_id,
        enterprise_id=assets.enterprise_id,
        name=assets.name or f"Simulated {scenario.name}",
        delivery_area=delivery_area_pb2.DeliveryArea(
            code=assets.delivery_area_code,
            code_type=_CODE_TYPES[assets.delivery_area_code_type],
        ),
        location=location_pb2.Location(
            latitude=assets.latitude,
            longitude=assets.longitude,
            country_code=assets.country_code,
        ),
        status=_STATUSES[assets.status],
        create_timestamp=to_timestamp(assets.created),
    )


def inventory_component_to_proto(
    spec: ComponentSpec, scenario: Scenario
) -> ec_pb2.ElectricalComponent:
    """One component as the inventory records it, with its operational lifetime.

    Its assets record's name, maker and model win over the topology table's.
    """
    record = scenario.assets.component(spec.id)
    message = component_to_proto(spec, scenario.microgrid_id)
    message.name = record.name or spec.name
    message.manufacturer = record.manufacturer or spec.manufacturer
    message.model_name = record.model or spec.model
    lifetime = lifetime_pb2.Lifetime()
    if record.operational_start is not None:
        lifetime.start_timestamp.CopyFrom(to_timestamp(record.operational_start))
    if record.operational_end is not None:
        lifetime.end_timestamp.CopyFrom(to_timestamp(record.operational_end))
    message.operational_lifetime.CopyFrom(lifetime)
    return message


class AssetsService(pb_grpc.PlatformAssetsServiceServicer):
    """The Assets API's microgrid calls; all state lives in the simulator."""

    def __init__(self, simulator: ServedInventory) -> None:
        """Serve `simulator`'s scenario."""
        self._sim = simulator

    def add_to(self, server: grpc.aio.Server) -> None:
        """Register the service on `server` (the generated registration)."""
        pb_grpc.add_PlatformAssetsServiceServicer_to_server(self, server)

    async def GetMicrogrid(  # noqa: N802 - the generated servicer's name
        self, request: pb.GetMicrogridRequest, context: Context
    ) -> pb.GetMicrogridResponse:
        """The microgrid's inventory record."""
        scenario = await self._scenario_of(request.microgrid_id, context)
        return pb.GetMicrogridResponse(microgrid=microgrid_to_proto(scenario))

    async def ListMicrogridElectricalComponents(  # noqa: N802
        self, request: pb.ListMicrogridElectricalComponentsRequest, context: Context
    ) -> pb.ListMicrogridElectricalComponentsResponse:
        """The components, filtered by ids and categories when given."""
        scenario = await self._scenario_of(request.microgrid_id, context)
        ids = set(request.filter.component_ids)
        categories = set(request.filter.categories)
        return pb.ListMicrogridElectricalComponentsResponse(
            microgrid_id=scenario.microgrid_id,
            components=[
                inventory_component_to_proto(spec, scenario)
                for spec in scenario.components
                if (not ids or spec.id in ids)
                and (not categories or category_of(spec) in categories)
            ],
        )

    async def ListMicrogridElectricalComponentConnections(  # noqa: N802
        self,
        request: pb.ListMicrogridElectricalComponentConnectionsRequest,
        context: Context,
    ) -> pb.ListMicrogridElectricalComponentConnectionsResponse:
        """The connections, filtered by source and destination ids when given."""
        scenario = await self._scenario_of(request.microgrid_id, context)
        sources = set(request.filter.source_component_ids)
        destinations = set(request.filter.destination_component_ids)
        return pb.ListMicrogridElectricalComponentConnectionsResponse(
            microgrid_id=scenario.microgrid_id,
            connections=[
                connection
                for connection in connections_to_proto(scenario)
                if (not sources or connection.source_electrical_component_id in sources)
                and (
                    not destinations
                    or connection.destination_electrical_component_id in destinations
                )
            ],
        )

    async def ListGridpools(self, request: Any, context: Context) -> Any:  # noqa: N802
        """Not simulated."""
        await _unimplemented(context)

    async def ListGridpoolEnergySchedules(  # noqa: N802
        self, request: Any, context: Context
    ) -> Any:
        """Not simulated."""
        await _unimplemented(context)

    async def ListMarketTopologyRelations(  # noqa: N802
        self, request: Any, context: Context
    ) -> Any:
        """Not simulated."""
        await _unimplemented(context)

    async def ListMicrogrids(self, request: Any, context: Context) -> Any:  # noqa: N802
        """Not simulated."""
        await _unimplemented(context)

    async def ListMicrogridSensors(self, request: Any, context: Context) -> Any:  # noqa: N802
        """Not simulated: the simulated microgrids have no sensors."""
        await _unimplemented(context)

    async def _scenario_of(self, microgrid_id: int, context: Context) -> Scenario:
        """The scenario, if it is the microgrid asked for and the API is up."""
        if self._sim.assets_outage:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "Assets API unavailable")
        scenario = self._sim.scenario
        if microgrid_id != scenario.microgrid_id:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"no microgrid with id {microgrid_id}"
            )
        return scenario


async def _unimplemented(context: Context) -> None:
    """Answer a call the simulator does not serve."""
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not simulated")
