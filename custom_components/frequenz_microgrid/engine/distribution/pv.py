"""PV curtailment: split a production limit across PV inverters.

Public API::

    setpoints = distribute_pv_power(
        target_w,                         # ≤ 0: the most the pool may produce
        [PvInverterInput(component_id=7, bounds=PowerBounds(-5000.0, 0.0)), ...],
    )                                     # -> {component_id: watts (≤ 0)}

Passive sign convention: production is negative, so the target is a *lower* limit
on power: ``target_w = -3000`` means "produce at most 3 kW". An inverter's inclusion
lower bound is what it can produce now (its available production).

- ``target_w`` at or below the pool's available production: no curtailment, every
  inverter at its lower bound.
- ``target_w = 0`` (or positive, or NaN): curtail fully, every inverter at 0 W. PV
  cannot consume, so a positive target means the same as 0.
- In between: each inverter produces the same *fraction* of its available
  production (``target × available_i / Σ available``). Setpoints never leave an
  inverter's bounds and together never produce more than the target.

Where we differ from the SDK's ``PVManager``:

- The SDK sorts inverters by lower bound (smallest first) and gives each an equal
  split of what remains, capped at its bound, so small inverters run flat out and
  large ones take the rest. We split in proportion to available production: equal
  relative curtailment, independent of order, and every inverter keeps some output
  (no inverter idles while another runs at full power). For equal inverters both
  give the same result.
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


@dataclass(frozen=True, slots=True, kw_only=True)
class PvInverterInput:
    """One PV inverter that may receive a setpoint, with its current bounds."""

    component_id: int
    bounds: PowerBounds
    """Inclusion lower bound = available production (≤ 0 W)."""

    @property
    def available_w(self) -> float:
        """How much it can produce now (W, ≥ 0).

        0 if the bound is unknown (NaN) or unbounded: a share in proportion to an
        infinite production is meaningless, and the API always bounds PV inverters.
        """
        lower = self.bounds.inclusion_lower
        return max(0.0, -lower) if math.isfinite(lower) else 0.0

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
    """Production per inverter (W, ≥ 0) in proportion to available production."""
    total_available = math.fsum(i.available_w for i in inverters)
    if limit_w >= total_available:
        return {i.component_id: i.available_w for i in inverters}
    fraction = limit_w / total_available
    return {
        i.component_id: min(i.available_w, i.available_w * fraction) for i in inverters
    }
