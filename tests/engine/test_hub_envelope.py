"""The limit envelope: forward fill, next change, pruning, validation codes."""

from __future__ import annotations

import math

from hypothesis import given, strategies as st
import pytest

from custom_components.frequenz_microgrid.engine.hub.envelope import (
    EnvelopeProblem,
    InvalidEnvelopeError,
    LimitEnvelope,
    LimitStep,
)


def test_steps_are_forward_filled_and_the_next_change_is_known() -> None:
    envelope = LimitEnvelope.of(
        [LimitStep(100.0, 0.0, 50_000.0), LimitStep(200.0, -1000.0, 20_000.0)],
        tolerance_w=5000.0,
    )
    assert envelope.in_force(99.9) is None
    assert envelope.in_force(100.0) == LimitStep(100.0, 0.0, 50_000.0)
    assert envelope.in_force(199.0) == LimitStep(100.0, 0.0, 50_000.0)
    assert envelope.in_force(10_000.0) == LimitStep(200.0, -1000.0, 20_000.0)
    assert envelope.next_change(50.0) == 100.0
    assert envelope.next_change(150.0) == 200.0
    assert envelope.next_change(250.0) is None


def test_tolerance_only_decides_limit_exceeded() -> None:
    envelope = LimitEnvelope.of([LimitStep(0.0, 0.0, 20_000.0)], tolerance_w=5000.0)
    assert not envelope.exceeded(24_999.0, 10.0)
    assert envelope.exceeded(25_001.0, 10.0)
    assert not envelope.exceeded(1e9, -1.0)  # before the first step: no limit


def test_pruning_keeps_the_step_in_force() -> None:
    envelope = LimitEnvelope.of(
        [LimitStep(0.0, 0.0, 1.0), LimitStep(10.0, 0.0, 2.0), LimitStep(20.0, 0.0, 3.0)]
    )
    pruned = envelope.pruned(15.0)
    assert [s.start for s in pruned.steps] == [10.0, 20.0]
    assert pruned.in_force(15.0) == envelope.in_force(15.0)
    assert envelope.pruned(-5.0) == envelope


@pytest.mark.parametrize(
    ("steps", "tolerance", "problem", "index"),
    [
        ([], 0.0, EnvelopeProblem.NO_STEPS, None),
        ([LimitStep(0.0, 0.0, 1.0)], math.nan, EnvelopeProblem.NOT_FINITE, None),
        ([LimitStep(0.0, 0.0, 1.0)], -1.0, EnvelopeProblem.NEGATIVE_TOLERANCE, None),
        ([LimitStep(0.0, 0.0, math.inf)], 0.0, EnvelopeProblem.NOT_FINITE, 0),
        (
            [LimitStep(0.0, 0.0, 1.0), LimitStep(math.nan, 0.0, 1.0)],
            0.0,
            EnvelopeProblem.NOT_FINITE,
            1,
        ),
        ([LimitStep(0.0, 5.0, 1.0)], 0.0, EnvelopeProblem.LOWER_ABOVE_UPPER, 0),
        (
            [LimitStep(10.0, 0.0, 1.0), LimitStep(5.0, 0.0, 1.0)],
            0.0,
            EnvelopeProblem.UNORDERED_STEPS,
            1,
        ),
        (
            [LimitStep(10.0, 0.0, 1.0), LimitStep(10.0, 0.0, 2.0)],
            0.0,
            EnvelopeProblem.DUPLICATE_START,
            1,
        ),
    ],
)
def test_invalid_envelopes_name_their_problem(
    steps: list[LimitStep],
    tolerance: float,
    problem: EnvelopeProblem,
    index: int | None,
) -> None:
    with pytest.raises(InvalidEnvelopeError) as raised:
        LimitEnvelope.of(steps, tolerance)
    assert raised.value.problem is problem
    assert raised.value.step_index == index


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=1e6),
            st.floats(min_value=-1e5, max_value=1e5),
            st.floats(min_value=0, max_value=1e5),
        ),
        min_size=1,
        max_size=8,
        unique_by=lambda t: t[0],
    ),
    st.floats(min_value=-10, max_value=2e6),
)
def test_in_force_is_the_latest_step_started(
    raw: list[tuple[float, float, float]], at: float
) -> None:
    steps = [
        LimitStep(start, lower, lower + span) for start, lower, span in sorted(raw)
    ]
    envelope = LimitEnvelope.of(steps, 0.0)
    started = [s for s in steps if s.start <= at]
    assert envelope.in_force(at) == (started[-1] if started else None)
    assert LimitEnvelope.from_dict(envelope.as_dict()) == envelope
    later = [s.start for s in steps if s.start > at]
    assert envelope.next_change(at) == (later[0] if later else None)


def _in_force_by_scan(envelope: LimitEnvelope, at: float) -> LimitStep | None:
    """The step in force at `at`, found by walking all steps (the reference)."""
    found = None
    for step in envelope.steps:
        if step.start <= at:
            found = step
    return found


@given(
    starts=st.lists(
        st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=50, unique=True
    ),
    probes=st.lists(st.floats(min_value=-2e6, max_value=2e6), max_size=20),
)
def test_the_indexed_lookup_equals_a_linear_scan(
    starts: list[float], probes: list[float]
) -> None:
    envelope = LimitEnvelope.of(
        LimitStep(start, 0.0, float(index))
        for index, start in enumerate(sorted(starts))
    )
    for at in [*probes, *starts]:
        expected = _in_force_by_scan(envelope, at)
        assert envelope.in_force(at) == expected
        following = [s.start for s in envelope.steps if s.start > at]
        assert envelope.next_change(at) == (min(following) if following else None)
        kept = envelope.pruned(at)
        assert kept.in_force(at) == expected
        assert kept.steps[-1] == envelope.steps[-1]
