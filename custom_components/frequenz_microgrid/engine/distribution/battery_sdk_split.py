"""The Frequenz SDK's SoC-balancing split, re-done with plain floats.

This is the part of battery distribution that must match the SDK's
`BatteryDistributionAlgorithm._distribute_power` to the milliwatt, so it follows
the SDK step by step, quirks included: the same visiting order, the same
floating-point operations in the same order, the same tolerance checks. Only the
representation differs (lists of floats indexed by pair instead of `Power` objects
and dictionaries keyed by inverter sets), which is what makes it fast.

Everything here is *direction-normalised*: the power to place is positive and every
per-pair number is seen from that direction (for a discharge request the caller
negates powers and bounds before and the setpoints after, as the SDK does).
"""

from __future__ import annotations

from collections.abc import Sequence
import heapq
import math

_RATIO_ZERO_TOLERANCE = 1e-9
"""The SDK's `is_close_to_zero` tolerance for availability ratios."""

_MINIMUM_DEFICIT_TO_CONSIDER = -0.1
"""A deficit (W) smaller than this is ignored, as in the SDK."""


def sdk_visiting_order(
    ratios: Sequence[float], min_powers: Sequence[float]
) -> list[int]:
    """Return pair indices in the SDK's order: by (minimum power, ratio), descending.

    Python's sort is stable also with ``reverse=True``, so ties keep the caller's
    order exactly like the SDK's own sort does.
    """
    indices = range(len(ratios))
    if not any(min_powers):
        return sorted(indices, key=ratios.__getitem__, reverse=True)
    return sorted(indices, key=lambda i: (min_powers[i], ratios[i]), reverse=True)


def sdk_split(
    power: float,
    ratios: Sequence[float],
    total_ratio: float,
    min_powers: Sequence[float],
    upper_bounds: Sequence[float],
) -> tuple[list[float], float, bool]:
    """Split a positive `power` among pairs the way the SDK does.

    Args:
        power: The power to place (W, > 0).
        ratios: Per pair, its capacity share times its available SoC to the
            exponent (the SDK's "availability ratio").
        total_ratio: The sum of `ratios`, accumulated in the caller's order (the
            SDK sums in that order, and the last bits matter for its tolerance
            checks).
        min_powers: Per pair, the smallest non-zero power it accepts (the upper
            edge of its exclusion zone).
        upper_bounds: Per pair, the most it can take (inclusion upper bound of
            battery and inverter, whichever is smaller).

    Returns:
        The power per pair (same indexing as the inputs), the power that could
        not be placed (the SDK's ``remaining_power``), and whether some pair's
        share fell short of its minimum power (then the exclusion zones shaped
        the split, through the SDK's ad-hoc repair).
    """
    count = len(ratios)
    powers = [0.0] * count
    if math.isclose(total_ratio, 0.0, abs_tol=_RATIO_ZERO_TOLERANCE):
        # Every battery is full (or empty, when discharging): nothing to place.
        return powers, power, False

    order = sdk_visiting_order(ratios, min_powers)
    caps = [0.0] * count
    distributed = 0.0
    reserved = 0.0
    used_ratio = 0.0
    remaining_ratio = total_ratio
    # Insertion order matters below (the SDK iterates its dictionaries), and a
    # dict keeps it.
    excess_reserved: dict[int, float] = {}
    deficits: dict[int, float] = {}

    for i in order:
        if -_RATIO_ZERO_TOLERANCE <= remaining_ratio <= _RATIO_ZERO_TOLERANCE:
            continue  # the rest are full: power 0, cap 0
        ratio = ratios[i]
        calculated = (power - reserved) * ratio / remaining_ratio
        min_power = min_powers[i]
        reserved += calculated if calculated > min_power else min_power
        used_ratio += ratio
        remaining_ratio = total_ratio - used_ratio
        upper = upper_bounds[i]
        if calculated > upper:
            excess_reserved[i] = upper - min_power
        elif calculated < min_power:
            deficits[i] = calculated - min_power
        else:
            excess_reserved[i] = calculated - min_power
        distributed += min_power
        powers[i] = min_power
        caps[i] = upper

    # The SDK scans for the largest reserve once per step; a heap ordered by
    # (largest value, earliest insertion) picks the same pair in O(log n).
    reserves = [
        (-value, position, i)
        for position, (i, value) in enumerate(excess_reserved.items())
    ]
    heapq.heapify(reserves)
    for deficit in deficits.values():
        deficit = _cover_deficit(deficit, excess_reserved, reserves)
        if deficit < _MINIMUM_DEFICIT_TO_CONSIDER:
            left_over = power - distributed
            if left_over > -deficit:
                distributed += deficit
            elif left_over > 0.0:
                distributed += left_over

    for i, excess in excess_reserved.items():
        distributed += excess
        powers[i] += excess

    left_over = power - distributed
    if left_over != 0.0:
        # Greedy top-up in visiting order; a pair at exactly 0 W stays unused.
        for i in order:
            if left_over == 0.0:
                break
            current = powers[i]
            if current == 0.0:
                continue
            headroom = caps[i] - current
            additional = headroom if headroom < left_over else left_over
            powers[i] = current + additional
            left_over -= additional
    return powers, left_over, bool(deficits)


def _cover_deficit(
    deficit: float,
    excess_reserved: dict[int, float],
    reserves: list[tuple[float, int, int]],
) -> float:
    """Take a pair's shortfall from the pairs with the largest reserve, as the SDK.

    `reserves` is a heap holding exactly one ``(-reserve, insertion position, pair)``
    entry per pair of `excess_reserved`; it is kept in step with it. Returns the
    part of the (negative) deficit that could not be covered.
    """
    while deficit < 0.0 and reserves:
        negated, position, largest_id = reserves[0]
        largest = -negated
        if largest <= 0.0:
            break
        if largest >= -deficit or math.isclose(largest, -deficit, rel_tol=1e-9):
            left = largest + deficit
            excess_reserved[largest_id] = left
            heapq.heapreplace(reserves, (-left, position, largest_id))
            return 0.0
        deficit += largest
        excess_reserved[largest_id] = 0.0
        heapq.heapreplace(reserves, (-0.0, position, largest_id))
    return deficit
