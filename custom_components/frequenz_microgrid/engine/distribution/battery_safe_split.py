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
   long as their minimum still fits. Greed can still leave power unplaced that
   another choice would place (a deserving pair that can take little keeps out
   one that could take it all), so if the on-pairs still cannot take the request,
   the choice that places the most is searched for (`_on_set_placing_more`).
2. *How much each takes.* Among the on-pairs the power is split proportionally to
   the availability ratios, with each pair held inside its ``[minimum, upper]``:
   ``power_i = clamp(level * ratio_i, minimum_i, upper_i)`` with the one ``level``
   that makes the sum right. That is the split closest to the SoC-balancing shares
   that respects every pair's bounds.

Direction-normalised like `battery_sdk_split`: the power to place is positive.

This runs on every request that an exclusion zone shapes, for every pair, so the
common case avoids the sorts the definitions above suggest: no pair saturates
(one check finds that out), the first guess of on-pairs needs no repair (two
sums), and the level is found by Newton steps from the shares' level. Each
shortcut falls back to the sorted way when it does not apply; the results are
the same, the level up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress
import math

_SUM_ORDER_MARGIN = 1e-9
"""Relative margin within which two summation orders might disagree."""

_NEWTON_STEPS = 6
"""Newton steps tried for the level before walking every kink instead."""

_NEWTON_SETTLED = 1e-13
"""A Newton step smaller than this (relative) means the level is found."""

_ON_SET_SEARCH_NODES = 20_000
"""Choices of on-pairs the search tries at most (a few milliseconds at worst).

That covers every choice among up to 14 pairs with exclusion zones, and pruning
makes far more usually finish; past the budget the best choice found so far is
used (never worse than the greedy one).
"""


_NEGLIGIBLE_RATIO = 1e-12
"""A pair's availability ratio below this share of the largest counts as none."""


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
    # Weights relative to the largest: the split only depends on their ratios,
    # and a pair's share per weight (the level) stays finite. A pair whose
    # ratio is below `_NEGLIGIBLE_RATIO` of the largest (a subnormal capacity
    # from broken telemetry, say) takes nothing instead of making it overflow.
    largest = max((r for r in ratios if math.isfinite(r)), default=0.0)
    candidates = [
        i
        for i, ratio, minimum, upper in zip(
            range(count), ratios, min_powers, upper_bounds, strict=True
        )
        if largest > 0.0
        and largest * _NEGLIGIBLE_RATIO < ratio <= largest
        and upper > 0.0
        and minimum <= upper
    ]
    if not candidates:
        return powers, power
    # From here on, per-candidate lists (position k is pair candidates[k]): every
    # step below reads them in order instead of looking pairs up by index.
    weights = [ratios[i] / largest for i in candidates]
    minimums = [min_powers[i] for i in candidates]
    uppers = [upper_bounds[i] for i in candidates]

    shares, share_level = _capped_proportional_shares(power, weights, uppers)
    on = _choose_on_pairs(power, shares, minimums, uppers)
    if not on:
        return powers, power

    on_uppers = [uppers[k] for k in on]
    placed = min(power, sum(on_uppers))
    values = _clamped_proportional_split(
        placed,
        [weights[k] for k in on],
        [minimums[k] for k in on],
        on_uppers,
        share_level,
    )
    for k, value in zip(on, values, strict=True):
        powers[candidates[k]] = value
    # The same sum as over `powers` (in index order; the zeros add nothing).
    return powers, power - sum(values)


def _capped_proportional_shares(
    power: float, weights: Sequence[float], uppers: Sequence[float]
) -> tuple[list[float], float | None]:
    """Water-fill `power` proportionally to the weights, none above its upper bound.

    Pairs are saturated in order of how soon they reach their bound (upper/weight);
    the rest share what is left proportionally. Usually no pair saturates: that is
    decided by the first pair in that order alone, so the sort is skipped then.

    Returns the shares and the level (share per weight) of the unsaturated pairs,
    None if every pair saturates.
    """
    remaining_ratio = sum(weights)
    saturation_levels = [
        upper / weight for upper, weight in zip(uppers, weights, strict=True)
    ]
    # The first pair the sort would put first (the stable sort keeps index order
    # among ties, and `min`/`index` both find the first of equals).
    first = saturation_levels.index(min(saturation_levels))
    if uppers[first] * remaining_ratio > power * weights[first]:
        level = power / remaining_ratio
        return [level * weight for weight in weights], level

    by_saturation = sorted(range(len(weights)), key=saturation_levels.__getitem__)
    remaining_power = power
    shares = [0.0] * len(weights)
    share_level = None
    for position, k in enumerate(by_saturation):
        if uppers[k] * remaining_ratio > remaining_power * weights[k]:
            # Neither this pair nor any later one reaches its bound: share the rest.
            share_level = remaining_power / remaining_ratio
            for j in by_saturation[position:]:
                shares[j] = share_level * weights[j]
            break
        shares[k] = uppers[k]
        remaining_power -= uppers[k]
        remaining_ratio -= weights[k]
    return shares, share_level


