"""The cluster report: datafev's `export_results_to_excel`, from live sessions.

For a period `[start, end)` cut into steps, per charger:

* **consumption** (datafev's `analyze_consumption_profile`, sheet
  `UnitConsumption`): the average power (kW) each step, from the sessions'
  energy profiles (a profile slot's energy is spread evenly over the slot, so a
  step shorter than a slot, or not aligned with one, gets its share);
* **occupation** (`analyze_occupation_profile`, sheet `UnitOccupation`): the share
  of each step (0–1) an EV was plugged in; datafev samples 0 or 1 at each step's
  start, a share is the same for whole steps and exact for the others;
* the **session table** (sheet `ClusterDataset`): every session overlapping the
  period;
* the **totals** (sheet `Overall`): net consumption (the consumption profile's
  energy, as datafev computes it), the energy per source (solar / battery / grid)
  within the period, sessions, occupied charger-hours and utilisation.
  datafev's "unfulfilled G2V" and "unscheduled V2G" need targets and schedules,
  which come with deadline charging (a later issue).

Requests are checked before any work (`ReportRequestError` names what is wrong,
for a translated message).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import math
from typing import Any, Final

from .occupancy import occupied_time, utilisation
from .sessions import ChargingSession

MAX_REPORT_STEPS: Final = 10_000
"""Most steps a report may have (a week at one minute, a year at one hour)."""

MAX_REPORT_CELLS: Final = 2_000_000
"""Most profile values (steps × chargers) a report may have."""


class ReportRequestError(ValueError):
    """A report request that cannot be answered; `key` names the reason."""

    def __init__(self, key: str, **placeholders: str) -> None:
        """Keep the reason's key and the values its message names."""
        super().__init__(f"{key}: {placeholders}")
        self.key = key
        self.placeholders = placeholders


def check_period(
    start: datetime, end: datetime, step: timedelta, charger_count: int
) -> int:
    """Return the number of steps of a valid request, else raise.

    `start` and `end` are timezone-aware (the actions' schema makes every time
    UTC, `action_fields.utc_datetime`). Refused: a start not before the end, a
    step that is not a positive finite duration, more than `MAX_REPORT_STEPS`
    steps or `MAX_REPORT_CELLS` values.
    """
    if start >= end:
        raise ReportRequestError(
            "report_empty_period", start=start.isoformat(), end=end.isoformat()
        )
    step_s = step.total_seconds()
    if not math.isfinite(step_s) or step_s <= 0:
        raise ReportRequestError("report_invalid_step", step=str(step_s))
    steps = math.ceil((end - start) / step)
    if steps > MAX_REPORT_STEPS or steps * max(charger_count, 1) > MAX_REPORT_CELLS:
        raise ReportRequestError(
            "report_too_many_rows", rows=str(steps), limit=str(MAX_REPORT_STEPS)
        )
    return steps


@dataclass(slots=True)
class ClusterReport:
    """Profiles, sessions and totals of one period (see the module doc)."""

    start: datetime
    end: datetime
    step: timedelta
    charger_ids: tuple[int, ...]
    times: list[datetime]
    consumption_kw: dict[int, list[float]]
    occupation: dict[int, list[float]]
    sessions: list[dict[str, Any]]
    totals: dict[str, float | int | None] = field(default_factory=dict)

    def total_row(self, profile: dict[int, list[float]]) -> list[float]:
        """The sum over chargers of a profile, per step (datafev's `Total`)."""
        return [
            sum(values[index] for values in profile.values())
            for index in range(len(self.times))
        ]

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready response (charger ids as strings)."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "step_s": self.step.total_seconds(),
            "chargers": list(self.charger_ids),
            "times": [time.isoformat() for time in self.times],
            "consumption_kw": {
                **{str(cid): _rounded(v) for cid, v in self.consumption_kw.items()},
                "total": _rounded(self.total_row(self.consumption_kw)),
            },
            "occupation": {
                **{str(cid): _rounded(v) for cid, v in self.occupation.items()},
                "total": _rounded(self.total_row(self.occupation)),
            },
            "sessions": self.sessions,
            "totals": self.totals,
        }


