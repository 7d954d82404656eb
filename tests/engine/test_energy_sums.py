"""Energy counters summed over several components, and totals bridging their gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from frequenz.client.microgrid.component import (
    BatteryInverter,
    GridConnectionPoint,
    LiIonBattery,
    Meter,
    SolarInverter,
)
from frequenz.client.microgrid.metrics import Metric
from hypothesis import given, strategies as st
import pytest

from custom_components.frequenz_microgrid.engine.energy import EnergyTotal
from custom_components.frequenz_microgrid.engine.graph import Topology, build_topology
from custom_components.frequenz_microgrid.engine.pools import (
    CompiledFormulas,
    compute_snapshot,
)
from custom_components.frequenz_microgrid.engine.snapshot import EnergySnapshot
from custom_components.frequenz_microgrid.engine.telemetry import TelemetryStore
from tests.engine import topologies as t
from tests.observations import record

CONSUMED = Metric.AC_ENERGY_ACTIVE_CONSUMED
DELIVERED = Metric.AC_ENERGY_ACTIVE_DELIVERED
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def two_feeders() -> Topology:
    """Grid → feeder 2 → meter 3 → PV 4; grid → feeder 5 → meter 6 → inverter 7.

    No common grid meter: the grid formula is `#2 + #5`, a plain sum.
    """
    components = [
        t.component(GridConnectionPoint, 1, rated_fuse_current=63),
        t.component(Meter, 2),
        t.component(Meter, 3),
        t.component(SolarInverter, 4),
        t.component(Meter, 5),
        t.component(Meter, 6),
        t.component(BatteryInverter, 7),
        t.component(LiIonBattery, 8),
    ]
    wiring = [(1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (7, 8)]
    return build_topology(t.info(), components, t.connections(wiring))


def energy_of(topology: Topology, store: TelemetryStore) -> EnergySnapshot:
    formulas = CompiledFormulas.from_topology(topology)
    return compute_snapshot(topology, formulas, store, reachable=True).energy


def test_a_grid_of_several_meters_has_no_counter() -> None:
    """Feeder 2 imports 1 kW, feeder 5 exports 4 kW: the site exports 3 kW net.

    Their own counters add 1 kW of import and 4 kW of export: the grid totals
    integrate the net grid power instead.
    """
    topology = two_feeders()
    assert topology.formulas.grid == "#2 + #5"
    store = TelemetryStore(freshness_s=10.0)
    for meter in (2, 5):
        record(store, meter, CONSUMED, 1000.0)
        record(store, meter, DELIVERED, 2000.0)
    record(store, 7, CONSUMED, 300.0)
    record(store, 7, DELIVERED, 400.0)
    record(store, 4, DELIVERED, 9000.0)
    energy = energy_of(topology, store)
    assert (energy.grid_import_wh, energy.grid_export_wh) == (None, None)
    assert energy.grid_meters == frozenset()
    # The pools still sum their members' own counters.
    assert (energy.battery_charge_wh, energy.battery_discharge_wh) == (300.0, 400.0)
    assert energy.pv_production_wh == 9000.0


def test_a_grid_of_one_meter_follows_its_counter() -> None:
    store = TelemetryStore(freshness_s=10.0)
    record(store, t.MAIN_METER, CONSUMED, 5000.0)
    record(store, t.MAIN_METER, DELIVERED, 700.0)
    energy = energy_of(t.home_topology(), store)
    assert (energy.grid_import_wh, energy.grid_export_wh) == (5000.0, 700.0)
    assert energy.grid_meters == frozenset({t.MAIN_METER})


def test_a_total_that_followed_a_meter_sum_continues_from_power() -> None:
    """Stored by a version that summed the feeders: integrated from now on."""
    total = EnergyTotal.from_dict(
        {"total_wh": 800.0, "last_reading_wh": 2000.0, "meters": [2, 5]}
    )
    for second in range(4):
        total.add_power_sample(T0 + timedelta(seconds=second), 3600.0)
    assert total.total_wh == pytest.approx(803.0)


def _seconds(second: float) -> datetime:
    return T0 + timedelta(seconds=second)


def test_a_silent_member_is_bridged_from_power() -> None:
    """One PV inverter of two falls silent for 10 s: the sum is unknown.

    The total keeps counting the pool's power (3600 W: 1 Wh a second) instead of
    standing still, and when the member is back the counter's rise over the gap
    adds only what the power did not already count: no double count, no lump.
    """
    total = EnergyTotal()
    meters = frozenset({21, 22})
    total.add_meter_reading(10_000.0, meters)
    total.add_meter_reading(10_001.0, meters)
    for second in range(2, 12):  # 22 silent: the sum is `None`
        total.add_power_sample(_seconds(second), 3600.0)
    assert total.total_wh == pytest.approx(10_010.0)  # +9 Wh over 9 steps
    total.add_meter_reading(10_012.0, meters)  # back: +11 Wh over the gap
    assert total.total_wh == pytest.approx(10_012.0)  # +2 Wh at the edges
    total.add_meter_reading(10_013.0, meters)
    assert total.total_wh == pytest.approx(10_013.0)


def test_a_bridge_that_counted_ahead_is_paid_back_not_taken_back() -> None:
    """The counter lags the bridge: the total never drops, nor counts twice."""
    total = EnergyTotal()
    total.add_meter_reading(100.0)
    total.add_power_sample(_seconds(0), 36_000.0)
    total.add_power_sample(_seconds(1), 36_000.0)  # +10 Wh bridged
    total.add_meter_reading(104.0)  # the counter rose by 4 Wh so far
    assert total.total_wh == pytest.approx(110.0)  # nothing taken back
    total.add_meter_reading(108.0)  # 6 Wh counted ahead: paid back first
    assert total.total_wh == pytest.approx(110.0)
    total.add_meter_reading(115.0)
    assert total.total_wh == pytest.approx(115.0)  # the meter's total again


def test_a_coarse_counter_after_a_gap_is_not_counted_twice() -> None:
    """1000 Wh, 20 Wh bridged, back at 1000, then 1080: 1080, not 1100 (review)."""
    total = EnergyTotal()
    total.add_meter_reading(1000.0)
    for second in range(21):
        total.add_power_sample(_seconds(second), 3600.0)  # 20 Wh over 20 s
    assert total.total_wh == pytest.approx(1020.0)
    total.add_meter_reading(1000.0)
    assert total.total_wh == pytest.approx(1020.0)
    total.add_meter_reading(1080.0)
    assert total.total_wh == pytest.approx(1080.0)


def test_a_gap_without_power_is_still_counted_by_the_meter() -> None:
    """Unreachable (no power either): the counter's rise is added on return."""
    total = EnergyTotal()
    total.add_meter_reading(100.0)
    total.add_power_sample(_seconds(0), None)
    total.add_meter_reading(150.0)
    assert total.total_wh == pytest.approx(150.0)


