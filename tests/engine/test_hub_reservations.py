"""The reservation book: overlap-checked bookings, availability, no-shows, pruning."""

from __future__ import annotations

import contextlib
import itertools
import math

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.frequenz_microgrid.engine.hub.circuits import Circuit
from custom_components.frequenz_microgrid.engine.hub.reservations import (
    HISTORY_LENGTH,
    MAX_DURATION_S,
    OCCUPIED_FOR_S,
    ChargerCapacity,
    Released,
    ReleaseReason,
    Reservation,
    ReservationBook,
    ReservationError,
    ReservationProblem,
    charger_capacities,
)

HOUR = 3600.0
NOW = 1_800_000_000.0
"""A fixed wall clock (2027-01-15) for every book here."""


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def book_of(
    powers: dict[int, float] | None = None,
    *,
    clock: Clock | None = None,
    grace_s: float = 600.0,
    **kwargs: object,
) -> ReservationBook:
    """A book over `powers` (charger id → rated W), ids counting up from r1."""
    counter = itertools.count(1)
    capacities = charger_capacities(powers or {1: 11_000.0, 2: 22_000.0})
    return ReservationBook(
        capacities,
        clock=clock or Clock(),
        grace_s=grace_s,
        new_id=lambda: f"r{next(counter)}",
        **kwargs,  # type: ignore[arg-type]
    )


def refused(problem: ReservationProblem, call: object, *args: object) -> None:
    with pytest.raises(ReservationError) as caught:
        call(*args)  # type: ignore[operator]
    assert caught.value.problem is problem


# -- booking ---------------------------------------------------------------------


def test_a_booking_names_its_charger_and_the_energy_the_hub_can_promise() -> None:
    book = book_of()
    booked = book.reserve(1, NOW + HOUR, NOW + 3 * HOUR, energy_kwh=15.0, vehicle="Zoe")
    assert booked.charger_id == 1
    assert booked.vehicle == "Zoe"
    assert booked.max_kwh == pytest.approx(22.0)  # 11 kW × 2 h
    assert booked.guaranteed_kwh == pytest.approx(22.0)  # no circuit limits it
    assert booked.energy_guaranteed
    assert book.get(booked.reservation_id) == booked
    assert list(book) == [booked]


def test_overlaps_are_refused_and_touching_periods_are_not() -> None:
    book = book_of()
    first = book.reserve(1, NOW + HOUR, NOW + 2 * HOUR)
    for start, end in [
        (NOW + HOUR, NOW + 2 * HOUR),  # the same period
        (NOW + 0.5 * HOUR, NOW + 1.5 * HOUR),  # over its start
        (NOW + 1.5 * HOUR, NOW + 2.5 * HOUR),  # over its end
        (NOW + 1.2 * HOUR, NOW + 1.4 * HOUR),  # inside it
        (NOW, NOW + 3 * HOUR),  # around it
    ]:
        with pytest.raises(ReservationError) as caught:
            book.reserve(1, start, end)
        assert caught.value.problem is ReservationProblem.OVERLAP
        assert caught.value.details["reservation"] == first.reservation_id
    assert list(book) == [first]
    before = book.reserve(1, NOW, NOW + HOUR)
    after = book.reserve(1, NOW + 2 * HOUR, NOW + 3 * HOUR)
    assert [r.reservation_id for r in book.of_charger(1)] == [
        before.reservation_id,
        first.reservation_id,
        after.reservation_id,
    ]
    # The other charger is a different book.
    assert book.reserve(2, NOW + HOUR, NOW + 2 * HOUR).charger_id == 2


def test_a_week_of_local_days_across_the_autumn_clock_change_is_accepted() -> None:
    """Monday to Monday as all-day dates is 169 hours when the clocks go back."""
    book = book_of()
    book.reserve(1, NOW, NOW + MAX_DURATION_S + HOUR)
    assert len(book) == 1


