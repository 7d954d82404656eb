"""The Frequenz SDK's SoC-balancing split, re-done with plain floats.

This is the part of battery distribution that must match the SDK's
`BatteryDistributionAlgorithm._distribute_power` to the milliwatt, so it follows
the SDK step by step, quirks included: the same visiting order, the same
floating-point operations in the same order, the same tolerance checks. Only the
representation differs (lists of floats indexed by pair instead of `Power` objects
and dictionaries keyed by inverter sets), which is what makes it fast.

The split runs in two phases, as the SDK's does: `sdk_reserve` gives every pair its
minimum and notes each one's reserve or deficit; `sdk_finish` covers the deficits
from the reserves and tops up. The caller can look at the first phase (do the
exclusion zones bind?) before paying for the second.

Everything here is *direction-normalised*: the power to place is positive and every
per-pair number is seen from that direction (for a discharge request the caller
negates powers and bounds before and the setpoints after, as the SDK does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import heapq
import math

_RATIO_ZERO_TOLERANCE = 1e-9
"""The SDK's `is_close_to_zero` tolerance for availability ratios."""

_MINIMUM_DEFICIT_TO_CONSIDER = -0.1
"""A deficit (W) smaller than this is ignored, as in the SDK."""

_CLEAR_RELATIVE = 1e-6
"""Relative margin for "clearly" in `zones_surely_bind` (rounding is ~1e-13)."""


def sdk_visiting_order(
    ratios: Sequence[float], min_powers: Sequence[float]
) -> list[int]:
    """Return pair indices in the SDK's order: by (minimum power, ratio), descending.

    Python's sort is stable also with ``reverse=True``, so ties keep the caller's
    order exactly like the SDK's own sort does. Sorting by ratio first and then by
    minimum power gives the same order as sorting by the pair of them (the second
    sort keeps the first one's order among equal minimums) and is faster: float
    keys compare much more cheaply than tuples.
    """
    order = sorted(range(len(ratios)), key=ratios.__getitem__, reverse=True)
    if any(min_powers):
        order.sort(key=min_powers.__getitem__, reverse=True)
    return order


@dataclass(slots=True)
class SdkReservation:
    """The SDK's split after its first phase: every visited pair at its minimum.

    Reserves are kept in the order the SDK inserts them into its dictionary
    (visiting order), because it iterates them in that order.
    """

    power: float
    order: list[int]
    powers: list[float]
    caps: Sequence[float]
    """Per pair, the most the top-up may give it (its upper bound)."""
    distributed: float
    reserve_ids: list[int]
    reserves: list[float]
    deficits: list[float]

    @property
    def zones_bind(self) -> bool:
        """Whether some pair's share fell short of its minimum power.

        Then the exclusion zones shape the SDK's split, through its ad-hoc repair.
        """
        return bool(self.deficits)


def all_pairs_full(total_ratio: float) -> bool:
    """Whether the SDK sees every pair full (empty, when discharging).

    Its tolerance on the summed availability ratios: a battery at 89.99999 % of
    a 90 % limit (float32 telemetry) is full at exponent 2; nothing is placed
    and the whole request is excess (spec §2).
    """
    return math.isclose(total_ratio, 0.0, abs_tol=_RATIO_ZERO_TOLERANCE)


def sdk_reached_ratios(
    ratios: Sequence[float], total_ratio: float, min_powers: Sequence[float]
) -> list[float]:
    """The ratios of the pairs the SDK gives a share at all; 0 for the others.

    The SDK visits the pairs in `sdk_visiting_order` and stops sharing once the
    ratios not yet visited add up to (almost) nothing: those pairs are full
    (empty, when discharging) to it. A safe split must not charge them either.
    """
    reached = [0.0] * len(ratios)
    used_ratio = 0.0
    remaining_ratio = total_ratio
    for i in sdk_visiting_order(ratios, min_powers):
        if -_RATIO_ZERO_TOLERANCE <= remaining_ratio <= _RATIO_ZERO_TOLERANCE:
            break
        reached[i] = ratios[i]
        used_ratio += ratios[i]
        remaining_ratio = total_ratio - used_ratio
    return reached


