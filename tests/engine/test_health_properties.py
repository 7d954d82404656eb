"""Back-off invariants, the SDK's blocking behaviour, and reused judgements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from unittest import mock

from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid.component import (
    ComponentDataSamples,
    ComponentErrorCode,
    ComponentStateCode,
)
from frequenz.client.microgrid.metrics import Metric, MetricSample
from frequenz.sdk.microgrid._power_distributing._component_status import (
    _blocking_status as sdk_blocking,
)
from hypothesis import example, given, settings, strategies as st

from custom_components.frequenz_microgrid.engine.health import (
    MAX_BLOCK,
    MAX_DATA_AGE,
    MIN_BLOCK,
    BlockingStatus,
    HealthTracker,
    Reading,
)

# Quarter seconds are exact in binary floating point and in timedelta alike, so both
# clocks agree on every comparison, edges included.
steps = st.integers(min_value=0, max_value=160).map(lambda quarters: quarters / 4)
events = st.lists(
    st.tuples(steps, st.sampled_from(["fail", "succeed", "check"])), max_size=40
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_back_off_invariants(sequence: list[tuple[float, str]]) -> None:
    block = BlockingStatus()
    now = 0.0
    previous: float | None = None  # Last non-zero block since the last success.
    for step, event in sequence:
        now += step
        if event == "succeed":
            block.unblock()
            previous = None
            assert not block.is_blocked(now)
        elif event == "fail":
            was_blocked = block.is_blocked(now)
            until_before = block.blocked_until
            duration = block.block(now)
            if was_blocked:
                assert duration == 0.0
                assert block.blocked_until == until_before
            elif previous is None:
                assert duration == MIN_BLOCK
            else:
                assert duration == min(2 * previous, MAX_BLOCK)
            if duration:
                previous = duration
            assert block.is_blocked(now)


class _Clock:
    """A stand-in for the SDK module's `datetime`, answering `now()` from a dial."""

    start = datetime(2025, 1, 1, tzinfo=UTC)

    def __init__(self) -> None:
        self.seconds = 0.0

    def now(self, tz: tzinfo | None = None) -> datetime:
        return self.start + timedelta(seconds=self.seconds)


@settings(max_examples=300, deadline=None)
@given(events)
def test_same_blocking_as_the_sdk(sequence: list[tuple[float, str]]) -> None:
    clock = _Clock()
    with mock.patch.object(sdk_blocking, "datetime", clock):
        sdk = sdk_blocking.BlockingStatus(
            min_duration=timedelta(seconds=MIN_BLOCK),
            max_duration=timedelta(seconds=MAX_BLOCK),
        )
        ours = BlockingStatus()
        for step, event in sequence:
            clock.seconds += step
            if event == "fail":
                assert ours.block(clock.seconds) == sdk.block().total_seconds()
            elif event == "succeed":
                ours.unblock()
                sdk.unblock()
            assert ours.is_blocked(clock.seconds) == sdk.is_blocked()


# --- Judgements reused between inputs: always the checks' own answer ------------

_BATTERY, _INVERTER, _CHARGER, _PV = 5, 4, 8, 7
_PLUGGED = (
    ComponentStateCode.EV_CHARGING_CABLE_PLUGGED_AT_STATION,
    ComponentStateCode.EV_CHARGING_CABLE_PLUGGED_AT_EV,
)
_STATE_SETS = [  # working ones for every kind, and a few that are not
    frozenset({ComponentStateCode.READY, ComponentStateCode.RELAY_CLOSED, *_PLUGGED}),
    frozenset({ComponentStateCode.CHARGING, ComponentStateCode.RELAY_CLOSED}),
    frozenset({ComponentStateCode.READY}),
    frozenset({ComponentStateCode.STANDBY}),
    frozenset({ComponentStateCode.ERROR}),
]
_quarters = st.integers(min_value=0, max_value=60).map(lambda q: q / 4)


@dataclass(frozen=True)
class _Observation:
    component_id: int
    age: float
    """How old the reading is when it arrives."""
    states: frozenset[ComponentStateCode]
    errors: frozenset[ComponentErrorCode]
    capacity: float | None


_observations = st.builds(
    _Observation,
    st.sampled_from([_BATTERY, _INVERTER, _CHARGER, _PV]),
    _quarters,
    st.sampled_from(_STATE_SETS),
    st.sampled_from([frozenset(), frozenset({ComponentErrorCode.OVERVOLTAGE})]),
    st.sampled_from([50_000.0, None, 0.0, float("nan")]),
)


@dataclass(frozen=True)
class _CapacityOnly:
    """A battery message with a capacity and no state sample (`observe_data`)."""

    component_id: int
    capacity: float


@dataclass(frozen=True)
class _Reregister:
    """The component is registered again, as the given kind."""

    component_id: int
    kind: str


_capacity_only = st.builds(
    _CapacityOnly,
    st.sampled_from([_BATTERY, _INVERTER]),
    st.sampled_from([50_000.0, 0.0, float("nan")]),
)
_reregistrations = st.builds(
    _Reregister,
    st.sampled_from([_BATTERY, _CHARGER, _PV]),
    st.sampled_from(["battery", "ev_charger", "pv_inverter"]),
)


