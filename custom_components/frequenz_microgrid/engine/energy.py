"""Energy totals for the Energy dashboard: one monotonic counter per flow direction.

The Energy dashboard needs a `TOTAL_INCREASING` counter that never goes backwards
and is never made up. Components that send their own AC energy counter give the best
value, but meters get replaced or reset, and many components send no counter at all.
`EnergyTotal` therefore has two sources, chosen per flow once and kept:

* **meter**: follow the components' counter, adding only its increases (a drop is a
  reset or a replaced component: the running total keeps its value and follows the
  counter from its new level, so the total stays monotonic). A sum over other
  components than before (one joined, left, or came while Home Assistant was
  down) is followed from its new level too: a wallbox joining with 1 MWh on its
  meter adds nothing, not 1 MWh. While the counter is unknown (one member of a
  summed counter is silent, so the sum is), the flow's power is integrated
  instead, so the total keeps counting in the right hour; when the counter is
  back, only what it rose by beyond that bridged energy is added (energy of a
  time without power, e.g. Home Assistant down), never less than nothing;
* **integrated**: integrate the flow's power over time with the trapezoid rule, but
  only between two consecutive fresh samples — over a gap nothing is invented.

It is plain data plus arithmetic (no Home Assistant), so the entity can restore it
across restarts from `as_dict()` and tests can drive it with numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
import math
from typing import Any, Self

MAX_INTEGRATION_GAP = timedelta(seconds=30)
"""Longest step between two power samples that is still integrated.

Snapshots arrive every second; a longer step means the data was interrupted and we
do not know what happened in between.
"""


def positive_part(power_w: float) -> float:
    """Return the power flowing in the direction a counter measures (else 0 W)."""
    return max(power_w, 0.0)


@dataclass(slots=True)
class EnergyTotal:
    """A monotonic energy total (Wh) fed by a meter counter or by power samples."""

    total_wh: float | None = None
    """The running total, `None` until the first real value is known."""
    last_reading_wh: float | None = None
    """The last meter counter seen; set once the total follows a meter."""
    meters: tuple[int, ...] | None = None
    """The components whose counters `last_reading_wh` sums (`None`: not told)."""
    last_sample_at: datetime | None = None
    """Time of the last fresh power sample (not persisted: a restart is a gap)."""
    last_power_w: float | None = None
    """The last fresh power sample, already reduced to this flow's direction."""
    bridged_wh: float = 0.0
    """Energy integrated from power since the last meter reading (persisted: the
    counter's rise over the gap includes it, so it must not be added twice)."""

    @property
    def follows_meter(self) -> bool:
        """Whether this total follows a component's energy counter."""
        return self.last_reading_wh is not None

    def add_meter_reading(
        self, reading_wh: float, meters: frozenset[int] | None = None
    ) -> None:
        """Follow the components' energy counter (the sum over `meters`).

        The first reading ever becomes the total (so it matches the device); after
        that only increases are added. A decrease re-bases on the new reading and adds
        nothing: a summed counter drops when one of its meters resets, so adding the
        new value (as for a single meter) would count the other meters twice. A
        reading over other `meters` than the last one re-bases too.

        Energy bridged from power while the counter was unknown is part of the
        counter's rise over that gap: only the rise beyond it is added, and
        what was bridged beyond the rise is taken off the next rises.
        """
        if not math.isfinite(reading_wh):
            return  # no reading: an infinite total could never be shown again
        self.last_sample_at = None
        self.last_power_w = None
        bridged, self.bridged_wh = self.bridged_wh, 0.0
        if meters is not None:
            known, self.meters = self.meters, tuple(sorted(meters))
            if known is not None and known != self.meters:
                self.last_reading_wh = reading_wh
                return
        if self.last_reading_wh is None:
            if self.total_wh is None:
                self.total_wh = reading_wh
        elif reading_wh >= self.last_reading_wh and self.total_wh is not None:
            rise = reading_wh - self.last_reading_wh
            self.total_wh += max(rise - bridged, 0.0)
            # Bridged beyond the rise so far (a counter lagging or stepping
            # coarsely): counted ahead, so the next rises pay it back first.
            self.bridged_wh = max(bridged - rise, 0.0)
        self.last_reading_wh = reading_wh

    def add_power_sample(self, at: datetime, power_w: float | None) -> None:
        """Integrate the flow's power (already in this counter's direction).

        `None` marks a gap: the next fresh sample starts a new segment instead of
        being joined to the last one, and so does a non-finite power. A total that
        follows a meter is given power only while its counter is unknown: the
        power bridges that gap (kept in `bridged_wh`, which the counter's rise
        over the gap is net of when it comes back).
        """
        if power_w is None or not math.isfinite(power_w):
            self.last_sample_at = None
            self.last_power_w = None
            return
        previous_at, previous_w = self.last_sample_at, self.last_power_w
        self.last_sample_at, self.last_power_w = at, power_w
        if previous_at is None or previous_w is None:
            return
        step = at - previous_at
        if step <= timedelta(0) or step > MAX_INTEGRATION_GAP:
            return
        energy_wh = (previous_w + power_w) / 2.0 * (step.total_seconds() / 3600.0)
        self.total_wh = (self.total_wh or 0.0) + energy_wh
        if self.follows_meter:
            self.bridged_wh += energy_wh

    def as_dict(self) -> dict[str, Any]:
        """Return what survives a restart (the total and the meter baseline)."""
        return {
            "total_wh": self.total_wh,
            "last_reading_wh": self.last_reading_wh,
            "meters": None if self.meters is None else list(self.meters),
            "bridged_wh": self.bridged_wh,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a total stored with `as_dict`, ignoring malformed values."""
        return cls(
            total_wh=_float_or_none(data.get("total_wh")),
            last_reading_wh=_float_or_none(data.get("last_reading_wh")),
            meters=_ids_or_none(data.get("meters")),
            bridged_wh=max(_float_or_none(data.get("bridged_wh")) or 0.0, 0.0),
        )


def _float_or_none(value: Any) -> float | None:
    """Return `value` as a float if it is a finite number, else `None`.

    A non-finite total stored by an older version would otherwise be restored
    into a sensor Home Assistant refuses to add, on every start.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _ids_or_none(value: Any) -> tuple[int, ...] | None:
    """Return stored component ids, or `None` if absent or malformed.

    Data from before the ids were stored has none: the next reading is then
    taken as over the same components (as it was before).
    """
    if not isinstance(value, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in value
    ):
        return None
    return tuple(sorted(value))
