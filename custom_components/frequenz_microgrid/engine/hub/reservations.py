"""Reservations: a booking book per charger, overlap-checked (issue 16, capability 2).

datafev's `ChargerCluster.reserve` books a charging unit for a period but never
checks bookings against each other (its own ``TODO: Add check for overlap``), and
its `query_availability` rebuilds a boolean table per charger and time step on
every query. Here every charger keeps its bookings sorted by start; since they
never overlap, their ends are sorted too, so one bisect finds the only two
bookings a new period could collide with. Booking, cancelling and querying are
O(log n) per charger (plus the list insert), which keeps a 100-charger depot
well above 10,000 checked bookings per second (`benchmarks.reservations`).

Periods are half-open, ``[start, end)`` in POSIX seconds (UTC): a booking that
ends at 10:00 and one that starts at 10:00 touch but do not overlap.

What a booking promises (`ChargerCapacity`): its charger's rated charge power,
capped by the *fair share* of every circuit the charger is behind with every
charger of that circuit drawing at once (circuit limit / its number of chargers).
That is a conservative, static estimate: it holds whatever the other chargers
do, but it knows nothing of a circuit's limit envelope over time, of the
household's own load, or of the vehicle. Issue 16 §1's envelope-aware guarantee
plugs in as `ReservationBook(guarantee=...)`, a function of the charger and the
period.

The book also watches the bookings in force (`observe`, once per telemetry
tick): a booking whose charger has had no car plugged in by ``start + grace_s``
is released as a no-show, and bookings that ended are pruned, so memory stays
bounded (at most `max_per_charger` future bookings per charger and a short
history of what ended). Which car is plugged in is not known: any car at the
booked charger counts as the booked one.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
import math
import time
from typing import Any
import uuid

from .circuits import Circuit

DEFAULT_GRACE_S = 15 * 60.0
"""How long after its start a booking waits for its car before it is released."""
MAX_GRACE_S = 4 * 3600.0
MAX_DURATION_S = 7 * 86400.0
"""The longest booking (a week): a reservation is a visit, not a parking space."""
CLOCK_CHANGE_S = 3600.0
"""A week of local days lasts an hour longer across the autumn clock change:
Monday to Monday, booked as all-day dates, is 169 hours then."""
HORIZON_S = 366 * 86400.0
"""How far ahead a booking may start (a year)."""
_MIN_TIME_S = -62135596800.0
"""0001-01-01 UTC: stored times before it cannot be shown."""
_MAX_TIME_S = 253402300799.0
"""9999-12-31 23:59:59 UTC: stored times after it cannot be shown."""
MAX_PER_CHARGER = 1000
"""Future bookings one charger may hold (bounds memory and the calendar)."""
HISTORY_LENGTH = 100
"""Ended, released and cancelled bookings kept for the calendar and the log."""
MAX_VEHICLE_LENGTH = 100
OCCUPIED_FOR_S = 12 * 3600.0
"""How long a car plugged in now may stay, for picking "any" charger: a period
starting sooner takes a charger with a car only when no other one is free."""
ANY_CHARGER = "any"
"""What a caller says to let the book pick a free charger."""


class ReservationProblem(StrEnum):
    """Why a booking or a query was refused (translation keys)."""

    NOT_FINITE = "reservation_not_finite"
    END_NOT_AFTER_START = "reservation_end_not_after_start"
    IN_THE_PAST = "reservation_in_the_past"
    TOO_LONG = "reservation_too_long"
    TOO_FAR_AHEAD = "reservation_too_far_ahead"
    INVALID_ENERGY = "reservation_invalid_energy"
    INVALID_VEHICLE = "reservation_invalid_vehicle"
    UNKNOWN_CHARGER = "reservation_unknown_charger"
    OVERLAP = "reservation_overlap"
    NO_CHARGER_FREE = "reservation_no_charger_free"
    CHARGER_FULL = "reservation_charger_full"
    UNKNOWN_RESERVATION = "unknown_reservation"


class ReservationError(ValueError):
    """A refused booking: the problem and what the message needs to name it."""

    def __init__(self, problem: ReservationProblem, **details: object) -> None:
        """Name `problem`; `details` become the message's placeholders."""
        super().__init__(f"{problem.value}: {details}")
        self.problem = problem
        self.details = {key: str(value) for key, value in details.items()}