@pytest.mark.parametrize(
    ("start", "end", "energy", "problem"),
    [
        (NOW + 2 * HOUR, NOW + HOUR, None, ReservationProblem.END_NOT_AFTER_START),
        (NOW + HOUR, NOW + HOUR, None, ReservationProblem.END_NOT_AFTER_START),
        (NOW - 2 * HOUR, NOW - HOUR, None, ReservationProblem.IN_THE_PAST),
        (NOW - 2 * HOUR, NOW, None, ReservationProblem.IN_THE_PAST),
        (math.nan, NOW + HOUR, None, ReservationProblem.NOT_FINITE),
        (NOW, math.inf, None, ReservationProblem.NOT_FINITE),
        (NOW, NOW + HOUR, math.nan, ReservationProblem.INVALID_ENERGY),
        (NOW, NOW + HOUR, -1.0, ReservationProblem.INVALID_ENERGY),
        (NOW, NOW + MAX_DURATION_S + HOUR + 1, None, ReservationProblem.TOO_LONG),
        (NOW + 400 * 86400, NOW + 401 * 86400, None, ReservationProblem.TOO_FAR_AHEAD),
    ],
)
def test_bad_periods_and_energies_are_refused_and_nothing_is_stored(
    start: float, end: float, energy: float | None, problem: ReservationProblem
) -> None:
    book = book_of()
    with pytest.raises(ReservationError) as caught:
        book.reserve(1, start, end, energy_kwh=energy)
    assert caught.value.problem is problem
    assert len(book) == 0


def test_an_unknown_charger_is_refused_naming_the_known_ones() -> None:
    book = book_of()
    with pytest.raises(ReservationError) as caught:
        book.reserve(7, NOW, NOW + HOUR)
    assert caught.value.problem is ReservationProblem.UNKNOWN_CHARGER
    assert caught.value.details == {"charger": "7", "chargers": "1, 2"}
    assert len(book) == 0


def test_a_booking_that_started_a_moment_ago_is_accepted() -> None:
    book = book_of()
    booked = book.reserve(1, NOW - 60.0, NOW + HOUR)
    assert book.in_force(1) == booked


def test_any_picks_the_most_powerful_free_charger_then_the_lowest_id() -> None:
    book = book_of({3: 11_000.0, 1: 11_000.0, 2: 22_000.0})
    period = (NOW + HOUR, NOW + 2 * HOUR)
    assert [book.reserve(None, *period).charger_id for _ in range(3)] == [2, 1, 3]
    refused(ReservationProblem.NO_CHARGER_FREE, book.reserve, None, *period)
    assert len(book) == 3


def test_any_takes_a_charger_with_a_car_plugged_in_only_as_the_last_resort() -> None:
    """A walk-in car at the best charger: "any" books the next one meanwhile."""
    clock = Clock()
    book = book_of({3: 11_000.0, 1: 11_000.0, 2: 22_000.0}, clock=clock)
    book.observe({2})
    soon = (NOW + 0.05 * HOUR, NOW + 2 * HOUR)
    assert [a.charger_id for a in book.find_available(*soon)] == [1, 3, 2]
    assert [book.reserve(None, *soon).charger_id for _ in range(3)] == [1, 3, 2]
    refused(ReservationProblem.NO_CHARGER_FREE, book.reserve, None, *soon)
    # Far enough ahead the car will have left: the preference alone decides.
    later = (NOW + OCCUPIED_FOR_S, NOW + OCCUPIED_FOR_S + HOUR)
    assert [a.charger_id for a in book.find_available(*later)] == [2, 1, 3]
    assert book.reserve(None, *later).charger_id == 2
    # The car leaves: its charger is the first choice again.
    book.observe(set())
    assert [a.charger_id for a in book.find_available(*later)] == [1, 3]


def test_a_reserved_charger_is_not_offered_for_its_booked_period() -> None:
    book = book_of({1: 11_000.0, 2: 22_000.0})
    book.reserve(2, NOW + HOUR, NOW + 3 * HOUR)
    free = book.find_available(NOW + 2 * HOUR, NOW + 4 * HOUR)
    assert [a.charger_id for a in free] == [1]
    assert free[0].max_power_w == 11_000.0
    assert free[0].max_kwh == pytest.approx(22.0)
    # Before it, both are free: the more powerful first.
    free = book.find_available(NOW, NOW + HOUR)
    assert [(a.charger_id, a.max_kwh) for a in free] == [(2, 22.0), (1, 11.0)]
    refused(ReservationProblem.END_NOT_AFTER_START, book.find_available, NOW, NOW)


