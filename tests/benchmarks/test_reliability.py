"""The fault and soak benchmarks on tiny configurations, so they cannot rot.

Each runs the real thing (Home Assistant's core, the integration, the simulator
over gRPC) for a few faults or a few seconds, and its counters are checked to be
able to count: a planted error, overload or unsafe setpoint shows up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import logging
import re

from homeassistant.util import dt as dt_util
import pytest

from benchmarks import faults, soak
from custom_components.frequenz_microgrid.engine.energy import EnergyTotal
from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    load_scenario,
)

LINE = re.compile(
    r"faults fault=\w+ recovered_s=(\d+\.\d\d|timeout) unsafe_setpoints=\d+ "
    r"exceptions=\d+ lost_proposals=\d+ lingering_tasks=\d+"
)


def assert_recovered_cleanly(result: faults.CaseResult) -> None:
    """The case recovered in time, with every other counter at 0."""
    assert result.recovered_s is not None, result.details
    assert result.recovered_s <= faults.RECOVERY_TIMEOUT_S
    assert (
        result.unsafe_setpoints,
        result.exceptions,
        result.lost_proposals,
        result.lingering_tasks,
    ) == (0, 0, 0, 0), result.details


@pytest.fixture(autouse=True)
def restore_default_time_zone() -> Iterator[None]:
    """The benchmarks' Home Assistant sets its time zone process-wide; undo it."""
    yield
    dt_util.set_default_time_zone(dt_util.UTC)


@pytest.mark.slow
async def test_fault_benchmark_on_three_faults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = ["component_silent", "set_power_failed", "overlap_commands"]
    results = await faults.run(hold_s=2.5, only=names)

    assert [r.name for r in results] == names
    for result in results:
        assert_recovered_cleanly(result)
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if LINE.fullmatch(line)] == [
        r.line() for r in results
    ]
    assert lines[-1].startswith("faults summary cases=3 ")


@pytest.mark.slow
async def test_soak_benchmark_for_twenty_seconds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two simulated hours in 20 s: 360×, about the default soak's speed."""
    result = await soak.run(
        minutes=20 / 60,
        simulated_hours=2.0,
        fault_every_s=4.0,
        fault_hold_s=1.5,
        warm_up_s=3.0,
        settle_s=3.0,
    )
    assert result["sim_hours"] == pytest.approx(2.0, rel=0.1)
    assert result["faults"] >= 2
    assert result["proposals"] >= 3 * 15
    assert (
        result["unsafe_setpoints"],
        result["overloaded_fuses"],
        result["exceptions"],
        result["lingering_tasks"],
    ) == (0, 0, 0, 0)
    assert result["grpc_calls_start"] > 0, "the telemetry streams are open calls"
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == soak.summary(result)
    assert sum(line.startswith("soak sample ") for line in lines) >= 2
    assert sum(line.startswith("soak stalls longest_ms=") for line in lines) == 1


def test_errors_of_the_integration_are_counted() -> None:
    with faults.counting_errors() as counter:
        logging.getLogger("custom_components.frequenz_microgrid.engine").error("x")
        logging.getLogger("custom_components.frequenz_microgrid.simulator").error("y")
        logging.getLogger("homeassistant.core").error("unrelated")
        try:
            EnergyTotal.from_dict(None)  # type: ignore[arg-type]
        except AttributeError:  # raised in the integration's code
            logging.getLogger("asyncio").exception("through our code")
    assert [r.getMessage() for r in counter.records] == ["x", "through our code"]


async def test_unsafe_setpoints_and_overloads_are_counted() -> None:
    sim = MicrogridSimulator(load_scenario("home"))
    site = faults.Site(
        hass=None,  # type: ignore[arg-type]
        entry=None,  # type: ignore[arg-type]
        sim=sim,
        hold_s=0.0,
        layout=faults.LAYOUTS["home"],
    )
    before = site.unsafe()
    sim.control.unsafe_setpoint_count += 1
    grid = next(iter(sim.model.overloads.values()))
    grid.ampere_seconds += 0.5
    assert faults.unsafe_since(before, site) == 2


async def test_simulator_tasks_are_told_apart() -> None:
    sim = MicrogridSimulator(load_scenario("home"))
    await sim.start()
    try:
        ticker = next(t for t in asyncio.all_tasks() if t.get_name() == "sim-ticker")
        assert faults.is_simulator_task(ticker)
        own = asyncio.current_task()
        assert own is not None
        assert not faults.is_simulator_task(own)
    finally:
        await sim.stop()


FUSES = re.compile(r"component=(\d+) peak_a=([\d.]+) rating_a=([\d.]+) ")


@pytest.mark.slow
async def test_fault_benchmark_on_the_depot_sums_its_pools(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Pools of several inverters recover to setpoints adding up to their targets.

    The depot's cars charge meanwhile: the fuse line shows what they drew.
    """
    results = await faults.run(hold_s=2.5, only=["error_state"], scenario="depot")

    (result,) = results
    assert_recovered_cleanly(result)
    lines = capsys.readouterr().out.splitlines()
    (fuse_line,) = [line for line in lines if line.startswith("faults fuses ")]
    peaks = {
        int(meter): (float(peak), float(rating))
        for meter, peak, rating in FUSES.findall(fuse_line)
    }
    grid_peak, grid_rating = peaks[1]
    assert 0.0 < grid_peak <= grid_rating == 250.0