class ReleaseReason(StrEnum):
    """Why a booking left the book."""

    ENDED = "ended"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    CHARGER_GONE = "charger_gone"
    """The charger left the microgrid (`ReservationBook.follow_chargers`)."""


@dataclass(frozen=True, slots=True)
class ChargerCapacity:
    """What one charger can draw, and what the hub can promise it."""

    charger_id: int
    max_power_w: float
    """The charger's rated charge power (W)."""
    guaranteed_power_w: float
    """What it gets even with every charger of its circuits drawing (W)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reservation:
    """One booking of one charger for ``[start, end)``."""

    reservation_id: str
    charger_id: int
    start: float
    end: float
    energy_kwh: float | None = None
    """The energy the booking asks for (`None`: as much as it gets)."""
    vehicle: str | None = None
    guaranteed_kwh: float = 0.0
    """What the hub can guarantee over the period (see the module docs)."""
    max_kwh: float = 0.0
    """What the charger could deliver over the period at its rated power."""
    created: float = 0.0
    claimed: bool = False
    """A car has been plugged in at the charger since the booking started."""

    @property
    def duration_s(self) -> float:
        """The booked period's length (s)."""
        return self.end - self.start

    @property
    def waits_from(self) -> float:
        """When the grace period for its car starts: its start, or when it was made.

        A booking made after its period began (booked at 14:20 for 14:00–18:00, the
        car on its way) gets the whole grace period, not a release at once.
        """
        return max(self.start, self.created)

    @property
    def energy_guaranteed(self) -> bool:
        """Whether the asked energy is within the guarantee (no ask: yes)."""
        return self.energy_kwh is None or self.energy_kwh <= self.guaranteed_kwh + 1e-9

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (what the store keeps)."""
        return {
            "id": self.reservation_id,
            "charger": self.charger_id,
            "start": self.start,
            "end": self.end,
            "energy_kwh": self.energy_kwh,
            "vehicle": self.vehicle,
            "guaranteed_kwh": self.guaranteed_kwh,
            "max_kwh": self.max_kwh,
            "created": self.created,
            "claimed": self.claimed,
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], repaired: list[str] | None = None
    ) -> Reservation:
        """The reservation `as_dict` wrote (raises on a damaged record).

        Damaged: no id, charger, start or end that reads. A stored number no
        booking can have (an energy that is not finite or negative, a
        guarantee, maximum or creation time that is not finite or negative)
        is dropped instead: the energy becomes `None` (as much as it gets, the
        period stays booked), the others their default; each is noted in
        `repaired`.
        """
        notes: list[str] = []
        vehicle = data.get("vehicle")
        reservation = cls(
            reservation_id=str(data["id"]),
            charger_id=int(data["charger"]),
            start=float(data["start"]),
            end=float(data["end"]),
            energy_kwh=_stored_amount(data, "energy_kwh", notes),
            vehicle=None if vehicle is None else str(vehicle),
            guaranteed_kwh=_stored_amount(data, "guaranteed_kwh", notes) or 0.0,
            max_kwh=_stored_amount(data, "max_kwh", notes) or 0.0,
            created=_stored_amount(data, "created", notes) or 0.0,
            claimed=bool(data.get("claimed", False)),
        )
        if repaired is not None:
            repaired.extend(f"{reservation.reservation_id}: {n}" for n in notes)
        return reservation


def _stored_amount(data: Mapping[str, Any], key: str, notes: list[str]) -> float | None:
    """A stored finite, non-negative number; `None` if absent or not one (noted)."""
    value = data.get(key)
    if value is None:
        return None
    try:
        number = float(value)
    except TypeError, ValueError:
        number = math.nan
    if math.isfinite(number) and number >= 0.0:
        return number
    notes.append(f"{key} {value!r:.40} dropped")
    return None


@dataclass(frozen=True, slots=True)
class Released:
    """A booking that left the book, when and why."""

    reservation: Reservation
    at: float
    reason: ReleaseReason

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the store keeps the history across restarts)."""
        return {
            **self.reservation.as_dict(),
            "released_at": self.at,
            "reason": self.reason.value,
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], repaired: list[str] | None = None
    ) -> Released:
        """The released booking `as_dict` wrote (raises on a damaged record).

        `repaired`: as for `Reservation.from_dict`.
        """
        return cls(
            Reservation.from_dict(data, repaired),
            float(data["released_at"]),
            ReleaseReason(data["reason"]),
        )