def test_the_guarantee_is_the_circuit_fair_share_with_every_charger_drawing() -> None:
    # A 16 A garage feeder (3 × 16 A × 230 V = 11.04 kW) with two 11 kW chargers,
    # a third charger behind the 32 A grid fuse only.
    garage = Circuit(
        circuit_id="garage",
        name="Garage",
        charger_ids=frozenset({1, 2}),
        phase_limit_a=16,
    )
    grid = Circuit(
        circuit_id="grid",
        name="Grid",
        charger_ids=frozenset({1, 2, 3}),
        phase_limit_a=32,
        root=True,
    )
    capacities = charger_capacities(
        {1: 11_000.0, 2: 11_000.0, 3: 22_000.0}, [grid, garage]
    )
    assert capacities[1].guaranteed_power_w == pytest.approx(5_520.0)
    assert capacities[3].guaranteed_power_w == pytest.approx(22_080.0 / 3)
    book = ReservationBook(capacities, clock=Clock())
    booked = book.reserve(1, NOW, NOW + 2 * HOUR, energy_kwh=20.0)
    assert booked.guaranteed_kwh == pytest.approx(11.04)
    assert booked.max_kwh == pytest.approx(22.0)
    assert not booked.energy_guaranteed


def test_an_envelope_aware_guarantee_plugs_in_and_is_capped_by_the_charger() -> None:
    seen: list[tuple[int, float, float]] = []

    def planner(capacity: ChargerCapacity, start: float, end: float) -> float:
        seen.append((capacity.charger_id, start, end))
        return 50_000.0

    book = ReservationBook(
        charger_capacities({1: 11_000.0}), clock=Clock(), guarantee=planner
    )
    booked = book.reserve(1, NOW, NOW + HOUR)
    assert seen == [(1, NOW, NOW + HOUR)]
    assert booked.guaranteed_kwh == pytest.approx(11.0)


# -- cancel and update ---------------------------------------------------------------


def test_cancel_frees_exactly_its_period() -> None:
    book = book_of()
    a = book.reserve(1, NOW, NOW + HOUR)
    b = book.reserve(1, NOW + HOUR, NOW + 2 * HOUR)
    assert book.cancel(a.reservation_id) == a
    assert list(book) == [b]
    assert book.reserve(1, NOW, NOW + HOUR).charger_id == 1
    refused(ReservationProblem.OVERLAP, book.reserve, 1, NOW + HOUR, NOW + 2 * HOUR)
    refused(ReservationProblem.UNKNOWN_RESERVATION, book.cancel, a.reservation_id)
    assert book.history[-1].reason is ReleaseReason.CANCELLED


def test_an_update_is_checked_like_a_booking_and_a_refused_one_changes_nothing() -> (
    None
):
    book = book_of()
    a = book.reserve(1, NOW, NOW + HOUR, vehicle="A")
    b = book.reserve(1, NOW + 2 * HOUR, NOW + 3 * HOUR, vehicle="B")
    moved = book.update(a.reservation_id, 1, NOW + HOUR, NOW + 2 * HOUR, vehicle="A2")
    assert (moved.reservation_id, moved.start, moved.vehicle) == (
        a.reservation_id,
        NOW + HOUR,
        "A2",
    )
    # Overlapping b: refused, and the booking stays where it was.
    with pytest.raises(ReservationError):
        book.update(a.reservation_id, 1, NOW + 1.5 * HOUR, NOW + 2.5 * HOUR)
    assert list(book) == [moved, b]
    # Moving it within its own old period is no overlap with itself.
    assert book.update(a.reservation_id, 1, NOW + HOUR, NOW + 1.5 * HOUR).end == (
        NOW + 1.5 * HOUR
    )
    assert book.update(a.reservation_id, 2, NOW, NOW + HOUR).charger_id == 2
    assert len(book) == 2


# -- no-shows and pruning ---------------------------------------------------------


def test_a_no_show_is_released_after_the_grace_period() -> None:
    clock = Clock()
    book = book_of(clock=clock, grace_s=600.0)
    booked = book.reserve(1, NOW + 60.0, NOW + HOUR)
    assert book.observe(plugged=set()) == []
    clock.now = NOW + 60.0 + 599.0
    assert book.observe(plugged=set()) == []
    assert book.in_force(1) == booked
    clock.now = NOW + 60.0 + 600.0
    released = book.observe(plugged=set())
    assert [(r.reservation, r.reason) for r in released] == [
        (booked, ReleaseReason.NO_SHOW)
    ]
    assert len(book) == 0
    assert book.find_available(clock.now, NOW + HOUR)[0].charger_id == 2
    assert book.history[-1].reason is ReleaseReason.NO_SHOW


