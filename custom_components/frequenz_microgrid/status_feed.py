"""The controller's status for one entry, computed once per change.

The steering entities (numbers, target/bounds/result sensors, excluded binary
sensors) and the repair issues show the controller's status rather than the
telemetry snapshot. Computing it walks every pool and component, so an entry shares
one `ControllerStatusFeed`: it computes the status at most once per snapshot or
controller change, and tells its entities when the controller changed between two
snapshots (a new proposal, a distribution result).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.core import CALLBACK_TYPE, callback

from .engine.control import ControllerStatus, MicrogridController
from .engine.health import ComponentStatus
from .listener_chunks import ChunkedListeners

if TYPE_CHECKING:
    from .coordinator import MicrogridCoordinator
    from .engine.snapshot import MicrogridSnapshot


class ControllerStatusFeed:
    """The controller's status, recomputed per snapshot and per controller change.

    The cached status is recomputed when the coordinator publishes a new snapshot
    (component health ages with time) or the controller reports a change; listeners
    are only called for the latter (snapshots reach entities through the
    coordinator already).
    """

    def __init__(
        self, controller: MicrogridController, coordinator: MicrogridCoordinator
    ) -> None:
        """Feed the status of `controller`, refreshed with `coordinator`'s data."""
        self.controller = controller
        self._coordinator = coordinator
        self._status: ControllerStatus | None = None
        self._components: dict[int, ComponentStatus] = {}
        self._computed_for: MicrogridSnapshot | None = None
        self._listeners = ChunkedListeners(coordinator.hass.loop)
        self._unsubscribe: CALLBACK_TYPE | None = None

    @property
    def status(self) -> ControllerStatus:
        """The controller's current status."""
        self._refresh()
        assert self._status is not None
        return self._status

    def component(self, component_id: int) -> ComponentStatus | None:
        """Return one component's health status (indexed: one lookup per entity)."""
        self._refresh()
        return self._components.get(component_id)

    def _refresh(self) -> None:
        """Recompute the status if a snapshot or a change came since the last one."""
        snapshot = self._coordinator.data
        if self._status is None or self._computed_for is not snapshot:
            self._status = self.controller.status()
            self._components = {c.component_id: c for c in self._status.components}
            self._computed_for = snapshot

    @callback
    def async_add_listener(self, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `update` after each controller change; return the remover.

        The feed follows the controller only while somebody listens.
        """
        remove_listener = self._listeners.add(update)
        if self._unsubscribe is None:
            self._unsubscribe = self.controller.listen(self._handle_change)

        @callback
        def remove() -> None:
            remove_listener()
            if not self._listeners and self._unsubscribe is not None:
                self._listeners.cancel()
                self._unsubscribe()
                self._unsubscribe = None

        return remove

    @callback
    def _handle_change(self) -> None:
        """Forget the cached status and tell the entities, in chunks.

        A large microgrid has an excluded-sensor per steerable component: told all
        at once after every proposal, they would hold the event loop for
        milliseconds, and the next proposal would wait.
        """
        self._status = None
        self._listeners.call_all()
