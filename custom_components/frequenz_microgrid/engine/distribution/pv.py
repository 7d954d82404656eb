"""PV curtailment: split a production limit across PV inverters.

Public API::

    setpoints = distribute_pv_power(
        target_w,                         # ≤ 0: the most the pool may produce
        [PvInverterInput(component_id=7, bounds=PowerBounds(-5000.0, 0.0)), ...],
    )                                     # -> {component_id: watts (≤ 0)}

Passive sign convention: production is negative, so the target is a *lower* limit
on power: ``target_w = -3000`` means "produce at most 3 kW". An inverter's inclusion
lower bound is the most it may produce (often its rating, whatever the sun does).

- ``target_w`` at or below the pool's available production: no curtailment, every
  inverter at its lower bound.
- ``target_w = 0`` (or positive, or NaN): curtail fully, every inverter at 0 W. PV
  cannot consume, so a positive target means the same as 0.
- In between: each inverter produces the same *fraction* of its available
  production (``target × available_i / Σ available``). Setpoints never leave an
  inverter's bounds and together never produce more than the target.
- **Give-back.** An inverter that produced clearly less than the limit it was
  given (a shaded or west-facing array in the morning; `PvInverterInput.produced_w`
  read while `limit_w` was in force) is held near what it produces (plus headroom
  to show when the sun comes back), and the rest of its share goes to the others.
  Without this an 8 kW-rated inverter producing 1.5 kW took half of a 6 kW limit,
  and the site produced 4.5 kW instead of 6 (importing the difference).

Where we differ from the SDK's ``PVManager``:

- The SDK sorts inverters by lower bound (smallest first) and gives each an equal
  split of what remains, capped at its bound, so small inverters run flat out and
  large ones take the rest. We split in proportion to available production: equal
  relative curtailment, independent of order, and every inverter keeps some output
  (no inverter idles while another runs at full power). For equal inverters both
  give the same result.
- The SDK splits by bounds only; an inverter the sun holds below its share keeps
  it unused. Ours gives it to the others (give-back above).
- The SDK ignores exclusion bounds (and an inclusion upper bound below 0). We never
  send a power strictly between 0 and an inverter's smallest production: such an
  inverter is switched to 0 W (producing less, never more, than asked) and its share
  goes to the others.
- The SDK subtracts power measured on unreachable inverters from the target first;
  that is the distributor's job here (it knows which inverters are working), so
  `inverters` must hold only the inverters that may receive a setpoint.
- An inverter whose bounds are unknown (NaN) or unbounded gets 0 W: without
  bounds no other setpoint is known to be safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
import math

from ..bounds import PowerBounds

GIVE_BACK_MARGIN_MIN_W = 50.0
"""An inverter producing this much (or `GIVE_BACK_MARGIN_SHARE` of its rating, if
more) below its limit is held there by the sun, not by the limit."""
GIVE_BACK_MARGIN_SHARE = 0.02
GIVE_BACK_HEADROOM = 1.5
"""Such an inverter keeps this many margins above what it produces: its
production can rise (the sun comes back) and shows it when it reaches the
limit; above one margin, so that it still reads as held by the sun."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PvInverterInput:
    """One PV inverter that may receive a setpoint, with its current bounds."""

    component_id: int
    bounds: PowerBounds
    """Inclusion lower bound = the most it may produce (≤ 0 W)."""
    produced_w: float = math.nan
    """What it produced (W, ≥ 0) in a reading taken while `limit_w` was in force."""
    limit_w: float | None = None
    """The production limit (W, ≥ 0) in force when `produced_w` was read; `None`
    while it had none (or no reading since it has)."""

    @property
    def available_w(self) -> float:
        """How much it can produce now (W, ≥ 0).

        0 if the bound is unknown (NaN) or unbounded: a share in proportion to an
        infinite production is meaningless, and the API always bounds PV inverters.
        """
        lower = self.bounds.inclusion_lower
        return max(0.0, -lower) if math.isfinite(lower) else 0.0

    @property
    def expected_w(self) -> float:
        """What it can produce now (W, ≥ 0), as far as its readings tell.

        Its bound (`available_w`), unless it produced clearly less than the
        limit it was given: then what it produced plus headroom.
        """
        available = self.available_w
        if self.limit_w is None or not self.produced_w >= 0.0:
            return available
        margin = max(GIVE_BACK_MARGIN_MIN_W, GIVE_BACK_MARGIN_SHARE * available)
        if self.produced_w >= self.limit_w - margin:
            return available
        return min(available, self.produced_w + GIVE_BACK_HEADROOM * margin)

    @property
    def smallest_production_w(self) -> float:
        """The least it can produce without being switched to 0 W (W, ≥ 0).

        Given by an exclusion zone below 0 W or an inclusion upper bound below 0 W.
        NaN bounds make the inverter unusable (the whole range counts as excluded).
        """
        bounds = self.bounds
        if math.isnan(bounds.exclusion_lower) or math.isnan(bounds.inclusion_upper):
            return math.inf
        from_exclusion = -bounds.exclusion_lower if bounds.has_exclusion else 0.0
        from_upper = -bounds.inclusion_upper
        return max(0.0, from_exclusion, from_upper)


