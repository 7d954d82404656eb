"""What the controller tells its owner: pools, proposal outcomes and status views.

Plain frozen data, so the Home Assistant side can turn it into action responses,
sensor attributes and diagnostics without reaching into the engine's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from ..bounds import Bounds, PowerBounds
from ..health import ComponentStatus
from ..results import Result


class Pool(StrEnum):
    """The kinds of components the controller steers, one power manager each."""

    BATTERIES = "batteries"
    EV_CHARGERS = "ev_chargers"
    PV = "pv"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalOutcome:
    """What became of a proposal or withdrawal, once its distribution completed."""

    pool: Pool
    component_ids: frozenset[int]
    target_power: float | None
    """The component set's target after the change (`None`: nobody asks for one)."""
    bounds: PowerBounds | None
    """What the proposal's priority may still use (`None`: bounds not known yet)."""
    result: Result | None
    """The distribution this change triggered (`None`: nothing was distributed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalStatus:
    """One standing proposal, as shown to users."""

    source_id: str
    priority: int
    power: float | None
    bounds: Bounds
    age_s: float
    keep_alive: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentSetStatus:
    """The arbitration state of one component set of a pool."""

    component_ids: frozenset[int]
    proposals: tuple[ProposalStatus, ...]
    """In processing order: highest priority first."""
    target_power: float | None
    system_bounds: PowerBounds | None
    bounds_by_priority: dict[int, PowerBounds | None]
    """What each priority with a proposal may still use."""
    last_result: dict[str, Any] | None
    """The last distribution result (`result_as_dict`), if any."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolStatus:
    """Every component set of one pool that has proposals, bounds or a result."""

    pool: Pool
    component_ids: frozenset[int]
    """The pool's default component set (all its components)."""
    component_sets: tuple[ComponentSetStatus, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerStatus:
    """Everything the controller knows, for sensors, diagnostics and repairs."""

    pools: dict[Pool, PoolStatus]
    components: tuple[ComponentStatus, ...]
    """Every steerable component's health, reason and block expiry."""
    grid_currents_unknown: bool = False
    """The grid has a fuse, but its phase currents are unknown now: the pools
    are held where they stand and the EV chargers at their minimum."""


def monotonic_to_wall_time(at: float, now: float, wall_now: datetime) -> datetime:
    """Convert `at` on a monotonic clock that reads `now` at `wall_now` to UTC.

    Rounded to the second: converting the same instant twice (a moment apart)
    must give the same value, or every tick would look like a change of an
    entity's attributes.
    """
    exact = wall_now + timedelta(seconds=at - now)
    return datetime.fromtimestamp(round(exact.timestamp()), UTC)
