"""Circuit discovery, user-defined circuits, envelopes per circuit, energy counter."""

from __future__ import annotations

import math

from frequenz.client.common.metrics import Bounds
from frequenz.client.microgrid.component import Meter
from frequenz.client.microgrid.metrics import Metric
import pytest

from custom_components.frequenz_microgrid.engine.graph import build_topology
from custom_components.frequenz_microgrid.engine.hub.circuits import (
    ROOT_CIRCUIT_ID,
    Circuit,
    build_circuit_tree,
)
from custom_components.frequenz_microgrid.engine.hub.envelope import (
    LimitEnvelope,
    LimitStep,
)
from custom_components.frequenz_microgrid.engine.hub.limits import (
    MAX_INTEGRATION_GAP_S,
    CircuitLimits,
    LimitWatch,
)
from custom_components.frequenz_microgrid.engine.hub.peak_shaving import (
    battery_ceiling_w,
)
from tests.engine.topologies import (
    EV_CHARGER,
    HOME_WIRING,
    MAIN_METER,
    PV_METER,
    component,
    connections,
    home_components,
    home_topology,
    info,
)


def rated(amps: float) -> dict[Metric | int, Bounds]:
    return {
        metric: Bounds(lower=-amps, upper=amps)
        for metric in (
            Metric.AC_CURRENT_PHASE_1,
            Metric.AC_CURRENT_PHASE_2,
            Metric.AC_CURRENT_PHASE_3,
        )
    }


def test_a_rated_meter_with_chargers_behind_it_is_a_circuit() -> None:
    parts = [
        component(Meter, MAIN_METER, rated_bounds=rated(50.0))
        if int(c.id) == MAIN_METER
        else component(Meter, PV_METER, rated_bounds=rated(20.0))
        if int(c.id) == PV_METER
        else c
        for c in home_components()
    ]
    topology = build_topology(info(), parts, connections(HOME_WIRING))
    tree = build_circuit_tree(topology, 63.0)
    # The PV meter is rated but has no charger behind it: not a circuit.
    assert tree.ids == [ROOT_CIRCUIT_ID, f"meter_{MAIN_METER}"]
    feeder = tree.get(f"meter_{MAIN_METER}")
    assert feeder is not None
    assert feeder.charger_ids == frozenset({EV_CHARGER})
    assert feeder.phase_limit_a == 50.0
    assert feeder.meter_id == MAIN_METER
    root = tree.get(ROOT_CIRCUIT_ID)
    assert root is not None
    assert root.root
    assert root.phase_limit_a == 63.0


def test_user_circuits_keep_only_known_chargers_and_meters() -> None:
    user = Circuit(
        circuit_id="garage",
        name="Garage",
        charger_ids=frozenset({EV_CHARGER, 999}),
        phase_limit_a=16.0,
        power_limit_w=11_000.0,
        meter_id=12345,
    )
    clash = Circuit(circuit_id=ROOT_CIRCUIT_ID, name="x", charger_ids=frozenset())
    tree = build_circuit_tree(home_topology(), 63.0, [user, clash])
    assert tree.ids == [ROOT_CIRCUIT_ID, "garage"]
    garage = tree.get("garage")
    assert garage is not None
    assert garage.charger_ids == frozenset({EV_CHARGER})
    assert garage.meter_id is None
    assert not garage.metered
    assert garage.origin == "user"
    assert [c.circuit_id for c in tree.of_charger(EV_CHARGER)] == [
        ROOT_CIRCUIT_ID,
        "garage",
    ]


def test_envelopes_are_per_circuit_and_the_lower_of_fixed_and_stepped_holds() -> None:
    user = Circuit(
        circuit_id="garage",
        name="Garage",
        charger_ids=frozenset({EV_CHARGER}),
        power_limit_w=11_000.0,
    )
    limits = CircuitLimits(build_circuit_tree(home_topology(), 63.0, [user]))
    changes: list[str] = []
    limits.listen(lambda: changes.append("changed"))
    garage = limits.circuit("garage")
    assert garage is not None
    assert limits.upper_limit_w(garage, 0.0) == 11_000.0
    limits.set(
        "garage",
        LimitEnvelope.of([LimitStep(10.0, 0.0, 20_000.0), LimitStep(20.0, 0, 5000.0)]),
    )
    assert limits.upper_limit_w(garage, 15.0) == 11_000.0
    assert limits.upper_limit_w(garage, 25.0) == 5000.0
    with pytest.raises(KeyError):
        limits.set("nowhere", LimitEnvelope.of([LimitStep(0.0, 0.0, 1.0)]))
    assert limits.clear("garage")
    assert not limits.clear("garage")
    assert changes == ["changed", "changed"]


def test_energy_above_the_limit_integrates_the_excess_only() -> None:
    watch = LimitWatch()
    assert watch.update(0.0, 12_000.0, 10_000.0) == 0.0
    # 2 kW above for 1.8 s = 1 Wh; then below: nothing more.
    assert watch.update(1.8, 9000.0, 10_000.0) == pytest.approx(1.0)
    assert watch.update(3.6, math.nan, 10_000.0) == pytest.approx(1.0)
    assert watch.update(5.0, 20_000.0, 10_000.0) == pytest.approx(1.0)
    # A gap longer than the limit is not integrated (no data, restart).
    assert watch.update(5.0 + MAX_INTEGRATION_GAP_S + 1, 0.0, 10_000.0) == (
        pytest.approx(1.0)
    )


def test_status_says_limit_exceeded_only_beyond_the_tolerance() -> None:
    limits = CircuitLimits(build_circuit_tree(home_topology(), 63.0))
    root = limits.circuit(ROOT_CIRCUIT_ID)
    assert root is not None
    limits.set(
        ROOT_CIRCUIT_ID, LimitEnvelope.of([LimitStep(0.0, 0.0, 10_000.0)], 2000.0)
    )
    observed = {
        power: limits.observe(
            root,
            5.0,
            measured_power_w=power,
            headroom_a=(1.0, 2.0, 3.0),
            uncontrollable_w=500.0,
        ).limit_exceeded
        for power in (9000.0, 11_999.0, 12_001.0)
    }
    assert observed == {9000.0: False, 11_999.0: False, 12_001.0: True}
    assert limits.statuses[ROOT_CIRCUIT_ID].as_dict()["upper_limit_w"] == 10_000.0


def test_the_battery_ceiling_keeps_the_grid_at_the_limit() -> None:
    # 9 kW drawn with the battery idle, limit 6 kW: discharge at least 3 kW.
    assert battery_ceiling_w(9000.0, 0.0, 6000.0) == -3000.0
    # Already discharging 3 kW at the limit: stay there.
    assert battery_ceiling_w(6000.0, -3000.0, 6000.0) == -3000.0
    # 2 kW of room: the battery may charge up to 2 kW more than now.
    assert battery_ceiling_w(4000.0, 500.0, 6000.0) == 2500.0
    assert battery_ceiling_w(math.nan, 0.0, 6000.0) is None
    assert battery_ceiling_w(4000.0, 0.0, math.inf) is None
