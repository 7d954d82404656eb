"""`benchmarks.charging_plan` runs end to end on a small depot and reports honestly."""

from __future__ import annotations

from benchmarks.charging_plan import WeekResult, line, run


def test_the_week_runs_on_a_small_depot_within_the_limits() -> None:
    results = run(chargers=12, sessions=60, seed=3)
    planned, fair, greedy = (results[k] for k in ("planned", "fair", "greedy"))
    assert isinstance(planned, WeekResult)
    assert isinstance(fair, WeekResult)
    assert isinstance(greedy, WeekResult)
    assert planned.sessions == fair.sessions == greedy.sessions > 0
    assert planned.limit_ticks == 0
    assert planned.replan_ms, "the planned hub re-plans at plug-ins"
    assert planned.delivered_wh > 0
    text = line(results, 12)
    assert text.startswith("charging_plan chargers=12 sessions=")
    for field in (
        "unmet_kwh=",
        "unmet_kwh_fair=",
        "unmet_kwh_greedy=",
        "cost=",
        "cost_fair=",
        "replan_ms_p99=",
        "bookings_per_s=",
    ):
        assert f" {field}" in text
