"""The site's power flows the charging hub decides on (solar surplus, battery use).

Taken from each snapshot the monitor publishes (passive sign convention: positive
is consumption, so a negative grid power is export and a negative battery power is
discharge). `None` where the site has no such meter or the value is stale: the
hub's decisions then take the safe side (no surplus, no battery for the EVs).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..snapshot import MicrogridSnapshot


@dataclass(frozen=True, slots=True)
class SiteFlows:
    """Grid, EV and battery power and the battery pool's SoC at one instant."""

    grid_power_w: float | None = None
    ev_power_w: float | None = None
    """What all EV chargers draw together (W)."""
    battery_power_w: float | None = None
    """The battery pool's AC power (W): negative while it discharges."""
    battery_soc_pct: float | None = None

    @classmethod
    def from_snapshot(cls, snapshot: MicrogridSnapshot) -> SiteFlows:
        """The flows a snapshot shows (nothing while the microgrid is away)."""
        if not snapshot.reachable:
            return cls()
        return cls(
            grid_power_w=snapshot.grid_power_w,
            ev_power_w=snapshot.ev_power_w,
            battery_power_w=snapshot.battery.power_w,
            battery_soc_pct=snapshot.battery.soc_pct,
        )
