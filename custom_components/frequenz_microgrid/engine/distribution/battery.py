"""SoC-balancing battery distribution: a pool target to one setpoint per inverter.

The request is split among battery–inverter pairs in proportion to
``capacity share × available SoC ^ exponent`` (spec §2), so batteries drift towards
equal SoC. Without exclusion zones the split is the Frequenz SDK's, to the
milliwatt (`battery_sdk_split`). Where the SDK's split would put a pair inside its
exclusion zone or outside its inclusion bounds, a safe split that stays as close as
possible to the balancing shares is used instead (`battery_safe_split`).

The function is pure: the distributor gathers the pairs, calls it, sends the
setpoints and turns the outcome into a `Result` with `battery_results`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math
from operator import neg

from ..bounds import PowerBounds, aggregate_batteries_behind_inverter, intersect_pair
from .battery_safe_split import safe_split
from .battery_sdk_split import (
    all_pairs_full,
    sdk_finish,
    sdk_reached_ratios,
    sdk_reserve,
    zones_surely_bind,
)

_ALLOWED_TOLERANCE = 1e-6
"""Watts by which a setpoint may miss a bound through float rounding."""

_CAPACITY_ZERO_TOLERANCE = 1e-9
"""The SDK's tolerance for "all batteries have capacity 0"."""


@dataclass(frozen=True, slots=True)
class BatteryState:
    """One battery's data as the distribution needs it (spec §2)."""

    component_id: int
    capacity_wh: float
    soc_pct: float
    soc_lower_pct: float
    soc_upper_pct: float
    bounds: PowerBounds


@dataclass(frozen=True, slots=True)
class InverterBatteries:
    """One inverter and the battery (or batteries) behind it, seen as one unit.

    Several batteries behind one inverter are aggregated the SDK's way (see
    `aggregate`): the inverter gets one setpoint and the batteries share it.
    """

    inverter_id: int
    battery_ids: tuple[int, ...]
    capacity_wh: float
    soc_pct: float
    soc_lower_pct: float
    soc_upper_pct: float
    battery_bounds: PowerBounds
    inverter_bounds: PowerBounds

    @classmethod
    def aggregate(
        cls,
        inverter_id: int,
        inverter_bounds: PowerBounds,
        batteries: Sequence[BatteryState],
    ) -> InverterBatteries | None:
        """Combine the batteries behind one inverter, or None if unusable (spec §3).

        Capacity is summed; SoC and SoC bounds are capacity-weighted; inclusion
        bounds are summed; the exclusion zone is the widest one times the number of
        batteries (so each battery clears its own zone when the setpoint is shared
        evenly) — all as the SDK's `AggregatedBatteryData` does. A NaN bound on one
        side of the pair is replaced by the other side's; a NaN SoC, SoC bound,
        capacity or an inclusion bound NaN on both sides makes the pair unusable
        for this request.
        """
        if len(batteries) == 1:
            return cls._single(inverter_id, inverter_bounds, batteries[0])
        if not batteries:
            return None
        capacity = sum(b.capacity_wh for b in batteries)
        if capacity != 0.0:
            soc = sum(b.soc_pct * b.capacity_wh for b in batteries) / capacity
            soc_lower = (
                sum(b.soc_lower_pct * b.capacity_wh for b in batteries) / capacity
            )
            soc_upper = (
                sum(b.soc_upper_pct * b.capacity_wh for b in batteries) / capacity
            )
        else:
            soc = soc_lower = soc_upper = math.nan
        battery_bounds = aggregate_batteries_behind_inverter(
            [b.bounds for b in batteries]
        )
        if any(math.isnan(b.capacity_wh) for b in batteries) or any(
            math.isnan(value)
            for b in batteries
            for value in (b.soc_pct, b.soc_lower_pct, b.soc_upper_pct)
        ):
            return None
        return cls._filled(
            inverter_id,
            tuple(b.component_id for b in batteries),
            (capacity, soc, soc_lower, soc_upper),
            battery_bounds,
            inverter_bounds,
        )

    @classmethod
    def _single(
        cls, inverter_id: int, inverter_bounds: PowerBounds, battery: BatteryState
    ) -> InverterBatteries | None:
        """`aggregate` for the usual one battery per inverter, without the sums.

        The same arithmetic as the general case (SoC weighted by capacity, then
        divided by it), so the split stays the SDK's to the last bit.
        """
        capacity = battery.capacity_wh
        if (
            capacity != capacity  # NaN
            or battery.soc_pct != battery.soc_pct
            or battery.soc_lower_pct != battery.soc_lower_pct
            or battery.soc_upper_pct != battery.soc_upper_pct
        ):
            return None
        if capacity != 0.0:
            soc = battery.soc_pct * capacity / capacity
            soc_lower = battery.soc_lower_pct * capacity / capacity
            soc_upper = battery.soc_upper_pct * capacity / capacity
        else:
            soc = soc_lower = soc_upper = math.nan
        return cls._filled(
            inverter_id,
            (battery.component_id,),
            (capacity, soc, soc_lower, soc_upper),
            battery.bounds,
            inverter_bounds,
        )

    @classmethod
    def _filled(
        cls,
        inverter_id: int,
        battery_ids: tuple[int, ...],
        capacity_and_socs: tuple[float, float, float, float],
        battery_bounds: PowerBounds,
        inverter_bounds: PowerBounds,
    ) -> InverterBatteries | None:
        """The pair, each side's NaN bounds filled from the other (None: unusable)."""
        filled_battery = _fill_nan_bounds(battery_bounds, inverter_bounds)
        filled_inverter = _fill_nan_bounds(inverter_bounds, battery_bounds)
        if filled_battery is None or filled_inverter is None:
            return None
        capacity, soc, soc_lower, soc_upper = capacity_and_socs
        return cls(
            inverter_id=inverter_id,
            battery_ids=battery_ids,
            capacity_wh=capacity,
            soc_pct=soc,
            soc_lower_pct=soc_lower,
            soc_upper_pct=soc_upper,
            battery_bounds=filled_battery,
            inverter_bounds=filled_inverter,
        )

    @property
    def bounds(self) -> PowerBounds:
        """What the pair as a whole allows: both sides' bounds intersected."""
        return intersect_pair(self.battery_bounds, self.inverter_bounds)


