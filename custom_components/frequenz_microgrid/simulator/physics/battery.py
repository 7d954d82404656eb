"""A battery: its SoC integrates DC power with an efficiency, inside a SoC window."""

from __future__ import annotations

from dataclasses import dataclass
import math

from ...engine.bounds import PowerBounds

TAPER_WIDTH_PCT = 5.0
"""How many SoC percentage points before a window edge the power limit starts to fall.

Real battery management systems reduce the allowed charge (discharge) power as the
SoC approaches its upper (lower) limit instead of cutting it off abruptly.
"""

THERMAL_TIME_CONSTANT_S = 600.0
"""How quickly a battery's temperature follows the heat its power produces."""


@dataclass(frozen=True, slots=True)
class BatteryParams:
    """What does not change while a battery runs."""

    capacity_wh: float
    max_charge_w: float
    max_discharge_w: float
    soc_lower_pct: float = 10.0
    soc_upper_pct: float = 90.0
    efficiency: float = 0.95


@dataclass(slots=True)
class BatteryState:
    """A battery's changing state: its SoC and the DC power it last carried."""

    params: BatteryParams
    soc_pct: float
    dc_power_w: float = 0.0
    temperature_c: float = 25.0

    def power_bounds(self) -> PowerBounds:
        """Inclusion bounds on DC power, tapering to 0 W at the SoC window edges.

        Charging is allowed up to `max_charge_w` while the SoC is at least
        `TAPER_WIDTH_PCT` below the upper limit, then falls linearly to 0 W at the
        limit (and beyond); discharging likewise at the lower limit.
        """
        p = self.params
        charge_room = (p.soc_upper_pct - self.soc_pct) / TAPER_WIDTH_PCT
        discharge_room = (self.soc_pct - p.soc_lower_pct) / TAPER_WIDTH_PCT
        upper = p.max_charge_w * min(max(charge_room, 0.0), 1.0)
        lower = -p.max_discharge_w * min(max(discharge_room, 0.0), 1.0)
        return PowerBounds(lower, upper)

    def carry(self, dc_power_w: float, dt_s: float) -> None:
        """Hold `dc_power_w` for `dt_s` seconds and update the SoC.

        Charging stores `efficiency` of the power, discharging draws
        `1 / efficiency` of it from the cells, so a full cycle loses energy.
        """
        p = self.params
        if dc_power_w >= 0:
            stored_w = dc_power_w * p.efficiency
        else:
            stored_w = dc_power_w / p.efficiency
        self.dc_power_w = dc_power_w
        self.soc_pct += stored_w * dt_s / 3600.0 / p.capacity_wh * 100.0
        self.soc_pct = min(max(self.soc_pct, 0.0), 100.0)
        # A gentle thermal model: heat with power, relax towards 25 °C with a time
        # constant of 10 minutes (exactly, so the result does not depend on the step).
        target_c = 25.0 + abs(dc_power_w) / max(p.max_charge_w, 1.0) * 10.0
        relaxed = math.exp(-dt_s / THERMAL_TIME_CONSTANT_S)
        self.temperature_c = target_c + (self.temperature_c - target_c) * relaxed
