"""The two arbitration algorithms: matryoshka and shifting matryoshka (spec §1).

Both are pure: they take the proposals of one component set in processing order
(highest priority first, equal priorities by ``source_id`` descending) and the pool's
system bounds, and return numbers. They reproduce the Frequenz SDK's
``Matryoshka`` / ``ShiftingMatryoshka`` (1.0.0rc2214) step by step, quirks included
— a differential test holds them to it — because the spec says "same as the SDK".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ..bounds import PowerBounds
from .exclusion import (
    Overlap,
    cut_out_zone,
    exclusion_zone,
    nearest_allowed,
    nearest_same_direction,
    overlap,
)
from .proposal import Proposal


class Algorithm(Protocol):
    """How the proposals of one component set combine into a target power."""

    def target_power(
        self, proposals: Iterable[Proposal], system: PowerBounds
    ) -> float | None:
        """Return the pool's target, or `None` when no proposal asks for a power."""

    def available_bounds(
        self, proposals: Iterable[Proposal], system: PowerBounds, priority: int
    ) -> tuple[float, float]:
        """Return what an actor at `priority` may still use (lower, upper).

        The system's inclusion bounds narrowed (and, for shifting, shifted) by the
        proposals of strictly higher priority.
        """


class Matryoshka:
    """Nested bounds: the lowest-priority power that is reached wins, clamped.

    Each proposal's power is clamped into what every higher priority allows; its
    bounds then nest the range further for the priorities below. Used for EV
    chargers and PV inverters.
    """

    def target_power(
        self, proposals: Iterable[Proposal], system: PowerBounds
    ) -> float | None:
        """Walk the proposals, letting each power override the one above it."""
        lower, upper = system.inclusion_lower, system.inclusion_upper
        zone = exclusion_zone(system)
        target: float | None = None
        for proposal in proposals:
            if upper < lower:
                break
            if proposal.power is not None:
                clamped = nearest_allowed(proposal.power, lower, upper, zone)
                if clamped is not None:
                    target = clamped
            proposal_lower = or_default(proposal.bounds.lower, lower)
            proposal_upper = or_default(proposal.bounds.upper, upper)
            # Bounds entirely inside the exclusion zone would leave nothing but 0 W
            # to the priorities below, so the SDK ignores them.
            if overlap(proposal_lower, proposal_upper, zone) is Overlap.BOTH:
                continue
            lower, upper = cut_out_zone(
                max(lower, proposal_lower), min(upper, proposal_upper), zone
            )
        return target

    def available_bounds(
        self, proposals: Iterable[Proposal], system: PowerBounds, priority: int
    ) -> tuple[float, float]:
        """Nest the higher priorities' bounds; stop at the first empty intersection.

        Unlike `target_power`, an empty intersection stops the walk before it is
        applied (the SDK's ``get_status`` does the same).
        """
        lower, upper = system.inclusion_lower, system.inclusion_upper
        zone = exclusion_zone(system)
        for proposal in proposals:
            if proposal.priority <= priority:
                break
            proposal_lower = or_default(proposal.bounds.lower, lower)
            proposal_upper = or_default(proposal.bounds.upper, upper)
            if overlap(proposal_lower, proposal_upper, zone) is Overlap.BOTH:
                continue
            narrowed_lower = max(lower, proposal_lower)
            narrowed_upper = min(upper, proposal_upper)
            if narrowed_lower > narrowed_upper:
                break
            lower, upper = cut_out_zone(narrowed_lower, narrowed_upper, zone)
        return lower, upper


class ShiftingMatryoshka:
    """Powers add up across priorities; each one shifts the range for those below.

    A battery pool serves several actors at once: a peak shaver's 2 kW plus an
    optimiser's 1 kW make 3 kW. Each power is clamped into the range left by the
    priorities above, the range moves by it, and the sum is finally kept out of
    the exclusion zone — snapping to 0 W rather than reversing the direction.
    """

    def target_power(
        self, proposals: Iterable[Proposal], system: PowerBounds
    ) -> float | None:
        """Sum the clamped powers; `None` only when there is no proposal at all."""
        return self._walk(proposals, system, priority=None)[0]

    def available_bounds(
        self, proposals: Iterable[Proposal], system: PowerBounds, priority: int
    ) -> tuple[float, float]:
        """Return the range left after the higher priorities took their share."""
        return self._walk(proposals, system, priority)[1]

    @staticmethod
    def _walk(
        proposals: Iterable[Proposal], system: PowerBounds, priority: int | None
    ) -> tuple[float | None, tuple[float, float]]:
        """Run the SDK's ``_calc_targets``: the target and the bounds left over.

        With a `priority`, the walk stops before that priority and the target is
        meaningless (only the bounds are used).
        """
        lower, upper = system.inclusion_lower, system.inclusion_upper
        available = (lower, upper)
        first_power_bounds: tuple[float, float] | None = None
        target = 0.0
        seen_any = False
        for proposal in proposals:
            seen_any = True
            if priority is not None and proposal.priority <= priority:
                break
            if upper < lower:
                break
            proposal_lower, proposal_upper = _fill_open_sides(proposal, lower, upper)
            if proposal_upper < proposal_lower:
                continue
            # A proposal range beyond the available one collapses onto its edge.
            if proposal_lower >= upper:
                proposal_lower = proposal_upper = upper
            elif proposal_upper <= lower:
                proposal_lower = proposal_upper = lower
            lower = max(lower, proposal_lower)
            upper = min(upper, proposal_upper)
            if proposal.power is not None:
                # The exclusion zone is applied to the sum at the end, within the
                # range the first (highest) actor asking for power had.
                if first_power_bounds is None and proposal.power != 0.0:
                    first_power_bounds = (lower, upper)
                power = nearest_same_direction(proposal.power, lower, upper, None)
                lower -= power
                upper -= power
                target += power
        if not seen_any:
            return None, (lower, upper)
        if first_power_bounds is not None:
            available = first_power_bounds
        final = nearest_same_direction(
            target, available[0], available[1], exclusion_zone(system)
        )
        return final, (lower, upper)


def or_default(value: float | None, default: float) -> float:
    """Return `value`, or `default` for an open side."""
    return default if value is None else value


def _fill_open_sides(
    proposal: Proposal, lower: float, upper: float
) -> tuple[float, float]:
    """Close a proposal's open sides with the available range (shifting only).

    If the side the proposal does set lies beyond the available range, the proposal
    collapses to that single value (it is then clamped onto the range's edge).
    """
    proposal_lower, proposal_upper = proposal.bounds.lower, proposal.bounds.upper
    if proposal_lower is None:
        if proposal_upper is None:
            return lower, upper
        if proposal_upper < lower:
            return proposal_upper, proposal_upper
        return lower, proposal_upper
    if proposal_upper is None:
        if proposal_lower > upper:
            return proposal_lower, proposal_lower
        return proposal_lower, upper
    return proposal_lower, proposal_upper