@dataclass(frozen=True, slots=True)
class BatteryDistribution:
    """The setpoints chosen for one request, before they are sent."""

    request_power: float
    """The power that was requested for the pool (W)."""
    setpoints: dict[int, float]
    """Power per inverter id (W); every pair of the request has an entry."""
    excess_power: float
    """Power that could not be placed within the bounds (W, the SDK's remaining)."""
    unreachable_power: float
    """Power measured on requested batteries that could not be used (W)."""
    pairs: Sequence[InverterBatteries]
    """The pairs the power was distributed among (for battery ids in results)."""

    @property
    def distributed_power(self) -> float:
        """The power the setpoints add up to (W)."""
        return sum(self.setpoints.values())


@dataclass(frozen=True, slots=True)
class BatteryRefusal:
    """Nothing is sent: the request is out of bounds or cannot be served."""

    msg: str
    bounds: PowerBounds | None = None
    """Set when the refusal is because of the bounds (an `OutOfBounds` result)."""


def reachable_bounds(pairs: Sequence[InverterBatteries]) -> PowerBounds:
    """What these pairs can serve: summed inclusion, the narrowest exclusion zone.

    Beyond the SDK (which refuses anything inside the *summed* exclusion zone):
    pairs can be switched off, so any single pair running alone at its minimum is
    a valid way to serve a small request. Only a request below every pair's
    minimum is truly out of reach.

    Also beyond the SDK, the range always contains 0 W: a pair whose own range
    excludes 0 on one side is switched off (0 W) for requests on that side, so
    it adds nothing there instead of pulling the sum across 0. Otherwise the
    power manager would clamp a −1 W proposal onto a +262.8 W lower bound and
    reverse the request before the split ever sees it.
    """
    return _PairsView(pairs, charge=True).reachable_bounds()


def subtract_unreachable_power(request_w: float, unreachable_w: float | None) -> float:
    """Return the power left for the usable pairs (spec §2, the SDK's behaviour).

    Requested batteries that cannot be used still produce or consume what they are
    measured at; that part of the request is already "placed", so only the rest
    goes to the usable pairs. An unknown measurement (None) counts as nothing.
    """
    return request_w if unreachable_w is None else request_w - unreachable_w