def sdk_reserve(
    power: float,
    ratios: Sequence[float],
    total_ratio: float,
    min_powers: Sequence[float],
    upper_bounds: Sequence[float],
) -> SdkReservation:
    """The SDK's first phase: minimums, and each pair's reserve or deficit.

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
        The state `sdk_finish` completes.
    """
    powers = [0.0] * len(ratios)
    reserve_ids: list[int] = []
    reserves: list[float] = []
    deficits: list[float] = []
    if all_pairs_full(total_ratio):
        # Every battery is full (or empty, when discharging): nothing to place.
        return SdkReservation(
            power, [], powers, upper_bounds, 0.0, reserve_ids, reserves, deficits
        )

    order = sdk_visiting_order(ratios, min_powers)
    if any(min_powers):
        distributed = _reserve_minimums(
            power,
            ratios,
            total_ratio,
            min_powers,
            upper_bounds,
            order,
            powers,
            reserve_ids,
            reserves,
            deficits,
        )
    else:
        distributed = _reserve_without_minimums(
            power,
            ratios,
            total_ratio,
            upper_bounds,
            order,
            reserve_ids,
            reserves,
            deficits,
        )
    return SdkReservation(
        power,
        order,
        powers,
        upper_bounds,
        distributed,
        reserve_ids,
        reserves,
        deficits,
    )


def _reserve_minimums(
    power: float,
    ratios: Sequence[float],
    total_ratio: float,
    min_powers: Sequence[float],
    upper_bounds: Sequence[float],
    order: list[int],
    powers: list[float],
    reserve_ids: list[int],
    reserves: list[float],
    deficits: list[float],
) -> float:
    """The SDK's first pass: each visited pair at its minimum, reserve or deficit.

    Fills `powers`, `reserve_ids`, `reserves` and `deficits` (in the SDK's
    insertion order); returns the power distributed so far (the minimums).
    """
    add_reserve_id = reserve_ids.append
    add_reserve = reserves.append
    add_deficit = deficits.append
    distributed = 0.0
    reserved = 0.0
    used_ratio = 0.0
    remaining_ratio = total_ratio
    zero_tolerance = _RATIO_ZERO_TOLERANCE
    for i in order:
        if -zero_tolerance <= remaining_ratio <= zero_tolerance:
            continue  # the rest are full: power 0
        ratio = ratios[i]
        calculated = (power - reserved) * ratio / remaining_ratio
        min_power = min_powers[i]
        reserved += calculated if calculated > min_power else min_power
        used_ratio += ratio
        remaining_ratio = total_ratio - used_ratio
        upper = upper_bounds[i]
        if calculated > upper:
            add_reserve_id(i)
            add_reserve(upper - min_power)
        elif calculated < min_power:
            add_deficit(calculated - min_power)
        else:
            add_reserve_id(i)
            add_reserve(calculated - min_power)
        distributed += min_power
        powers[i] = min_power
    return distributed


def _reserve_without_minimums(
    power: float,
    ratios: Sequence[float],
    total_ratio: float,
    upper_bounds: Sequence[float],
    order: list[int],
    reserve_ids: list[int],
    reserves: list[float],
    deficits: list[float],
) -> float:
    """`_reserve_minimums` when every minimum is 0 W (no exclusion zones).

    The same operations with the minimum left out: adding or subtracting a zero
    changes nothing (at most the sign of a zero), and the powers stay at the 0 W
    they start with, so nothing is distributed yet.
    """
    add_reserve_id = reserve_ids.append
    add_reserve = reserves.append
    reserved = 0.0
    used_ratio = 0.0
    remaining_ratio = total_ratio
    zero_tolerance = _RATIO_ZERO_TOLERANCE
    for i in order:
        if -zero_tolerance <= remaining_ratio <= zero_tolerance:
            continue  # the rest are full: power 0
        ratio = ratios[i]
        calculated = (power - reserved) * ratio / remaining_ratio
        reserved += calculated if calculated > 0.0 else 0.0
        used_ratio += ratio
        remaining_ratio = total_ratio - used_ratio
        upper = upper_bounds[i]
        if calculated > upper:
            add_reserve_id(i)
            add_reserve(upper)
        elif calculated < 0.0:
            deficits.append(calculated)  # only through rounding: shares are >= 0
        else:
            add_reserve_id(i)
            add_reserve(calculated)
    return 0.0


