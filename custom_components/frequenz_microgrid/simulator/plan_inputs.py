"""What a scenario tells the charging planner: bookings and price/PV forecasts.

Three optional tables of a scenario file (issue 16 §4):

- ``bookings``: reservations to put in an empty book when a demo starts, each
  ``{"charger": 31, "start_s": 1800, "end_s": 12600, "energy_kwh": 40,
  "vehicle": "Van 7"}`` — times in seconds after the simulator starts, like
  ``ev_arrivals``.
- ``price_forecast``: a day of prices per kWh from 00:00 of the simulated time of
  day, repeating every day: ``{"step_s": 3600, "values": [0.21, …]}`` (24 values
  for hourly prices, 96 for quarter hours). ``"currency"`` is informational.
- ``pv_forecast``: the same form in W, or ``"model"``: the simulator's own PV
  curve (every PV inverter's peak × the daylight factor), a perfect forecast.

`simulator_series` turns a running simulator's series into the planner's
`TimeSeries` in wall-clock time: the simulated clock runs at its speed from the
moment it started, so the price of simulated 18:00 applies at the wall-clock
moment the simulation reaches 18:00.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import math
from typing import TYPE_CHECKING, Any

from ..engine.hub.forecast import ForecastPoint, TimeSeries
from .physics.inverter import daylight_factor

if TYPE_CHECKING:
    from .scenario import Scenario
    from .server import MicrogridSimulator

DAY_S = 86400.0
HORIZON_S = 2 * DAY_S
"""How far ahead the simulator's forecast reaches (wall-clock seconds)."""
MODEL = "model"


@dataclass(frozen=True, slots=True)
class ScenarioBooking:
    """A booking a demo starts with (times: seconds after the simulator starts)."""

    charger_id: int
    start_s: float
    end_s: float
    energy_kwh: float | None = None
    vehicle: str | None = None


@dataclass(frozen=True, slots=True)
class DailySeries:
    """A value per `step_s` from 00:00 simulated time of day, every day the same."""

    step_s: float
    values: tuple[float, ...]

    def at(self, time_of_day_s: float) -> float:
        """The value in force at a time of day (s since midnight)."""
        index = int((time_of_day_s % DAY_S) // self.step_s) % len(self.values)
        return self.values[index]


@dataclass(frozen=True, slots=True)
class PlanInputs:
    """A scenario's bookings and forecasts (all optional)."""

    bookings: tuple[ScenarioBooking, ...] = ()
    price_per_kwh: DailySeries | None = None
    currency: str | None = None
    pv_w: DailySeries | None = None
    pv_from_model: bool = False


def plan_inputs_from_dict(data: Mapping[str, Any]) -> PlanInputs:
    """The ``bookings``, ``price_forecast`` and ``pv_forecast`` tables of a file.

    Raises:
        ValueError, KeyError, TypeError: a table that is not of its form.
    """
    bookings = tuple(
        ScenarioBooking(
            charger_id=int(row["charger"]),
            start_s=float(row["start_s"]),
            end_s=float(row["end_s"]),
            energy_kwh=None
            if row.get("energy_kwh") is None
            else float(row["energy_kwh"]),
            vehicle=None if row.get("vehicle") is None else str(row["vehicle"]),
        )
        for row in data.get("bookings", [])
    )
    for booking in bookings:
        if not booking.end_s > booking.start_s >= 0.0:
            raise ValueError(f"booking at {booking.charger_id}: 0 ≤ start < end")
    price = data.get("price_forecast")
    pv = data.get("pv_forecast")
    return PlanInputs(
        bookings=bookings,
        price_per_kwh=None if price is None else _daily(price),
        currency=None if price is None else price.get("currency"),
        pv_w=None if pv is None or pv == MODEL else _daily(pv),
        pv_from_model=pv == MODEL,
    )


def _daily(row: Mapping[str, Any]) -> DailySeries:
    step_s = float(row["step_s"])
    values = tuple(float(v) for v in row["values"])
    if not (math.isfinite(step_s) and step_s > 0.0) or not values:
        raise ValueError("a forecast needs a step above 0 s and values")
    if not all(map(math.isfinite, values)):
        raise ValueError("forecast values must be finite")
    return DailySeries(step_s, values)


def model_pv_w(scenario: Scenario, time_of_day_s: float) -> float:
    """The scenario's PV production at a time of day (W, positive), uncurtailed."""
    return sum(
        spec.pv_peak_w * daylight_factor(time_of_day_s)
        for spec in scenario.components
        if spec.pv_peak_w > 0.0
    )


def simulator_series(
    simulator: MicrogridSimulator,
    *,
    pv: bool,
    now: float,
    horizon_s: float = HORIZON_S,
    step_s: float = 900.0,
) -> TimeSeries:
    """The scenario's price (`pv`: PV) forecast from `now` (wall clock) on.

    Empty when the scenario has none. Steps of `step_s` wall-clock seconds,
    each with the value in force at the simulated time it starts.
    """
    scenario = simulator.scenario
    inputs = scenario.plan_inputs
    series = inputs.pv_w if pv else inputs.price_per_kwh
    if series is None and not (pv and inputs.pv_from_model):
        return TimeSeries()
    speed = simulator.clock.speed
    sim_now = simulator.clock.now()
    first = math.floor(now / step_s) * step_s
    points: list[ForecastPoint] = []
    for index in range(math.ceil(horizon_s / step_s)):
        start = first + index * step_s
        sim_at = sim_now + (start - now) * speed
        time_of_day = (scenario.start_time_of_day_s + sim_at) % DAY_S
        value = (
            series.at(time_of_day)
            if series is not None
            else model_pv_w(scenario, time_of_day)
        )
        points.append(ForecastPoint(start, start + step_s, value))
    return TimeSeries.of(points)
