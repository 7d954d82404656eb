"""Where the EVs' energy came from: solar, battery or grid, per interval.

The site meters the flows at the grid connection, the PV and battery pools and
the EV chargers, but nothing says which electron went where. The rule (the one
evcc's "solar share" and most home energy managers use, stated exactly here):

1. the non-EV load (everything that is neither EV, PV nor battery:
   ``grid − pv − battery − ev`` in the passive sign convention, at least 0) is
   served first, by PV, then by battery discharge;
2. the PV surplus over that load goes to the EVs first;
3. then what the battery discharges beyond what the load still needs;
4. the rest of the EVs' demand comes from the grid.

All EVs charging in the same interval get the same shares (the split is
proportional to their power), so two cars side by side never "steal" each
other's sunshine. An interval whose grid power is unknown counts as grid: no
green energy is claimed that was not measured.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

from ..snapshot import MicrogridSnapshot


@dataclass(frozen=True, slots=True)
class SourceShares:
    """Fractions of the EVs' energy per source; they add up to 1, none negative."""

    solar: float = 0.0
    battery: float = 0.0

    @property
    def grid(self) -> float:
        """The rest: what neither PV nor the battery covered."""
        return max(1.0 - self.solar - self.battery, 0.0)


ALL_GRID = SourceShares()


def ev_source_shares(
    *,
    ev_demand_w: float,
    grid_w: float | None,
    pv_w: float | None,
    battery_w: float | None,
) -> SourceShares:
    """Return the source shares of the EVs' power (passive sign convention).

    `pv_w` is ≤ 0 while producing, `battery_w` < 0 while discharging; a missing PV
    or battery value counts as 0 W (no claim without a measurement). With no EV
    demand at all, the shares are those an infinitesimal demand would get (energy
    a meter counts between two samples still has a source).
    """
    values = (ev_demand_w, grid_w, pv_w, battery_w)
    if grid_w is None or not all(v is None or math.isfinite(v) for v in values):
        return ALL_GRID
    pv = pv_w or 0.0
    battery = battery_w or 0.0
    demand = max(ev_demand_w, 0.0)
    production = max(-pv, 0.0)
    discharge = max(-battery, 0.0)
    load = max(grid_w - pv - battery - demand, 0.0)
    surplus = max(production - load, 0.0)
    battery_spare = max(discharge - max(load - production, 0.0), 0.0)
    if demand <= 0.0:
        if surplus > 0.0:
            return SourceShares(solar=1.0)
        if battery_spare > 0.0:
            return SourceShares(battery=1.0)
        return ALL_GRID
    solar_w = min(demand, surplus)
    battery_to_ev_w = min(demand - solar_w, battery_spare)
    return SourceShares(solar=solar_w / demand, battery=battery_to_ev_w / demand)


def snapshot_source_shares(
    snapshot: MicrogridSnapshot, ev_demand_w: float
) -> SourceShares:
    """Return the EVs' source shares from one snapshot's pool powers."""
    return ev_source_shares(
        ev_demand_w=ev_demand_w,
        grid_w=snapshot.grid_power_w,
        pv_w=snapshot.pv_power_w,
        battery_w=snapshot.battery.power_w,
    )
