"""Charging sessions of an entry: tracked from every snapshot, kept in a `Store`.

The engine's `SessionTracker` does the accounting; this wrapper feeds it every
snapshot (before the entities hear of it, so they read the same state), tells the
`event` entities when a session starts or ends, and keeps the sessions across
restarts in `.storage/frequenz_microgrid.<entry>.sessions`:

* at once (after a second) when a session starts or ends;
* at most every 5 minutes while sessions are open (their energy grows; what a
  crash loses of that is only the split and profile detail: the charger's counter
  baseline is stored, so the energy itself is recounted from the counter);
* when the entry unloads or Home Assistant stops (`async_flush`).

An open session restored at start-up continues when its charger still reports
the cable plugged in, and ends at the last time it was seen plugged otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.storage import Store

from .const import DOMAIN, LOGGER
from .engine.hub.sessions import ChargingSession, SessionChange, SessionTracker
from .engine.snapshot import MicrogridSnapshot
from .stored_data import async_load_stored

STORAGE_VERSION: Final = 1
SAVE_ON_CHANGE_DELAY_S: Final = 1.0
"""A started or ended session is written after this delay (batching a burst)."""
SAVE_PROGRESS_INTERVAL_S: Final = 300.0
"""While sessions are open, their progress is written at most this often."""


def _store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.sessions")


async def async_remove_sessions(hass: HomeAssistant, entry_id: str) -> None:
    """Delete an entry's stored sessions (the entry is being removed)."""
    await _store(hass, entry_id).async_remove()


class SessionRecorder:
    """The sessions of one entry's EV chargers, persisted and announced."""

    def __init__(
        self, hass: HomeAssistant, entry_id: str, charger_ids: frozenset[int]
    ) -> None:
        """Track `charger_ids`; `async_load` restores what was stored."""
        self.hass = hass
        self.tracker = SessionTracker(charger_ids)
        self._store = _store(hass, entry_id)
        self._listeners: list[Callable[[SessionChange], None]] = []
        self._progress_saved_at: float | None = None
        self._following = False

    async def async_load(self) -> None:
        """Restore the stored sessions (malformed ones are logged and skipped).

        A damaged optional field (target, booking, counter baseline) costs only
        itself: the session is kept without it.
        """
        data = await async_load_stored(self._store, "charging sessions")
        if not data:
            return
        repaired: list[str] = []
        problems = self.tracker.restore(data, repaired=repaired)
        if problems:
            LOGGER.warning(
                "Skipped %d stored charging session(s): %s",
                len(problems),
                "; ".join(problems[:5]),
            )
        if repaired:
            LOGGER.warning(
                "Dropped %d damaged field(s) of stored charging sessions: %s",
                len(repaired),
                "; ".join(repaired[:5]),
            )

    @callback
    def start_following(self) -> None:
        """Account snapshots from now on (once the event entities listen).

        Snapshots before that are a gap like any other (not an unplug), so a
        session restored at start-up is closed or continued only when its event
        entity can announce it.
        """
        self._following = True

    def open_sessions(self) -> Mapping[int, ChargingSession]:
        """The open session per charger, once snapshots are accounted.

        None before that: a session restored at start-up may have ended while
        Home Assistant was down, and only the first accounted snapshot says so.
        """
        return self.tracker.open if self._following else {}

    @callback
    def session_changed(self, _session: ChargingSession) -> None:
        """Store the sessions soon: one of them was changed from outside.

        (A booking that took over an open session: a restart must not lose it.)
        """
        self._store.async_delay_save(self._data, SAVE_ON_CHANGE_DELAY_S)

    @callback
    def handle_snapshot(self, snapshot: MicrogridSnapshot) -> None:
        """Account a snapshot; announce and store the sessions it changed."""
        if not self._following:
            return
        try:
            changes = self.tracker.update(snapshot)
        except Exception:  # a bug here must never stop the snapshots
            LOGGER.exception("Cannot account charging sessions")
            return
        now = self.hass.loop.time()
        if changes:
            self._store.async_delay_save(self._data, SAVE_ON_CHANGE_DELAY_S)
            self._progress_saved_at = now
        elif self.tracker.open and (
            self._progress_saved_at is None
            or now - self._progress_saved_at >= SAVE_PROGRESS_INTERVAL_S
        ):
            self._store.async_delay_save(self._data)
            self._progress_saved_at = now
        for change in changes:
            for listener in list(self._listeners):
                try:
                    listener(change)
                except Exception:
                    LOGGER.exception("A charging session listener failed")

    @callback
    def async_add_listener(
        self, listener: Callable[[SessionChange], None]
    ) -> CALLBACK_TYPE:
        """Call `listener` for every started and ended session; return the remover."""
        self._listeners.append(listener)

        @callback
        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    async def async_flush(self) -> None:
        """Write the sessions now (unload, Home Assistant stopping).

        A failed write is logged, never raised: it must not keep the entry from
        releasing its components and disconnecting.
        """
        tracker = self.tracker
        if not (tracker.charger_ids or tracker.ended or tracker.open):
            return  # a microgrid without EV chargers gets no file
        try:
            await self._store.async_save(self._data())
        except Exception:
            LOGGER.exception("Cannot store the charging sessions")

    def _data(self) -> dict[str, Any]:
        return self.tracker.as_stored()