def test_a_booking_made_after_its_start_waits_the_grace_period_from_then() -> None:
    clock = Clock(NOW + 1200.0)  # booked 20 minutes into its period
    book = book_of(clock=clock, grace_s=600.0)
    booked = book.reserve(1, NOW, NOW + HOUR)
    assert book.observe(plugged=set()) == []
    clock.now = NOW + 1200.0 + 599.0
    assert book.observe(plugged=set()) == []
    assert book.in_force(1) == booked
    clock.now = NOW + 1200.0 + 600.0
    released = book.observe(plugged=set())
    assert [(r.reservation, r.reason) for r in released] == [
        (booked, ReleaseReason.NO_SHOW)
    ]


def test_a_car_plugged_in_within_the_grace_period_keeps_the_booking() -> None:
    clock = Clock()
    book = book_of(clock=clock, grace_s=600.0)
    booked = book.reserve(1, NOW, NOW + HOUR)
    clock.now = NOW + 300.0
    assert book.observe(plugged={1, 2}) == []
    claimed = book.get(booked.reservation_id)
    assert claimed is not None
    assert claimed.claimed
    # Unplugged again later: the booking is the car's until its end.
    clock.now = NOW + 1800.0
    assert book.observe(plugged=set()) == []
    clock.now = NOW + HOUR
    released = book.observe(plugged=set())
    assert [r.reason for r in released] == [ReleaseReason.ENDED]
    assert len(book) == 0


def test_a_car_at_another_charger_does_not_claim_the_booking() -> None:
    clock = Clock()
    book = book_of(clock=clock, grace_s=0.0)
    book.reserve(1, NOW, NOW + HOUR)
    assert [r.reason for r in book.observe(plugged={2})] == [ReleaseReason.NO_SHOW]


def test_the_history_is_bounded() -> None:
    clock = Clock()
    book = book_of(clock=clock)
    for index in range(HISTORY_LENGTH + 20):
        booked = book.reserve(1, NOW, NOW + HOUR)
        book.cancel(booked.reservation_id)
        assert index < HISTORY_LENGTH or len(book.history) == HISTORY_LENGTH
    assert len(book.history) == HISTORY_LENGTH


def test_a_charger_holds_a_bounded_number_of_future_bookings() -> None:
    book = book_of({1: 11_000.0}, max_per_charger=3)
    for index in range(3):
        book.reserve(1, NOW + index * HOUR, NOW + (index + 1) * HOUR)
    refused(
        ReservationProblem.CHARGER_FULL, book.reserve, 1, NOW + 5 * HOUR, NOW + 6 * HOUR
    )
    refused(
        ReservationProblem.NO_CHARGER_FREE,
        book.reserve,
        None,
        NOW + 5 * HOUR,
        NOW + 6 * HOUR,
    )
    # Not offered either: a free period on a full charger cannot be booked.
    assert book.find_available(NOW + 5 * HOUR, NOW + 6 * HOUR) == []


# -- storage -----------------------------------------------------------------------


