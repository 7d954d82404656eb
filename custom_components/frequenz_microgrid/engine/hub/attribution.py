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


@dataclass(frozen=True, slots=True)
class SiteFlows:
    """What the EVs compete with for PV and battery power (W, all ≥ 0).

    Taken at one instant from the pool powers (`of`), or averaged over an
    interval (`mean`): the household load, PV and battery change slowly, while
    the EVs' demand of an interval is best known from the energy they took in it
    (an EV that starts charging just after a snapshot drew full power for most of
    the interval, not the average of 0 and full power).
    """

    load_w: float | None
    """The non-EV load, `None` while the grid power is unknown."""
    production_w: float = 0.0
    discharge_w: float = 0.0

    @classmethod
    def of(
        cls,
        *,
        ev_w: float,
        grid_w: float | None,
        pv_w: float | None,
        battery_w: float | None,
    ) -> SiteFlows:
        """The flows at one instant (passive sign convention).

        A missing PV or battery power counts as 0 W: no claim without a measurement.
        """
        values = (ev_w, grid_w, pv_w, battery_w)
        if grid_w is None or not all(v is None or math.isfinite(v) for v in values):
            return cls(load_w=None)
        pv = pv_w or 0.0
        battery = battery_w or 0.0
        return cls(
            load_w=max(grid_w - pv - battery - max(ev_w, 0.0), 0.0),
            production_w=max(-pv, 0.0),
            discharge_w=max(-battery, 0.0),
        )

    @classmethod
    def of_snapshot(cls, snapshot: MicrogridSnapshot, ev_w: float) -> SiteFlows:
        """The flows of one snapshot, given the EV chargers' total power."""
        return cls.of(
            ev_w=ev_w,
            grid_w=snapshot.grid_power_w,
            pv_w=snapshot.pv_power_w,
            battery_w=snapshot.battery.power_w,
        )

    def mean(self, other: SiteFlows) -> SiteFlows:
        """The average of two instants: the interval between them."""
        if self.load_w is None or other.load_w is None:
            return self if other.load_w is None else other
        return SiteFlows(
            load_w=(self.load_w + other.load_w) / 2.0,
            production_w=(self.production_w + other.production_w) / 2.0,
            discharge_w=(self.discharge_w + other.discharge_w) / 2.0,
        )

    def ev_shares(self, ev_demand_w: float) -> SourceShares:
        """The EVs' source shares when they draw `ev_demand_w` (the module's rule).

        With no EV demand at all, the shares are those an infinitesimal demand
        would get (energy a meter counts between two samples still has a source).
        """
        if self.load_w is None or not math.isfinite(ev_demand_w):
            return ALL_GRID
        surplus = max(self.production_w - self.load_w, 0.0)
        battery_spare = max(
            self.discharge_w - max(self.load_w - self.production_w, 0.0), 0.0
        )
        demand = max(ev_demand_w, 0.0)
        if demand <= 0.0:
            if surplus > 0.0:
                return SourceShares(solar=1.0)
            if battery_spare > 0.0:
                return SourceShares(battery=1.0)
            return ALL_GRID
        solar_w = min(demand, surplus)
        battery_to_ev_w = min(demand - solar_w, battery_spare)
        return SourceShares(solar=solar_w / demand, battery=battery_to_ev_w / demand)


def ev_source_shares(
    *,
    ev_demand_w: float,
    grid_w: float | None,
    pv_w: float | None,
    battery_w: float | None,
) -> SourceShares:
    """The source shares of the EVs' power at one instant (passive sign convention).

    `pv_w` is ≤ 0 while producing, `battery_w` < 0 while discharging.
    """
    flows = SiteFlows.of(
        ev_w=ev_demand_w, grid_w=grid_w, pv_w=pv_w, battery_w=battery_w
    )
    return flows.ev_shares(ev_demand_w)
