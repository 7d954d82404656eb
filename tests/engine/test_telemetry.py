"""Telemetry store: latest value per metric, bounds, states and freshness.

Also the fast protobuf decoding the store is fed with, checked against the client
library's own conversion (the oracle) on generated messages.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
import math

from frequenz.api.common.v1alpha8.metrics import bounds_pb2, metrics_pb2
from frequenz.api.common.v1alpha8.microgrid.electrical_components import (
    electrical_components_pb2 as components_pb2,
)
from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid.component import (
    ComponentDataSamples,
    ComponentErrorCode,
    ComponentStateCode,
    ComponentStateSample,
)
from frequenz.client.microgrid.component._data_samples_proto import (
    component_data_samples_from_proto,
)
from frequenz.client.microgrid.metrics import Bounds, Metric, MetricSample
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings, strategies as st
import pytest

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.monitor import (
    BATTERY_METRICS,
    INVERTER_METRICS,
)
from custom_components.frequenz_microgrid.engine.telemetry import TelemetryStore
from custom_components.frequenz_microgrid.engine.telemetry_message import (
    TelemetryMessage,
    telemetry_from_proto,
    telemetry_from_samples,
)
from custom_components.frequenz_microgrid.simulator import (
    load_scenario,
    telemetry as sim_telemetry,
)
from custom_components.frequenz_microgrid.simulator.physics.model import (
    MicrogridModel,
)
from tests.observations import record, record_state

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
    record(store, 4, POWER, 100.0)
    record(store, 4, POWER, 250.0)
    assert store.value(4, POWER) == 250.0
    clock.now += 10.0
    assert store.value(4, POWER) == 250.0
    assert store.is_fresh(4)
    clock.now += 0.5
    assert store.value(4, POWER) is None
    assert not store.is_fresh(4)
    assert store.age_s(4) == 10.5
    assert store.fresh_values(POWER) == {}


def test_the_last_known_bounds_outlive_the_freshness_window() -> None:
    """What a silent component may do (the PV pool counts a silent inverter)."""
    clock = FakeClock()
    store = make_store(clock)
    assert store.last_known_bounds(4, POWER) is None
    record(store, 4, POWER, -1500.0, PowerBounds(-8000.0, 0.0))
    clock.now += 60.0
    assert store.bounds(4, POWER) is None
    assert store.last_known_bounds(4, POWER) == PowerBounds(-8000.0, 0.0)


def test_each_metric_ages_on_its_own() -> None:
    clock = FakeClock()
    store = make_store(clock)
    record(store, 4, POWER, 100.0)
    clock.now += 8.0
    record(store, 4, Metric.AC_CURRENT_PHASE_1, 2.0)
    clock.now += 5.0
    assert store.value(4, POWER) is None
    assert store.value(4, Metric.AC_CURRENT_PHASE_1) == 2.0
    assert store.is_fresh(4)


def test_nan_replaces_the_previous_value_with_no_value() -> None:
    clock = FakeClock()
    store = make_store(clock)
    record(store, 4, POWER, 100.0)
    record(store, 4, POWER, float("nan"))
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
    assert store.last_seen(4) == T0


def test_a_stale_component_snapshot_has_no_values_and_no_states() -> None:
    clock = FakeClock()
    store = make_store(clock)
    record(store, 4, POWER, 100.0, bounds=PowerBounds(-10.0, 10.0))
    record_state(store, 4, [ComponentStateCode.READY])
    clock.now += 11.0
    snapshot = store.component_snapshot(4)
    assert snapshot is not None
    assert not snapshot.fresh
    assert snapshot.metrics == {}
    assert snapshot.bounds == {}
    assert snapshot.states == frozenset()
    assert store.bounds(4, POWER) is None
    assert store.last_arrival_age_s() == 11.0


# --- Decoding protobuf messages ---------------------------------------------------

UNKNOWN_NUMBER = 9_999
"""A metric, state or error number the client's enums do not know."""

_finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
_optional = st.none() | _finite


