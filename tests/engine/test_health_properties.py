"""Back-off invariants, the SDK's blocking behaviour, and reused judgements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from unittest import mock

from frequenz.client.microgrid.component import ComponentErrorCode, ComponentStateCode
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


def _tracker() -> HealthTracker:
    tracker = HealthTracker()
    tracker.add_battery(_BATTERY, _INVERTER)
    tracker.add_ev_charger(_CHARGER)
    tracker.add_pv_inverter(_PV)
    return tracker


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_observations, _quarters), max_size=40))
@example(  # the battery's data is fresh, its older inverter data turns stale
    [
        _Observation(_BATTERY, 0.0, _STATE_SETS[0], frozenset(), 50_000.0),
        _Observation(_INVERTER, MAX_DATA_AGE - 1.0, _STATE_SETS[0], frozenset(), None),
        2.0,
    ]
)
def test_a_tracker_judges_as_one_fed_only_the_latest_inputs(
    steps: list[_Observation | float],
) -> None:
    """Judgements kept between calls never outlive the inputs they were made on."""
    tracker = _tracker()
    latest: dict[int, tuple[Reading, float | None]] = {}
    now = 100.0
    for step in steps:
        if isinstance(step, float):  # time passes
            now += step
        else:
            cid = step.component_id
            reading = Reading(at=now - step.age, states=step.states, errors=step.errors)
            tracker.observe(cid, reading, capacity=step.capacity)
            capacity = step.capacity
            if capacity is None and cid in latest:
                capacity = latest[cid][1]
            latest[cid] = (reading, capacity)
        cold = _tracker()
        for cid, (reading, capacity) in latest.items():
            cold.observe(cid, reading, capacity=capacity)
        for cid in (_BATTERY, _CHARGER, _PV):
            assert tracker.problem(cid, now) == cold.problem(cid, now)