def test_the_bridge_survives_a_restart() -> None:
    """Home Assistant restarts while a member is silent: still no double count."""
    total = EnergyTotal()
    total.add_meter_reading(100.0, frozenset({1, 2}))
    total.add_power_sample(_seconds(0), 3600.0)
    total.add_power_sample(_seconds(5), 3600.0)  # +5 Wh bridged
    restored = EnergyTotal.from_dict(total.as_dict())
    assert restored.bridged_wh == pytest.approx(5.0)
    restored.add_meter_reading(107.0, frozenset({1, 2}))  # rose by 7 Wh
    assert restored.total_wh == pytest.approx(107.0)
    assert EnergyTotal.from_dict({"bridged_wh": -3.0}).bridged_wh == 0.0
    assert EnergyTotal.from_dict({}).bridged_wh == 0.0


def test_a_member_set_change_after_a_bridge_rebases() -> None:
    total = EnergyTotal()
    total.add_meter_reading(100.0, frozenset({1}))
    total.add_power_sample(_seconds(0), 3600.0)
    total.add_power_sample(_seconds(2), 3600.0)  # +2 Wh
    total.add_meter_reading(1_000_000.0, frozenset({1, 2}))  # 2 joined
    total.add_meter_reading(1_000_001.0, frozenset({1, 2}))
    assert total.total_wh == pytest.approx(103.0)


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("meter"), st.floats(0, 1e9)),
            st.tuples(st.just("power"), st.one_of(st.none(), st.floats(0, 1e6))),
            st.tuples(st.just("restart"), st.none()),
        ),
        max_size=40,
    )
)
def test_a_bridged_total_never_decreases(
    steps: list[tuple[str, float | None]],
) -> None:
    total = EnergyTotal()
    previous = 0.0
    for i, (kind, value) in enumerate(steps):
        if kind == "meter" and value is not None:
            total.add_meter_reading(value)
        elif kind == "restart":
            total = EnergyTotal.from_dict(total.as_dict())
        else:
            total.add_power_sample(_seconds(i), value)
        current = total.total_wh or 0.0
        assert current >= previous
        assert total.bridged_wh >= 0.0
        previous = current
