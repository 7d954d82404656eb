"""The charging hub's deadline targets in Home Assistant: store, sessions, bookings.

The engine's `ChargingTargets` (the controller's) holds each charger's target and
gives the steering the laxities. This module keeps it in step with Home
Assistant:

- every change is saved in a `Store` shortly after, and the targets are put back
  at setup, still bound to the session they belong to (a session restored open
  keeps its id, so a restart loses no target);
- each snapshot tells it every charger's open session and its energy so far (a
  target ends with its session); the forecast (at risk, expected completion,
  unmet energy) is re-run when one of its inputs changed
  (`ChargingTargets.forecast_stale`: a car came or went, a target, a power
  range or mode, a circuit's limits or other loads, a car's energy off the
  expectation) and at least every `FORECAST_MAX_AGE_S`, not on every round;
- a session that starts under a booking with an energy (the booking id is
  stamped on the session by `HubReservations`) gets the booking's energy by the
  booking's end as its target, unless a target was set for it by hand;
- the session record carries the target (`target_energy_wh`, `target_time`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
import logging
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store

from .const import DOMAIN
from .engine.control import MicrogridController
from .engine.graph import Topology
from .engine.hub.reservations import ReleaseReason
from .engine.hub.sessions import ChargingSession, SessionChange, SessionChangeKind
from .engine.hub.target_forecast import circuit_budgets
from .engine.hub.targets import (
    ChargingTarget,
    ChargingTargets,
    InvalidTargetError,
    TargetGuarantee,
)
from .hub_reservations import rated_charge_powers_w
from .stored_data import async_load_stored

if TYPE_CHECKING:
    from .coordinator import MicrogridCoordinator
    from .hub_reservations import HubReservations
    from .session_recorder import SessionRecorder

_LOGGER = logging.getLogger(__name__)

STORAGE_VERSION: Final = 1
SAVE_DELAY_S: Final = 1.0
_WITHDRAWN: Final = frozenset({ReleaseReason.CANCELLED, ReleaseReason.CHARGER_GONE})
"""Why a booking leaves the book without having run to its end."""


def _store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.charging_targets")


async def async_remove_targets(hass: HomeAssistant, entry_id: str) -> None:
    """Delete an entry's stored targets (the entry is being removed)."""
    await _store(hass, entry_id).async_remove()


def reservation_guarantee(
    controller: MicrogridController, topology: Topology
) -> TargetGuarantee:
    """What a booking can be promised under the envelopes and the other bookings.

    Connect its `bookings` to the book once the book exists.
    """
    return TargetGuarantee(
        lambda: circuit_budgets(controller.circuit_limits),
        rated_charge_powers_w(topology),
    )


