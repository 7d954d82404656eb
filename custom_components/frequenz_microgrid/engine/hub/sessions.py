"""Charging sessions: every plug-in → unplug at a charger, with what it delivered.

A session starts with the first snapshot in which the charger's cable is plugged
at both the EV and the station (the same test the steering uses to decide that an
EV is connected) and ends with the first one in which it is not. Between the two:

* **energy** follows the charger's own `AC_ENERGY_ACTIVE_CONSUMED` counter where it
  sends one (increases only, a counter reset re-bases), else its power integrated
  with the trapezoid rule between fresh samples (`energy.EnergyTotal`, the
  Energy dashboard's arithmetic, so the two never disagree);
* each increase is split into solar / battery / grid by the source shares of the
  interval it was taken in (`attribution.py`: the site's flows averaged over the
  interval's two snapshots, the EVs' demand from the energy all of them took in
  it), so the three parts always add up to the energy;
* the peak power and an energy profile in 5-minute slots (for the reports) are
  kept; each session stores its slot length, so a later change of the resolution
  leaves stored sessions readable.

A silent charger is not an unplug: while a charger sends no fresh cable state
(telemetry gap, microgrid unreachable, Home Assistant restarting) its session
stays open. When it is heard again unplugged, the session ends at the first
unplugged observation if that follows the last plugged one closely, else at the
last time it was seen plugged in (the best known time).

Sessions are plain data with `as_stored`/`from_stored`, so the Home Assistant
layer can keep them across restarts; an open session restored while the cable is
still plugged continues instead of being split. Room for a later deadline target
and booking is left in `target_energy_wh`, `target_time` and `booking_id`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import enum
import math
from typing import Any, Final

from ..energy import MAX_INTEGRATION_GAP, EnergyTotal, positive_part
from ..health import ev_cable_connected
from ..members import AC_POWER, ENERGY_CONSUMED
from ..snapshot import ComponentSnapshot, MicrogridSnapshot
from .attribution import SiteFlows, SourceShares

SESSIONS_KEPT: Final = 500
"""How many ended sessions are kept (the oldest are dropped first)."""

PROFILE_SLOT_S: Final = 300
"""Resolution of a new session's energy profile (seconds).

