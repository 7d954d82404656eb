"""Clamping against an exclusion zone, exactly as the SDK's power manager does it.

These mirror ``frequenz.sdk.microgrid._power_managing._bounds`` on plain floats. They
deliberately differ from `PowerBounds.clamp` in small ways that matter for being
"same as the SDK": a value midway between the two edges goes to the lower edge, and
an interval with one end inside the zone is cut at the zone's edge.

An exclusion zone is the open interval ``(lower, upper)``; ``None`` means none.
"""

from __future__ import annotations

import enum

from ..bounds import PowerBounds

Zone = tuple[float, float]
"""An exclusion zone ``(lower, upper)``: the open interval the pool cannot run in."""


class Overlap(enum.Enum):
    """Which ends of an interval lie strictly inside an exclusion zone."""

    NONE = enum.auto()
    LOWER = enum.auto()
    UPPER = enum.auto()
    BOTH = enum.auto()


def exclusion_zone(system: PowerBounds) -> Zone | None:
    """Return the system's exclusion zone, or `None` when it is ``(0, 0)``."""
    if system.exclusion_lower == 0.0 and system.exclusion_upper == 0.0:
        return None
    return (system.exclusion_lower, system.exclusion_upper)


def overlap(lower: float, upper: float, zone: Zone | None) -> Overlap:
    """Tell which ends of ``[lower, upper]`` are strictly inside the zone."""
    if zone is None:
        return Overlap.NONE
    lower_inside = zone[0] < lower < zone[1]
    upper_inside = zone[0] < upper < zone[1]
    if lower_inside and upper_inside:
        return Overlap.BOTH
    if lower_inside:
        return Overlap.LOWER
    if upper_inside:
        return Overlap.UPPER
    return Overlap.NONE


def cut_out_zone(lower: float, upper: float, zone: Zone | None) -> tuple[float, float]:
    """Shrink ``[lower, upper]`` so that neither end is inside the zone.

    An end inside the zone moves to the zone's far edge on its own side; an interval
    entirely inside collapses to ``[0, 0]`` (0 W is always allowed).
    """
    if zone is None:
        return lower, upper
    match overlap(lower, upper, zone):
        case Overlap.BOTH:
            return 0.0, 0.0
        case Overlap.UPPER:
            return lower, zone[0]
        case Overlap.LOWER:
            return zone[1], upper
        case Overlap.NONE:
            return lower, upper


def clamp_candidates(
    value: float, lower: float, upper: float, zone: Zone | None
) -> tuple[float | None, float | None]:
    """Return the allowed values nearest to `value` below and above it.

    ``(v, v)`` when `value` itself is allowed; one side `None` when the value has to
    move to a single side; both sides set when the value lies inside the exclusion
    zone; ``(None, None)`` when the interval lies entirely inside the zone.
    """
    if zone is not None:
        match overlap(lower, upper, zone):
            case Overlap.BOTH:
                return None, None
            case Overlap.LOWER:
                if value < zone[1]:
                    return None, zone[1]
            case Overlap.UPPER:
                if value > zone[0]:
                    return zone[0], None
            case Overlap.NONE:
                pass
    if value < lower:
        return lower, None
    if value > upper:
        return None, upper
    if zone is not None and value != 0.0 and zone[0] < value < zone[1]:
        return zone[0], zone[1]
    return value, value


def nearest_allowed(
    value: float, lower: float, upper: float, zone: Zone | None
) -> float | None:
    """Return the allowed value closest to `value`; ties go to the lower one.

    `None` when nothing in ``[lower, upper]`` is allowed.
    """
    below, above = clamp_candidates(value, lower, upper, zone)
    if below is None:
        return above
    if above is None:
        return below
    return above if above - value < value - below else below


def nearest_same_direction(
    value: float, lower: float, upper: float, zone: Zone | None
) -> float:
    """Like `nearest_allowed`, but never flip the sign of a request: 0 W instead.

    Used by the shifting matryoshka: a battery asked to charge must not end up
    discharging because the exclusion zone's nearer edge is on the other side.
    That holds also where the SDK keeps only one candidate (an interval with one
    end inside the zone: −1 W asked, ``[0, 1]`` left, zone ``(−1, 1)`` gave
    +1 W, and a 0 W target there went to +1 W too): whenever ``[lower, upper]``
    contains 0 W, 0 W it is. Only bounds that exclude 0 W (a higher priority's)
    can move the target across 0.
    """
    below, above = clamp_candidates(value, lower, upper, zone)
    if below is None:
        nearest = 0.0 if above is None else above
    elif above is None:
        nearest = below
    else:
        nearest = above if above - value < value - below else below
    reversed_ = (value >= 0.0 > nearest) or (value <= 0.0 < nearest)
    zero_allowed = lower <= 0.0 <= upper or (below is not None and above is not None)
    return 0.0 if reversed_ and zero_allowed else nearest
