"""The charging-hub benchmark on a tiny hub, so it cannot rot (and its judge works).

Six chargers behind two 40 A feeders, twelve sessions over a day, a limit
stepping between 40 kW and 12 kW: both feeders and the site limit bind.
"""

from __future__ import annotations

import pytest

from benchmarks.charging_hub import (
    AllocationStep,
    DayResult,
    TickInputs,
    main,
    run_day,
)
from custom_components.frequenz_microgrid.engine.control.inputs import CHARGER_PHASES
from custom_components.frequenz_microgrid.engine.hub.circuits import CircuitTree
from custom_components.frequenz_microgrid.simulator.hub_scenario import HubRatings

TINY = {
    "chargers": 6,
    "circuits": 2,
    "sessions": 12,
    "tick_s": 30.0,
    "seed": 2,
    "steps": (
        (0.0, 40_000.0),
        (7 * 3600.0, 12_000.0),
        (10 * 3600.0, 30_000.0),
        (16 * 3600.0, 12_000.0),
        (19 * 3600.0, 40_000.0),
    ),
    "ratings": HubRatings(circuit_fuse_a=40, building_load_w=2_000.0, pv_peak_w=0.0),
}


def run(allocator: str) -> DayResult:
    return run_day(allocator, **TINY)  # type: ignore[arg-type]


def test_the_fair_allocator_holds_every_limit_on_a_tiny_hub() -> None:
    result = run("fair")
    assert result.sessions == 12
    assert result.violations == 0
    assert result.phase_overloads == 0
    assert result.delivered_wh > 50_000.0
    assert len(result.tick_ms) == 86_400 / 30
    line = result.line()
    assert line.startswith("charging_hub allocator=fair chargers=6 sessions=12 ")
    assert "violations_beyond_tolerance=0 phase_overloads=0 " in line


def test_the_greedy_split_runs_the_same_day() -> None:
    fair, greedy = run("fair"), run("greedy")
    assert greedy.sessions == fair.sessions
    assert greedy.phase_overloads == 0  # it counts every EV on the busiest phase
    assert greedy.line().startswith("charging_hub allocator=greedy chargers=6 ")


def test_the_benchmark_sees_an_allocation_that_ignores_the_limits() -> None:
    """Every EV at its maximum: the feeders and the site limit are exceeded."""

    def reckless(_tree: CircuitTree) -> AllocationStep:
        def step(tick: TickInputs) -> dict[int, float]:
            return {
                cid: charger.max_current_a * CHARGER_PHASES * 230.0
                if charger.ev_connected
                else 0.0
                for cid, charger in tick.chargers.items()
            }

        return step

    result = run_day("reckless", step=reckless, **TINY)  # type: ignore[arg-type]
    assert result.phase_overloads > 0
    assert result.violations > 0
    assert result.limit_energy_wh > 0.0


def test_the_command_line_prints_one_line_per_allocator(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "sys.argv",
        [
            "charging_hub",
            "--chargers",
            "3",
            "--circuits",
            "1",
            "--sessions",
            "3",
            "--tick-s",
            "600",
        ],
    )
    main()
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in out] == ["allocator=fair", "allocator=greedy"]
    assert all("sessions=3 " in line and "tick_ms_p99=" in line for line in out)