@st.composite
def metric_samples(draw: st.DrawFn) -> metrics_pb2.MetricSample:
    """A sample with a simple, aggregated or no value and possibly invalid bounds."""
    number = draw(st.sampled_from([*(m.value for m in Metric), UNKNOWN_NUMBER]))
    sample = metrics_pb2.MetricSample(metric=metrics_pb2.Metric.ValueType(number))
    sample.sample_time.FromSeconds(draw(st.integers(0, 2_000_000_000)))
    match draw(st.sampled_from(["simple", "aggregated", "none"])):
        case "simple":
            sample.value.simple_metric.value = draw(_finite)
        case "aggregated":
            aggregated = sample.value.aggregated_metric
            aggregated.avg_value = draw(_finite)
            if (low := draw(_optional)) is not None:
                aggregated.min_value = low
    for lower, upper in draw(st.lists(st.tuples(_optional, _optional), max_size=3)):
        bounds = sample.bounds.add()
        if lower is not None:
            bounds.lower = lower
        if upper is not None:
            bounds.upper = upper
    return sample


_codes = st.lists(st.sampled_from([1, 2, 3, 10, 11, UNKNOWN_NUMBER]), max_size=3)


@st.composite
def state_snapshots(
    draw: st.DrawFn,
) -> components_pb2.ElectricalComponentStateSnapshot:
    """A snapshot at one of few instants (ties happen), with any codes."""
    state = components_pb2.ElectricalComponentStateCode.ValueType
    diagnostic = components_pb2.ElectricalComponentDiagnosticCode.ValueType
    snapshot = components_pb2.ElectricalComponentStateSnapshot(
        states=[state(code) for code in draw(_codes)],
        warnings=[
            components_pb2.ElectricalComponentDiagnostic(
                diagnostic_code=diagnostic(code)
            )
            for code in draw(_codes)
        ],
        errors=[
            components_pb2.ElectricalComponentDiagnostic(
                diagnostic_code=diagnostic(code)
            )
            for code in draw(_codes)
        ],
    )
    snapshot.origin_time.seconds = draw(st.integers(100, 102))
    snapshot.origin_time.nanos = draw(st.sampled_from([0, 500]))
    return snapshot