def test_bookings_survive_a_round_trip_and_ended_or_colliding_ones_are_left_out() -> (
    None
):
    clock = Clock()
    book = book_of(clock=clock)
    kept = book.reserve(1, NOW, NOW + 2 * HOUR, energy_kwh=5.0, vehicle="Van")
    ended = book.reserve(2, NOW, NOW + HOUR)
    stored = [Reservation.from_dict(r.as_dict()) for r in book]
    assert stored == [kept, ended]
    clock.now = NOW + HOUR
    fresh = book_of(clock=clock)
    colliding = Reservation(reservation_id="x", charger_id=1, start=NOW, end=NOW + HOUR)
    unknown = Reservation(
        reservation_id="y", charger_id=9, start=NOW, end=NOW + 9 * HOUR
    )
    skipped = fresh.restore([*stored, colliding, unknown])
    assert list(fresh) == [kept]
    assert skipped == [ended, colliding, unknown]
    # The one that ended while Home Assistant was down is in the history.
    released = [(r.reservation, r.at, r.reason) for r in fresh.history]
    assert (ended, ended.end, ReleaseReason.ENDED) in released


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (NOW, math.inf),
        (math.nan, NOW + HOUR),
        (NOW, NOW + 1e12),  # ends in year ~33,700: no calendar can show it
        (NOW + 400 * 24 * HOUR, NOW + 401 * 24 * HOUR),
        (NOW + HOUR, NOW),
    ],
)
def test_a_damaged_stored_period_is_left_out(start: float, end: float) -> None:
    damaged = Reservation(reservation_id="d", charger_id=1, start=start, end=end)
    book = book_of(clock=Clock())
    assert book.restore([damaged]) == [damaged]
    assert list(book) == []
    # Nor does a period no calendar can show reach the history.
    book.restore_history([Released(damaged, NOW, ReleaseReason.ENDED)])
    assert all(
        start < r.reservation.end < 253402300799.0 and math.isfinite(start)
        for r in book.history
    )


# -- properties --------------------------------------------------------------------

_requests = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "cancel", "update", "observe"]),
        st.one_of(st.none(), st.integers(min_value=1, max_value=4)),
        st.integers(min_value=-4, max_value=48),  # start, in quarter hours from NOW
        st.integers(min_value=-2, max_value=12),  # length, in quarter hours
        st.integers(min_value=0, max_value=30),  # which booking to cancel / update
    ),
    max_size=80,
)


def _assert_no_overlaps(book: ReservationBook) -> None:
    for charger_id in book.charger_ids:
        bookings = book.of_charger(charger_id)
        for earlier, later in itertools.pairwise(bookings):
            assert earlier.end <= later.start, (earlier, later)
        for booking in bookings:
            assert booking.start < booking.end


@settings(max_examples=150, deadline=None)
@given(_requests)
def test_no_two_bookings_of_one_charger_ever_overlap(
    requests: list[tuple[str, int | None, int, int, int]],
) -> None:
    clock = Clock()
    book = book_of({1: 11_000.0, 2: 22_000.0, 3: 7_400.0, 4: 11_000.0}, clock=clock)
    q = 900.0
    for action, charger, start_q, length_q, pick in requests:
        start, end = NOW + start_q * q, NOW + (start_q + length_q) * q
        ids = [r.reservation_id for r in book]
        before = list(book)
        try:
            match action:
                case "reserve":
                    booked = book.reserve(charger, start, end)
                    overlapping = [
                        r
                        for r in before
                        if r.charger_id == booked.charger_id
                        and r.start < end
                        and start < r.end
                    ]
                    assert not overlapping
                case "cancel" if ids:
                    gone = book.cancel(ids[pick % len(ids)])
                    assert list(book) == [r for r in before if r != gone]
                case "update" if ids:
                    book.update(ids[pick % len(ids)], charger, start, end)
                case "observe":
                    clock.now += q
                    book.observe(plugged={charger} if charger else set())
        except ReservationError:
            assert list(book) == before, "a refused change must change nothing"
        _assert_no_overlaps(book)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(1, 8)), min_size=1, max_size=25),
    st.data(),
)
def test_cancel_frees_exactly_its_slot(
    periods: list[tuple[int, int]], data: st.DataObject
) -> None:
    book = book_of({1: 11_000.0})
    q = 900.0
    for start_q, length_q in periods:
        with contextlib.suppress(ReservationError):
            book.reserve(1, NOW + start_q * q, NOW + (start_q + length_q) * q)
    bookings = list(book)
    gone = data.draw(st.sampled_from(bookings))
    book.cancel(gone.reservation_id)
    # Exactly its slot is free again: the same period books, one second more doesn't
    # where a neighbour touches it.
    again = book.reserve(1, gone.start, gone.end)
    assert (again.start, again.end) == (gone.start, gone.end)
    assert [r for r in book if r != again] == [r for r in bookings if r != gone]
    book.cancel(again.reservation_id)
    for neighbour in bookings:
        if neighbour.end == gone.start:
            refused(
                ReservationProblem.OVERLAP, book.reserve, 1, gone.start - 1, gone.end
            )
        if neighbour.start == gone.end:
            refused(
                ReservationProblem.OVERLAP, book.reserve, 1, gone.start, gone.end + 1
            )


