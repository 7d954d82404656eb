"""The charging hub's reservations in Home Assistant: the book, its store, no-shows.

One `ReservationBook` per entry (the engine's, Home-Assistant-free), built from
the topology: every EV charger at its rated charge power, with its fair share
of the circuits the EV steering enforces (the grid fuse, the discovered feeders
and the user's circuits: the controller's very circuit tree) as its static
guarantee. When the topology changes without a reload (`follow_topology`), new
chargers are bookable at once and the bookings of chargers that left go. The bookings
are kept in a `Store` and put back at setup; every change is saved shortly after.
Each microgrid snapshot tells the book which chargers have a car plugged in: a
booking whose car has not come within the grace period (an option) is released,
logged, and announced on the bus as `frequenz_microgrid_reservation_released`.
While the microgrid is away nothing is released: no cable state, no no-show.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Mapping, Set
import logging
from typing import Any, Final

from frequenz.client.microgrid.metrics import Metric
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import CONF_RESERVATION_GRACE_MIN, DEFAULT_RESERVATION_GRACE_MIN, DOMAIN
from .coordinator import MicrogridCoordinator
from .engine.graph import Topology
from .engine.health import ev_cable_connected
from .engine.hub.circuits import Circuit
from .engine.hub.reservations import (
    ChargerCapacity,
    Guarantee,
    Released,
    ReleaseReason,
    Reservation,
    ReservationBook,
    charger_capacities,
    static_guarantee,
)
from .engine.hub.sessions import ChargingSession, SessionChange, SessionChangeKind
from .engine.hub.targets import TargetGuarantee
from .stored_data import async_load_stored

_LOGGER = logging.getLogger(__name__)

STORAGE_VERSION: Final = 1
SAVE_DELAY_S: Final = 1.0
EVENT_RESERVATION_RELEASED: Final = f"{DOMAIN}_reservation_released"
"""Fired when a booking is released because its car did not come."""


def rated_charge_power_w(topology: Topology, charger_id: int) -> float:
    """A charger's rated charge power from its static bounds (0 W: not stated)."""
    component = topology.components.get(charger_id)
    bounds = (
        None
        if component is None
        else component.rated_bounds.get(Metric.AC_POWER_ACTIVE)
    )
    upper = None if bounds is None else bounds.upper
    return max(0.0, float(upper)) if upper is not None else 0.0


def rated_charge_powers_w(topology: Topology) -> dict[int, float]:
    """Every charger's rated charge power (`rated_charge_power_w`)."""
    return {cid: rated_charge_power_w(topology, cid) for cid in topology.ev_charger_ids}


def charger_capacities_of(
    topology: Topology, circuits: Iterable[Circuit]
) -> dict[int, ChargerCapacity]:
    """Every charger of `topology`: its rated power and its share of `circuits`."""
    return charger_capacities(rated_charge_powers_w(topology), circuits)


def build_book(
    topology: Topology,
    circuits: Iterable[Circuit],
    grace_s: float,
    guarantee: Guarantee = static_guarantee,
) -> ReservationBook:
    """The entry's empty book: every charger, its power and its circuit share.

    `circuits`: those the EV steering enforces (`CircuitLimits.tree`).
    `guarantee` prices a booking (default: the static circuit share).
    """
    return ReservationBook(
        charger_capacities_of(topology, circuits),
        clock=lambda: dt_util.utcnow().timestamp(),
        grace_s=grace_s,
        guarantee=guarantee,
    )