def distribute_battery_power(
    request_w: float,
    pairs: Sequence[InverterBatteries],
    *,
    exponent: float = 1.0,
    adjust_power: bool = True,
    unreachable_power: float | None = None,
) -> BatteryDistribution | BatteryRefusal:
    """Split a battery pool's target among its inverters, balancing SoC (spec §2).

    Args:
        request_w: The pool target (W, positive charges).
        pairs: The usable battery–inverter pairs of the request.
        exponent: How strongly SoC differences steer the split (>= 0; 0 splits by
            capacity only).
        adjust_power: Place what fits when the request is outside the inclusion
            bounds, instead of refusing it.
        unreachable_power: Power measured on requested batteries that cannot be
            used; it is subtracted before distributing (see
            `subtract_unreachable_power`).

    Returns:
        The setpoints, or why nothing can be sent.

    Raises:
        ValueError: If the exponent is negative or not a number.
    """
    if not exponent >= 0.0:
        raise ValueError(f"The exponent must be a number >= 0, got {exponent}")
    if not pairs:
        return BatteryRefusal("No usable batteries in the request")
    unreachable = 0.0 if unreachable_power is None else unreachable_power
    power = subtract_unreachable_power(request_w, unreachable_power)
    view = _PairsView(pairs, charge=power >= 0.0)
    if request_w != 0.0:
        refusal = _check_bounds(request_w, view.reachable_bounds(), adjust_power)
        if refusal is not None:
            return refusal

    if request_w == 0.0 or power == 0.0 or power * request_w < 0.0:
        # Beyond the SDK: when unusable batteries already do more than the request,
        # the SDK runs the others against it to compensate (asked to charge 100 W
        # with 300 W measured, it discharges 200 W; asked for 0 W with 3 kW
        # measured, it discharges 3 kW). Ours leaves them at 0 W and reports the
        # overshoot as excess: 0 W asked is every inverter at 0 W (spec §2).
        zeros = dict.fromkeys((pair.inverter_id for pair in pairs), 0.0)
        excess = 0.0 if power == 0.0 else power
        return BatteryDistribution(request_w, zeros, excess, unreachable, pairs)
    if math.isclose(sum(view.capacities), 0.0, abs_tol=_CAPACITY_ZERO_TOLERANCE):
        return BatteryRefusal("All batteries have capacity 0")

    split, excess = _split(abs(power), view, exponent)
    inverter_ids = [pair.inverter_id for pair in pairs]
    if power > 0.0:
        setpoints = dict(zip(inverter_ids, split, strict=True))
        return BatteryDistribution(request_w, setpoints, excess, unreachable, pairs)
    # Back from the direction-normalised view: -x is exactly -1.0 * x.
    setpoints = dict(zip(inverter_ids, map(neg, split), strict=True))
    return BatteryDistribution(request_w, setpoints, -excess, unreachable, pairs)


def _check_bounds(
    request_w: float, bounds: PowerBounds, adjust_power: bool
) -> BatteryRefusal | None:
    """Refuse a request the pairs cannot serve (like the SDK's `_check_request`).

    Refused: a request strictly inside the exclusion zone, or, when it may not be
    adjusted, one outside the inclusion range.
    """
    if adjust_power:
        if bounds.exclusion_lower < request_w < bounds.exclusion_upper:
            return BatteryRefusal("Request inside the exclusion bounds", bounds)
        return None
    in_lower = bounds.inclusion_lower <= request_w <= bounds.exclusion_lower
    in_upper = bounds.exclusion_upper <= request_w <= bounds.inclusion_upper
    if in_lower or in_upper:
        return None
    return BatteryRefusal("Request outside the bounds", bounds)