telemetry_messages = st.builds(
    lambda component_id, samples, snapshots: (
        components_pb2.ElectricalComponentTelemetry(
            electrical_component_id=component_id,
            metric_samples=samples,
            state_snapshots=snapshots,
        )
    ),
    st.integers(1, 10_000),
    st.lists(metric_samples(), max_size=6),
    st.lists(state_snapshots(), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(telemetry_messages)
def test_fast_decoding_equals_the_clients_conversion(
    message: components_pb2.ElectricalComponentTelemetry,
) -> None:
    expected = telemetry_from_samples(component_data_samples_from_proto(message))
    assert telemetry_from_proto(message) == expected


def test_decoding_keeps_what_the_store_needs() -> None:
    message = components_pb2.ElectricalComponentTelemetry(electrical_component_id=7)
    power = message.metric_samples.add(metric=metrics_pb2.METRIC_AC_POWER_ACTIVE)
    power.value.simple_metric.value = -1500.0
    power.bounds.extend(
        [
            bounds_pb2.Bounds(lower=-5000, upper=-100),
            bounds_pb2.Bounds(lower=100, upper=5000),
            bounds_pb2.Bounds(lower=10, upper=1),  # invalid: dropped
            bounds_pb2.Bounds(upper=7000),  # open below
        ]
    )
    soc = message.metric_samples.add(metric=metrics_pb2.METRIC_BATTERY_SOC_PCT)
    soc.value.aggregated_metric.avg_value = 42.0
    soc.value.aggregated_metric.min_value = 40.0
    message.metric_samples.add(metric=metrics_pb2.METRIC_AC_FREQUENCY)  # no value
    unknown = message.metric_samples.add(metric=UNKNOWN_NUMBER)
    unknown.value.simple_metric.value = 1.0
    older = message.state_snapshots.add(states=[UNKNOWN_NUMBER])
    older.origin_time.seconds = 100
    newer = message.state_snapshots.add(
        states=[components_pb2.ELECTRICAL_COMPONENT_STATE_CODE_READY]
    )
    newer.origin_time.seconds = 101
    newer.errors.add(diagnostic_code=UNKNOWN_NUMBER)

    decoded = telemetry_from_proto(message)

    assert decoded.component_id == 7
    assert decoded.readings == [
        (Metric.AC_POWER_ACTIVE, -1500.0, ((-5000, -100), (100, 5000), (None, 7000))),
        (Metric.BATTERY_SOC_PCT, 42.0, ()),
        (UNKNOWN_NUMBER, 1.0, ()),
    ]
    assert decoded.states is not None
    assert decoded.states.states == {ComponentStateCode.READY}
    assert decoded.states.errors == {UNKNOWN_NUMBER}


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_an_infinite_value_is_read_as_no_value(value: float) -> None:
    """Both decoders turn ±inf into NaN, which the store shows as no value."""
    message = components_pb2.ElectricalComponentTelemetry(electrical_component_id=4)
    power = message.metric_samples.add(metric=metrics_pb2.METRIC_AC_POWER_ACTIVE)
    power.value.simple_metric.value = value
    capacity = message.metric_samples.add(metric=metrics_pb2.METRIC_BATTERY_CAPACITY)
    capacity.value.aggregated_metric.avg_value = value
    power.sample_time.seconds = capacity.sample_time.seconds = 100
    for decoded in (
        telemetry_from_proto(message),
        telemetry_from_samples(component_data_samples_from_proto(message)),
    ):
        assert [metric for metric, _, _ in decoded.readings] == [
            Metric.AC_POWER_ACTIVE,
            Metric.BATTERY_CAPACITY,
        ]
        assert all(math.isnan(v) for _, v, _ in decoded.readings)
        store = make_store(FakeClock())
        store.ingest_message(decoded)
        assert store.value(4, Metric.AC_POWER_ACTIVE) is None
        assert store.value(4, Metric.BATTERY_CAPACITY) is None


# --- Ingesting compact messages ---------------------------------------------------


def power_message(
    value: float, *ranges: tuple[float | None, float | None]
) -> TelemetryMessage:
    return TelemetryMessage(component_id=4, readings=[(POWER, value, ranges)])


def test_a_value_after_nan_is_shown_again() -> None:
    store = make_store(FakeClock())
    store.ingest_message(power_message(float("nan")))
    assert store.value(4, POWER) is None
    snapshot = store.component_snapshot(4)
    assert snapshot is not None
    assert snapshot.metrics == {}
    store.ingest_message(power_message(250.0))
    assert store.value(4, POWER) == 250.0
    snapshot = store.component_snapshot(4)
    assert snapshot is not None
    assert snapshot.metrics == {POWER: 250.0}


def test_bounds_follow_the_latest_ranges_and_stay_without_new_ones() -> None:
    store = make_store(FakeClock())
    store.ingest_message(power_message(0.0, (-5000.0, -100.0), (100.0, 5000.0)))
    assert store.bounds(4, POWER) == PowerBounds(-5000.0, 5000.0, -100.0, 100.0)
    store.ingest_message(power_message(0.0, (-3000.0, 3000.0)))
    assert store.bounds(4, POWER) == PowerBounds(-3000.0, 3000.0)
    store.ingest_message(power_message(0.0))  # no bounds sent: the last ones stay
    assert store.bounds(4, POWER) == PowerBounds(-3000.0, 3000.0)
    store.ingest_message(power_message(math.nan, (-1.0, 1.0)))
    assert store.bounds(4, POWER) is None  # no value, no bounds
    snapshot = store.component_snapshot(4)
    assert snapshot is not None
    assert snapshot.bounds == {}


def test_bounds_set_on_a_component_hold_at_once_until_their_validity_ends() -> None:
    """The microgrid reports bounds set on a component only with its next sample."""
    clock = FakeClock()
    store = make_store(clock)
    store.ingest_message(power_message(0.0, (-5000.0, -100.0), (100.0, 5000.0)))
    before = store.component_snapshot(4)
    store.request_bounds(4, POWER, -2000.0, 2000.0, validity_s=60.0)
    narrowed = PowerBounds(-2000.0, 2000.0, -100.0, 100.0)
    assert store.bounds(4, POWER) == narrowed
    snapshot = store.component_snapshot(4)
    assert snapshot is not before  # built anew: pools and steering see it
    assert snapshot is not None
    assert snapshot.bounds[POWER] == narrowed
    # Every set in force holds; the reported bounds narrow them further.
    store.request_bounds(4, POWER, -3000.0, 1000.0, validity_s=10.0)
    store.ingest_message(power_message(0.0, (-5000.0, 800.0)))
    assert store.bounds(4, POWER) == PowerBounds(-2000.0, 800.0)
    clock.now += 10.0
    store.ingest_message(power_message(0.0, (-5000.0, 800.0)))
    assert store.bounds(4, POWER) == PowerBounds(-2000.0, 800.0)
    clock.now += 50.0  # the first set's validity ends: what is reported holds
    store.ingest_message(power_message(0.0, (-5000.0, 800.0)))
    assert store.bounds(4, POWER) == PowerBounds(-5000.0, 800.0)


def test_bounds_set_apart_from_the_reported_ones_allow_only_zero() -> None:
    store = make_store(FakeClock())
    store.ingest_message(power_message(0.0, (-5000.0, 0.0)))
    store.request_bounds(4, POWER, 1000.0, 2000.0, validity_s=60.0)
    assert store.bounds(4, POWER) == PowerBounds.zero()


def test_bounds_set_before_a_component_is_heard_narrow_its_first_bounds() -> None:
    store = make_store(FakeClock())
    store.request_bounds(4, POWER, -1000.0, 1000.0, validity_s=60.0)
    assert store.bounds(4, POWER) is None
    assert store.component_snapshot(4) is None
    store.ingest_message(power_message(0.0, (-5000.0, 5000.0)))
    assert store.bounds(4, POWER) == PowerBounds(-1000.0, 1000.0)


def test_bounds_set_again_only_move_their_end_and_ended_ones_go() -> None:
    """An automation re-setting the same bounds must not pile up requests.

    And a request on a metric the component sends no bounds for ends too, so
    its samples leave the slower path (found by review).
    """
    clock = FakeClock()
    store = make_store(clock)
    store.ingest_message(power_message(0.0, (-5000.0, 5000.0)))
    for _ in range(90):
        clock.now += 10.0
        store.request_bounds(4, POWER, -2000.0, 2000.0, validity_s=900.0)
        store.ingest_message(power_message(0.0, (-5000.0, 5000.0)))
    store.request_bounds(4, Metric.DC_POWER, -1000.0, 1000.0, validity_s=5.0)
    assert store.bounds(4, POWER) == PowerBounds(-2000.0, 2000.0)
    assert [len(r) for r in store._components[4].requested.values()] == [1, 1]
    clock.now += 900.0
    store.ingest_message(power_message(0.0, (-5000.0, 5000.0)))
    assert store.bounds(4, POWER) == PowerBounds(-5000.0, 5000.0)
    assert store._components[4].requested == {}


def test_an_unknown_metric_is_kept_but_not_in_the_snapshot() -> None:
    clock = FakeClock()
    store = make_store(clock)
    store.ingest_message(
        TelemetryMessage(4, [(UNKNOWN_NUMBER, 1.0, ()), (POWER, 5.0, ())])
    )
    assert store.value(4, UNKNOWN_NUMBER) == 1.0
    snapshot = store.component_snapshot(4)
    assert snapshot is not None
    assert snapshot.metrics == {POWER: 5.0}
    clock.now += 8.0
    store.ingest_message(power_message(6.0))  # the unknown one ages
    clock.now += 5.0
    snapshot = store.component_snapshot(4)
    assert snapshot is not None
    assert snapshot.metrics == {POWER: 6.0}
    assert store.value(4, UNKNOWN_NUMBER) is None


def _current_message(
    component_id: int, amperes: float, sampled_s: int
) -> components_pb2.ElectricalComponentTelemetry:
    message = components_pb2.ElectricalComponentTelemetry(
        electrical_component_id=component_id
    )
    sample = message.metric_samples.add(metric=metrics_pb2.METRIC_AC_CURRENT_PHASE_1)
    sample.value.simple_metric.value = amperes
    sample.sample_time.seconds = sampled_s
    return message


def test_values_keep_their_sample_time_and_a_kept_history_pairs_rounds() -> None:
    wall = datetime(2026, 1, 1, tzinfo=UTC)
    store = TelemetryStore(wall_clock=lambda: wall)
    store.keep_history([2], [Metric.AC_CURRENT_PHASE_1], depth=2)
    for sampled_s, amperes in ((100, 10.0), (101, 11.0), (102, 12.0)):
        store.ingest_message(
            telemetry_from_proto(_current_message(2, amperes, sampled_s))
        )
    store.ingest_message(telemetry_from_proto(_current_message(3, 5.0, 0)))  # no time

    view = store.fresh_view()
    assert view.sampled_at(2, Metric.AC_CURRENT_PHASE_1) == 102.0
    assert view.sampled_at(3, Metric.AC_CURRENT_PHASE_1) == wall.timestamp()
    assert view.sampled_value(2, Metric.AC_CURRENT_PHASE_1) == (12.0, 102.0)
    assert view.sampled_value(2, Metric.AC_CURRENT_PHASE_2) is None  # never sent
    assert view.sampled_value(9, Metric.AC_CURRENT_PHASE_1) is None  # unknown
    history = store.history(2)
    assert history is not None
    assert history.times() == [102.0, 101.0]  # the newest two
    assert history.at(101.0) == {Metric.AC_CURRENT_PHASE_1: 11.0}
    assert store.history(3) is None


def test_a_history_kept_for_two_users_keeps_what_both_asked_for() -> None:
    store = TelemetryStore()
    store.keep_history([2], [Metric.AC_POWER_ACTIVE])
    store.keep_history([2], [Metric.AC_CURRENT_PHASE_1])
    store.ingest_message(telemetry_from_proto(_current_message(2, 7.0, 100)))
    history = store.history(2)
    assert history is not None
    assert history.at(100.0) == {Metric.AC_CURRENT_PHASE_1: 7.0}


def test_a_repeated_message_keeps_the_revision_and_the_snapshot_object() -> None:
    clock = FakeClock()
    store = make_store(clock)
    record(store, 4, POWER, 100.0, bounds=PowerBounds(-10.0, 10.0))
    record_state(store, 4, [ComponentStateCode.READY])
    revision = store.fresh_view().revision(4)
    first = store.component_snapshot(4)
    clock.now += 1.0
    record(store, 4, POWER, 100.0, bounds=PowerBounds(-10.0, 10.0))
    record_state(store, 4, [ComponentStateCode.READY])
    assert store.fresh_view().revision(4) == revision
    assert store.component_snapshot(4) is first


@pytest.mark.parametrize(
    "change",
    ["value", "bounds", "states", "new metric", "nan"],
)
def test_any_change_gives_a_new_revision_and_snapshot(change: str) -> None:
    clock = FakeClock()
    store = make_store(clock)
    record(store, 4, POWER, 100.0, bounds=PowerBounds(-10.0, 10.0))
    record_state(store, 4, [ComponentStateCode.READY])
    revision = store.fresh_view().revision(4)
    first = store.component_snapshot(4)
    assert first is not None
    if change == "value":
        record(store, 4, POWER, 101.0, bounds=PowerBounds(-10.0, 10.0))
    elif change == "bounds":
        record(store, 4, POWER, 100.0, bounds=PowerBounds(-20.0, 10.0))
    elif change == "states":
        record_state(store, 4, [ComponentStateCode.ERROR])
    elif change == "new metric":
        record(store, 4, Metric.AC_CURRENT_PHASE_1, 2.0)
    else:
        record(store, 4, POWER, math.nan)
    assert store.fresh_view().revision(4) != revision
    second = store.component_snapshot(4)
    assert second is not first
    assert second == store.component_snapshot(4)  # and built as before


def test_a_kept_snapshot_still_goes_stale_and_fresh_again() -> None:
    """Reuse never outlives freshness: a repeated value after a gap is news."""
    clock = FakeClock()
    store = make_store(clock)
    record(store, 4, POWER, 100.0)
    assert store.component_snapshot(4) is not None
    clock.now += 10.5  # silent: the value is stale now
    stale = store.component_snapshot(4)
    assert stale is not None
    assert stale.metrics == {}
    assert not stale.fresh
    revision = store.fresh_view().revision(4)
    record(store, 4, POWER, 100.0)  # the same value, fresh again
    assert store.fresh_view().revision(4) != revision
    fresh = store.component_snapshot(4)
    assert fresh is not None
    assert fresh.metrics == {POWER: 100.0}
    assert fresh.fresh


def test_a_value_kept_fresh_by_repeats_is_never_stale_in_the_snapshot() -> None:
    clock = FakeClock()
    store = make_store(clock)
    record(store, 4, POWER, 100.0)
    for _ in range(30):  # 30 s of the same value, once a second
        clock.now += 1.0
        record(store, 4, POWER, 100.0)
        snapshot = store.component_snapshot(4)
        assert snapshot is not None
        assert snapshot.metrics == {POWER: 100.0}
        assert snapshot.fresh


_SNAPSHOT_METRICS = (POWER, Metric.AC_CURRENT_PHASE_1, Metric.DC_POWER)
_SNAPSHOT_RANGES: tuple[tuple[tuple[float, float], ...], ...] = (
    (),
    ((0.0, 5.0),),
    ((-1.0, 1.0),),
)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=6.0),  # seconds before the message
            st.lists(
                st.tuples(
                    st.sampled_from(_SNAPSHOT_METRICS),
                    st.sampled_from([1.0, 2.0, math.nan]),
                    st.sampled_from(_SNAPSHOT_RANGES),
                ),
                max_size=4,  # a metric may come twice, or not at all
            ),
        ),
        max_size=25,
    )
)
def test_a_snapshot_shows_each_metrics_latest_fresh_value(
    steps: list[
        tuple[float, list[tuple[Metric, float, tuple[tuple[float, float], ...]]]]
    ],
) -> None:
    """Whatever subsets of metrics arrive when: exactly the fresh, non-NaN ones.

    With the latest bounds sent for each of them. Spelled out from the messages
    alone, against the store's shortcuts (reused snapshots and bounds, readings
    known to have arrived all at once).
    """
    clock = FakeClock()
    store = make_store(clock)
    latest: dict[Metric, tuple[float, float]] = {}  # metric → (value, arrival)
    ranges_sent: dict[Metric, tuple[tuple[float, float], ...]] = {}
    for pause_s, readings in steps:
        clock.now += pause_s
        store.ingest_message(TelemetryMessage(4, list(readings)))
        for metric, value, ranges in readings:
            latest[metric] = (value, clock.now)
            if ranges:
                ranges_sent[metric] = ranges
        for later_s in (0.0, 4.0):  # as sent, and once more after a silence
            clock.now += later_s
            snapshot = store.component_snapshot(4)
            assert snapshot is not None
            shown = {
                metric: value
                for metric, (value, arrived) in latest.items()
                if clock.now - arrived <= 10.0 and not math.isnan(value)
            }
            assert snapshot.metrics == shown
            assert snapshot.bounds == {
                metric: PowerBounds.from_ranges(ranges_sent[metric])
                for metric in shown
                if metric in ranges_sent
            }