def _choose_on_pairs(
    power: float,
    shares: Sequence[float],
    minimums: Sequence[float],
    uppers: Sequence[float],
) -> list[int]:
    """Decide which pairs run, so their minimums fit the request (see module doc).

    Returns the positions of the on-pairs, in order.
    """
    # A pair is on when its share covers at least half its minimum (merit >= 0.5).
    is_on = [
        minimum <= 0.0 or share / minimum >= 0.5
        for share, minimum in zip(shares, minimums, strict=True)
    ]
    if _needs_no_repair(power, is_on, minimums, uppers):
        return [k for k, on in enumerate(is_on) if on]

    # How far each pair's share goes towards its minimum (>= 1: fully).
    merits = [
        share / minimum if minimum > 0.0 else math.inf
        for share, minimum in zip(shares, minimums, strict=True)
    ]
    # Most deserving first; the stable sort keeps index order among ties, so the
    # result is deterministic.
    ranked = sorted(range(len(merits)), key=merits.__getitem__, reverse=True)
    minimum_sum = sum(minimums[k] for k in ranked if is_on[k])
    for k in reversed(ranked):
        if minimum_sum <= power:
            break
        if is_on[k] and minimums[k] > 0.0:
            is_on[k] = False
            minimum_sum -= minimums[k]

    upper_sum = sum(uppers[k] for k in ranked if is_on[k])
    for k in ranked:
        if upper_sum >= power:
            break
        if not is_on[k] and minimum_sum + minimums[k] <= power:
            is_on[k] = True
            minimum_sum += minimums[k]
            upper_sum += uppers[k]

    if upper_sum < power:
        better = _on_set_placing_more(power, upper_sum, ranked, minimums, uppers)
        if better is not None:
            return better
    return [k for k, on in enumerate(is_on) if on]


def _on_set_placing_more(
    power: float,
    placed: float,
    ranked: Sequence[int],
    minimums: Sequence[float],
    uppers: Sequence[float],
) -> list[int] | None:
    """Search the on-pairs that place more than `placed`, None if there are none.

    Which pairs to run so that their minimums fit the request and their upper
    bounds take as much of it as possible is a knapsack problem: the greedy
    repair's answer can be far off (0 or 10 W and 0 or 113..122 W: for 122 W the
    greedy runs the first pair, having seen that its share covers its minimum
    best, and the second no longer fits next to it). So when the greedy's
    on-pairs cannot take the request, a depth-first search over the pairs with a
    minimum (in rank order, running a pair tried before not running it) looks
    for a choice that places more; pairs without a minimum always run. A branch
    is cut as soon as running all of its remaining pairs could not place more
    than the best choice so far, and the search stops at a choice that takes the
    whole request. Of the choices that place the most, the first found is kept:
    the one that runs the most deserving pairs. A gain within float noise of the
    greedy's does not count, so the greedy's choice stands wherever it is as good.

    Returns the positions of the on-pairs, in order.
    """
    always_on = [k for k in ranked if minimums[k] <= 0.0]
    items = [k for k in ranked if 0.0 < minimums[k] <= power]
    base = sum(uppers[k] for k in always_on)
    # remaining[i]: what running every pair from items[i] on could add.
    remaining = [0.0] * (len(items) + 1)
    for i in range(len(items) - 1, -1, -1):
        remaining[i] = remaining[i + 1] + uppers[items[i]]
    margin = _SUM_ORDER_MARGIN * power
    best = placed + margin
    if base + remaining[0] <= best:
        return None  # even running every pair would not place more

    best_chosen = 0
    # Nodes: (next item, minimums so far, uppers so far, items run as a bit mask).
    stack = [(0, 0.0, base, 0)]
    nodes = 0
    while stack and nodes < _ON_SET_SEARCH_NODES:
        nodes += 1
        index, minimum_sum, upper_sum, chosen = stack.pop()
        if index == len(items) or upper_sum + remaining[index] <= best:
            continue
        # Not running it is tried after running it (the stack is last in, first out).
        stack.append((index + 1, minimum_sum, upper_sum, chosen))
        k = items[index]
        with_k = minimum_sum + minimums[k]
        if with_k > power:
            continue
        taken = upper_sum + uppers[k]
        chosen |= 1 << index
        if taken > best:
            best, best_chosen = taken, chosen
            if taken >= power:
                break  # the whole request is placed: nothing places more
        stack.append((index + 1, with_k, taken, chosen))

    if not best_chosen:
        return None
    run = [k for index, k in enumerate(items) if best_chosen >> index & 1]
    return sorted(always_on + run)


