"""Peak shaving for the grid circuit: batteries discharge what the EVs can't yield.

When the grid circuit's power limit (its envelope's upper limit in force, or a fixed
limit) is below what the site draws, the EV chargers yield first (the EV steering
holds them to the limit less the other loads, counting the batteries' discharge as
if it were not there, so a discharge never flows into the EVs). What is still above
the limit – loads nobody steers – the batteries discharge, through the power
manager as one more actor:

- source ``hub.peak_shaving`` at priority `PEAK_SHAVING_PRIORITY` (above every Home
  Assistant actor, whose priorities end at 100): a grid limit is a contract, an
  optimiser's wish is not;
- bounds ``(−∞, ceiling]`` and power ``min(0, ceiling)`` with
  ``ceiling = battery power now − (grid power now − upper limit)``: the batteries may
  do whatever lower-priority actors want as long as the grid stays at or below the
  limit, and discharge by the excess when nobody asks for anything;
- withdrawn when no limit is in force or a measurement is missing (no data, no
  action: the batteries return to what the other actors want).

Steered to the upper limit; the tolerance only decides *limit exceeded*.
"""

from __future__ import annotations

import math

PEAK_SHAVING_SOURCE = "hub.peak_shaving"
"""The power manager source id of the peak shaver."""

PEAK_SHAVING_PRIORITY = 1000
"""Above every Home Assistant actor (−100…100)."""


def battery_ceiling_w(
    grid_power_w: float, battery_power_w: float, upper_limit_w: float
) -> float | None:
    """The most the battery pool may draw so the grid stays at the limit (W).

    Passive sign convention: positive = consumption / charging. `None` when a
    value is unknown or no limit is in force.
    """
    values = (grid_power_w, battery_power_w, upper_limit_w)
    if not all(math.isfinite(value) for value in values):
        return None
    return battery_power_w - (grid_power_w - upper_limit_w)