@dataclass(frozen=True, slots=True)
class Availability:
    """A charger free for a whole period (datafev's `query_availability` row)."""

    charger_id: int
    max_power_w: float
    guaranteed_power_w: float
    max_kwh: float
    """What it could deliver over the period at its rated power."""
    guaranteed_kwh: float


type Guarantee = Callable[[ChargerCapacity, float, float], float]
"""The power (W) the hub can promise a charger over ``[start, end)``."""


def static_guarantee(capacity: ChargerCapacity, _start: float, _end: float) -> float:
    """The circuit fair share, the same at every time (the default estimate)."""
    return capacity.guaranteed_power_w


def circuit_limit_w(circuit: Circuit, nominal_voltage_v: float) -> float | None:
    """A circuit's tightest static limit in W (fuse over three phases, or kW limit)."""
    limits = []
    if circuit.phase_limit_a is not None:
        limits.append(circuit.phase_limit_a * 3 * nominal_voltage_v)
    if circuit.power_limit_w is not None:
        limits.append(circuit.power_limit_w)
    return min(limits) if limits else None


def charger_capacities(
    max_power_w: Mapping[int, float],
    circuits: Iterable[Circuit] = (),
    *,
    nominal_voltage_v: float = 230.0,
) -> dict[int, ChargerCapacity]:
    """Each charger's rated power and the fair share its circuits leave it."""
    shares: dict[int, float] = dict(max_power_w)
    for circuit in circuits:
        limit = circuit_limit_w(circuit, nominal_voltage_v)
        members = circuit.charger_ids & shares.keys()
        if limit is None or not members:
            continue
        share = max(0.0, limit) / len(members)
        for charger_id in members:
            shares[charger_id] = min(shares[charger_id], share)
    return {
        cid: ChargerCapacity(cid, power, shares[cid])
        for cid, power in max_power_w.items()
    }


def _kwh(power_w: float, seconds: float) -> float:
    return power_w * seconds / 3.6e6


@dataclass(slots=True)
class _ChargerBook:
    """One charger's bookings, sorted by start (and so by end)."""

    starts: list[float] = field(default_factory=list)
    bookings: list[Reservation] = field(default_factory=list)

    def conflict(self, start: float, end: float) -> Reservation | None:
        """The booking overlapping ``[start, end)``, if any (at most two can)."""
        index = bisect_left(self.starts, start)
        if index > 0 and self.bookings[index - 1].end > start:
            return self.bookings[index - 1]
        if index < len(self.starts) and self.starts[index] < end:
            return self.bookings[index]
        return None

    def insert(self, reservation: Reservation) -> None:
        index = bisect_left(self.starts, reservation.start)
        self.starts.insert(index, reservation.start)
        self.bookings.insert(index, reservation)

    def index_of(self, reservation: Reservation) -> int:
        index = bisect_left(self.starts, reservation.start)
        while self.bookings[index].reservation_id != reservation.reservation_id:
            index += 1
        return index

    def remove(self, reservation: Reservation) -> None:
        index = self.index_of(reservation)
        del self.starts[index]
        del self.bookings[index]

    def replace_at(self, reservation: Reservation) -> None:
        self.bookings[self.index_of(reservation)] = reservation

    def in_force(self, at: float) -> Reservation | None:
        index = bisect_right(self.starts, at) - 1
        if index >= 0 and self.bookings[index].end > at:
            return self.bookings[index]
        return None