def zones_surely_bind(
    power: float,
    ratios: Sequence[float],
    total_ratio: float,
    min_powers: Sequence[float],
    upper_bounds: Sequence[float],
) -> bool:
    """Whether `sdk_reserve` would find a deficit, known without running it.

    False means "not sure": run `sdk_reserve` and ask it. True is certain:

    - Along the SDK's visiting order, ``(power - reserved) / remaining_ratio``
      starts at ``power / total_ratio`` and never grows: a pair that clears its
      minimum reserves exactly its share (the quotient stays), one that falls
      short reserves its larger minimum (the quotient drops). So every visited
      pair's calculated power is at most its plain share
      ``power × ratio / total_ratio``.
    - A pair is visited unless the remaining ratio has dropped to the SDK's zero
      tolerance, and the remaining ratio never drops below the pair's own ratio
      while it is unvisited (ratios are not negative).

    So a pair with a clearly visible ratio whose plain share is clearly below its
    minimum (and not above its upper bound, which the SDK checks first) is a
    deficit for sure. "Clearly" leaves margins far wider than the rounding of
    the SDK's running sums.
    """
    if not any(min_powers):
        return False  # no exclusion zones: nothing can fall short
    if not total_ratio > 2.0 * _RATIO_ZERO_TOLERANCE or not min(ratios) >= 0.0:
        return False
    visible_ratio = _CLEAR_RELATIVE * total_ratio + 2.0 * _RATIO_ZERO_TOLERANCE
    share_per_ratio = power / total_ratio * (1.0 + _CLEAR_RELATIVE)
    slack = _CLEAR_RELATIVE * (power + sum(min_powers))
    for ratio, min_power, upper in zip(ratios, min_powers, upper_bounds, strict=True):
        if ratio > visible_ratio:
            share = ratio * share_per_ratio + slack
            if share < min_power and share <= upper:
                return True
    return False


def sdk_finish(reservation: SdkReservation) -> tuple[list[float], float]:
    """The SDK's second phase: cover deficits, hand out reserves, top up.

    Consumes `reservation` (its lists are updated in place). Returns the power per
    pair and the power that could not be placed.
    """
    power = reservation.power
    powers = reservation.powers
    reserves = reservation.reserves
    distributed = reservation.distributed
    if reservation.deficits:
        # The SDK scans for the largest reserve once per step; a heap ordered by
        # (largest value, earliest insertion) picks the same pair in O(log n).
        heap = [(-value, position) for position, value in enumerate(reserves)]
        heapq.heapify(heap)
        for deficit in reservation.deficits:
            deficit = _cover_deficit(deficit, reserves, heap)
            if deficit < _MINIMUM_DEFICIT_TO_CONSIDER:
                left_over = power - distributed
                if left_over > -deficit:
                    distributed += deficit
                elif left_over > 0.0:
                    distributed += left_over

    for i, excess in zip(reservation.reserve_ids, reserves, strict=True):
        distributed += excess
        powers[i] += excess

    left_over = power - distributed
    if left_over != 0.0:
        # Greedy top-up in visiting order; a pair at exactly 0 W stays unused.
        caps = reservation.caps
        for i in reservation.order:
            if left_over == 0.0:
                break
            current = powers[i]
            if current == 0.0:
                continue
            headroom = caps[i] - current
            additional = headroom if headroom < left_over else left_over
            powers[i] = current + additional
            left_over -= additional
    return powers, left_over


def _cover_deficit(
    deficit: float, reserves: list[float], heap: list[tuple[float, int]]
) -> float:
    """Take a pair's shortfall from the pairs with the largest reserve, as the SDK.

    `heap` holds exactly one ``(-reserve, position in reserves)`` entry per reserve
    and is kept in step with `reserves`. Returns the part of the (negative) deficit
    that could not be covered.
    """
    while deficit < 0.0 and heap:
        negated, position = heap[0]
        largest = -negated
        if largest <= 0.0:
            break
        if largest >= -deficit or math.isclose(largest, -deficit, rel_tol=1e-9):
            left = largest + deficit
            reserves[position] = left
            heapq.heapreplace(heap, (-left, position))
            return 0.0
        deficit += largest
        reserves[position] = 0.0
        heapq.heapreplace(heap, (-0.0, position))
    return deficit