def _needs_no_repair(
    power: float,
    is_on: Sequence[bool],
    minimums: Sequence[float],
    uppers: Sequence[float],
) -> bool:
    """Whether the first guess of on-pairs fits the request as it is (common).

    Then their minimums add up to at most the request and their upper bounds to at
    least it, and the repair (which needs the pairs ranked) would change nothing.
    The sums here run in index order, the repair's in rank order; `sum` rounds
    (nearly) exactly either way, and the margin leaves any doubt to the repair.
    """
    minimum_sum = sum(compress(minimums, is_on))
    upper_sum = sum(compress(uppers, is_on))
    margin = _SUM_ORDER_MARGIN * (power + minimum_sum + upper_sum)
    return minimum_sum <= power - margin and upper_sum >= power + margin


def _clamped_proportional_split(
    power: float,
    weights: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    level_guess: float | None,
) -> list[float]:
    """Return ``clamp(level * weight_k, low_k, high_k)`` summing to `power`.

    Requires ``sum(lows) <= power <= sum(highs)`` and positive weights.
    `level_guess` (the shares' level, if known) is where the search starts.
    """
    low_sum = sum(lows)
    if power <= low_sum:
        return list(lows)
    if power >= sum(highs):
        return list(highs)
    start = power / sum(weights) if level_guess is None else level_guess
    level = _level_by_newton(power, weights, lows, highs, start)
    if level is None:
        level = _level_by_events(power, low_sum, weights, lows, highs)
    clamped = []
    for weight, low, high in zip(weights, lows, highs, strict=True):
        value = level * weight
        value = low if low > value else value  # max(value, low)
        clamped.append(high if high < value else value)  # min(value, high)
    return clamped


def _level_by_newton(
    power: float,
    weights: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    level: float,
) -> float | None:
    """Find the level by Newton steps on the piecewise-linear sum, or give up.

    At a given level every pair is pinned at its low end, pinned at its high end,
    or follows the level; with that classification the sum is linear, and the
    level that makes it right is one division away. From a good start (the
    shares' level) one or two steps land on it: a step that no longer moves the
    level means the sum there is the power (the step is the shortfall over the
    slope). If the steps keep moving (the kinks can make them cycle), None sends
    the caller to the exact walk over all kinks.
    """
    for _ in range(_NEWTON_STEPS):
        fixed = 0.0
        slope = 0.0
        for weight, low, high in zip(weights, lows, highs, strict=True):
            value = level * weight
            if value <= low:
                fixed += low
            elif value >= high:
                fixed += high
            else:
                slope += weight
        if slope <= 0.0:
            return None
        next_level = (power - fixed) / slope
        if abs(next_level - level) <= _NEWTON_SETTLED * abs(next_level):
            return next_level
        level = next_level
    return None


def _level_by_events(
    power: float,
    low_sum: float,
    weights: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
) -> float:
    """Find the level by walking the sum's kinks in order (always works).

    The sum is a non-decreasing, piecewise-linear function of ``level`` with a
    kink wherever some pair hits its low or its high end; walk the kinks in order
    to find the segment that contains `power`, then solve linearly on it.
    """
    # Events: at level = low/weight a pair starts to follow the level, at
    # level = high/weight it stops. Between events the sum has slope Σ weight of the
    # pairs that follow, plus the constant of the pinned ones.
    count = len(weights)
    event_levels = [low / weight for low, weight in zip(lows, weights, strict=True)] + [
        high / weight for high, weight in zip(highs, weights, strict=True)
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
    return level