class ReservationBook:
    """The bookings of every charger of a hub; nothing in it ever overlaps.

    Args:
        capacities: The bookable chargers (`charger_capacities`).
        clock: Wall-clock POSIX seconds (injected for tests and benchmarks).
        grace_s: How long a booking waits for its car after its start.
        guarantee: The power the hub can promise a charger over a period
            (`static_guarantee` unless an envelope-aware planner is given).
        max_per_charger: Future bookings one charger may hold.
        new_id: Makes reservation ids (random by default).
    """

    def __init__(
        self,
        capacities: Mapping[int, ChargerCapacity],
        *,
        clock: Callable[[], float] = time.time,
        grace_s: float = DEFAULT_GRACE_S,
        guarantee: Guarantee = static_guarantee,
        max_per_charger: int = MAX_PER_CHARGER,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        """Start with an empty book for the chargers of `capacities`."""
        self.capacities = dict(capacities)
        self._clock = clock
        self.grace_s = check_grace(grace_s)
        self._guarantee = guarantee
        self._max_per_charger = max_per_charger
        self._new_id = new_id
        self._books = {cid: _ChargerBook() for cid in self.capacities}
        self._by_id: dict[str, Reservation] = {}
        self._preference = sorted(
            self.capacities.values(), key=lambda c: (-c.max_power_w, c.charger_id)
        )
        """Order in which "any" charger is picked: most power first, then lowest id."""
        self._preferred_books = [
            (c, self._books[c.charger_id].starts, self._books[c.charger_id].bookings)
            for c in self._preference
        ]
        """The same order with each charger's lists (changed in place, not replaced)."""
        self.history: deque[Released] = deque(maxlen=HISTORY_LENGTH)
        self._listeners: list[Callable[[], None]] = []
        self._occupied: frozenset[int] = frozenset()
        """The chargers with a car plugged in at the last `observe`."""

    # -- queries -----------------------------------------------------------------

    @property
    def charger_ids(self) -> list[int]:
        """The bookable chargers, sorted."""
        return sorted(self.capacities)

    def __len__(self) -> int:
        """The number of bookings in the book."""
        return len(self._by_id)

    def get(self, reservation_id: str) -> Reservation | None:
        """The booking with that id, or `None`."""
        return self._by_id.get(reservation_id)

    def reservations(
        self, start: float = -math.inf, end: float = math.inf
    ) -> list[Reservation]:
        """The bookings overlapping ``[start, end)``, by start, then charger."""
        found = [r for r in self._by_id.values() if r.start < end and r.end > start]
        return sorted(found, key=lambda r: (r.start, r.charger_id))

    def of_charger(self, charger_id: int) -> list[Reservation]:
        """One charger's bookings, by start."""
        book = self._books.get(charger_id)
        return [] if book is None else list(book.bookings)

    def in_force(self, charger_id: int, at: float | None = None) -> Reservation | None:
        """The booking of `charger_id` in force at `at` (default: now), if any."""
        book = self._books.get(charger_id)
        return None if book is None else book.in_force(self._now(at))

    def upcoming(self, at: float | None = None) -> Reservation | None:
        """The booking in force at `at` (default: now) or starting next, of any charger.

        The earliest-starting one of those; a charger costs one bisect.
        """
        now = self._now(at)
        best: Reservation | None = None
        for book in self._books.values():
            index = max(0, bisect_right(book.starts, now) - 1)
            if index < len(book.bookings) and book.bookings[index].end <= now:
                index += 1
            if index < len(book.bookings) and (
                best is None or book.bookings[index].start < best.start
            ):
                best = book.bookings[index]
        return best

    def find_available(self, start: float, end: float) -> list[Availability]:
        """The chargers free for all of ``[start, end)``, the preferred first.

        For a period starting soon (`OCCUPIED_FOR_S`), those with a car plugged
        in now come last: "any" takes them only when no other one is free.
        """
        now = self._clock()
        self._check_period(start, end, now)
        duration = end - start
        found = []
        for capacity in self._in_preference(start, now):
            book = self._books[capacity.charger_id]
            # What `reserve` would accept: free for the period and under the cap.
            if (
                len(book.bookings) < self._max_per_charger
                and book.conflict(start, end) is None
            ):
                guaranteed_w = self._guaranteed_w(capacity, start, end)
                found.append(
                    Availability(
                        charger_id=capacity.charger_id,
                        max_power_w=capacity.max_power_w,
                        guaranteed_power_w=guaranteed_w,
                        max_kwh=_kwh(capacity.max_power_w, duration),
                        guaranteed_kwh=_kwh(guaranteed_w, duration),
                    )
                )
        return found

    # -- changes -----------------------------------------------------------------

    def reserve(
        self,
        charger: int | None,
        start: float,
        end: float,
        *,
        energy_kwh: float | None = None,
        vehicle: str | None = None,
    ) -> Reservation:
        """Book `charger` (`None`: any free one) for ``[start, end)``.

        Raises `ReservationError` and changes nothing if the period or the energy
        is invalid, the charger is unknown or taken, or no charger is free.
        """
        return self._book(
            self._new_id(), charger, start, end, energy_kwh, vehicle, claimed=False
        )

    def update(
        self,
        reservation_id: str,
        charger: int | None,
        start: float,
        end: float,
        *,
        energy_kwh: float | None = None,
        vehicle: str | None = None,
    ) -> Reservation:
        """Move or change a booking, all checks included; on refusal it stays."""
        old = self._require(reservation_id)
        self._remove(old)
        try:
            updated = self._book(
                reservation_id,
                charger,
                start,
                end,
                energy_kwh,
                vehicle,
                claimed=False,
                created=old.created,
                notify=False,
            )
        except ReservationError:
            self._insert(old)
            raise
        if old.claimed and updated.charger_id == old.charger_id:
            # The car at the same charger still counts for the moved booking.
            updated = replace(updated, claimed=True)
            self._books[updated.charger_id].replace_at(updated)
            self._by_id[reservation_id] = updated
        self._changed()
        return updated

    def cancel(self, reservation_id: str) -> Reservation:
        """Cancel a booking: exactly its period becomes free again."""
        reservation = self._require(reservation_id)
        self._remove(reservation)
        self.history.append(
            Released(reservation, self._clock(), ReleaseReason.CANCELLED)
        )
        self._changed()
        return reservation

    def observe(
        self,
        plugged: Collection[int],
        at: float | None = None,
        *,
        unknown: Collection[int] = (),
    ) -> list[Released]:
        """Follow the bookings in force with the chargers that have a car now.

        A booking in force whose charger has a car is *claimed*; one still
        unclaimed ``grace_s`` after its start (or after it was made, for one
        made once its period had begun) is released as a no-show, unless
        its charger is in `unknown` (no fresh cable state: nobody can say the
        car is not there). Bookings that ended are pruned. Returns what was
        released or pruned.
        """
        now = self._now(at)
        self._occupied = frozenset(plugged)
        released: list[Released] = []
        claimed: list[Reservation] = []
        for charger_id, book in self._books.items():
            bookings = book.bookings
            while bookings and bookings[0].end <= now:
                released.append(Released(bookings[0], now, ReleaseReason.ENDED))
                self._remove(bookings[0])
            if not bookings or bookings[0].start > now:
                continue
            current = bookings[0]
            if current.claimed:
                continue
            if charger_id in plugged:
                claimed.append(replace(current, claimed=True))
            elif charger_id not in unknown and now >= current.waits_from + self.grace_s:
                released.append(Released(current, now, ReleaseReason.NO_SHOW))
                self._remove(current)
        for reservation in claimed:
            self._books[reservation.charger_id].replace_at(reservation)
            self._by_id[reservation.reservation_id] = reservation
        self.history.extend(released)
        if released or claimed:
            self._changed()
        return released

    def restore(self, reservations: Iterable[Reservation]) -> list[Reservation]:
        """Put stored bookings back (after a restart); returns those left out.

        Left out: bookings that ended meanwhile, of a charger that is gone,
        that collide with one already restored, or whose period no booking may
        have (a damaged record: not finite, too long, too far ahead; a date past
        year 9999 would break every calendar view of the book).
        """
        now = self._clock()
        skipped = []
        for reservation in reservations:
            book = self._books.get(reservation.charger_id)
            if (
                book is not None
                and reservation.end <= now
                and self._well_formed(reservation.start, reservation.end)
            ):
                # Ended while Home Assistant was down: shown as ended, as if
                # it had ended while running.
                ended = Released(reservation, reservation.end, ReleaseReason.ENDED)
                self.history.append(ended)
                skipped.append(reservation)
                continue
            if (
                book is None
                or not self._period_allowed(reservation.start, reservation.end, now)
                or reservation.reservation_id in self._by_id
                or book.conflict(reservation.start, reservation.end) is not None
            ):
                skipped.append(reservation)
                continue
            self._insert(reservation)
        self._changed()
        return skipped

    def restore_history(self, released: Iterable[Released]) -> None:
        """Put the stored history back (after a restart), oldest first.

        Damaged records (a period no booking may have, a release time that is
        not a number) are left out: one would break every calendar view.
        """
        self.history.extend(
            r
            for r in released
            if self._well_formed(r.reservation.start, r.reservation.end)
            and _MIN_TIME_S < r.at < _MAX_TIME_S
        )

    def follow_chargers(
        self, capacities: Mapping[int, ChargerCapacity]
    ) -> list[Reservation]:
        """Book the chargers of a changed topology; returns the bookings dropped.

        New chargers are bookable at once. A charger that left the microgrid
        takes its bookings with it (nothing can charge there; they are released
        as `CHARGER_GONE`). Chargers that stay keep their bookings and the
        promises made with them; new bookings are priced on the new capacities.
        The listeners hear of it only when bookings were dropped (they follow
        the bookings; on a large hub each hearing rewrites every charger's state).
        """
        now = self._clock()
        dropped = [
            reservation
            for charger_id in sorted(self._books.keys() - capacities.keys())
            for reservation in self._books[charger_id].bookings
        ]
        for reservation in dropped:
            self._remove(reservation)
            self.history.append(Released(reservation, now, ReleaseReason.CHARGER_GONE))
        self.capacities = dict(capacities)
        self._books = {
            cid: self._books[cid] if cid in self._books else _ChargerBook()
            for cid in self.capacities
        }
        self._preference = sorted(
            self.capacities.values(), key=lambda c: (-c.max_power_w, c.charger_id)
        )
        self._preferred_books = [
            (c, self._books[c.charger_id].starts, self._books[c.charger_id].bookings)
            for c in self._preference
        ]
        if dropped:
            self._changed()
        return dropped

    def listen(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` after every change; returns what stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def __iter__(self) -> Iterator[Reservation]:
        """Every booking, by start, then charger."""
        return iter(self.reservations())

    # -- internals ---------------------------------------------------------------

    def _now(self, at: float | None) -> float:
        return self._clock() if at is None else at

    def _require(self, reservation_id: str) -> Reservation:
        reservation = self._by_id.get(reservation_id)
        if reservation is None:
            raise ReservationError(
                ReservationProblem.UNKNOWN_RESERVATION, reservation=reservation_id
            )
        return reservation

    def _well_formed(self, start: float, end: float) -> bool:
        """Whether a stored period is one a booking may have had (any time)."""
        return (
            start > _MIN_TIME_S
            and end < _MAX_TIME_S
            and self._period_allowed(start, end, start)
        )

    def _period_allowed(self, start: float, end: float, now: float) -> bool:
        try:
            self._check_period(start, end, now)
        except ReservationError:
            return False
        return True

    def _check_period(self, start: float, end: float, now: float) -> None:
        if not (math.isfinite(start) and math.isfinite(end)):
            raise ReservationError(ReservationProblem.NOT_FINITE)
        if end <= start:
            raise ReservationError(ReservationProblem.END_NOT_AFTER_START)
        if end <= now:
            raise ReservationError(ReservationProblem.IN_THE_PAST)
        if end - start > MAX_DURATION_S + CLOCK_CHANGE_S:
            raise ReservationError(
                ReservationProblem.TOO_LONG, max_hours=f"{MAX_DURATION_S / 3600:g}"
            )
        if start > now + HORIZON_S:
            raise ReservationError(
                ReservationProblem.TOO_FAR_AHEAD, max_days=f"{HORIZON_S / 86400:g}"
            )

    def _book(
        self,
        reservation_id: str,
        charger: int | None,
        start: float,
        end: float,
        energy_kwh: float | None,
        vehicle: str | None,
        *,
        claimed: bool,
        created: float | None = None,
        notify: bool = True,
    ) -> Reservation:
        now = self._clock()
        self._check_period(start, end, now)
        if energy_kwh is not None and not (
            math.isfinite(energy_kwh) and energy_kwh >= 0.0
        ):
            raise ReservationError(ReservationProblem.INVALID_ENERGY, energy=energy_kwh)
        label = _vehicle_label(vehicle)
        capacity = self._free_charger(charger, start, end)
        duration = end - start
        reservation = Reservation(
            reservation_id=reservation_id,
            charger_id=capacity.charger_id,
            start=start,
            end=end,
            energy_kwh=energy_kwh,
            vehicle=label,
            guaranteed_kwh=_kwh(self._guaranteed_w(capacity, start, end), duration),
            max_kwh=_kwh(capacity.max_power_w, duration),
            created=now if created is None else created,
            claimed=claimed,
        )
        self._insert(reservation)
        if notify:
            self._changed()
        return reservation

    def _free_charger(
        self, charger: int | None, start: float, end: float
    ) -> ChargerCapacity:
        """The charger to book: the one asked for if free, else the preferred one."""
        if charger is not None:
            capacity = self.capacities.get(charger)
            if capacity is None:
                raise ReservationError(
                    ReservationProblem.UNKNOWN_CHARGER,
                    charger=charger,
                    chargers=", ".join(map(str, self.charger_ids)) or "-",
                )
            book = self._books[charger]
            if (conflict := book.conflict(start, end)) is not None:
                raise ReservationError(
                    ReservationProblem.OVERLAP,
                    charger=charger,
                    reservation=conflict.reservation_id,
                    start=conflict.start,
                    end=conflict.end,
                )
            if len(book.bookings) >= self._max_per_charger:
                raise ReservationError(
                    ReservationProblem.CHARGER_FULL,
                    charger=charger,
                    max=self._max_per_charger,
                )
            return capacity
        # The hot path of a busy depot: `_ChargerBook.conflict` inlined, since a
        # refused "any" asks every charger (a call per charger would double it).
        limit = self._max_per_charger
        avoid = self._occupied if start < self._clock() + OCCUPIED_FOR_S else ()
        taken: ChargerCapacity | None = None
        for capacity, starts, bookings in self._preferred_books:
            count = len(starts)
            if count >= limit:
                continue
            index = bisect_left(starts, start)
            if (index == 0 or bookings[index - 1].end <= start) and (
                index == count or starts[index] >= end
            ):
                if capacity.charger_id not in avoid:
                    return capacity
                taken = taken or capacity  # a car is there now: the last resort
        if taken is not None:
            return taken
        raise ReservationError(ReservationProblem.NO_CHARGER_FREE)

    def _in_preference(self, start: float, now: float) -> list[ChargerCapacity]:
        """The chargers as "any" tries them for a period from `start`."""
        if start >= now + OCCUPIED_FOR_S or not self._occupied:
            return self._preference
        return sorted(
            self._preference, key=lambda c: c.charger_id in self._occupied
        )  # stable: the preference holds within each group

    def _guaranteed_w(
        self, capacity: ChargerCapacity, start: float, end: float
    ) -> float:
        return max(
            0.0, min(capacity.max_power_w, self._guarantee(capacity, start, end))
        )

    def _insert(self, reservation: Reservation) -> None:
        self._books[reservation.charger_id].insert(reservation)
        self._by_id[reservation.reservation_id] = reservation

    def _remove(self, reservation: Reservation) -> None:
        self._books[reservation.charger_id].remove(reservation)
        del self._by_id[reservation.reservation_id]

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()


def check_grace(grace_s: float) -> float:
    """A grace period within 0 s … `MAX_GRACE_S` (raises `ValueError` otherwise)."""
    if not (math.isfinite(grace_s) and 0.0 <= grace_s <= MAX_GRACE_S):
        raise ValueError(f"grace period {grace_s} s outside 0–{MAX_GRACE_S:g} s")
    return float(grace_s)


def _vehicle_label(vehicle: str | None) -> str | None:
    if vehicle is None:
        return None
    label = vehicle.strip()
    if len(label) > MAX_VEHICLE_LENGTH:
        raise ReservationError(
            ReservationProblem.INVALID_VEHICLE, max=MAX_VEHICLE_LENGTH
        )
    return label or None
