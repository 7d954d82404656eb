"""Lookups in the controller's status that entities, actions and diagnostics share.

The status lists every component set of a pool with its proposals and granted
bounds; Home Assistant's own view of it is the pool's whole set, its own proposal
there, and what its priority may use.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from .actors import ha_source_id
from .engine.bounds import PowerBounds
from .engine.control import ComponentSetStatus, ControllerStatus, Pool, ProposalStatus
from .engine.health import ComponentStatus


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


def blocked_until_iso(
    status: ComponentStatus, to_wall_time: Callable[[float], datetime]
) -> str | None:
    """When a component's block ends, in UTC (ISO 8601); `None` if not blocked."""
    blocked_until = status.blocked_until
    return None if blocked_until is None else to_wall_time(blocked_until).isoformat()