@pytest.mark.parametrize("scenario", ["home", "depot"])
def test_the_simulators_messages_decode_as_the_client_decodes_them(
    scenario: str,
) -> None:
    """Every component's real messages, as streamed and with faults, both ways.

    The monitor's metric filter and one asking for metrics the component lacks
    (left out), NaN and infinite values, a warning, an error, a sample time
    with nanoseconds; serialised and parsed as gRPC hands them over.
    """
    model = MicrogridModel(load_scenario(scenario))
    model.advance_to(45.0)  # EVs arrived, batteries and PV under way
    sample_time = Timestamp(seconds=1_764_000_123, nanos=987_654_321)
    every_metric = [metric.value for metric in Metric]
    decoded = 0
    for component_id in model.components:
        reading = sim_telemetry.readings(model, component_id)
        faulty = dataclasses.replace(
            reading,
            errors=(components_pb2.ELECTRICAL_COMPONENT_DIAGNOSTIC_CODE_OVERCURRENT,),
        )
        for shown, metrics, faults in (
            (reading, [], {}),
            (reading, [m.value for m in INVERTER_METRICS + BATTERY_METRICS], {}),
            (reading, every_metric, {"nan": True}),
            (reading, [], {"inf": True}),
            (faulty, [], {"warning": True}),
        ):
            message = sim_telemetry.telemetry_message(
                shown, metrics, sample_time, **faults
            )
            wire = components_pb2.ElectricalComponentTelemetry.FromString(
                message.SerializeToString()
            )
            ours = telemetry_from_proto(wire)
            assert ours == telemetry_from_samples(
                component_data_samples_from_proto(wire)
            )
            assert ours.sampled_at == 1_764_000_123.987654
            decoded += len(ours.readings)
    assert decoded > 100


