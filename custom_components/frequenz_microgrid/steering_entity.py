"""What the steering entities share: Home Assistant's own actor and the status feed.

Home Assistant steers every pool as one actor of its own (the number entities, the
release buttons): a fixed source id per pool at the entry's default priority, so a
number and its release button address the same proposal, and an automation's
actions (`action:…` source ids) can never replace it by accident.

The steering entities (numbers, target/bounds/result sensors, excluded binary
sensors) show the controller's status rather than the telemetry snapshot. Computing
that status walks every pool and component, so a platform shares one
`ControllerStatusFeed`: it computes the status at most once per snapshot or
controller change, and tells its entities when the controller changed between two
snapshots (a new proposal, a distribution result).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
import itertools
from typing import TYPE_CHECKING, Any, Final

from frequenz.client.microgrid import MicrogridInfo
from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import EntityDescription

from .const import CONF_DEFAULT_PRIORITY, DEFAULT_PRIORITY, DOMAIN
from .engine.bounds import PowerBounds
from .engine.control import ComponentSetStatus, ControllerStatus, Pool, ProposalStatus
from .engine.health import ComponentStatus
from .engine.results import PartialFailure, Result
from .entity import (
    DEFAULT_MIN_INTERVAL,
    MicrogridEntity,
    SnapshotCoordinator,
    entry_key_of,
    hub_device_info,
)
from .listener_chunks import ChunkedListenerCalls

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry

    from .engine.control import MicrogridController
    from .engine.snapshot import MicrogridSnapshot

HA_ACTOR_PREFIX: Final = "home_assistant"


def ha_source_id(pool: Pool) -> str:
    """Return the source id of Home Assistant's own proposals for `pool`."""
    return f"{HA_ACTOR_PREFIX}:{pool.value}"


def ha_priority(entry: ConfigEntry) -> int:
    """Return the priority of Home Assistant's own proposals (the entry option)."""
    return int(entry.options.get(CONF_DEFAULT_PRIORITY, DEFAULT_PRIORITY))


def release_signal(entry_id: str, pool: Pool) -> str:
    """Return the dispatcher signal a release button sends to its pool's number."""
    return f"{DOMAIN}_{entry_id}_{pool.value}_released"


def pool_set_status(status: ControllerStatus, pool: Pool) -> ComponentSetStatus | None:
    """Return the status of a pool's whole component set (Home Assistant's set)."""
    pool_status = status.pools.get(pool)
    if pool_status is None:
        return None
    return next(
        (
            component_set
            for component_set in pool_status.component_sets
            if component_set.component_ids == pool_status.component_ids
        ),
        None,
    )


def own_proposal(
    set_status: ComponentSetStatus | None, pool: Pool, priority: int
) -> ProposalStatus | None:
    """Return Home Assistant's standing proposal in a component set, if any."""
    if set_status is None:
        return None
    source_id = ha_source_id(pool)
    return next(
        (
            proposal
            for proposal in set_status.proposals
            if proposal.source_id == source_id and proposal.priority == priority
        ),
        None,
    )


def granted_bounds(
    set_status: ComponentSetStatus | None, priority: int
) -> PowerBounds | None:
    """Return what `priority` may use: its granted bounds, else the system bounds.

    The controller reports granted bounds only for priorities that have a proposal;
    before Home Assistant's first proposal the system bounds are the best guess.
    """
    if set_status is None:
        return None
    granted = set_status.bounds_by_priority.get(priority)
    return granted if granted is not None else set_status.system_bounds


def raise_if_nothing_accepted(result: Result | None) -> None:
    """Raise when every setpoint of a distribution failed at the microgrid.

    The proposal stays standing (it is retried as components recover), but the
    caller learns that nothing took effect now. A partial failure is no error.
    """
    if isinstance(result, PartialFailure) and not result.succeeded_components:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="setpoints_failed",
            translation_placeholders={
                "components": ", ".join(
                    str(c) for c in sorted(result.failed_components)
                ),
            },
        )


