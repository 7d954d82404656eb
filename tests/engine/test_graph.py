"""Topology: pool membership, wiring and the library's formulas."""

from __future__ import annotations

from frequenz.client.microgrid.component import Meter
from frequenz.microgrid_component_graph import InvalidGraphError
import pytest

from custom_components.frequenz_microgrid.engine.graph import build_topology
from tests.engine import topologies as t


def test_pool_membership_follows_component_classes() -> None:
    topo = t.home_topology()
    assert topo.battery_ids == {t.BATTERY_A, t.BATTERY_B}
    assert topo.battery_inverter_ids == {t.INVERTER_A, t.INVERTER_B}
    assert topo.pv_inverter_ids == {t.PV_INVERTER}
    assert topo.ev_charger_ids == {t.EV_CHARGER}
    assert topo.meter_ids == {t.MAIN_METER, t.BATTERY_METER, t.PV_METER, t.HOUSE_METER}
    assert topo.grid_id == t.GRID
    assert set(topo.components) == {c for pair in t.HOME_WIRING for c in pair}
    assert isinstance(topo.components[t.MAIN_METER], Meter)


def test_wiring_lookups() -> None:
    topo = t.home_topology()
    assert topo.parent_of(t.BATTERY_A) == t.INVERTER_A
    assert topo.parent_of(t.INVERTER_B) == t.BATTERY_METER
    assert topo.parent_of(t.GRID) is None
    assert topo.children_of(t.BATTERY_METER) == (t.INVERTER_A, t.INVERTER_B)
    assert topo.inverters_of_battery(t.BATTERY_B) == (t.INVERTER_B,)
    assert topo.batteries_of_inverter(t.INVERTER_A) == (t.BATTERY_A,)
    assert topo.batteries_of_inverter(t.PV_INVERTER) == ()


def test_formulas_come_from_the_component_graph() -> None:
    topo = t.home_topology()
    graph = topo.graph
    assert topo.formulas.battery == graph.battery_formula(None)
    assert topo.formulas.grid == graph.grid_formula()
    assert topo.formulas.consumer == graph.consumer_formula()
    # The battery pool is measured at its inverters, with the meter as fallback.
    assert topo.formulas.battery is not None
    assert f"#{t.INVERTER_A}" in topo.formulas.battery
    assert f"#{t.BATTERY_METER}" in topo.formulas.battery
    assert topo.formulas.grid == f"#{t.MAIN_METER}"


def test_empty_pools_have_no_formula() -> None:
    only_meter = [c for c in t.home_components() if int(c.id) in {t.GRID, t.MAIN_METER}]
    topo = build_topology(t.info(), only_meter, t.connections([(t.GRID, t.MAIN_METER)]))
    assert topo.formulas.battery is None
    assert topo.formulas.ev_charger is None
    assert topo.formulas.pv is None
    assert topo.formulas.grid == f"#{t.MAIN_METER}"


def test_invalid_wiring_is_rejected() -> None:
    with pytest.raises(InvalidGraphError):
        build_topology(
            t.info(),
            t.home_components(),
            t.connections([*t.HOME_WIRING, (t.BATTERY_A, t.GRID)]),
        )
