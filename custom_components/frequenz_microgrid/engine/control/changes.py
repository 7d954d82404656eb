"""Whether anything the controller's listeners can see has changed, cheaply.

Listeners (Home Assistant entities) re-render on every notification, so the
controller tells them only about real changes. Comparing the whole status each
time costs a health status per steerable component (~400 on a large site) on
every proposal, although a proposal can change the health of very few: telemetry
only moves on ticks, and a dispatch only blocks the components that failed and
unblocks those that succeeded after a block. So the health part is remembered per
component and re-checked only where it can have changed.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from ..health import HealthTracker

type _HealthKey = tuple[Hashable, str | None, float | None]
"""What a listener sees of a component's health: health, problem, block expiry."""


class ChangeDetector:
    """Remembers what listeners last saw: the pools' state and each component's health.

    Args:
        health: The tracker whose statuses the listeners see.
        tracked: Every component the tracker follows (the pools' components).
    """

    def __init__(self, health: HealthTracker, tracked: Iterable[int]) -> None:
        """Nothing seen yet: the first check of anything reports a change."""
        self._health = health
        self._tracked = frozenset(tracked)
        self._pools: Hashable = None
        self._components: dict[int, _HealthKey] = {}

    def follow(self, tracked: Iterable[int]) -> None:
        """Track these components from now on (the topology changed)."""
        self._tracked = frozenset(tracked)
        for gone in self._components.keys() - self._tracked:
            del self._components[gone]

    def pools_changed(self, fingerprint: Hashable) -> bool:
        """Whether the pools' state (proposals, targets, bounds, results) changed."""
        if fingerprint == self._pools:
            return False
        self._pools = fingerprint
        return True

    def health_changed(self, now: float, component_ids: Iterable[int]) -> bool:
        """Whether any of these components' health changed since last seen.

        Ids the tracker does not follow (e.g. a battery's inverter) are skipped.
        """
        changed = False
        for component_id in component_ids:
            if component_id not in self._tracked:
                continue
            status = self._health.status(component_id, now)
            key = (status.health, status.problem, status.blocked_until)
            if self._components.get(component_id) != key:
                self._components[component_id] = key
                changed = True
        return changed

    def all_health_changed(self, now: float) -> bool:
        """Whether any tracked component's health changed (a tick: time moved on)."""
        return self.health_changed(now, self._tracked)

    def recheck_after_dispatch(
        self, now: float, touched: Iterable[int], *, any_failed: bool
    ) -> bool:
        """Whether a dispatch to `touched` changed any of their health.

        Telemetry did not move, only blocks can have: after a failure any touched
        component may be blocked now; otherwise only one seen blocked (or never
        seen) can have been unblocked by its success.
        """
        if any_failed:
            return self.health_changed(now, touched)
        return self.health_changed(
            now,
            (
                cid
                for cid in touched
                if (seen := self._components.get(cid)) is None or seen[2] is not None
            ),
        )
