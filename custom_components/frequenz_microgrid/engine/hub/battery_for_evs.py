"""Whether the home battery may discharge into the EVs, and down to which SoC.

Enforced by our own battery setpoints, not by asking anyone to hold back: while
EVs draw power and the battery may not feed them (not allowed, or its SoC is at
or below the floor), the battery pool's discharge is bounded by what the rest of
the site consumes — the site's load without the EVs and the battery, less its own
PV — so the battery covers the house, never the cars. The bound applies to every
actor's target alike (it sits below the power manager, in the battery steering),
so no proposal, automation or restored setpoint can leak battery energy into an
EV (evcc's lock leaks, its issues #18313 and #33917, because a mode change or the
battery's own controller overrides it).

With telemetry missing the bound takes the safe side: unknown EV power counts as
"EVs charging", an unknown site load as "nothing else to cover" (no discharge).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import math

from .site import SiteFlows

EVS_CHARGING_THRESHOLD_W = 50.0
"""EVs drawing more than this together count as charging (meter noise below)."""


@dataclass(slots=True)
class BatteryForEvs:
    """The hub's battery-for-EVs setting (mutable: Home Assistant changes it)."""

    allowed: bool = True
    """Whether the battery may discharge into the EVs (above `floor_soc_pct`)."""
    floor_soc_pct: float = 0.0
    """Below or at this pool SoC the battery never discharges into the EVs."""

    def __post_init__(self) -> None:
        """Refuse a floor outside 0–100 %."""
        self.set_floor_soc(self.floor_soc_pct)

    def set_floor_soc(self, floor_soc_pct: float) -> None:
        """Set the floor SoC (0–100 %)."""
        if not 0.0 <= floor_soc_pct <= 100.0:
            raise ValueError("the battery floor SoC must be within 0–100 %")
        self.floor_soc_pct = floor_soc_pct

    def may_feed_evs(self, site: SiteFlows | None) -> bool:
        """Whether the battery may discharge into the EVs now."""
        if not self.allowed:
            return False
        soc = None if site is None else site.battery_soc_pct
        if self.floor_soc_pct <= 0.0:
            return True
        return soc is not None and math.isfinite(soc) and soc > self.floor_soc_pct

    def discharge_limit_w(self, site: SiteFlows | None) -> float | None:
        """The most the batteries may discharge now (W, ≥ 0); `None`: no limit."""
        if self.may_feed_evs(site):
            return None
        if site is None:
            return 0.0
        ev = site.ev_power_w
        if _known(ev) and float(ev or 0.0) <= EVS_CHARGING_THRESHOLD_W:
            return None  # no EV draws: the battery is free to serve the site
        grid, battery = site.grid_power_w, site.battery_power_w
        if not (_known(ev) and _known(grid) and _known(battery)):
            return 0.0
        others = float(grid or 0.0) - float(ev or 0.0) - float(battery or 0.0)
        return max(0.0, others)


class DischargeBudget:
    """Hands out a discharge limit to the battery sets of one steering round.

    The sets are steered one after the other; together they discharge at most
    the limit (the first sets take what they ask for, the later ones the rest).
    """

    def __init__(self, limit_w: float | None) -> None:
        """Start a round with `limit_w` (W, ≥ 0; `None`: no limit)."""
        self._left = limit_w

    def bound(self, target_w: float) -> float:
        """Return `target_w` (passive sign) raised to the discharge still allowed."""
        if self._left is None:
            return target_w
        bounded = max(target_w, -self._left)
        self._left -= max(0.0, -bounded)
        return bounded


type DischargeLimit = Callable[[], float | None]
"""The battery discharge limit now (W, ≥ 0; `None`: no limit)."""


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