class ControllerStatusFeed:
    """The controller's status for one platform, computed once per change.

    The cached status is recomputed when the coordinator publishes a new snapshot
    (component health ages with time) or the controller reports a change; listeners
    are only called for the latter (snapshots reach entities through the
    coordinator already).
    """

    def __init__(
        self, controller: MicrogridController, coordinator: SnapshotCoordinator
    ) -> None:
        """Feed the status of `controller`, refreshed with `coordinator`'s data."""
        self.controller = controller
        self._coordinator = coordinator
        self._status: ControllerStatus | None = None
        self._components: dict[int, ComponentStatus] = {}
        self._computed_for: MicrogridSnapshot | None = None
        self._listeners: dict[int, tuple[CALLBACK_TYPE, None]] = {}
        self._listener_ids = itertools.count()
        self._calls = ChunkedListenerCalls(coordinator.hass.loop)
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
        """Call `update` after each controller change; return the remover."""
        key = next(self._listener_ids)
        self._listeners[key] = (update, None)
        if self._unsubscribe is None:
            self._unsubscribe = self.controller.listen(self._handle_change)

        @callback
        def remove() -> None:
            self._listeners.pop(key, None)
            if not self._listeners and self._unsubscribe is not None:
                self._calls.cancel()
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
        self._calls.call_all(self._listeners)


class SteeringEntity(MicrogridEntity):
    """An entity showing the controller's status, with coalesced writes.

    Re-rendered on every snapshot (like every entity) and on every controller
    change. A change of its attributes alone also counts as a change: a result's
    details or a block's expiry can change while the state stays the same.
    """

    def __init__(
        self,
        coordinator: SnapshotCoordinator,
        *,
        feed: ControllerStatusFeed,
        unique_id: str,
        device_info: DeviceInfo,
        min_interval: timedelta = DEFAULT_MIN_INTERVAL,
    ) -> None:
        """Create the entity reading `feed`."""
        super().__init__(
            coordinator,
            unique_id=unique_id,
            device_info=device_info,
            min_interval=min_interval,
        )
        self.feed = feed

    @property
    def controller_status(self) -> ControllerStatus:
        """The controller's current status."""
        return self.feed.status

    async def async_added_to_hass(self) -> None:
        """Also follow the controller's changes."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.feed.async_add_listener(self._handle_coordinator_update)
        )

    def _rendered(self) -> tuple[bool, object]:
        """What a write would show, attributes included."""
        available, state = super()._rendered()
        if not available:
            return (available, state)
        return (
            available,
            (
                state,
                _frozen(self.capability_attributes),
                _frozen(self.extra_state_attributes),
            ),
        )


def blocked_until_iso(
    status: ComponentStatus, to_wall_time: Callable[[float], datetime]
) -> str | None:
    """When a component's block ends, in UTC (ISO 8601); `None` if not blocked."""
    blocked_until = status.blocked_until
    return None if blocked_until is None else to_wall_time(blocked_until).isoformat()


def _frozen(attributes: Mapping[str, Any] | None) -> object:
    """Return attributes in a form that compares by value (for change detection)."""
    return None if attributes is None else repr(sorted(attributes.items()))


class PoolSteeringEntity(SteeringEntity):
    """A steering entity of one pool's description, on the hub device.

    Knows Home Assistant's priority, so it can find Home Assistant's own proposal
    and granted bounds in the pool's status.
    """

    def __init__(
        self,
        coordinator: SnapshotCoordinator,
        *,
        feed: ControllerStatusFeed,
        entry: ConfigEntry,
        info: MicrogridInfo,
        description: EntityDescription,
    ) -> None:
        """Create the entity for `description` on the hub device."""
        entry_key = entry_key_of(entry)
        super().__init__(
            coordinator,
            feed=feed,
            unique_id=f"{entry_key}_{description.key}",
            device_info=hub_device_info(entry_key, info),
        )
        self.entity_description = description
        self.priority = ha_priority(entry)
