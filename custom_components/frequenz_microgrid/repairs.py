"""Repair issues: tell the user about problems that outlast a hiccup.

Three situations need a person rather than patience: a component the controller
has excluded as broken for a long time (its power is missing from the pool), a
microgrid that stays unreachable, and a grid whose phase currents stay unknown
(the grid fuse cannot be watched, so the pools are held where they stand). Short
outages are normal and already visible as unavailable entities, so an issue only
appears once the problem has lasted longer than a grace period, and it disappears
by itself as soon as the problem is gone.
Nothing here can be fixed from Home Assistant, so the issues are not fixable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import timedelta
import re
import time
from typing import TYPE_CHECKING, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .engine.graph import Topology
from .engine.health import ComponentStatus

if TYPE_CHECKING:
    from .coordinator import MicrogridCoordinator
    from .status_feed import ControllerStatusFeed

BROKEN_ISSUE_AFTER_S = 600.0
"""A component excluded as broken for longer than this gets an issue (10 min)."""
UNREACHABLE_ISSUE_AFTER_S = 300.0
"""A microgrid unreachable for longer than this gets an issue (5 min)."""
GRID_BLIND_ISSUE_AFTER_S = 300.0
"""Grid currents unknown for longer than this get an issue (5 min)."""

ISSUE_COMPONENT_BROKEN = "component_broken"
ISSUE_UNREACHABLE = "microgrid_unreachable"
ISSUE_GRID_CURRENTS_UNKNOWN = "grid_currents_unknown"


def component_issue_id(entry_id: str, component_id: int) -> str:
    """Return the issue id of a broken component of an entry."""
    return f"{ISSUE_COMPONENT_BROKEN}_{entry_id}_{component_id}"


def unreachable_issue_id(entry_id: str) -> str:
    """Return the issue id of an entry's unreachable microgrid."""
    return f"{ISSUE_UNREACHABLE}_{entry_id}"


def grid_currents_issue_id(entry_id: str) -> str:
    """Return the issue id of an entry's grid whose currents are unknown."""
    return f"{ISSUE_GRID_CURRENTS_UNKNOWN}_{entry_id}"


def _local_time_ago(age_s: float) -> str:
    """The local date and time `age_s` seconds ago, to the minute (issue texts)."""
    moment = dt_util.now() - timedelta(seconds=age_s)
    return moment.strftime("%Y-%m-%d %H:%M")


def _wording(placeholders: dict[str, str]) -> dict[str, str]:
    """An issue's placeholders without their numbers (ages, counts)."""
    return {key: _DIGITS.sub("#", value) for key, value in placeholders.items()}


_DIGITS: Final = re.compile(r"\d+(\.\d+)?")


