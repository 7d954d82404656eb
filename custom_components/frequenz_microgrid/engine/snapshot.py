"""What the microgrid looks like right now: the read-only view entities are built on.

The monitor (telemetry streams → formulas → pool metrics) produces one immutable
`MicrogridSnapshot` per update; the Home Assistant layer only reads it. Every value is
`None` when it is unknown or stale — never a made-up 0 — so entities can go
unavailable honestly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from frequenz.client.microgrid.component import ComponentErrorCode, ComponentStateCode
from frequenz.client.microgrid.metrics import Metric

from .bounds import PowerBounds

PhaseValues = tuple[float | None, float | None, float | None]
"""A value per phase (L1, L2, L3); `None` where unknown."""

NO_PHASES: PhaseValues = (None, None, None)


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentSnapshot:
    """The latest fresh telemetry of one component."""

    component_id: int
    metrics: dict[Metric, float] = field(default_factory=dict)
    """Latest fresh value per metric (stale or NaN values are left out)."""
    bounds: dict[Metric, PowerBounds] = field(default_factory=dict)
    """Latest bounds sent with a metric (e.g. AC_POWER_ACTIVE of an inverter)."""
    states: frozenset[ComponentStateCode | int] = frozenset()
    warnings: frozenset[ComponentErrorCode | int] = frozenset()
    errors: frozenset[ComponentErrorCode | int] = frozenset()
    fresh: bool = False
    """Whether its data is younger than the freshness window."""

    def value(self, metric: Metric) -> float | None:
        """Return the latest fresh value of `metric`, or `None`."""
        return self.metrics.get(metric)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatteryPoolSnapshot:
    """Battery pool metrics (spec §5), over the pool's working batteries."""

    soc_pct: float | None = None
    """Usable-capacity-weighted SoC, rescaled to the SoC window (0–100 %)."""
    usable_capacity_wh: float | None = None
    power_w: float | None = None
    bounds: PowerBounds | None = None
    """Inclusion and exclusion power bounds of the pool."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EnergySnapshot:
    """Energy counters (Wh) summed from the components' own AC energy metrics.

    A field is `None` when not every component of that pool sends the counter; the
    Home Assistant layer then integrates the pool's power instead (and restores the
    total across restarts), so the Energy dashboard always has a counter.
    """

    grid_import_wh: float | None = None
    grid_export_wh: float | None = None
    battery_charge_wh: float | None = None
    battery_discharge_wh: float | None = None
    pv_production_wh: float | None = None
    ev_charging_wh: float | None = None
    grid_meters: frozenset[int] = frozenset()
    """The components whose counters the grid's fields sum (likewise below):
    when the set changes, a sum jumps by a whole lifetime counter that is not
    energy of this period."""
    battery_meters: frozenset[int] = frozenset()
    pv_meters: frozenset[int] = frozenset()
    ev_meters: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class MicrogridSnapshot:
    """Pool and per-component values at one instant."""

    taken_at: datetime
    reachable: bool
    """Whether the microgrid API currently answers (streams alive)."""
    grid_power_w: float | None = None
    grid_current_a: PhaseValues = NO_PHASES
    consumer_power_w: float | None = None
    producer_power_w: float | None = None
    pv_power_w: float | None = None
    ev_power_w: float | None = None
    ev_current_a: PhaseValues = NO_PHASES
    battery: BatteryPoolSnapshot = BatteryPoolSnapshot()
    energy: EnergySnapshot = field(default_factory=lambda: EnergySnapshot())
    components: dict[int, ComponentSnapshot] = field(default_factory=dict)

    def component(self, component_id: int) -> ComponentSnapshot | None:
        """Return one component's snapshot, or `None` if it has never sent anything.

        A component that went silent keeps its entry with `fresh=False`, no metrics
        and no states (the store still knows when it was last seen).

        A component whose telemetry did not change since the last snapshot has the
        very same `ComponentSnapshot` object in this one (see `TelemetryStore`).
        """
        return self.components.get(component_id)
