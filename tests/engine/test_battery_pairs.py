"""Battery pairs built from telemetry, rebuilt only when their inputs changed.

The cache must never hand out a pair a fresh build would not give: after any
sequence of writes (values, NaN, bounds) and clock moves across the freshness
window, the cached pairs equal a cold build's. And it must actually cache: with
no new data and nothing gone stale, the very same pair object comes back.
"""

from __future__ import annotations

from frequenz.client.microgrid.component import (
    BatteryInverter,
    GridConnectionPoint,
    LiIonBattery,
    Meter,
)
from frequenz.client.microgrid.metrics import Metric
from hypothesis import given, settings, strategies as st

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.control.inputs import BatteryPairs
from custom_components.frequenz_microgrid.engine.graph import Topology, build_topology
from custom_components.frequenz_microgrid.engine.telemetry import TelemetryStore
from tests.observations import record

from .test_telemetry import T0, FakeClock
from .topologies import component, connections, info

GRID, METER, SINGLE_INVERTER, SINGLE_BATTERY = 1, 2, 3, 4
DOUBLE_INVERTER, FIRST_OF_TWO, SECOND_OF_TWO = 5, 6, 7
BATTERIES = frozenset({SINGLE_BATTERY, FIRST_OF_TWO, SECOND_OF_TWO})
FRESHNESS_S = 10.0


def two_inverters() -> Topology:
    """One inverter with one battery, one with two batteries behind it."""
    return build_topology(
        info(),
        [
            component(GridConnectionPoint, GRID, rated_fuse_current=63),
            component(Meter, METER),
            component(BatteryInverter, SINGLE_INVERTER),
            component(LiIonBattery, SINGLE_BATTERY),
            component(BatteryInverter, DOUBLE_INVERTER),
            component(LiIonBattery, FIRST_OF_TWO),
            component(LiIonBattery, SECOND_OF_TWO),
        ],
        connections(
            [
                (GRID, METER),
                (METER, SINGLE_INVERTER),
                (SINGLE_INVERTER, SINGLE_BATTERY),
                (METER, DOUBLE_INVERTER),
                (DOUBLE_INVERTER, FIRST_OF_TWO),
                (DOUBLE_INVERTER, SECOND_OF_TWO),
            ]
        ),
    )


def fill(store: TelemetryStore) -> None:
    """Complete, plausible data for every inverter and battery."""
    for inverter in (SINGLE_INVERTER, DOUBLE_INVERTER):
        record(
            store,
            inverter,
            Metric.AC_POWER_ACTIVE,
            0.0,
            PowerBounds(-10_000.0, 10_000.0),
        )
    for battery in BATTERIES:
        record(store, battery, Metric.BATTERY_CAPACITY, 20_000.0)
        record(store, battery, Metric.BATTERY_SOC_PCT, 50.0, PowerBounds(10.0, 90.0))
        record(
            store,
            battery,
            Metric.DC_POWER,
            0.0,
            PowerBounds(-8_000.0, 8_000.0, -500.0, 500.0),
        )


def make_pairs() -> tuple[FakeClock, TelemetryStore, Topology, BatteryPairs]:
    clock = FakeClock()
    store = TelemetryStore(freshness_s=FRESHNESS_S, clock=clock, wall_clock=lambda: T0)
    topology = two_inverters()
    fill(store)
    return clock, store, topology, BatteryPairs(topology, store)


def test_unchanged_telemetry_gives_the_same_pair_object() -> None:
    clock, _, _, pairs = make_pairs()
    first, _ = pairs.usable(BATTERIES, BATTERIES)
    clock.now += FRESHNESS_S / 2
    again, _ = pairs.usable(BATTERIES, BATTERIES)
    assert len(first) == 2
    assert all(a is b for a, b in zip(first, again, strict=True))


def test_a_write_to_one_battery_rebuilds_only_its_pair() -> None:
    _, store, _, pairs = make_pairs()
    (single, double), _ = pairs.usable(BATTERIES, BATTERIES)
    record(store, SECOND_OF_TWO, Metric.BATTERY_SOC_PCT, 70.0, PowerBounds(10.0, 90.0))
    (single_after, double_after), _ = pairs.usable(BATTERIES, BATTERIES)
    assert single_after is single
    assert double_after is not double
    assert double_after.soc_pct == 60.0  # (50 + 70) / 2, equal capacities


def test_a_pair_goes_when_its_data_turns_stale_without_new_data() -> None:
    clock, _, _, pairs = make_pairs()
    assert len(pairs.usable(BATTERIES, BATTERIES)[0]) == 2
    clock.now += FRESHNESS_S + 0.001
    assert pairs.usable(BATTERIES, BATTERIES)[0] == []


_COMPONENTS = (SINGLE_INVERTER, DOUBLE_INVERTER, *sorted(BATTERIES))
_METRICS = (
    Metric.AC_POWER_ACTIVE,
    Metric.BATTERY_CAPACITY,
    Metric.BATTERY_SOC_PCT,
    Metric.DC_POWER,
)
_write = st.tuples(
    st.just("write"),
    st.sampled_from(_COMPONENTS),
    st.sampled_from(_METRICS),
    st.one_of(st.floats(-5_000.0, 5_000.0), st.just(float("nan"))),
    st.one_of(
        st.none(),
        st.tuples(st.floats(-9_000.0, 0.0), st.floats(0.0, 9_000.0)).map(
            lambda b: PowerBounds(*b)
        ),
    ),
)
_wait = st.tuples(st.just("wait"), st.floats(0.0, 2 * FRESHNESS_S))


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(st.one_of(_write, _wait), max_size=40),
    requested=st.sets(st.sampled_from(sorted(BATTERIES)), min_size=1),
    working=st.sets(st.sampled_from(sorted(BATTERIES))),
)
def test_cached_pairs_always_equal_a_fresh_build(
    steps: list[tuple[object, ...]], requested: set[int], working: set[int]
) -> None:
    clock, store, topology, pairs = make_pairs()
    for step in steps:
        if step[0] == "wait":
            clock.now += step[1]  # type: ignore[operator]
        else:
            _, cid, metric, value, bounds = step
            record(store, cid, metric, value, bounds)  # type: ignore[arg-type]
        for wanted, usable in (
            (BATTERIES, BATTERIES),
            (frozenset(requested), frozenset(working)),
        ):
            cached = pairs.usable(wanted, usable)
            cold = BatteryPairs(topology, store).usable(wanted, usable)
            assert repr(cached) == repr(cold)  # repr: NaN equals NaN