class _PairsView:
    """The per-pair numbers of one request direction, as plain float lists.

    Everything is seen from the direction of the request (the SDK negates for
    discharging): ``upper`` is how much the pair may take, ``lower`` the other end
    of its inclusion range, ``exclusion_upper`` the smallest non-zero power it
    accepts (the SDK's minimum power) and ``exclusion_lower`` the other edge.
    ``minimum`` is the smallest non-zero power the safe split may give it
    (``max(exclusion_upper, lower, 0)``).

    Beyond the SDK, ``upper`` is never below 0: a pair whose inclusion range lies
    entirely on the other side of 0 (an inverter that may only charge, asked to
    discharge) gets 0 W — always allowed — and its share goes to the others or
    becomes excess. The SDK clamps it onto its range and so sends power against
    the request (−1 W asked, +262.8 W sent).

    This runs on every request, for every pair, so it is one pass with the
    ``min``/``max`` calls spelled out as comparisons (the same results, the same
    operand picked on ties, at a fraction of the cost of calling the builtins).
    """

    __slots__ = (
        "available_soc",
        "capacities",
        "charging",
        "exclusion_lower",
        "exclusion_upper",
        "lower",
        "minimum",
        "upper",
    )

    def __init__(self, pairs: Sequence[InverterBatteries], *, charge: bool) -> None:
        self.charging = charge
        self.capacities = [pair.capacity_wh for pair in pairs]
        available_soc: list[float] = []
        uppers: list[float] = []
        lowers: list[float] = []
        exclusion_uppers: list[float] = []
        exclusion_lowers: list[float] = []
        minimums: list[float] = []
        self.available_soc = available_soc
        self.upper = uppers
        self.lower = lowers
        self.exclusion_upper = exclusion_uppers
        self.exclusion_lower = exclusion_lowers
        self.minimum = minimums
        add_available = available_soc.append
        add_upper = uppers.append
        add_lower = lowers.append
        add_exclusion_upper = exclusion_uppers.append
        add_exclusion_lower = exclusion_lowers.append
        add_minimum = minimums.append
        for pair in pairs:
            battery = pair.battery_bounds
            inverter = pair.inverter_bounds
            b_lower = battery.inclusion_lower
            b_upper = battery.inclusion_upper
            b_excl_lower = battery.exclusion_lower
            b_excl_upper = battery.exclusion_upper
            i_lower = inverter.inclusion_lower
            i_upper = inverter.inclusion_upper
            i_excl_lower = inverter.exclusion_lower
            i_excl_upper = inverter.exclusion_upper
            # Each expression below is the builtin call named in its comment.
            if charge:
                available = pair.soc_upper_pct - pair.soc_pct
                # min(i_upper, b_upper)
                upper = b_upper if b_upper < i_upper else i_upper
                # max(i_lower, b_lower)
                lower = b_lower if b_lower > i_lower else i_lower
                # max(b_excl_upper, i_excl_upper)
                edge = i_excl_upper if i_excl_upper > b_excl_upper else b_excl_upper
                # min(b_excl_lower, i_excl_lower)
                other_edge = (
                    i_excl_lower if i_excl_lower < b_excl_lower else b_excl_lower
                )
            else:
                available = pair.soc_pct - pair.soc_lower_pct
                # -max(i_lower, b_lower)
                upper = -(b_lower if b_lower > i_lower else i_lower)
                # -min(i_upper, b_upper)
                lower = -(b_upper if b_upper < i_upper else i_upper)
                # max(-b_excl_lower, -i_excl_lower), negated once: -i > -b
                # exactly when i < b, and the same operand wins on ties
                edge = -(i_excl_lower if i_excl_lower < b_excl_lower else b_excl_lower)
                # -max(b_excl_upper, i_excl_upper)
                other_edge = -(
                    i_excl_upper if i_excl_upper > b_excl_upper else b_excl_upper
                )
            # max(0.0, available)
            add_available(available if available > 0.0 else 0.0)
            # max(upper, 0.0): never against the request (see the class doc)
            add_upper(upper if upper > 0.0 else 0.0)
            add_lower(lower)
            add_exclusion_upper(edge)
            add_exclusion_lower(other_edge)
            # max(edge, lower, 0.0)
            minimum = lower if lower > edge else edge
            add_minimum(0.0 if minimum < 0.0 else minimum)

    def reachable_bounds(self) -> PowerBounds:
        """See `reachable_bounds`; computed from this view's lists (fast)."""
        # Σ min(lower, 0); ``upper`` is never below 0 already. A lower end above
        # 0 is rare, so the common case is two passes in C, not one in Python.
        lower = sum(self.lower)
        if max(self.lower) > 0.0:
            lower = sum([value if value < 0.0 else 0.0 for value in self.lower])
        upper = sum(self.upper)
        exclusion_lower = max(self.exclusion_lower)
        exclusion_upper = min(self.exclusion_upper)
        if self.charging:
            return PowerBounds(lower, upper, exclusion_lower, exclusion_upper)
        return PowerBounds(-upper, -lower, -exclusion_upper, -exclusion_lower)

    def availability_ratios(self, exponent: float) -> list[float]:
        """Per pair, capacity share × available SoC ^ exponent (the SDK's ratio).

        ``pow(x, 1.0)`` is exactly ``x`` and ``pow(x, 0.0)`` exactly ``1.0``, so the
        common exponents skip the call without changing a bit.

        Beyond the SDK: a pair with no SoC room in the request's direction (at or
        above its upper SoC limit when charging, at or below its lower one when
        discharging) has ratio 0 whatever the exponent. The SDK computes
        ``0.0 ** 0.0 == 1.0`` and so charges a full battery at exponent 0.
        """
        total_capacity = sum(self.capacities)
        pairs = zip(self.capacities, self.available_soc, strict=True)
        if exponent == 1.0:
            return [
                capacity / total_capacity * available for capacity, available in pairs
            ]
        if exponent == 0.0:
            # pow(0.0, 0.0) is 1.0: a full battery would get its capacity share.
            return [
                capacity / total_capacity * (1.0 if available > 0.0 else 0.0)
                for capacity, available in pairs
            ]
        return [
            capacity / total_capacity * pow(available, exponent)
            for capacity, available in pairs
        ]


