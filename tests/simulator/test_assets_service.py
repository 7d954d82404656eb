"""The simulator's Assets API through real gRPC and the real frequenz-client-assets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from frequenz.client.assets import (
    AssetsApiClient,
    EnergyMarketCodeType,
    MicrogridStatus,
)
from frequenz.client.assets.electrical_component import ElectricalComponentCategory
from frequenz.client.base.exception import EntityNotFound, ServiceUnavailable
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.common.microgrid.electrical_components import (
    ElectricalComponentId,
)
import pytest

from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    load_scenario,
    running_simulator,
)
from custom_components.frequenz_microgrid.simulator.scenario import scenario_from_dict

HOME = MicrogridId(1)


@pytest.fixture
async def assets(sim: MicrogridSimulator) -> AsyncIterator[AssetsApiClient]:
    """An Assets API client on the simulator's own port."""
    client = AssetsApiClient(sim.assets_url)
    yield client
    await client.disconnect()


async def test_microgrid_record_defaults(assets: AssetsApiClient) -> None:
    microgrid = await assets.get_microgrid(HOME, raise_on_errors=True)
    assert int(microgrid.id) == 1
    assert microgrid.name == "Simulated home", "as the Microgrid API calls it"
    assert int(microgrid.enterprise_id) == 1
    assert microgrid.status is MicrogridStatus.ACTIVE
    assert microgrid.delivery_area is not None
    assert microgrid.delivery_area.code_type is EnergyMarketCodeType.EUROPE_EIC
    assert microgrid.location is not None
    assert microgrid.location.country_code == "DE"
    assert microgrid.create_timestamp == datetime(2024, 1, 1, tzinfo=UTC)


async def test_components_and_connections_match_the_topology(
    sim: MicrogridSimulator, assets: AssetsApiClient
) -> None:
    components = await assets.list_microgrid_electrical_components(
        HOME, raise_on_errors=True
    )
    scenario = sim.scenario
    assert {int(c.id): (c.name, c.manufacturer, c.model_name) for c in components} == {
        spec.id: (spec.name, spec.manufacturer, spec.model)
        for spec in scenario.components
    }
    assert all(c.operational_lifetime.is_operational_now() for c in components)
    connections = await assets.list_microgrid_electrical_component_connections(
        HOME, raise_on_errors=True
    )
    assert sorted((int(c.source), int(c.destination)) for c in connections) == sorted(
        scenario.connections()
    )
    only_source = await assets.list_microgrid_electrical_component_connections(
        HOME, source_component_ids=[ElectricalComponentId(2)]
    )
    assert {int(c.source) for c in only_source} == {2}


async def test_unknown_microgrid_and_outage(
    sim: MicrogridSimulator, assets: AssetsApiClient
) -> None:
    with pytest.raises(EntityNotFound):
        await assets.get_microgrid(MicrogridId(99))
    sim.assets_outage = True
    with pytest.raises(ServiceUnavailable):
        await assets.list_microgrid_electrical_components(HOME)
    sim.assets_outage = False
    assert int((await assets.get_microgrid(HOME)).id) == 1


async def test_scenario_assets_table_overrides_and_lifetimes() -> None:
    data = {
        "name": "site",
        "microgrid_id": 5,
        "topology": [
            {"id": 1, "kind": "grid", "fuse_current_a": 40},
            {"id": 2, "kind": "meter", "parent": 1, "name": "Main meter"},
        ],
        "assets": {
            "microgrid": {
                "name": "Depot north",
                "enterprise_id": 7,
                "delivery_area": {"code": "ERCOT", "code_type": "us_nerc"},
                "location": {
                    "latitude": 30.2,
                    "longitude": -97.7,
                    "country_code": "US",
                },
                "status": "inactive",
                "created": "2023-05-01T00:00:00+00:00",
            },
            "components": {
                "2": {
                    "name": "Meter M1",
                    "manufacturer": "Janitza",
                    "model": "UMG 512",
                    "operational_start": "2023-05-01T00:00:00",
                    "operational_end": "2024-05-01T00:00:00+00:00",
                }
            },
        },
    }
    async with running_simulator(scenario_from_dict(data)) as sim:
        client = AssetsApiClient(sim.assets_url)
        try:
            microgrid = await client.get_microgrid(MicrogridId(5))
            components = await client.list_microgrid_electrical_components(
                MicrogridId(5)
            )
        finally:
            await client.disconnect()
    assert microgrid.name == "Depot north"
    assert int(microgrid.enterprise_id) == 7
    assert microgrid.status is MicrogridStatus.INACTIVE
    assert microgrid.delivery_area is not None
    assert microgrid.delivery_area.code_type is EnergyMarketCodeType.US_NERC
    assert microgrid.create_timestamp == datetime(2023, 5, 1, tzinfo=UTC)
    meter = next(c for c in components if int(c.id) == 2)
    assert (meter.name, meter.manufacturer, meter.model_name) == (
        "Meter M1",
        "Janitza",
        "UMG 512",
    )
    assert meter.category is ElectricalComponentCategory.METER
    lifetime = meter.operational_lifetime
    assert lifetime.start == datetime(2023, 5, 1, tzinfo=UTC), "no offset: UTC"
    assert lifetime.end == datetime(2024, 5, 1, tzinfo=UTC)
    assert not lifetime.is_operational_now()


def test_shipped_scenarios_load_with_default_assets() -> None:
    for name in ("home", "depot"):
        assert load_scenario(name).assets.components == {}
