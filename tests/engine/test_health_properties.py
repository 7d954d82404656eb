"""Back-off invariants, and the same blocking behaviour as the SDK's BlockingStatus."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from unittest import mock

from frequenz.sdk.microgrid._power_distributing._component_status import (
    _blocking_status as sdk_blocking,
)
from hypothesis import given, settings, strategies as st

from custom_components.frequenz_microgrid.engine.health import (
    MAX_BLOCK,
    MIN_BLOCK,
    BlockingStatus,
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