Five minutes: finer than the 15-minute steps of grid operators and datafev's
examples, and 500 stored sessions of a depot stay around half a megabyte.
"""

_STORED_DIGITS: Final = 3
"""Stored energies are rounded to mWh (the JSON stays short; no meter is finer)."""

MAX_UNPLUG_GAP: Final = MAX_INTEGRATION_GAP
"""An unplug seen within this time of the last plugged observation ends the
session when it is seen; after a longer silence, at the last plugged observation."""


class SessionChangeKind(enum.StrEnum):
    """What happened to a session (the `event` entity's event types)."""

    STARTED = "session_started"
    ENDED = "session_ended"


@dataclass(slots=True, kw_only=True)
class ProfileSlot:
    """The energy a session took in one profile slot, and its green parts (Wh)."""

    energy_wh: float = 0.0
    solar_wh: float = 0.0
    battery_wh: float = 0.0

    @property
    def grid_wh(self) -> float:
        """The part of the slot's energy that came from the grid."""
        return max(self.energy_wh - self.solar_wh - self.battery_wh, 0.0)


@dataclass(slots=True, kw_only=True)
class ChargingSession:
    """One plug-in → unplug at one charger."""

    charger_id: int
    started_at: datetime
    last_seen_connected: datetime
    """The last time the cable was seen plugged in (the end after a long silence)."""
    ended_at: datetime | None = None
    solar_wh: float = 0.0
    battery_wh: float = 0.0
    grid_wh: float = 0.0
    peak_power_w: float = 0.0
    profile: dict[int, ProfileSlot] = field(default_factory=dict)
    """Energy per `profile_slot_s` slot, keyed by the slot's start (Unix seconds)."""
    profile_slot_s: int = PROFILE_SLOT_S
    """The length of the profile's slots (seconds)."""
    counter: EnergyTotal = field(default_factory=lambda: EnergyTotal(total_wh=0.0))
    """The session's energy total: the charger's counter, or integrated power."""
    target_energy_wh: float | None = None
    """Reserved for deadline charging (a later issue): the energy wanted."""
    target_time: datetime | None = None
    """Reserved for deadline charging: when the energy is wanted by."""
    booking_id: str | None = None
    """Reserved for bookings: the reservation this session fulfils."""

    @property
    def session_id(self) -> str:
        """Stable id: the charger and the start time (Unix seconds)."""
        return f"{self.charger_id}-{int(self.started_at.timestamp())}"

    @property
    def is_open(self) -> bool:
        """Whether the EV is (as far as known) still plugged in."""
        return self.ended_at is None

    @property
    def energy_wh(self) -> float:
        """The energy delivered: the sum of its solar, battery and grid parts."""
        return self.solar_wh + self.battery_wh + self.grid_wh

    @property
    def energy_source(self) -> str:
        """Where the energy figure comes from: `meter` or `integrated` power."""
        return "meter" if self.counter.follows_meter else "integrated"

    def end_or(self, now: datetime) -> datetime:
        """The end, or `now` while the session is open."""
        return self.ended_at if self.ended_at is not None else now

    def duration(self, now: datetime) -> timedelta:
        """How long the EV has been (or was) plugged in."""
        return max(self.end_or(now) - self.started_at, timedelta(0))

    def overlaps(self, start: datetime, end: datetime, now: datetime) -> bool:
        """Whether the session was open at some time in `[start, end)`."""
        return self.started_at < end and self.end_or(now) > start

    def add_energy(self, at: datetime, energy_wh: float, shares: SourceShares) -> None:
        """Account `energy_wh` taken up to `at`, split by `shares`."""
        solar = energy_wh * shares.solar
        battery = energy_wh * shares.battery
        self.solar_wh += solar
        self.battery_wh += battery
        self.grid_wh += max(energy_wh - solar - battery, 0.0)
        slot_s = self.profile_slot_s
        slot_start = int(at.timestamp()) // slot_s * slot_s
        slot = self.profile.setdefault(slot_start, ProfileSlot())
        slot.energy_wh += energy_wh
        slot.solar_wh += solar
        slot.battery_wh += battery

    def record(self, now: datetime) -> dict[str, Any]:
        """The session as a JSON-ready record (event attributes, report rows)."""
        return {
            "session_id": self.session_id,
            "charger_id": self.charger_id,
            "started_at": self.started_at.isoformat(),
            "ended_at": None if self.ended_at is None else self.ended_at.isoformat(),
            "duration_s": round(self.duration(now).total_seconds(), 3),
            "energy_kwh": round(self.energy_wh / 1000.0, 6),
            "solar_kwh": round(self.solar_wh / 1000.0, 6),
            "battery_kwh": round(self.battery_wh / 1000.0, 6),
            "grid_kwh": round(self.grid_wh / 1000.0, 6),
            "peak_power_kw": round(self.peak_power_w / 1000.0, 6),
            "energy_source": self.energy_source,
            "target_energy_kwh": (
                None
                if self.target_energy_wh is None
                else round(self.target_energy_wh / 1000.0, 6)
            ),
            "target_time": (
                None if self.target_time is None else self.target_time.isoformat()
            ),
            "booking_id": self.booking_id,
        }

    def as_stored(self) -> dict[str, Any]:
        """What survives a restart (JSON-ready)."""
        return {
            "charger_id": self.charger_id,
            "started_at": self.started_at.isoformat(),
            "last_seen_connected": self.last_seen_connected.isoformat(),
            "ended_at": None if self.ended_at is None else self.ended_at.isoformat(),
            "solar_wh": self.solar_wh,
            "battery_wh": self.battery_wh,
            "grid_wh": self.grid_wh,
            "peak_power_w": self.peak_power_w,
            "profile_slot_s": self.profile_slot_s,
            "profile": [
                [
                    start,
                    round(slot.energy_wh, _STORED_DIGITS),
                    round(slot.solar_wh, _STORED_DIGITS),
                    round(slot.battery_wh, _STORED_DIGITS),
                ]
                for start, slot in sorted(self.profile.items())
            ],
            "counter": self.counter.as_dict(),
            "target_energy_wh": self.target_energy_wh,
            "target_time": (
                None if self.target_time is None else self.target_time.isoformat()
            ),
            "booking_id": self.booking_id,
        }

    @classmethod
    def from_stored(
        cls, data: object, repaired: list[str] | None = None
    ) -> ChargingSession:
        """Rebuild a stored session; raise `ValueError` on a malformed one.

        Malformed: not a mapping, or a damaged start, charger, energy, peak
        power or profile. A damaged optional field (the counter baseline, the
        target, the booking) costs only itself: it is dropped (the counter then
        starts from the next reading) and noted in `repaired`.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"malformed session: {data!r:.80}")
        notes: list[str] = []
        try:
            started_at = _time(data["started_at"])
            if started_at is None:
                raise ValueError("a session needs a start")
            session = cls(
                charger_id=int(data["charger_id"]),
                started_at=started_at,
                last_seen_connected=_time(data.get("last_seen_connected"))
                or started_at,
                ended_at=_time(data.get("ended_at")),
                solar_wh=_energy(data.get("solar_wh")),
                battery_wh=_energy(data.get("battery_wh")),
                grid_wh=_energy(data.get("grid_wh")),
                peak_power_w=_energy(data.get("peak_power_w")),
                profile={
                    int(row[0]): ProfileSlot(
                        energy_wh=_energy(row[1]),
                        solar_wh=_energy(row[2]),
                        battery_wh=_energy(row[3]),
                    )
                    for row in data.get("profile", [])
                },
                profile_slot_s=int(data.get("profile_slot_s", PROFILE_SLOT_S)),
                counter=_optional(data, "counter", _counter, notes) or EnergyTotal(),
                target_energy_wh=_optional(data, "target_energy_wh", _energy, notes),
                target_time=_optional(data, "target_time", _time, notes),
                booking_id=_optional(data, "booking_id", _booking_id, notes),
            )
        except (KeyError, TypeError, IndexError, OverflowError) as err:
            raise ValueError(f"malformed session: {err!r}") from err
        if session.profile_slot_s <= 0:
            raise ValueError(f"malformed profile slot: {session.profile_slot_s}")
        if session.counter.total_wh is None:
            session.counter.total_wh = 0.0
        if repaired is not None:
            repaired.extend(f"{session.session_id}: {note}" for note in notes)
        return session


@dataclass(frozen=True, slots=True)
class SessionChange:
    """A session started or ended (what the `event` entity fires)."""

    kind: SessionChangeKind
    session: ChargingSession


class SessionTracker:
    """The sessions of a microgrid's EV chargers, fed one snapshot at a time."""

    def __init__(
        self, charger_ids: Iterable[int], *, kept: int = SESSIONS_KEPT
    ) -> None:
        """Track the chargers `charger_ids`, keeping the last `kept` ended sessions."""
        self.charger_ids: tuple[int, ...] = tuple(sorted(charger_ids))
        self.open: dict[int, ChargingSession] = {}
        """The open session per charger (only chargers with an EV plugged in)."""
        self.ended: deque[ChargingSession] = deque(maxlen=kept)
        """Ended sessions, oldest first."""
        self._ended_stored: deque[dict[str, Any]] = deque(maxlen=kept)
        """`as_stored` of each ended session, made once (an ended session is final)."""
        self.last_update: datetime | None = None
        self._last_flows: tuple[datetime, SiteFlows, float] | None = None
        """The previous snapshot's time, site flows and EV power."""

    def update(self, snapshot: MicrogridSnapshot) -> list[SessionChange]:
        """Account one snapshot; return the sessions it started and ended."""
        now = snapshot.taken_at
        self.last_update = now
        if not snapshot.reachable:
            self._last_flows = None
            for silent in self.open.values():
                silent.counter.add_power_sample(now, None)
            return []
        changes: list[SessionChange] = []
        taken: list[tuple[ChargingSession, float]] = []
        unplugged: list[ChargingSession] = []
        tracked = self.charger_ids
        for charger_id in tracked:
            data = snapshot.component(charger_id)
            session = self.open.get(charger_id)
            if data is None or not data.fresh or not data.states:
                if session is not None:  # silent: not an unplug, but a gap
                    session.counter.add_power_sample(now, None)
                continue
            connected = ev_cable_connected(data.states)
            if session is None:
                if not connected:
                    continue
                session = ChargingSession(
                    charger_id=charger_id, started_at=now, last_seen_connected=now
                )
                self.open[charger_id] = session
                changes.append(SessionChange(SessionChangeKind.STARTED, session))
            taken.append((session, _take_reading(session, data, now)))
            if connected:
                session.last_seen_connected = now
                continue
            unplugged.append(session)
        shares = self._interval_shares(snapshot, sum(wh for _, wh in taken))
        for session, energy_wh in taken:
            if energy_wh > 0.0:
                session.add_energy(now, energy_wh, shares)
        for session in unplugged:  # closed with their last interval's energy
            session.ended_at = (
                now
                if now - session.last_seen_connected <= MAX_UNPLUG_GAP
                else session.last_seen_connected
            )
            self._close(session)
            changes.append(SessionChange(SessionChangeKind.ENDED, session))
        for session in [s for s in self.open.values() if s.charger_id not in tracked]:
            # Its charger left the microgrid: ended when last seen plugged in
            # (as at a restore), not left open for good.
            session.ended_at = session.last_seen_connected
            self._close(session)
            changes.append(SessionChange(SessionChangeKind.ENDED, session))
        return changes

    def current_or_last(self, charger_id: int) -> ChargingSession | None:
        """The charger's open session, else its last ended one, else `None`."""
        if (session := self.open.get(charger_id)) is not None:
            return session
        return next(
            (s for s in reversed(self.ended) if s.charger_id == charger_id), None
        )

    def sessions(self) -> Iterator[ChargingSession]:
        """Every kept session, ended ones first (oldest first), then open ones."""
        yield from self.ended
        yield from sorted(self.open.values(), key=lambda s: s.started_at)

    def as_stored(self) -> dict[str, Any]:
        """What survives a restart: the ended and the open sessions."""
        return {
            "ended": list(self._ended_stored),
            "open": [session.as_stored() for session in self.open.values()],
        }

    def restore(self, data: object, *, repaired: list[str] | None = None) -> list[str]:
        """Load stored sessions (`as_stored`); return why any were skipped (malformed).

        Every session that reads is kept, whatever its neighbours are. A
        session kept without a damaged optional field is noted in `repaired`
        (`ChargingSession.from_stored`). Open sessions of chargers that are no
        longer in the microgrid end at the last time they were seen plugged in;
        the others stay open until their charger is heard again (continued if
        still plugged in).
        """
        if not isinstance(data, Mapping):
            return [f"not a mapping of sessions: {data!r:.80}"]
        problems: list[str] = []
        for kind in ("ended", "open"):
            rows = data.get(kind)
            if rows is None:
                continue
            if not isinstance(rows, list):
                problems.append(f"the {kind} sessions are not a list: {rows!r:.80}")
                continue
            for row in rows:
                try:
                    session = ChargingSession.from_stored(row, repaired)
                except ValueError as err:
                    problems.append(str(err))
                    continue
                if session.is_open and session.charger_id in self.charger_ids:
                    self.open[session.charger_id] = session
                    continue
                if session.is_open:
                    session.ended_at = session.last_seen_connected
                self._append_ended(session)
        return problems

    def _close(self, session: ChargingSession) -> None:
        del self.open[session.charger_id]
        self._append_ended(session)

    def _append_ended(self, session: ChargingSession) -> None:
        self.ended.append(session)
        self._ended_stored.append(session.as_stored())

    def _interval_shares(
        self, snapshot: MicrogridSnapshot, ev_energy_wh: float
    ) -> SourceShares:
        """The source shares since the previous snapshot (this one's after a gap).

        The site's flows are the mean of the interval's two ends. The EVs' demand
        is the energy they took over the interval's length, kept between the EV
        power at its two ends: an EV that started charging just after the previous
        snapshot drew full power for most of the interval (not the mean of 0 and
        full power), and a clock that is not the meters' (a simulator running
        faster than real time) cannot make the demand larger than ever measured.
        """
        now = snapshot.taken_at
        ev_now_w = self._ev_power_w(snapshot)
        flows = SiteFlows.of_snapshot(snapshot, ev_now_w)
        previous = self._last_flows
        self._last_flows = (now, flows, ev_now_w)
        if previous is None or not timedelta(0) < now - previous[0] <= MAX_UNPLUG_GAP:
            return flows.ev_shares(ev_now_w)
        previous_at, previous_flows, ev_before_w = previous
        hours = (now - previous_at) / timedelta(hours=1)
        demand_w = min(
            max(ev_energy_wh / hours, min(ev_before_w, ev_now_w)),
            max(ev_before_w, ev_now_w),
        )
        return flows.mean(previous_flows).ev_shares(demand_w)

    def _ev_power_w(self, snapshot: MicrogridSnapshot) -> float:
        """All EV chargers' power now (their own readings: one instant)."""
        total = 0.0
        for charger_id in self.charger_ids:
            data = snapshot.component(charger_id)
            power = None if data is None else data.value(AC_POWER)
            if power is not None:
                total += positive_part(power)
        return total


def _take_reading(
    session: ChargingSession, data: ComponentSnapshot, now: datetime
) -> float:
    """Follow the charger's counter (or power); return the energy taken since (Wh)."""
    power = data.value(AC_POWER)
    if power is not None:
        session.peak_power_w = max(session.peak_power_w, power)
    before = session.counter.total_wh or 0.0
    reading = data.value(ENERGY_CONSUMED)
    if reading is not None:
        session.counter.add_meter_reading(reading)
    else:
        session.counter.add_power_sample(
            now, None if power is None else positive_part(power)
        )
    return max((session.counter.total_wh or 0.0) - before, 0.0)


def _time(value: Any) -> datetime | None:
    """Parse a stored ISO time (aware, UTC if naive); `None` stays `None`."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _energy(value: Any) -> float:
    """A stored non-negative finite number, else `ValueError`."""
    number = float(value)
    if not math.isfinite(number) or number < 0.0:
        raise ValueError(f"not an energy: {value!r}")
    return number


def _counter(value: Any) -> EnergyTotal:
    """A stored counter baseline (`EnergyTotal.as_dict`), else `ValueError`."""
    if not isinstance(value, Mapping):
        raise TypeError(f"not a counter: {value!r:.80}")
    return EnergyTotal.from_dict(value)


def _booking_id(value: Any) -> str:
    """A stored booking id (a string; an integer is taken as its digits)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"not a booking id: {value!r:.80}")


def _optional[T](
    data: Mapping[str, Any], key: str, parse: Callable[[Any], T], notes: list[str]
) -> T | None:
    """`parse` of an optional stored field; `None` if absent or damaged (noted)."""
    value = data.get(key)
    if value is None:
        return None
    try:
        return parse(value)
    except (TypeError, ValueError, OverflowError) as err:
        notes.append(f"{key} {value!r:.40} ({err})")
        return None