def _register(tracker: HealthTracker, step: _Reregister) -> None:
    match step.kind:
        case "battery":
            tracker.add_battery(step.component_id, _INVERTER)
        case "ev_charger":
            tracker.add_ev_charger(step.component_id)
        case _:
            tracker.add_pv_inverter(step.component_id)


def _capacity_message(component_id: int, capacity: float) -> ComponentDataSamples:
    return ComponentDataSamples(
        component_id=ComponentId(component_id),
        metric_samples=[
            MetricSample(
                sampled_at=datetime(2025, 1, 1, tzinfo=UTC),
                metric=Metric.BATTERY_CAPACITY,
                value=capacity,
                bounds=[],
            )
        ],
        states=[],
    )


def _tracker(registrations: list[_Reregister]) -> HealthTracker:
    tracker = HealthTracker()
    tracker.add_battery(_BATTERY, _INVERTER)
    tracker.add_ev_charger(_CHARGER)
    tracker.add_pv_inverter(_PV)
    for registration in registrations:
        _register(tracker, registration)
    return tracker


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(_observations, _quarters, _capacity_only, _reregistrations),
        max_size=40,
    )
)
@example(  # the battery's data is fresh, its older inverter data turns stale
    [
        _Observation(_BATTERY, 0.0, _STATE_SETS[0], frozenset(), 50_000.0),
        _Observation(_INVERTER, MAX_DATA_AGE - 1.0, _STATE_SETS[0], frozenset(), None),
        2.0,
    ]
)
@example(  # a battery judged fine loses its capacity in a message without states
    [
        _Observation(_BATTERY, 0.0, _STATE_SETS[0], frozenset(), 50_000.0),
        _Observation(_INVERTER, 0.0, _STATE_SETS[0], frozenset(), None),
        _CapacityOnly(_BATTERY, float("nan")),
    ]
)
@example(  # a PV inverter judged fine is registered again as a battery
    [
        _Observation(_PV, 0.0, _STATE_SETS[0], frozenset(), None),
        _Reregister(_PV, "battery"),
    ]
)
@example(  # a charger judged idle repeats itself, then an EV plugs in
    [
        _Observation(_CHARGER, 0.0, _STATE_SETS[2], frozenset(), None),
        1.0,
        _Observation(_CHARGER, 0.0, _STATE_SETS[2], frozenset(), None),
        _Observation(_CHARGER, 0.0, _STATE_SETS[0], frozenset(), None),
    ]
)
@example(  # a battery judged broken repeats itself; its inverter's state changes
    [
        _Observation(_INVERTER, 0.0, _STATE_SETS[0], frozenset(), None),
        _Observation(_BATTERY, 0.0, _STATE_SETS[4], frozenset(), 50_000.0),
        1.0,
        _Observation(_BATTERY, 0.0, _STATE_SETS[4], frozenset(), 50_000.0),
        _Observation(_INVERTER, 0.0, _STATE_SETS[4], frozenset(), None),
        _Observation(_BATTERY, 0.0, _STATE_SETS[0], frozenset(), 50_000.0),
    ]
)
@example(  # an older repeat of a judged reading, then the judged one ages out
    [
        _Observation(_PV, 0.0, _STATE_SETS[0], frozenset(), None),
        _Observation(_PV, 5.0, _STATE_SETS[0], frozenset(), None),
        MAX_DATA_AGE - 2.0,
        3.0,
    ]
)
@example(  # a repeat with a new capacity
    [
        _Observation(_INVERTER, 0.0, _STATE_SETS[0], frozenset(), None),
        _Observation(_BATTERY, 0.0, _STATE_SETS[0], frozenset(), 50_000.0),
        _Observation(_BATTERY, 0.0, _STATE_SETS[0], frozenset(), float("nan")),
    ]
)
def test_a_tracker_judges_as_one_fed_only_the_latest_inputs(
    steps: list[_Observation | float | _CapacityOnly | _Reregister],
) -> None:
    """Judgements kept between calls never outlive the inputs they were made on.

    Nor a reading that repeats the last one's contents: what it keeps holds only
    as long as the oldest reading it was made from is fresh.
    """
    registrations: list[_Reregister] = []
    tracker = _tracker(registrations)
    readings: dict[int, Reading] = {}
    capacities: dict[int, float] = {}
    now = 100.0
    for step in steps:
        match step:
            case float():  # time passes
                now += step
            case _CapacityOnly(component_id=cid, capacity=capacity):
                tracker.observe_data(_capacity_message(cid, capacity))
                capacities[cid] = capacity
            case _Reregister():
                _register(tracker, step)
                registrations.append(step)
            case _Observation(component_id=cid):
                reading = Reading(
                    at=now - step.age, states=step.states, errors=step.errors
                )
                tracker.observe(cid, reading, capacity=step.capacity)
                readings[cid] = reading
                if step.capacity is not None:
                    capacities[cid] = step.capacity
        cold = _tracker(registrations)
        for cid, capacity in capacities.items():
            cold.observe_data(_capacity_message(cid, capacity))
        for cid, reading in readings.items():
            cold.observe(cid, reading)
        for cid in (_BATTERY, _CHARGER, _PV):
            assert tracker.problem(cid, now) == cold.problem(cid, now)