class HubReservations:
    """The entry's reservation book, kept in its store and fed by its snapshots."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        topology: Topology,
        circuits: Iterable[Circuit],
        grace_min: float,
        guarantee: Guarantee = static_guarantee,
    ) -> None:
        """Build the book for `topology`; `async_load` puts the stored bookings in."""
        self.hass = hass
        self.entry_id = entry_id
        self.topology = topology
        self.guarantee = guarantee
        self.book = build_book(topology, circuits, grace_min * 60.0, guarantee)
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.reservations"
        )
        self._pending = False
        self._stamp_listeners: list[Callable[[ChargingSession], None]] = []

    @classmethod
    def grace_min_of(cls, options: dict[str, Any] | Any) -> float:
        """The grace period option (minutes)."""
        return float(
            options.get(CONF_RESERVATION_GRACE_MIN, DEFAULT_RESERVATION_GRACE_MIN)
        )

    def charger_name(self, charger_id: int) -> str:
        """How the calendar names a charger: its own name, else "EV charger <id>"."""
        component = self.topology.components.get(charger_id)
        name = None if component is None else component.name
        return name or f"EV charger {charger_id}"

    def follow_topology(self, topology: Topology, circuits: Iterable[Circuit]) -> None:
        """Book the chargers of a changed topology (see the module); logs drops."""
        if isinstance(self.guarantee, TargetGuarantee):  # prices the new ones too
            self.guarantee.max_power_w = rated_charge_powers_w(topology)
        dropped = self.book.follow_chargers(charger_capacities_of(topology, circuits))
        for reservation in dropped:  # named while the old topology still knows it
            _LOGGER.warning(
                "Reservation %s of %s was dropped: the charger left the microgrid",
                reservation.reservation_id,
                self.charger_name(reservation.charger_id),
            )
        self.topology = topology

    async def async_load(self) -> None:
        """Put the stored bookings back (ended ones and damaged records are dropped).

        Every record that reads is kept: a damaged one is logged and costs only
        itself.
        """
        data = await async_load_stored(self._store, "reservations")
        if not data:
            return
        repaired: list[str] = []
        stored = _records(
            data, "reservations", lambda row: Reservation.from_dict(row, repaired)
        )
        history = _records(
            data, "history", lambda row: Released.from_dict(row, repaired)
        )
        if repaired:
            _LOGGER.warning(
                "Dropped %d damaged value(s) of stored reservations: %s",
                len(repaired),
                "; ".join(repaired[:5]),
            )
        self.book.restore_history(history)  # before: bookings that ended meanwhile
        skipped = self.book.restore(stored)  # join the history after it
        if skipped:
            _LOGGER.info(
                "%d stored reservation(s) ended or no longer fit and were dropped",
                len(skipped),
            )

    def follow(
        self,
        coordinator: MicrogridCoordinator,
        open_sessions: Callable[[], Mapping[int, ChargingSession]] = dict,
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        """Save every change and watch every snapshot; returns what stops both.

        `open_sessions`: the open session per charger (the session tracker's),
        for the cars that plugged in before their booking began. Stopping writes
        what is pending at once, so a reload reads the last change.
        """
        stop_saving = self.book.listen(self._changed)

        @callback
        def observe() -> None:
            plugged = self._observe(coordinator)
            if plugged:
                self._stamp_waiting_cars(open_sessions(), plugged)

        stop_watching = coordinator.async_add_listener(observe)

        async def stop() -> None:
            stop_watching()
            stop_saving()
            if self._pending:
                await self._store.async_save(self._data())

        return stop

    @callback
    def stamp_session(self, change: SessionChange) -> None:
        """Mark a session started under a booking with the booking's id.

        Registered before the session entities' listeners, so the
        `session_started` event and the stored session already carry it.
        """
        if change.kind is not SessionChangeKind.STARTED:
            return
        booking = self.book.in_force(
            change.session.charger_id, change.session.started_at.timestamp()
        )
        if booking is not None:
            change.session.booking_id = booking.reservation_id

    @callback
    def listen_stamped(
        self, listener: Callable[[ChargingSession], None]
    ) -> CALLBACK_TYPE:
        """Call `listener` with each open session a booking took over later.

        (A session that starts under a booking is stamped at its start,
        `stamp_session`, and announced as started.)
        """
        self._stamp_listeners.append(listener)

        @callback
        def remove() -> None:
            if listener in self._stamp_listeners:
                self._stamp_listeners.remove(listener)

        return remove

    @callback
    def _stamp_waiting_cars(
        self, open_sessions: Mapping[int, ChargingSession], plugged: Set[int]
    ) -> None:
        """A car already plugged in when its booking begins is the booking's car.

        Drivers come early (or book while parked): the session opened under no
        booking, so once the booking is in force it takes the session over — its
        energy counts for the booking (the plan), and the booking's energy
        becomes the car's target — instead of treating the booking as empty.
        Only a car this snapshot shows plugged in: a session still open in the
        tracker may be one whose car left unseen (Home Assistant was down, the
        microgrid unreachable, the charger's data stale).
        """
        for charger_id, session in open_sessions.items():
            if session.booking_id is not None or charger_id not in plugged:
                continue
            booking = self.book.in_force(charger_id)
            if booking is None:
                continue
            session.booking_id = booking.reservation_id
            _LOGGER.debug(
                "Reservation %s takes over the session %s of the car plugged in "
                "before it began",
                booking.reservation_id,
                session.session_id,
            )
            for listener in list(self._stamp_listeners):
                try:
                    listener(session)
                except Exception:
                    _LOGGER.exception("A reservation stamp listener failed")

    @callback
    def _observe(self, coordinator: MicrogridCoordinator) -> set[int]:
        """Tell the book which chargers have a car; log and announce the no-shows.

        Returns the chargers with a car plugged in (none while unreachable).
        """
        snapshot = coordinator.data
        if snapshot is None or not snapshot.reachable:
            return set()
        plugged: set[int] = set()
        unknown: set[int] = set()
        for charger_id in self.book.charger_ids:
            data = snapshot.component(charger_id)
            if data is None or not data.fresh or not data.states:
                unknown.add(charger_id)
            elif ev_cable_connected(data.states):
                plugged.add(charger_id)
        for released in self.book.observe(plugged, unknown=unknown):
            if released.reason is ReleaseReason.NO_SHOW:
                self._announce_no_show(released)
        return plugged

    def _announce_no_show(self, released: Released) -> None:
        reservation = released.reservation
        _LOGGER.info(
            "Reservation %s of %s (%s) released: no car plugged in within %g min "
            "of its start",
            reservation.reservation_id,
            self.charger_name(reservation.charger_id),
            reservation.vehicle or "no vehicle named",
            self.book.grace_s / 60.0,
        )
        # Which microgrid: charger ids repeat across sites.
        self.hass.bus.async_fire(
            EVENT_RESERVATION_RELEASED,
            {
                "config_entry_id": self.entry_id,
                "charger_name": self.charger_name(reservation.charger_id),
                "reason": released.reason.value,
                **reservation_as_dict(reservation),
            },
        )

    @callback
    def _changed(self) -> None:
        """Save the book shortly (changes in a burst are written once)."""
        self._pending = True
        self._store.async_delay_save(self._saved_data, SAVE_DELAY_S)

    def _saved_data(self) -> dict[str, Any]:
        self._pending = False
        return self._data()

    def _data(self) -> dict[str, Any]:
        return {
            "reservations": [r.as_dict() for r in self.book],
            "history": [released.as_dict() for released in self.book.history],
        }


def _records[T](
    data: Mapping[str, Any], key: str, parse: Callable[[Mapping[str, Any]], T]
) -> list[T]:
    """Every stored record under `key` that reads; a damaged one is logged."""
    rows = data.get(key)
    if rows is None:
        return []
    if not isinstance(rows, list):
        _LOGGER.warning("Ignoring the damaged stored %s: %.80r", key, rows)
        return []
    records: list[T] = []
    for row in rows:
        try:
            records.append(parse(row))
        except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as err:
            _LOGGER.warning(
                "Ignoring a damaged stored record of the %s %.120r: %s", key, row, err
            )
    return records


def iso(timestamp: float) -> str:
    """A POSIX time as an ISO 8601 string in Home Assistant's time zone."""
    return dt_util.as_local(dt_util.utc_from_timestamp(timestamp)).isoformat()


def reservation_as_dict(reservation: Reservation) -> dict[str, Any]:
    """A booking as a JSON-ready response (times in Home Assistant's time zone)."""
    return {
        "reservation_id": reservation.reservation_id,
        "charger": reservation.charger_id,
        "start": iso(reservation.start),
        "end": iso(reservation.end),
        "vehicle": reservation.vehicle,
        "energy_kwh": reservation.energy_kwh,
        "guaranteed_energy_kwh": round(reservation.guaranteed_kwh, 3),
        "max_energy_kwh": round(reservation.max_kwh, 3),
        "energy_guaranteed": reservation.energy_guaranteed,
        "plugged_in": reservation.claimed,
    }


async def async_remove_reservations(hass: HomeAssistant, entry_id: str) -> None:
    """Delete the entry's stored bookings and vehicle labels (the entry was removed).

    The store key is the one `HubReservations` keeps its book in.
    """
    store: Store[dict[str, Any]] = Store(
        hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.reservations"
    )
    await store.async_remove()