@settings(max_examples=300, deadline=None)
@given(
    messages=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=8),  # sample time
            st.sampled_from([POWER, Metric.AC_CURRENT_PHASE_1, Metric.DC_POWER]),
            st.floats(min_value=-10.0, max_value=10.0),
        ),
        max_size=30,
    )
)
def test_a_history_keeps_the_newest_samples_of_its_metrics(
    messages: list[tuple[int, Metric, float]],
) -> None:
    """The newest `depth` sample times with a watched value, late ones included."""
    store = make_store(FakeClock())
    store.keep_history([4], (POWER, Metric.AC_CURRENT_PHASE_1), depth=3)
    expected: dict[float, dict[Metric | int, float]] = {}
    for sampled_s, metric, value in messages:
        store.ingest_message(
            TelemetryMessage(4, [(metric, value, ())], sampled_at=float(sampled_s))
        )
        if metric is Metric.DC_POWER:  # not watched
            continue
        expected.setdefault(float(sampled_s), {})[metric] = value
        if len(expected) > 3:
            del expected[min(expected)]
        history = store.history(4)
        assert history is not None
        assert history.times() == sorted(expected, reverse=True)
        for at, values in expected.items():
            assert history.at(at) == values


def test_a_stale_or_nan_value_has_no_sample_time_either() -> None:
    clock = FakeClock()
    store = TelemetryStore(freshness_s=10.0, clock=clock)
    store.ingest_message(telemetry_from_proto(_current_message(2, 10.0, 100)))
    fresh = store.fresh_view()
    assert fresh.sampled_value(2, Metric.AC_CURRENT_PHASE_1) == (10.0, 100.0)
    clock.now += 11.0
    stale = store.fresh_view()
    assert stale.sampled_value(2, Metric.AC_CURRENT_PHASE_1) is None
    assert stale.sampled_at(2, Metric.AC_CURRENT_PHASE_1) is None
    store.ingest_message(telemetry_from_proto(_current_message(2, math.nan, 101)))
    nan = store.fresh_view()
    assert nan.sampled_value(2, Metric.AC_CURRENT_PHASE_1) is None
    assert nan.sampled_at(2, Metric.AC_CURRENT_PHASE_1) is None
