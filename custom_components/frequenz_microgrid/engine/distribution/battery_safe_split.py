"""An exclusion-safe SoC-balancing split, for when the SDK's split is not safe.

A battery–inverter pair accepts 0 W or anything in ``[minimum, upper]`` (the
minimum being the edge of its exclusion zone). The SDK ignores the gap when it
splits: with two pairs that each need at least 600 W, 1000 W becomes 400/600 and
the 400 W lands inside an exclusion zone. Here the split is made in two steps:

1. *Who is on.* Each pair's ideal share is its SoC-balancing share of the request
   (proportional to its availability ratio, capped at its upper bound). A pair whose
   share reaches its minimum is on; a pair whose share falls short is rounded to
   the nearer of 0 and its minimum. The on-set is then repaired so the request
   fits: if the minimums of the on-pairs add up to more than the request, the pairs
   with the smallest share-to-minimum ratio are switched off; if the on-pairs
   cannot take the request, off pairs are switched on (most deserving first) as
   long as their minimum still fits.
2. *How much each takes.* Among the on-pairs the power is split proportionally to
   the availability ratios, with each pair held inside its ``[minimum, upper]``:
   ``power_i = clamp(level * ratio_i, minimum_i, upper_i)`` with the one ``level``
   that makes the sum right. That is the split closest to the SoC-balancing shares
   that respects every pair's bounds.

Direction-normalised like `battery_sdk_split`: the power to place is positive.
"""

from __future__ import annotations

from collections.abc import Sequence
import math


def safe_split(
    power: float,
    ratios: Sequence[float],
    min_powers: Sequence[float],
    upper_bounds: Sequence[float],
) -> tuple[list[float], float]:
    """Split a positive `power` so that no pair gets a power it does not allow.

    Args:
        power: The power to place (W, > 0).
        ratios: Per pair, its availability ratio (0 = full, takes nothing).
        min_powers: Per pair, the smallest non-zero power it accepts (>= 0).
        upper_bounds: Per pair, the most it can take.

    Returns:
        The power per pair (each 0 or inside ``[min_power, upper]``) and the power
        that could not be placed.
    """
    count = len(ratios)
    powers = [0.0] * count
    candidates = [
        i
        for i in range(count)
        if ratios[i] > 0.0
        and upper_bounds[i] > 0.0
        and min_powers[i] <= upper_bounds[i]
    ]
    if not candidates:
        return powers, power

    shares = _capped_proportional_shares(power, candidates, ratios, upper_bounds)
    on = _choose_on_pairs(power, candidates, shares, min_powers, upper_bounds)
    if not on:
        return powers, power

    placed = min(power, sum(upper_bounds[i] for i in on))
    for i, value in zip(
        on,
        _clamped_proportional_split(placed, on, ratios, min_powers, upper_bounds),
        strict=True,
    ):
        powers[i] = value
    return powers, power - sum(powers)


def _capped_proportional_shares(
    power: float,
    members: Sequence[int],
    ratios: Sequence[float],
    upper_bounds: Sequence[float],
) -> dict[int, float]:
    """Water-fill `power` proportionally to the ratios, no pair above its upper bound.

    Pairs are saturated in order of how soon they reach their bound (upper/ratio);
    the rest share what is left proportionally.
    """
    by_saturation = sorted(members, key=lambda i: upper_bounds[i] / ratios[i])
    remaining_power = power
    remaining_ratio = sum(ratios[i] for i in members)
    shares: dict[int, float] = {}
    for position, i in enumerate(by_saturation):
        if upper_bounds[i] * remaining_ratio > remaining_power * ratios[i]:
            # Neither this pair nor any later one reaches its bound: share the rest.
            level = remaining_power / remaining_ratio
            shares.update((j, level * ratios[j]) for j in by_saturation[position:])
            break
        shares[i] = upper_bounds[i]
        remaining_power -= upper_bounds[i]
        remaining_ratio -= ratios[i]
    return shares


def _choose_on_pairs(
    power: float,
    candidates: Sequence[int],
    shares: dict[int, float],
    min_powers: Sequence[float],
    upper_bounds: Sequence[float],
) -> list[int]:
    """Decide which pairs run, so their minimums fit the request (see module doc).

    Returns the on-pairs in index order.
    """
    # How far each pair's share goes towards its minimum (>= 1: fully).
    merit = {
        i: shares[i] / min_powers[i] if min_powers[i] > 0.0 else math.inf
        for i in candidates
    }
    # Most deserving first; the stable sort keeps index order among ties, so the
    # result is deterministic.
    ranked = sorted(candidates, key=merit.__getitem__, reverse=True)
    is_on = {i: merit[i] >= 0.5 for i in ranked}
    minimum_sum = sum(min_powers[i] for i in ranked if is_on[i])

    for i in reversed(ranked):
        if minimum_sum <= power:
            break
        if is_on[i] and min_powers[i] > 0.0:
            is_on[i] = False
            minimum_sum -= min_powers[i]

    upper_sum = sum(upper_bounds[i] for i in ranked if is_on[i])
    for i in ranked:
        if upper_sum >= power:
            break
        if not is_on[i] and minimum_sum + min_powers[i] <= power:
            is_on[i] = True
            minimum_sum += min_powers[i]
            upper_sum += upper_bounds[i]

    return sorted(i for i in ranked if is_on[i])


def _clamped_proportional_split(
    power: float,
    members: Sequence[int],
    ratios: Sequence[float],
    min_powers: Sequence[float],
    upper_bounds: Sequence[float],
) -> list[float]:
    """Return ``clamp(level * ratio_i, min_i, upper_i)`` summing to `power`.

    The sum is a non-decreasing, piecewise-linear function of ``level`` with a
    kink wherever some pair hits its minimum or its upper bound; walk the kinks in
    order to find the segment that contains `power`, then solve linearly on it.
    Requires ``sum(min) <= power <= sum(upper)``.
    """
    lows = [max(min_powers[i], 0.0) for i in members]
    highs = [upper_bounds[i] for i in members]
    weights = [ratios[i] for i in members]
    low_sum = sum(lows)
    if power <= low_sum:
        return lows
    if power >= sum(highs):
        return highs

    # Events: at level = low/weight a pair starts to follow the level, at
    # level = high/weight it stops. Between events the sum has slope Σ weight of the
    # pairs that follow, plus the constant of the pinned ones.
    count = len(members)
    event_levels = [lows[k] / weights[k] for k in range(count)] + [
        highs[k] / weights[k] for k in range(count)
    ]
    fixed = low_sum  # the pinned pairs' contribution (at low or at high)
    slope = 0.0
    level = 0.0
    for event in sorted(range(2 * count), key=event_levels.__getitem__):
        event_level = event_levels[event]
        if slope > 0.0 and fixed + slope * event_level >= power:
            break
        level = event_level
        if event < count:  # the pair starts following the level
            fixed -= lows[event]
            slope += weights[event]
        else:  # the pair stops at its upper bound
            k = event - count
            fixed += highs[k]
            slope -= weights[k]
    if slope > 0.0:
        level = (power - fixed) / slope
    return [
        min(max(level * weights[k], lows[k]), highs[k]) for k in range(len(members))
    ]