def _split(
    power: float, view: _PairsView, exponent: float
) -> tuple[list[float], float]:
    """Split a positive power: the SDK's split if it is safe, else a safe one.

    Without exclusion zones the SDK's split is always safe, so the result is the
    SDK's to the milliwatt; the same holds where exclusion zones exist but every
    pair's share clears its minimum. Where a zone binds, the SDK repairs the
    shortfall ad hoc (it may run a full battery at its minimum, take power from
    the most deserving pair first, or overshoot the request); the safe split is
    used instead, unless the SDK's split is safe and places more.

    Only what can change the outcome is worked out: when a zone clearly binds,
    the SDK's split is not started (`zones_surely_bind`), and when the safe split
    places the whole request, the SDK's repair is not done either
    (`_sdk_cannot_place_more`).
    """
    ratios = view.availability_ratios(exponent)
    total_ratio = 0.0
    for ratio in ratios:  # the SDK's summation order, bit for bit
        total_ratio += ratio
    if all_pairs_full(total_ratio):
        # Not a shortfall for the safe split to make up: the SDK places nothing
        # (its split is safe: all 0 W), and so do we.
        return [0.0] * len(ratios), power

    def safe() -> tuple[list[float], float]:
        # Only among the pairs the SDK would share with: one it sees as full
        # (a 1e-11 ratio next to a 5e-9 one) is not charged to place more.
        reached = sdk_reached_ratios(ratios, total_ratio, view.exclusion_upper)
        return safe_split(power, reached, view.minimum, view.upper)

    reservation = None
    if not zones_surely_bind(
        power, ratios, total_ratio, view.exclusion_upper, view.upper
    ):
        reservation = sdk_reserve(
            power, ratios, total_ratio, view.exclusion_upper, view.upper
        )
        if not reservation.zones_bind:
            powers, excess = sdk_finish(reservation)
            usable = _adds_up(power, powers, excess) and _all_safe(powers, ratios, view)
            if not usable:
                return safe()
            if excess <= _ALLOWED_TOLERANCE:
                return powers, excess
            # The SDK left some unplaced (a pair that takes nothing, whose zone
            # edge is the request, counts as reserved): never less than the safe
            # split would place.
            safe_powers, safe_excess = safe()
            if safe_excess < excess - _ALLOWED_TOLERANCE:
                return safe_powers, safe_excess
            return powers, excess
    safe_powers, safe_excess = safe()
    if _sdk_cannot_place_more(power, safe_excess):
        return safe_powers, safe_excess
    if reservation is None:
        reservation = sdk_reserve(
            power, ratios, total_ratio, view.exclusion_upper, view.upper
        )
    powers, excess = sdk_finish(reservation)
    sdk_usable = _adds_up(power, powers, excess) and _all_safe(powers, ratios, view)
    if sdk_usable and excess < safe_excess - _ALLOWED_TOLERANCE:
        return powers, excess  # never place less than the SDK would
    return safe_powers, safe_excess


