"""`generated:N` scenarios are valid microgrids for every N the integration sets up."""

from __future__ import annotations

from datetime import UTC, datetime

from frequenz.api.microgrid.v1alpha18 import microgrid_pb2
from frequenz.client.common.microgrid import EnterpriseId, MicrogridId
from frequenz.client.microgrid import MicrogridInfo, MicrogridStatus
import pytest

from custom_components.frequenz_microgrid.engine.graph import build_topology
from custom_components.frequenz_microgrid.engine.topology_worker import (
    CachingDecoder,
)
from custom_components.frequenz_microgrid.simulator import generate_scenario
from custom_components.frequenz_microgrid.simulator.component_protos import (
    component_to_proto,
    connections_to_proto,
)
from custom_components.frequenz_microgrid.simulator.scenario import Kind, Scenario


def _wiring_bytes(scenario: Scenario) -> tuple[bytes, bytes]:
    """The scenario's components and connections as the simulator serves them."""
    components = microgrid_pb2.ListElectricalComponentsResponse(
        electrical_components=[
            component_to_proto(spec, scenario.microgrid_id)
            for spec in scenario.components
        ]
    )
    connections = microgrid_pb2.ListElectricalComponentConnectionsResponse(
        electrical_component_connections=connections_to_proto(scenario)
    )
    return components.SerializeToString(), connections.SerializeToString()


def test_every_generated_scenario_is_a_valid_component_graph() -> None:
    """The integration's set-up (decode, then build the graph) accepts every N."""
    info = MicrogridInfo(
        id=MicrogridId(1),
        enterprise_id=EnterpriseId(1),
        name="Simulated",
        delivery_area=None,
        location=None,
        status=MicrogridStatus.ACTIVE,
        create_timestamp=datetime(2024, 1, 1, tzinfo=UTC),
    )
    with pytest.raises(ValueError, match="at least a grid and a grid meter"):
        generate_scenario(1)
    for n in range(2, 200):
        scenario = generate_scenario(n)
        assert len(scenario.components) == n
        for spec in scenario.components:
            if spec.kind is Kind.BATTERY_INVERTER:
                assert [c.kind for c in scenario.children(spec.id)] == [Kind.BATTERY], (
                    f"generated:{n}: battery inverter {spec.id} has no battery"
                )
        components, connections = CachingDecoder().decode_wiring(
            *_wiring_bytes(scenario)
        )
        topology = build_topology(info, components, connections)  # raises if invalid
        assert len(topology.components) == n, f"generated:{n}"


def test_generated_scenarios_keep_their_components_unless_one_was_invalid() -> None:
    """N ≢ 3 (mod 4) is as before; N ≡ 3 ends on a PV inverter, not a lone inverter."""
    longest = generate_scenario(400).components
    for n in range(2, 200):
        components = generate_scenario(n).components
        if n % 4 == 3:
            assert components[:-1] == longest[: n - 1]
            assert components[-1].kind is Kind.PV_INVERTER
            assert components[-1].id == n
            assert components[-1].parent == longest[n - 1].parent
        else:
            assert components == longest[:n], f"generated:{n}"