class HubTargets:
    """The entry's deadline targets, kept in its store and fed by its sessions."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        targets: ChargingTargets,
        sessions: SessionRecorder,
        reservations: HubReservations | None = None,
    ) -> None:
        """Keep `targets` in step; `async_load` puts the stored ones back."""
        self.hass = hass
        self.targets = targets
        self.sessions = sessions
        self.reservations = reservations
        self._store = _store(hass, entry_id)

    async def async_load(self) -> None:
        """Put the stored targets back (a damaged record is logged and dropped)."""
        data = await async_load_stored(self._store, "charging targets")
        if not data:
            return
        records = data.get("targets")
        if not isinstance(records, list):
            _LOGGER.warning("Ignoring damaged charging targets: %.80r", records)
            return
        for record in records:
            try:
                self.targets.restore(ChargingTarget.from_dict(record))
            except (
                AttributeError,
                KeyError,
                TypeError,
                ValueError,
                OverflowError,
            ) as err:
                _LOGGER.warning(
                    "Ignoring a damaged charging target %.120r: %s", record, err
                )

    def follow(
        self, coordinator: MicrogridCoordinator
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        """Save every change, watch snapshots and sessions; returns what stops it.

        Register it before the platforms, so its snapshot listener runs before
        the entities read the forecast.
        """
        stop_saving = self.targets.listen(self._changed)
        stop_watching = coordinator.async_add_listener(self._observe)
        stop_sessions = self.sessions.async_add_listener(self._session_changed)
        stop_stamps = (
            self.reservations.listen_stamped(self._take_booking_target)
            if self.reservations is not None
            else (lambda: None)
        )
        stop_bookings = (
            self.reservations.book.listen(self._drop_withdrawn_bookings)
            if self.reservations is not None
            else (lambda: None)
        )

        async def stop() -> None:
            stop_bookings()
            stop_stamps()
            stop_sessions()
            stop_watching()
            stop_saving()
            await self._store.async_save(self._data())

        return stop

    def refresh(self) -> None:
        """Re-run the forecast now (after an action)."""
        self.targets.refresh()

    @callback
    def _changed(self) -> None:
        self._store.async_delay_save(self._data, SAVE_DELAY_S)

    @callback
    def _observe(self) -> None:
        """Tell the table every open session; end, bind, stamp; re-forecast."""
        if self.sync_sessions() or self.targets.forecast_stale():
            self.refresh()

    @callback
    def sync_sessions(self) -> bool:
        """Tell the table every open session now; whether a car came or went.

        The snapshot listener runs in a later chunk than the session tracker; an
        action that sets a target syncs first, so a car plugged in a moment ago
        is already the target's session.
        """
        tracker = self.sessions.tracker
        came_or_went = False
        for charger_id in sorted(self.targets.charger_ids):
            session = tracker.open.get(charger_id)
            if session is None:
                came_or_went |= self.targets.observe_session(charger_id, None, 0.0)
                continue
            came_or_went |= self.targets.observe_session(
                charger_id, session.session_id, session.energy_wh
            )
            target = self.targets.get(charger_id)
            if target is not None and target.session_id == session.session_id:
                session.target_energy_wh = target.energy_wh
                session.target_time = target.departure
        return came_or_went

    @callback
    def _session_changed(self, change: SessionChange) -> None:
        """A session that starts under a booking with an energy takes it as target."""
        if change.kind is SessionChangeKind.STARTED:
            self._take_booking_target(change.session)

    @callback
    def _take_booking_target(self, session: ChargingSession) -> None:
        """The session's booking's energy becomes its target (unless set by hand)."""
        if session.booking_id is None or self.reservations is None:
            return
        booking = self.reservations.book.get(session.booking_id)
        if booking is None or booking.energy_kwh is None:
            return
        existing = self.targets.get(session.charger_id)
        if existing is not None and existing.booking_id is None:
            return  # set by hand for this car: the user's word wins
        self.targets.observe_session(
            session.charger_id, session.session_id, session.energy_wh
        )
        try:
            self.targets.set(
                ChargingTarget(
                    charger_id=session.charger_id,
                    energy_wh=booking.energy_kwh * 1000.0,
                    departure=datetime.fromtimestamp(booking.end, UTC),
                    booking_id=booking.reservation_id,
                )
            )
        except (KeyError, InvalidTargetError) as err:
            _LOGGER.warning(
                "Booking %s gives no target: %s", booking.reservation_id, err
            )

    @callback
    def _drop_withdrawn_bookings(self) -> None:
        """A cancelled booking takes its target and its claim on the car along.

        Its energy was the target; steering on towards a promise nobody holds any
        more would be wrong, and the session it took over must be free for the
        next booking of the charger. (A booking that ended keeps both: its
        target ends at its departure, and the session stays the booking's.)
        """
        assert self.reservations is not None
        book = self.reservations.book
        withdrawn = {
            released.reservation.reservation_id
            for released in book.history
            if released.reason in _WITHDRAWN
        }
        for charger_id, target in list(self.targets.targets().items()):
            if target.booking_id is None or target.booking_id not in withdrawn:
                continue
            self.targets.clear(charger_id)
            session = self.sessions.tracker.open.get(charger_id)
            if session is not None and session.booking_id == target.booking_id:
                session.booking_id = None
                self.sessions.session_changed(session)
            _LOGGER.debug(
                "Booking %s was withdrawn: its target of charger %s is cleared",
                target.booking_id,
                charger_id,
            )

    def _data(self) -> dict[str, Any]:
        return {
            "targets": [target.as_dict() for target in self.targets.targets().values()]
        }
