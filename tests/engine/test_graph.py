"""Topology: pool membership, wiring and the library's formulas."""

from __future__ import annotations

from dataclasses import replace
import logging
import operator

from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid import MicrogridApiClient
from frequenz.client.microgrid.component import Component, ComponentConnection, Meter
from frequenz.microgrid_component_graph import (
    ComponentGraph,
    ComponentGraphConfig,
    InvalidGraphError,
)
import pytest

from custom_components.frequenz_microgrid.engine import graph as graph_module
from custom_components.frequenz_microgrid.engine.graph import (
    PoolFormulas,
    build_topology,
    build_topology_off_loop,
    decode_off_loop,
)
from custom_components.frequenz_microgrid.engine.topology_fingerprint import (
    read_fingerprint,
)
from custom_components.frequenz_microgrid.engine.topology_worker import (
    CachingDecoder,
    decode,
    formulas_in_child_process,
)
from custom_components.frequenz_microgrid.simulator import running_simulator
from custom_components.frequenz_microgrid.simulator.scenario import generate_scenario
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
    graph: ComponentGraph[Component, ComponentConnection, ComponentId] = ComponentGraph(
        t.home_components(), t.connections(t.HOME_WIRING), ComponentGraphConfig()
    )
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


async def test_child_process_generates_what_the_library_generates_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large site's formulas come from a child process: the very same strings."""
    async with running_simulator(generate_scenario(60)) as sim:
        client = MicrogridApiClient(sim.url)
        try:
            raw = await read_fingerprint(client)
        finally:
            await client.disconnect()
    decoded = await decode_off_loop(raw)
    here = build_topology(*decoded)
    assert here.formulas.battery
    assert here.formulas.pv
    assert here.formulas.ev_charger
    child = await formulas_in_child_process(raw)
    assert PoolFormulas(**child["formulas"]) == here.formulas
    monkeypatch.setattr(graph_module, "CHILD_PROCESS_MIN_COMPONENTS", 10)
    built = await build_topology_off_loop(raw, decoded)
    assert built.formulas == here.formulas
    assert built.components == here.components
    assert built.battery_ids == here.battery_ids


async def test_child_process_refuses_an_invalid_graph() -> None:
    async with running_simulator(generate_scenario(20)) as sim:
        client = MicrogridApiClient(sim.url)
        try:
            info, components, _ = await read_fingerprint(client)
        finally:
            await client.disconnect()
    with pytest.raises(InvalidGraphError):  # nothing connected to anything
        await formulas_in_child_process((info, components, b""))


async def test_a_failing_child_process_falls_back_to_this_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_simulator(generate_scenario(20)) as sim:
        client = MicrogridApiClient(sim.url)
        try:
            raw = await read_fingerprint(client)
        finally:
            await client.disconnect()
    decoded = await decode_off_loop(raw)
    monkeypatch.setattr(graph_module, "CHILD_PROCESS_MIN_COMPONENTS", 1)
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    with caplog.at_level(logging.WARNING):
        built = await build_topology_off_loop(raw, decoded)
    assert built.formulas == build_topology(*decoded).formulas
    assert "child process failed" in caplog.text


async def test_the_caching_decoder_decodes_only_what_changed() -> None:
    async with running_simulator(generate_scenario(20)) as sim:
        client = MicrogridApiClient(sim.url)
        try:
            before = await read_fingerprint(client)
            spec = sim.scenario.component(5)
            sim.remove_component(5)
            sim.add_component(replace(spec, name="Renamed"))
            after = await read_fingerprint(client)
        finally:
            await client.disconnect()
    decoder = CachingDecoder()
    _, first, first_wiring = decoder.decode(before)
    _, again, again_wiring = decoder.decode(before)
    assert all(map(operator.is_, first, again, strict=True))
    assert all(map(operator.is_, first_wiring, again_wiring, strict=True))
    info, changed, wiring = decoder.decode(after)
    assert (info, changed, wiring) == decode(after)
    by_id = {int(c.id): c for c in first}
    for component in changed:
        if int(component.id) == 5:
            assert component.name == "Renamed"
        else:
            assert component is by_id[int(component.id)]