def build_cluster_report(
    sessions: Iterable[ChargingSession],
    charger_ids: Sequence[int],
    start: datetime,
    end: datetime,
    step: timedelta,
    now: datetime,
) -> ClusterReport:
    """Build the report of `[start, end)` in steps of `step` (checked first)."""
    steps = check_period(start, end, step, len(charger_ids))
    times = [start + index * step for index in range(steps)]
    step_ends = [min(time + step, end) for time in times]
    energy_wh = {cid: [0.0] * steps for cid in charger_ids}
    occupation = {cid: [0.0] * steps for cid in charger_ids}
    solar_wh = battery_wh = total_wh = 0.0
    occupied = timedelta(0)
    table: list[dict[str, Any]] = []
    overlapping = [s for s in sessions if s.overlaps(start, end, now)]
    for session in overlapping:
        table.append(session.record(now))
        occupied += occupied_time(session, start, end, now)
        # A charger gone from the microgrid has no profile; its energy still counts.
        charger_energy = energy_wh.get(session.charger_id, [0.0] * steps)
        if (charger_occupation := occupation.get(session.charger_id)) is not None:
            for index in _step_range(
                session.started_at, session.end_or(now), start, step, steps
            ):
                share = occupied_time(session, times[index], step_ends[index], now)
                charger_occupation[index] += share / (step_ends[index] - times[index])
        slot_length = timedelta(seconds=session.profile_slot_s)
        session_end = session.end_or(now)
        for slot_start_s, slot in session.profile.items():
            slot_start = datetime.fromtimestamp(slot_start_s, start.tzinfo)
            # The slot's energy flowed while the car was there: spread it over
            # that part of the slot only (a report of whole sessions adds up).
            first = max(slot_start, session.started_at)
            last = min(slot_start + slot_length, session_end)
            if last <= first:
                first, last = slot_start, slot_start + slot_length
            length = last - first
            for index in _step_range(first, last, start, step, steps):
                overlap = min(last, step_ends[index]) - max(first, times[index])
                if overlap <= timedelta(0):
                    continue
                fraction = overlap / length
                charger_energy[index] += slot.energy_wh * fraction
                total_wh += slot.energy_wh * fraction
                solar_wh += slot.solar_wh * fraction
                battery_wh += slot.battery_wh * fraction
    consumption_kw = {
        cid: [
            wh / 1000.0 / ((step_ends[i] - times[i]) / timedelta(hours=1))
            for i, wh in enumerate(values)
        ]
        for cid, values in energy_wh.items()
    }
    utilised = utilisation(overlapping, len(charger_ids), start, min(end, now))
    report = ClusterReport(
        start=start,
        end=end,
        step=step,
        charger_ids=tuple(charger_ids),
        times=times,
        consumption_kw=consumption_kw,
        occupation={cid: [min(v, 1.0) for v in vs] for cid, vs in occupation.items()},
        sessions=table,
    )
    report.totals = {
        "net_consumption_kwh": round(total_wh / 1000.0, 6),
        "solar_kwh": round(solar_wh / 1000.0, 6),
        "battery_kwh": round(battery_wh / 1000.0, 6),
        "grid_kwh": round(max(total_wh - solar_wh - battery_wh, 0.0) / 1000.0, 6),
        "sessions": len(table),
        "occupied_hours": round(occupied / timedelta(hours=1), 6),
        "utilisation": None if utilised is None else round(utilised, 6),
    }
    return report


def _step_range(
    begin: datetime, finish: datetime, start: datetime, step: timedelta, steps: int
) -> range:
    """The indices of the steps that `[begin, finish)` may overlap."""
    first = max(math.floor((begin - start) / step), 0)
    last = min(math.ceil((finish - start) / step), steps)
    return range(first, max(last, first))


def _rounded(values: list[float]) -> list[float]:
    return [round(value, 6) for value in values]
