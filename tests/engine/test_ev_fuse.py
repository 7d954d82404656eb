"""Pairing a fuse meter's reading with charger currents of the same instant."""

from __future__ import annotations

import math

from custom_components.frequenz_microgrid.engine.distribution.ev_fuse import (
    PlannedSetpoint,
    SentSetpoint,
    TimedCurrents,
    committed_currents,
    current_at_fuse_sample,
    hold_back_raises,
    in_force_between,
)

A32 = (32.0, 32.0, 32.0)
A16 = (16.0, 16.0, 16.0)


def at(currents: tuple[float, float, float], sampled: float) -> TimedCurrents:
    return TimedCurrents(currents, sampled, sampled)


def test_readings_sampled_together_are_used_as_they_are() -> None:
    # A lowered setpoint in flight does not matter: both readings are of one instant.
    lowered = [SentSetpoint(A32, 0.0, 0.1), SentSetpoint(A16, 9.5)]
    assert current_at_fuse_sample(at(A32, 10.0), at((99.0,) * 3, 10.0), lowered) == A32


def test_an_older_charger_reading_counts_at_most_what_a_newer_setpoint_allows() -> None:
    # Lowered to 16 A at 10.2 s, confirmed at 10.3 s; the charger last reported
    # at 10.0 s (32 A), the meter at 11.0 s: by then it may draw only 16 A, so
    # subtracting 32 A would understate the other loads by 16 A.
    setpoints = [SentSetpoint(A32, 0.0, 0.1), SentSetpoint(A16, 10.2, 10.3)]
    assert current_at_fuse_sample(at(A32, 10.0), at(A32, 11.0), setpoints) == A16


def test_a_newer_charger_reading_counts_at_most_what_was_in_force_before() -> None:
    # Raised from 16 to 32 A at 10.2 s; the meter sampled at 10.0 s, the charger
    # at 11.0 s (32 A): at the meter's instant it drew only 16 A.
    setpoints = [SentSetpoint(A16, 0.0, 0.1), SentSetpoint(A32, 10.2, 10.3)]
    assert current_at_fuse_sample(at(A32, 11.0), at(A32, 10.0), setpoints) == A16


def test_a_setpoint_is_in_force_from_sending_until_the_next_one_arrived() -> None:
    first, second = SentSetpoint(A32, 0.0, 0.1), SentSetpoint(A16, 5.0, 5.2)
    assert in_force_between([first, second], 5.1, 5.1) == [first, second]
    assert in_force_between([first, second], 5.3, 6.0) == [second]
    assert in_force_between([first, second], 1.0, 4.0) == [first]


def test_no_reading_leaves_the_phase_unknown() -> None:
    assert all(math.isnan(c) for c in current_at_fuse_sample(None, at(A32, 1.0), []))


def test_a_charger_counts_at_its_unconfirmed_setpoint_until_confirmed() -> None:
    raised = [SentSetpoint(A16, 0.0, 0.1), SentSetpoint(A32, 10.0, 10.1)]
    assert committed_currents(at(A16, 10.05), raised) == A32
    assert committed_currents(at(A32, 10.5), raised) == A32
    lowered = [SentSetpoint(A32, 0.0, 0.1), SentSetpoint(A16, 10.0, 10.1)]
    assert committed_currents(at(A32, 10.05), lowered) == A32  # may still draw 32 A
    assert committed_currents(at(A16, 10.5), lowered) == A16


def test_a_raise_waits_while_a_decrease_is_unconfirmed() -> None:
    # 40 A for both: one EV goes 32 → 16 A, a new one 0 → 16 A.
    lowered = PlannedSetpoint(16 * 690.0, A16, 32 * 690.0, committed_a=A32)
    new = PlannedSetpoint(16 * 690.0, A16, 0.0, committed_a=(0.0, 0.0, 0.0))
    capacity = (40.0, 40.0, 40.0)
    assert hold_back_raises({1: lowered, 2: new}, capacity) == {1: 16 * 690.0, 2: 0.0}
    confirmed = PlannedSetpoint(16 * 690.0, A16, 16 * 690.0, committed_a=A16)
    assert hold_back_raises({1: confirmed, 2: new}, capacity) == {
        1: 16 * 690.0,
        2: 16 * 690.0,
    }