def _sdk_cannot_place_more(power: float, safe_excess: float) -> bool:
    """Whether the SDK's split is known not to beat a safe split with this excess.

    The SDK's split wins only with an excess below ``safe_excess - tolerance``. Its
    excess is never negative once `_adds_up` accepts it: its top-up either ends
    at exactly 0 W left over or subtracts a smaller headroom from a positive
    remainder; only if every pair sits at 0 W can an overshoot stay negative, and
    `_adds_up` lets that through only for a request below its tolerance (the
    overshoot itself must be within it). So for a real request, a safe split that
    leaves at most the tolerance unplaced cannot be beaten.
    """
    return safe_excess <= _ALLOWED_TOLERANCE and power > 4.0 * _ALLOWED_TOLERANCE


def _adds_up(power: float, powers: list[float], excess: float) -> bool:
    """Whether the split places at most the request and accounts for all of it.

    The SDK's repair of exclusion-zone shortfalls can overshoot the request and
    lose track of the excess; such a split is not sent.
    """
    placed = sum(powers)
    tolerance = _ALLOWED_TOLERANCE + 1e-9 * power
    return placed <= power + tolerance and abs(placed + excess - power) <= tolerance


def _all_safe(powers: list[float], ratios: list[float], view: _PairsView) -> bool:
    """Whether the SDK's split is one we may send as it is.

    Every power must be allowed by its pair's bounds, a pair without a share (full
    when charging, empty when discharging) gets nothing, and no pair works against
    the request, not even by a rounding error: the SDK can discharge one battery
    to charge the others when it repairs an exclusion-zone shortfall, and it
    clamps a pair whose range excludes 0 onto the wrong side of 0 (``upper`` in
    the view is at least 0, so that shows up as a negative power here).
    """
    tolerance = _ALLOWED_TOLERANCE
    for power, ratio, lower, upper, excl_lower, excl_upper in zip(
        powers,
        ratios,
        view.lower,
        view.upper,
        view.exclusion_lower,
        view.exclusion_upper,
        strict=True,
    ):
        if power == 0.0:
            continue
        if ratio == 0.0 or power < lower - tolerance or power > upper + tolerance:
            return False
        if power < 0.0:
            return False  # against the request's direction
        if excl_lower + tolerance < power < excl_upper - tolerance:
            return False
    return True


def _fill_nan_bounds(
    bounds: PowerBounds, other_side: PowerBounds
) -> PowerBounds | None:
    """Replace NaN fields by the other side's; None if an inclusion bound stays NaN.

    A NaN exclusion edge that the other side cannot fill means "no zone" (0 W).
    """
    if not (
        math.isnan(bounds.inclusion_lower)
        or math.isnan(bounds.inclusion_upper)
        or math.isnan(bounds.exclusion_lower)
        or math.isnan(bounds.exclusion_upper)
    ):
        return bounds  # the usual case: nothing to fill

    def pick(own: float, other: float) -> float:
        return other if math.isnan(own) else own

    def pick_exclusion(own: float, other: float) -> float:
        value = pick(own, other)
        return 0.0 if math.isnan(value) else value

    filled = PowerBounds(
        inclusion_lower=pick(bounds.inclusion_lower, other_side.inclusion_lower),
        inclusion_upper=pick(bounds.inclusion_upper, other_side.inclusion_upper),
        exclusion_lower=pick_exclusion(
            bounds.exclusion_lower, other_side.exclusion_lower
        ),
        exclusion_upper=pick_exclusion(
            bounds.exclusion_upper, other_side.exclusion_upper
        ),
    )
    if math.isnan(filled.inclusion_lower) or math.isnan(filled.inclusion_upper):
        return None
    return filled
