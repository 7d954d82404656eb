"""Telemetry store: latest value per metric, bounds, states and freshness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid.component import (
    ComponentDataSamples,
    ComponentErrorCode,
    ComponentStateCode,
    ComponentStateSample,
)
from frequenz.client.microgrid.metrics import Bounds, Metric, MetricSample

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.telemetry import TelemetryStore

POWER = Metric.AC_POWER_ACTIVE
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_store(clock: FakeClock) -> TelemetryStore:
    return TelemetryStore(freshness_s=10.0, clock=clock, wall_clock=lambda: T0)


def test_latest_value_wins_and_expires_after_the_freshness_window() -> None:
    clock = FakeClock()
    store = make_store(clock)
    store.record(4, POWER, 100.0)
    store.record(4, POWER, 250.0)
    assert store.value(4, POWER) == 250.0
    clock.now += 10.0
    assert store.value(4, POWER) == 250.0
    assert store.is_fresh(4)
    clock.now += 0.5
    assert store.value(4, POWER) is None
    assert not store.is_fresh(4)
    assert store.age_s(4) == 10.5
    assert store.fresh_values(POWER) == {}


def test_each_metric_ages_on_its_own() -> None:
    clock = FakeClock()
    store = make_store(clock)
    store.record(4, POWER, 100.0)
    clock.now += 8.0
    store.record(4, Metric.AC_CURRENT_PHASE_1, 2.0)
    clock.now += 5.0
    assert store.value(4, POWER) is None
    assert store.value(4, Metric.AC_CURRENT_PHASE_1) == 2.0
    assert store.is_fresh(4)


def test_nan_replaces_the_previous_value_with_no_value() -> None:
    clock = FakeClock()
    store = make_store(clock)
    store.record(4, POWER, 100.0)
    store.record(4, POWER, float("nan"))
    assert store.value(4, POWER) is None
    assert store.fresh_values(POWER) == {}
    snapshot = store.component_snapshot(4)
    assert snapshot is not None
    assert POWER not in snapshot.metrics
    assert snapshot.fresh


def test_unknown_component_has_nothing() -> None:
    store = make_store(FakeClock())
    assert store.value(99, POWER) is None
    assert store.age_s(99) is None
    assert store.component_snapshot(99) is None
    assert store.last_arrival_age_s() is None


def test_ingest_keeps_values_bounds_and_latest_states() -> None:
    clock = FakeClock()
    store = make_store(clock)
    samples = ComponentDataSamples(
        component_id=ComponentId(4),
        metric_samples=[
            MetricSample(
                sampled_at=T0,
                metric=POWER,
                value=-1500.0,
                bounds=[Bounds(lower=-5000, upper=-100), Bounds(lower=100, upper=5000)],
            ),
            MetricSample(
                sampled_at=T0, metric=Metric.AC_FREQUENCY, value=None, bounds=[]
            ),
        ],
        states=[
            ComponentStateSample(
                sampled_at=T0,
                states=frozenset({ComponentStateCode.ERROR}),
                warnings=frozenset(),
                errors=frozenset({ComponentErrorCode.OVERCURRENT}),
            ),
            ComponentStateSample(
                sampled_at=T0 + timedelta(seconds=1),
                states=frozenset({ComponentStateCode.READY}),
                warnings=frozenset({ComponentErrorCode.OVERTEMPERATURE}),
                errors=frozenset(),
            ),
        ],
    )
    store.ingest(samples)
    assert store.value(4, POWER) == -1500.0
    assert store.value(4, Metric.AC_FREQUENCY) is None
    assert store.bounds(4, POWER) == PowerBounds(-5000.0, 5000.0, -100.0, 100.0)
    snapshot = store.component_snapshot(4)
    assert snapshot is not None
    assert snapshot.states == {ComponentStateCode.READY}
    assert snapshot.warnings == {ComponentErrorCode.OVERTEMPERATURE}
    assert snapshot.errors == frozenset()
    assert snapshot.bounds[POWER] == PowerBounds(-5000.0, 5000.0, -100.0, 100.0)
    assert snapshot.last_seen == T0


def test_a_stale_component_snapshot_has_no_values_and_no_states() -> None:
    clock = FakeClock()
    store = make_store(clock)
    store.record(4, POWER, 100.0, bounds=PowerBounds(-10.0, 10.0))
    store.record_state(4, [ComponentStateCode.READY])
    clock.now += 11.0
    snapshot = store.component_snapshot(4)
    assert snapshot is not None
    assert not snapshot.fresh
    assert snapshot.metrics == {}
    assert snapshot.bounds == {}
    assert snapshot.states == frozenset()
    assert store.bounds(4, POWER) is None
    assert store.last_arrival_age_s() == 11.0
