"""Pool metrics over the home topology, values computed by hand (spec §5)."""

from __future__ import annotations

from datetime import UTC, datetime

from frequenz.client.microgrid.component import ComponentErrorCode, ComponentStateCode
from frequenz.client.microgrid.metrics import Metric
from hypothesis import example, given, settings, strategies as st
import pytest

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.formula import compile_formula
from custom_components.frequenz_microgrid.engine.pools import (
    CompiledFormulas,
    PairBoundsCache,
    PairedFormula,
    component_snapshots,
    compute_snapshot,
    snapshot_from_components,
)
from custom_components.frequenz_microgrid.engine.snapshot import MicrogridSnapshot
from custom_components.frequenz_microgrid.engine.telemetry import TelemetryStore
from custom_components.frequenz_microgrid.engine.telemetry_message import (
    TelemetryMessage,
)
from tests.engine import topologies as t
from tests.observations import record, record_state

POWER = Metric.AC_POWER_ACTIVE
SOC = Metric.BATTERY_SOC_PCT
CAPACITY = Metric.BATTERY_CAPACITY
PHASES = (
    Metric.AC_CURRENT_PHASE_1,
    Metric.AC_CURRENT_PHASE_2,
    Metric.AC_CURRENT_PHASE_3,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> TelemetryStore:
    return TelemetryStore(freshness_s=10.0, clock=clock)


def snapshot_of(store: TelemetryStore) -> MicrogridSnapshot:
    topology = t.home_topology()
    return compute_snapshot(
        topology, CompiledFormulas.from_topology(topology), store, reachable=True
    )


def feed_batteries(store: TelemetryStore) -> None:
    """Battery A: 10 kWh, window 10–90 %, at 50 %; B: 5 kWh, 0–100 %, at 20 %."""
    record(store, t.BATTERY_A, SOC, 50.0, bounds=PowerBounds(10.0, 90.0))
    record(store, t.BATTERY_A, CAPACITY, 10_000.0)
    record(
        store,
        t.BATTERY_A,
        Metric.DC_POWER,
        1.0,
        bounds=PowerBounds.from_ranges([(-5000, -100), (100, 5000)]),
    )
    record(store, t.BATTERY_B, SOC, 20.0)
    record(store, t.BATTERY_B, CAPACITY, 5_000.0)
    record(store, t.BATTERY_B, Metric.DC_POWER, 1.0, bounds=PowerBounds(-3000, 3000))
    for battery in (t.BATTERY_A, t.BATTERY_B):
        record_state(store, battery, [ComponentStateCode.READY])
    record(store, t.INVERTER_A, POWER, 800.0, bounds=PowerBounds(-4000, 4000))
    record(
        store,
        t.INVERTER_B,
        POWER,
        700.0,
        bounds=PowerBounds.from_ranges([(-3500, -200), (200, 3500)]),
    )


def test_battery_pool_soc_is_usable_capacity_weighted_in_the_soc_window(
    store: TelemetryStore,
) -> None:
    feed_batteries(store)
    pool = snapshot_of(store).battery
    # A: usable 10000·80 %, at (50−10)/80 = 50 %; B: usable 5000·100 %, at 20 %.
    assert pool.soc_pct == pytest.approx((8000 * 50 + 5000 * 20) / 13000)
    assert pool.usable_capacity_wh == pytest.approx(13_000.0)
    assert pool.power_w == 1500.0


def test_battery_pool_bounds_intersect_each_pair_then_add_up(
    store: TelemetryStore,
) -> None:
    feed_batteries(store)
    # A: battery ±5000 excl ±100, inverter ±4000 → ±4000 excl ±100.
    # B: battery ±3000, inverter ±3500 excl ±200 → ±3000 excl ±200.
    assert snapshot_of(store).battery.bounds == PowerBounds(-7000, 7000, -300, 300)


def test_pair_bounds_kept_between_snapshots_follow_every_change(
    clock: FakeClock, store: TelemetryStore
) -> None:
    """A cached pair is reused only while its components are the same objects."""
    topology = t.home_topology()
    formulas = CompiledFormulas.from_topology(topology)
    cache = PairBoundsCache()

    def bounds() -> PowerBounds | None:
        components = component_snapshots(store, store.component_ids)
        cached = snapshot_from_components(
            topology, formulas, components, reachable=True, pair_cache=cache
        )
        fresh = snapshot_from_components(topology, formulas, components, reachable=True)
        assert cached.battery.bounds == fresh.battery.bounds
        return cached.battery.bounds

    feed_batteries(store)
    assert bounds() == PowerBounds(-7000, 7000, -300, 300)
    assert bounds() == PowerBounds(-7000, 7000, -300, 300)  # from the cache
    record(store, t.INVERTER_A, POWER, 800.0, bounds=PowerBounds(-2000, 2000))
    assert bounds() == PowerBounds(-5000, 5000, -300, 300)
    record(store, t.BATTERY_B, Metric.DC_POWER, 1.0, bounds=PowerBounds(-1000, 1000))
    assert bounds() == PowerBounds(-3000, 3000, -300, 300)
    record_state(store, t.INVERTER_A, [ComponentStateCode.ERROR])
    assert bounds() == PowerBounds(-1000, 1000, -200, 200)


def test_pool_figures_kept_between_snapshots_follow_every_change(
    clock: FakeClock, store: TelemetryStore
) -> None:
    """The pool's SoC, capacity and bounds are reused only while nothing changed.

    Each step changes one input of one battery or inverter (or lets everything
    go stale): the kept figures must follow, equal to figures computed afresh.
    """
    topology = t.home_topology()
    formulas = CompiledFormulas.from_topology(topology)
    cache = PairBoundsCache()

    def pool() -> tuple[float | None, float | None, PowerBounds | None]:
        components = component_snapshots(store, store.component_ids)
        cached = snapshot_from_components(
            topology, formulas, components, reachable=True, pair_cache=cache
        ).battery
        fresh = snapshot_from_components(
            topology, formulas, components, reachable=True
        ).battery
        assert cached == fresh
        return (cached.soc_pct, cached.usable_capacity_wh, cached.bounds)

    feed_batteries(store)
    first = pool()
    assert pool() == first  # from the cache
    record(store, t.BATTERY_A, SOC, 70.0)
    moved = pool()
    assert moved[0] != first[0]
    record(store, t.BATTERY_B, CAPACITY, 20_000.0)
    grown = pool()
    assert grown[1] != moved[1]
    record(store, t.INVERTER_B, POWER, 100.0, bounds=PowerBounds(-500, 500))
    assert pool()[2] != grown[2]
    record_state(store, t.BATTERY_B, [ComponentStateCode.ERROR])
    assert pool()[1] == pytest.approx(8000.0)
    clock.now += 11.0  # everything goes stale
    assert pool() == (None, None, None)


def test_a_battery_in_error_or_silent_drops_out_of_the_pool(
    clock: FakeClock, store: TelemetryStore
) -> None:
    feed_batteries(store)
    record_state(
        store,
        t.BATTERY_B,
        [ComponentStateCode.ERROR],
        errors=[ComponentErrorCode.OVERCURRENT],
    )
    pool = snapshot_of(store).battery
    assert pool.soc_pct == pytest.approx(50.0)
    assert pool.usable_capacity_wh == pytest.approx(8000.0)
    assert pool.bounds == PowerBounds(-4000, 4000, -100, 100)

    clock.now += 11.0  # everything goes silent
    pool = snapshot_of(store).battery
    assert pool.soc_pct is None
    assert pool.usable_capacity_wh is None
    assert pool.power_w is None
    assert pool.bounds is None


def test_a_silent_inverter_removes_its_pair_from_the_bounds(
    clock: FakeClock, store: TelemetryStore
) -> None:
    feed_batteries(store)
    clock.now += 6.0
    for battery in (t.BATTERY_A, t.BATTERY_B):
        record(store, battery, SOC, 50.0)
        record(store, battery, CAPACITY, 10_000.0)
        record(store, battery, Metric.DC_POWER, 1.0, bounds=PowerBounds(-3000, 3000))
    record(store, t.INVERTER_B, POWER, 700.0, bounds=PowerBounds(-1000, 1000))
    clock.now += 5.0  # inverter A last spoke 11 s ago
    pool = snapshot_of(store).battery
    assert pool.bounds == PowerBounds(-1000, 1000)
    # The battery meter is silent too, so the power is what is left of the inverters.
    assert pool.power_w == 700.0


def test_pool_powers_and_currents_follow_the_graph_formulas(
    clock: FakeClock, store: TelemetryStore
) -> None:
    readings = {
        t.MAIN_METER: (2000.0, (10.0, 8.0, 9.0)),
        t.BATTERY_METER: (1500.0, (2.0, 2.0, 2.0)),
        t.INVERTER_A: (800.0, (1.0, 1.0, 1.0)),
        t.INVERTER_B: (700.0, (1.0, 1.0, 1.0)),
        t.PV_METER: (-3100.0, (-4.5, -4.5, -4.5)),
        t.PV_INVERTER: (-3000.0, (-4.4, -4.4, -4.4)),
        t.EV_CHARGER: (2200.0, (9.6, 0.0, 0.0)),
    }
    for cid, (power, currents) in readings.items():
        record(store, cid, POWER, power)
        for phase, current in zip(PHASES, currents, strict=True):
            record(store, cid, phase, current)
    snap = snapshot_of(store)
    assert snap.grid_power_w == 2000.0
    assert snap.grid_current_a == (10.0, 8.0, 9.0)
    assert snap.battery.power_w == 1500.0
    assert snap.pv_power_w == -3000.0
    assert snap.producer_power_w == -3000.0
    assert snap.ev_power_w == 2200.0
    assert snap.ev_current_a == (9.6, 0.0, 0.0)
    assert snap.consumer_power_w == pytest.approx(2000.0 - 1500.0 + 3100.0 - 2200.0)
    assert snap.reachable
    component = snap.component(t.EV_CHARGER)
    assert component is not None
    assert component.value(POWER) == 2200.0

    clock.now += 11.0
    snap = snapshot_of(store)
    assert snap.grid_power_w is None
    assert snap.ev_power_w is None
    assert snap.ev_current_a == (None, None, None)
    assert snap.pv_power_w is None
    assert snap.consumer_power_w is None


def test_energy_counters_need_every_member(store: TelemetryStore) -> None:
    consumed, delivered = (
        Metric.AC_ENERGY_ACTIVE_CONSUMED,
        Metric.AC_ENERGY_ACTIVE_DELIVERED,
    )
    record(store, t.MAIN_METER, consumed, 5000.0)
    record(store, t.MAIN_METER, delivered, 700.0)
    record(store, t.INVERTER_A, consumed, 100.0)
    record(store, t.INVERTER_A, delivered, 90.0)
    record(store, t.INVERTER_B, consumed, 50.0)
    record(store, t.PV_INVERTER, delivered, 12_000.0)
    energy = snapshot_of(store).energy
    assert energy.grid_import_wh == 5000.0
    assert energy.grid_export_wh == 700.0
    assert energy.battery_charge_wh == 150.0
    assert energy.battery_discharge_wh is None  # inverter B sends no delivered
    assert energy.pv_production_wh == 12_000.0
    assert energy.ev_charging_wh is None  # the EV charger sends no counter


def _power_message(component_id: int, watts: float, sampled_s: int) -> TelemetryMessage:
    return TelemetryMessage(
        component_id, [(Metric.AC_POWER_ACTIVE, watts, ())], sampled_at=sampled_s
    )


def test_a_formula_that_subtracts_meters_pairs_readings_of_one_instant() -> None:
    """Consumption = grid meter − battery meter, while the battery ramps up.

    The grid meter's round 101 (battery now at 30 kW) has arrived, the battery
    meter's not yet: the latest values would show 30 kW of consumption that never
    happened; the paired value is round 100's, until round 101 is complete.
    """
    wall = datetime.fromtimestamp(105.0, UTC)
    store = TelemetryStore(wall_clock=lambda: wall)
    consumer = PairedFormula(compile_formula("#2 - #10"), store, Metric.AC_POWER_ACTIVE)
    for message in (
        _power_message(2, 5_000.0, 100),
        _power_message(10, 0.0, 100),
        _power_message(2, 35_000.0, 101),
    ):
        store.ingest_message(message)

    latest = compile_formula("#2 - #10").evaluate(
        store.fresh_values(Metric.AC_POWER_ACTIVE)
    )
    assert latest == 35_000.0  # the made-up spike
    assert consumer.evaluate(store) == 5_000.0
    store.ingest_message(_power_message(10, 30_000.0, 101))
    assert consumer.evaluate(store) == 5_000.0


def _paired_by_scanning(
    formula_text: str, store: TelemetryStore, metric: Metric
) -> float | None:
    """The pairing rule spelled out: newest shared instant, scanning every time."""
    formula = compile_formula(formula_text)
    since = store.wall_time_s() - store.freshness_s
    histories = [
        (cid, history)
        for cid in formula.component_ids
        if (history := store.history(cid)) is not None and history.times()
    ]
    times = sorted(
        {at for _, history in histories for at in history.times() if at >= since},
        reverse=True,
    )
    for sampled in times:
        values: dict[int, float] = {}
        for cid, history in histories:
            found = history.at(sampled)
            if found is None or metric not in found:
                break
            values[cid] = found[metric]
        else:
            return formula.evaluate(values)
    return None


_PAIRED_MEMBERS = (2, 10)


@settings(max_examples=300, deadline=None)
@example(
    messages=[
        (cid, sampled_s, Metric.AC_POWER_ACTIVE, float(cid * sampled_s))
        for sampled_s in (100, 101)
        for cid in _PAIRED_MEMBERS
    ],
    now_s=105,
)
@given(
    messages=st.lists(
        st.tuples(
            st.sampled_from(_PAIRED_MEMBERS),
            st.integers(min_value=97, max_value=102),
            st.sampled_from([Metric.AC_POWER_ACTIVE, Metric.AC_CURRENT_PHASE_1]),
            st.floats(min_value=-1e5, max_value=1e5),
        ),
        max_size=40,
    ),
    now_s=st.integers(min_value=104, max_value=114),
)
def test_a_paired_formula_takes_the_newest_instant_every_member_shares(
    messages: list[tuple[int, int, Metric, float]], now_s: int
) -> None:
    """Whatever arrived in whatever order: the newest fresh instant all share."""
    wall = datetime.fromtimestamp(now_s, UTC)
    store = TelemetryStore(wall_clock=lambda: wall)
    text = "#2 - #10"
    consumer = PairedFormula(compile_formula(text), store, Metric.AC_POWER_ACTIVE)
    store.keep_history(_PAIRED_MEMBERS, (Metric.AC_CURRENT_PHASE_1,), depth=4)
    for component_id, sampled_s, metric, value in messages:
        store.ingest_message(
            TelemetryMessage(component_id, [(metric, value, ())], sampled_at=sampled_s)
        )
        assert consumer.evaluate(store) == _paired_by_scanning(
            text, store, Metric.AC_POWER_ACTIVE
        )
