"""Energy counters: the integral of power, split into consumed and delivered."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class EnergyCounter:
    """Monotonic counters in Wh, like a bidirectional meter's two registers.

    Positive power (consumption) adds to `consumed_wh`, negative power
    (production) to `delivered_wh`; neither ever decreases.
    """

    consumed_wh: float = 0.0
    delivered_wh: float = 0.0

    def add(self, power_w: float, dt_s: float) -> None:
        """Account for `power_w` held during `dt_s` simulated seconds."""
        energy_wh = power_w * dt_s / 3600.0
        if energy_wh >= 0:
            self.consumed_wh += energy_wh
        else:
            self.delivered_wh -= energy_wh
