"""Solar charging: share the PV surplus among the solar-mode chargers, without flapping.

The surplus is the power the site would export if the solar-mode EVs drew
nothing: ``−grid + what the solar-mode EVs draw now``, less whatever the home
battery discharges (battery power must never count as sun), so
``surplus = −grid + solar EV draw + min(0, battery)``. What fast- and boost-mode
EVs draw is part of the site's other consumption. A battery that *charges* keeps
its share of the sun: the surplus counts only what reaches the grid.

Which chargers charge (`SolarSharing.shares`), in a fixed order — those already
charging, then the one that has waited longest:

- a waiting charger starts once the surplus left over by the ones before it has
  covered its minimum power for `start_delay_s` without a break;
- a charging one stops once that surplus has stayed below its minimum for
  `stop_delay_s`; until then it keeps its minimum (the only grid power solar
  mode ever draws, besides the minimum-current option);
- a charger with the *minimum-current option* always charges, at least at its
  minimum, even without any surplus.

The chargers that charge share the surplus max-min fairly (each between its
minimum and maximum power), so together they never get more than the surplus
unless their minimums alone exceed it. A switch needs a whole delay of the
surplus on one side, so a noisy surplus never switches a charger more than once
per delay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
import math

from .site import SiteFlows

DEFAULT_START_DELAY_S = 60.0
"""Surplus must cover the minimum this long before a solar charger starts."""
DEFAULT_STOP_DELAY_S = 180.0
"""Surplus must stay short this long before a charging solar charger stops."""
MAX_DELAY_S = 3600.0
"""The longest start or stop delay (an hour)."""

_EPSILON = 1e-6


def solar_surplus_w(site: SiteFlows | None, solar_draw_w: float) -> float:
    """PV power the solar-mode EVs may use (W, ≥ 0; 0 when the grid is unknown)."""
    if site is None or not _known(site.grid_power_w):
        return 0.0
    surplus = -float(site.grid_power_w or 0.0) + max(0.0, solar_draw_w)
    if _known(site.battery_power_w):
        surplus += min(0.0, float(site.battery_power_w or 0.0))
    return max(0.0, surplus)


@dataclass(frozen=True, slots=True)
class SolarCharger:
    """One solar-mode charger with an EV that may charge."""

    component_id: int
    min_power_w: float
    """Power the EV draws at its minimum current (> 0)."""
    max_power_w: float
    min_current_option: bool = False
    """Charge at least at the minimum, surplus or not."""


@dataclass(slots=True)
class _Gate:
    """One charger's on/off state and the timers of its hysteresis."""

    on: bool
    since: float
    """When it switched on, or started waiting."""
    enough_since: float | None = None
    """While off: since when the surplus has covered its minimum."""
    short_since: float | None = None
    """While on: since when the surplus has been short of its minimum."""


class SolarSharing:
    """Decides, round after round, which solar chargers charge and with how much."""

    def __init__(
        self,
        *,
        start_delay_s: float = DEFAULT_START_DELAY_S,
        stop_delay_s: float = DEFAULT_STOP_DELAY_S,
    ) -> None:
        """Share with these delays (seconds, 0 … `MAX_DELAY_S`)."""
        self.start_delay_s = check_delay(start_delay_s)
        self.stop_delay_s = check_delay(stop_delay_s)
        self._gates: dict[int, _Gate] = {}

    def is_on(self, component_id: int) -> bool:
        """Whether the charger is in its charging state (for diagnostics)."""
        gate = self._gates.get(component_id)
        return gate is not None and gate.on

    def shares(
        self, chargers: Sequence[SolarCharger], surplus_w: float, now: float
    ) -> dict[int, float]:
        """Return each charger's power (W): 0 = hold off, else ≥ its minimum.

        Chargers not passed (unplugged, not in solar mode any more) are forgotten:
        they start over with the start delay when they come back.
        """
        surplus = surplus_w if surplus_w > 0.0 else 0.0  # also maps NaN to 0
        present = {c.component_id for c in chargers}
        for component_id in list(self._gates):
            if component_id not in present:
                del self._gates[component_id]
        for charger in chargers:
            self._gates.setdefault(charger.component_id, _Gate(on=False, since=now))
        remaining = surplus
        charging: list[SolarCharger] = []
        for charger in sorted(chargers, key=self._turn):
            gate = self._gates[charger.component_id]
            enough = remaining >= charger.min_power_w - _EPSILON
            if gate.on:
                self._keep_or_stop(gate, enough=enough, now=now)
            else:
                self._wait_or_start(gate, enough=enough, now=now)
            if charger.min_current_option and not gate.on:
                gate.on, gate.since = True, now
                gate.enough_since = gate.short_since = None
            if gate.on or gate.enough_since is not None:
                remaining -= charger.min_power_w  # reserved while its timer runs
            if gate.on:
                charging.append(charger)
        powers = dict.fromkeys((c.component_id for c in chargers), 0.0)
        powers.update(fair_split(charging, surplus))
        return powers

    def _turn(self, charger: SolarCharger) -> tuple[bool, float, int]:
        gate = self._gates[charger.component_id]
        return (not gate.on, gate.since, charger.component_id)

    def _keep_or_stop(self, gate: _Gate, *, enough: bool, now: float) -> None:
        if enough:
            gate.short_since = None
            return
        if gate.short_since is None:
            gate.short_since = now
        if now - gate.short_since >= self.stop_delay_s:
            gate.on, gate.since, gate.short_since = False, now, None

    def _wait_or_start(self, gate: _Gate, *, enough: bool, now: float) -> None:
        if not enough:
            gate.enough_since = None
            return
        if gate.enough_since is None:
            gate.enough_since = now
        if now - gate.enough_since >= self.start_delay_s:
            gate.on, gate.since, gate.enough_since = True, now, None


def check_delay(delay_s: float) -> float:
    """Return `delay_s` if it is a valid start or stop delay, else raise."""
    if not 0.0 <= delay_s <= MAX_DELAY_S:  # also refuses NaN
        raise ValueError(f"a solar delay lasts 0 … {MAX_DELAY_S:g} s, not {delay_s!r}")
    return delay_s


def fair_split(
    chargers: Sequence[SolarCharger], budget_w: float
) -> Mapping[int, float]:
    """Max-min fair powers ``clamp(level, min, max)`` adding up to the budget.

    Every charger gets at least its minimum (so the sum exceeds the budget only
    when the minimums alone do); the common level is found by bisection, which
    is exact to far below a watt in 60 steps.
    """
    if not chargers:
        return {}

    def total(level: float) -> float:
        return math.fsum(_clamp(level, c.min_power_w, c.max_power_w) for c in chargers)

    low, high = 0.0, max(c.max_power_w for c in chargers)
    if total(high) <= budget_w:
        low = high
    else:
        for _ in range(60):
            middle = (low + high) / 2.0
            if total(middle) <= budget_w:
                low = middle
            else:
                high = middle
    return {c.component_id: _clamp(low, c.min_power_w, c.max_power_w) for c in chargers}


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