def distribute_pv_power(
    target_w: float, inverters: Sequence[PvInverterInput]
) -> dict[int, float]:
    """Return a setpoint (W, ≤ 0) for every inverter so the pool meets `target_w`.

    Every setpoint is 0 W or inside the inverter's bounds, and their sum is never
    below the target (never more production than allowed). See the module
    docstring for how the target is shared.
    """
    limit = max(0.0, -target_w) if not math.isnan(target_w) else 0.0
    setpoints = {inverter.component_id: 0.0 for inverter in inverters}
    sharing = [
        inverter
        for inverter in inverters
        if inverter.available_w > 0.0
        and inverter.smallest_production_w <= inverter.available_w
    ]
    while sharing and limit > 0.0:
        productions = _proportional(limit, sharing)
        too_small = [
            inverter
            for inverter in sharing
            if 0.0 < productions[inverter.component_id] < inverter.smallest_production_w
        ]
        if not too_small:
            setpoints.update({cid: -p for cid, p in productions.items() if p > 0.0})
            break
        # Switch off the smallest of them and share its part among the others;
        # their shares grow, which can only lift them out of their exclusion zone.
        dropped = min(too_small, key=lambda i: (i.available_w, i.component_id))
        sharing.remove(dropped)
    return setpoints


def _proportional(
    limit_w: float, inverters: Sequence[PvInverterInput]
) -> Mapping[int, float]:
    """Production per inverter (W, ≥ 0) in proportion to available production.

    First up to what each is expected to produce (`expected_w`: the share of
    one the sun holds back goes to the others), then what is left of the limit
    up to each one's bound, so a single inverter (or all held back) still gets
    the whole limit.
    """
    total_available = math.fsum(i.available_w for i in inverters)
    if limit_w >= total_available:
        return {i.component_id: i.available_w for i in inverters}
    weights = {i.component_id: i.available_w for i in inverters}
    expected = _capped_shares(
        limit_w, weights, {i.component_id: i.expected_w for i in inverters}
    )
    left = limit_w - math.fsum(expected.values())
    if left <= 0.0:
        return expected
    room = {i.component_id: i.available_w - expected[i.component_id] for i in inverters}
    more = _capped_shares(left, weights, room)
    return {cid: expected[cid] + more[cid] for cid in expected}


def _capped_shares(
    total_w: float, weights: Mapping[int, float], caps: Mapping[int, float]
) -> dict[int, float]:
    """Share `total_w` in proportion to `weights`, none above its cap (W).

    Water-filling: the shares that reach their cap are fixed there and the rest
    is shared among the others again. Together at most `total_w`.
    """
    shares = dict.fromkeys(weights, 0.0)
    open_ids = [cid for cid in weights if weights[cid] > 0.0 and caps[cid] > 0.0]
    left = total_w
    while open_ids and left > 0.0:
        level = left / math.fsum(weights[cid] for cid in open_ids)
        full = [cid for cid in open_ids if weights[cid] * level >= caps[cid]]
        if not full:
            for cid in open_ids:
                shares[cid] = weights[cid] * level
            break
        for cid in full:
            shares[cid] = caps[cid]
            left -= caps[cid]
            open_ids.remove(cid)
    return shares