class RepairTracker:
    """Raise and clear one entry's repair issues from its periodic status.

    `follow` calls `update` once per snapshot; it remembers since when each problem
    lasts. `clear` removes every issue of the entry (on unload: an entry that is
    gone has nothing left to repair).
    """

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        title: str,
        topology: Topology,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Track the issues of the entry `entry_id` named `title`."""
        self._hass = hass
        self._entry_id = entry_id
        self._title = title
        self._topology = topology
        self._clock = clock
        self._entry_problem_since: dict[str, float] = {}
        """Per issue id of an entry-wide problem: since when it lasts."""
        self._broken_since: dict[int, float] = {}
        self._broken_since_text: dict[int, str] = {}
        """Per broken component with an issue: since when, as people read it."""
        self._open: dict[str, dict[str, str]] = {}
        """Per open issue: its placeholders (an issue is re-issued when they change)."""

    @callback
    def follow(
        self, coordinator: MicrogridCoordinator, feed: ControllerStatusFeed
    ) -> CALLBACK_TYPE:
        """Judge the issues after every snapshot; return what stops it.

        Each judgement runs in a loop iteration of its own (every component's
        health, ≈1 ms on a large microgrid): what else is due, e.g. a proposal
        from an automation, need not wait for it; a newer snapshot's judgement
        replaces one still waiting.
        """
        due: asyncio.Handle | None = None

        @callback
        def judge() -> None:
            nonlocal due
            due = None
            status = feed.status
            self.update(
                reachable=coordinator.data.reachable,
                components=status.components,
                grid_currents_unknown=status.grid_currents_unknown,
            )

        @callback
        def schedule() -> None:
            nonlocal due
            if due is not None:
                due.cancel()
            due = self._hass.loop.call_soon(judge)

        remove_listener = coordinator.async_add_listener(schedule)

        @callback
        def stop() -> None:
            remove_listener()
            if due is not None:
                due.cancel()

        return stop

    @callback
    def update(
        self,
        *,
        reachable: bool,
        components: Iterable[ComponentStatus],
        grid_currents_unknown: bool = False,
    ) -> None:
        """Raise issues for problems that lasted too long; clear the solved ones.

        While the microgrid is unreachable every component looks broken and the
        grid's currents are unknown; only the unreachable issue is raised then
        (the others are withdrawn), and their clocks restart once data flows
        again.
        """
        now = self._clock()
        self._judge_entry_problem(
            now,
            ISSUE_UNREACHABLE,
            ir.IssueSeverity.ERROR,
            lasting=not reachable,
            after_s=UNREACHABLE_ISSUE_AFTER_S,
        )
        if not reachable:
            self._forget_components()
        self._judge_entry_problem(
            now,
            ISSUE_GRID_CURRENTS_UNKNOWN,
            ir.IssueSeverity.WARNING,
            lasting=reachable and grid_currents_unknown,
            after_s=GRID_BLIND_ISSUE_AFTER_S,
        )
        if reachable:
            self._update_components(now, components)

    @callback
    def follow_topology(self, topology: Topology) -> None:
        """Name the components of a changed topology (issues of gone ones clear).

        A component that left is no longer among the statuses judged, so its
        issue is withdrawn at the next judgement.
        """
        self._topology = topology

    @callback
    def clear(self) -> None:
        """Remove every issue of the entry and forget the problems' history."""
        for issue_id in list(self._open):
            self._delete(issue_id)
        self._entry_problem_since.clear()
        self._broken_since.clear()
        self._broken_since_text.clear()

    def _forget_components(self) -> None:
        for component_id in self._broken_since:
            self._delete(component_issue_id(self._entry_id, component_id))
        self._broken_since.clear()
        self._broken_since_text.clear()

    def _update_components(
        self, now: float, components: Iterable[ComponentStatus]
    ) -> None:
        # Out of service (the inventory's lifetime) is no fault.
        broken = {
            s.component_id: s for s in components if s.excluded and not s.out_of_service
        }
        for component_id in list(self._broken_since):
            if component_id not in broken:
                del self._broken_since[component_id]
                self._broken_since_text.pop(component_id, None)
                self._delete(component_issue_id(self._entry_id, component_id))
        for component_id, status in broken.items():
            since = self._broken_since.setdefault(component_id, now)
            if now - since >= BROKEN_ISSUE_AFTER_S:
                self._create(
                    component_issue_id(self._entry_id, component_id),
                    ISSUE_COMPONENT_BROKEN,
                    ir.IssueSeverity.WARNING,
                    {
                        "component": self._component_name(component_id),
                        "title": self._title,
                        "problem": status.problem or "set-power commands fail",
                        "since": self._broken_since_text.setdefault(
                            component_id, _local_time_ago(now - since)
                        ),
                    },
                )

    def _judge_entry_problem(
        self,
        now: float,
        translation_key: str,
        severity: ir.IssueSeverity,
        *,
        lasting: bool,
        after_s: float,
    ) -> None:
        """Raise the entry's issue once the problem lasted `after_s`; clear it."""
        issue_id = f"{translation_key}_{self._entry_id}"
        if not lasting:
            self._entry_problem_since.pop(issue_id, None)
            self._delete(issue_id)
            return
        since = self._entry_problem_since.setdefault(issue_id, now)
        if now - since >= after_s:
            self._create(issue_id, translation_key, severity, {"title": self._title})

    def _component_name(self, component_id: int) -> str:
        component = self._topology.components.get(component_id)
        name = component.name if component is not None else None
        return f"{name} (#{component_id})" if name else f"#{component_id}"

    def _create(
        self,
        issue_id: str,
        translation_key: str,
        severity: ir.IssueSeverity,
        placeholders: dict[str, str],
    ) -> None:
        """Raise the issue, or re-issue it when its text changed (the problem, a name).

        Not when only a number changed: "inverter data is 31 s old" would
        rewrite the issue every second while it lasts.
        """
        shown = self._open.get(issue_id)
        if shown is not None and _wording(shown) == _wording(placeholders):
            return
        self._open[issue_id] = placeholders
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=severity,
            translation_key=translation_key,
            translation_placeholders=placeholders,
        )

    def _delete(self, issue_id: str) -> None:
        if self._open.pop(issue_id, None) is not None:
            ir.async_delete_issue(self._hass, DOMAIN, issue_id)