def test_a_charger_without_a_cable_state_does_not_lose_its_booking() -> None:
    clock = Clock()
    book = book_of(clock=clock, grace_s=0.0)
    booked = book.reserve(1, NOW, NOW + HOUR)
    clock.now = NOW + 600.0
    assert book.observe(plugged=set(), unknown={1}) == []
    assert book.in_force(1) == booked
    assert [r.reason for r in book.observe(plugged=set())] == [ReleaseReason.NO_SHOW]


def test_upcoming_is_the_booking_in_force_or_the_next_of_any_charger() -> None:
    clock = Clock()
    book = book_of(clock=clock)
    assert book.upcoming() is None
    later = book.reserve(2, NOW + 2 * HOUR, NOW + 3 * HOUR)
    sooner = book.reserve(1, NOW + HOUR, NOW + 2 * HOUR)
    assert book.upcoming() == sooner
    clock.now = NOW + 1.5 * HOUR
    assert book.upcoming() == sooner
    clock.now = NOW + 2 * HOUR
    assert book.upcoming() == later
    clock.now = NOW + 3 * HOUR
    assert book.upcoming() is None


# -- a changed topology ----------------------------------------------------------


def test_new_chargers_are_bookable_and_a_gone_one_takes_its_bookings() -> None:
    book = book_of({1: 11_000.0, 2: 22_000.0})
    changes: list[None] = []
    book.listen(lambda: changes.append(None))
    kept = book.reserve(1, NOW + HOUR, NOW + 2 * HOUR)
    gone = book.reserve(2, NOW + HOUR, NOW + 2 * HOUR)
    later = book.reserve(2, NOW + 3 * HOUR, NOW + 4 * HOUR)
    changes.clear()

    dropped = book.follow_chargers(charger_capacities({1: 11_000.0, 3: 7_000.0}))

    assert dropped == [gone, later]
    assert changes == [None]  # saved once
    assert book.charger_ids == [1, 3]
    assert list(book) == [kept]
    assert [(r.reservation, r.reason) for r in book.history] == [
        (gone, ReleaseReason.CHARGER_GONE),
        (later, ReleaseReason.CHARGER_GONE),
    ]
    refused(
        ReservationProblem.UNKNOWN_CHARGER, book.reserve, 2, NOW + HOUR, NOW + 2 * HOUR
    )
    # The newcomer is bookable, and "any charger" considers it (1 is taken).
    anyone = book.reserve(None, NOW + HOUR, NOW + 2 * HOUR)
    assert anyone.charger_id == 3
    assert anyone.max_kwh == pytest.approx(7.0)
    assert [
        a.charger_id for a in book.find_available(NOW + 5 * HOUR, NOW + 6 * HOUR)
    ] == [1, 3]
    # Nothing dropped, nothing to hear: the bookings are the same.
    changes.clear()
    assert book.follow_chargers(charger_capacities({1: 11_000.0, 3: 7_000.0})) == []
    assert changes == []


@pytest.mark.parametrize(
    "damaged",
    [
        {"energy_kwh": "nan", "guaranteed_kwh": "inf", "max_kwh": -1.0},
        {"energy_kwh": -3, "guaranteed_kwh": "x", "max_kwh": "nan"},
    ],
)
def test_a_stored_number_no_booking_can_have_is_dropped_not_the_booking(
    damaged: dict[str, object],
) -> None:
    stored = {"id": "b", "charger": 1, "start": NOW + HOUR, "end": NOW + 2 * HOUR}
    repaired: list[str] = []
    reservation = Reservation.from_dict({**stored, **damaged}, repaired)
    assert reservation.energy_kwh is None  # as much as it gets
    assert (reservation.guaranteed_kwh, reservation.max_kwh) == (0.0, 0.0)
    assert len(repaired) == 3
    assert all(note.startswith("b: ") for note in repaired)
    book = book_of(clock=Clock())
    assert book.restore([reservation]) == []
    assert book.get("b") is not None
    # A sound record is read as it was written, with nothing noted.
    good = Reservation.from_dict({**stored, "energy_kwh": 0.0}, repaired := [])
    assert good.energy_kwh == 0.0
    assert repaired == []
