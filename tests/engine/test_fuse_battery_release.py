"""A discharge the EV chargers counted on ends: the chargers are lowered first.

`generated:10` behind a 25 A grid fuse: the battery discharges 4.77 kW, which
frees the room for a newly plugged car's 17.25 kW. The simulated cable takes
about 2 s to lock before the car draws. Found by a probe: when the discharge
was withdrawn (or turned into a 12.7 kW charge) in that window, the charger kept
its grant — the grid showed it drawing nothing, so the battery's room counted it
at 0 A — and the grid reached 31.4 A (40.8 A) once the car drew, until a tick
lowered it. Now the withdrawal's own round lowers the chargers before the
battery's setpoint goes out, and the battery's room counts what a charger was
granted beyond what it draws (`GridFuse.granted_a`).

Against the simulator over real gRPC; the bench fails on any overload. The
controller ticks only when the test says so: nothing but the proposal's own
round may lower the chargers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from frequenz.client.microgrid.metrics import Metric
import pytest

from custom_components.frequenz_microgrid.engine.control import Pool
from custom_components.frequenz_microgrid.engine.control.ev_pool import EvPoolSteering
from custom_components.frequenz_microgrid.engine.control.grid_fuse import GridFuse
from custom_components.frequenz_microgrid.engine.control.inputs import FormulaCurrents
from custom_components.frequenz_microgrid.engine.power_manager import Proposal
from custom_components.frequenz_microgrid.engine.telemetry import TelemetryStore
from custom_components.frequenz_microgrid.simulator import EvSpec, generate_scenario
from custom_components.frequenz_microgrid.simulator.scenario import Kind, Scenario
from tests.engine.test_control_bench import Bench, control_bench
from tests.observations import held_setpoint, record

FUSE_A = 25
GRID = 1
GRID_METER = 2
CHARGER = 10
BATTERY_INVERTERS = (3, 7)
CURRENTS = (
    Metric.AC_CURRENT_PHASE_1,
    Metric.AC_CURRENT_PHASE_2,
    Metric.AC_CURRENT_PHASE_3,
)


def generated_behind(fuse_a: int) -> Scenario:
    """`generated:10` behind a grid fuse of `fuse_a`."""
    scenario = generate_scenario(10)
    return dataclasses.replace(
        scenario,
        components=tuple(
            dataclasses.replace(c, fuse_current_a=fuse_a) if c.kind is Kind.GRID else c
            for c in scenario.components
        ),
    )


async def granted_while_the_cable_locks(bench: Bench) -> float:
    """Discharge 4.77 kW, plug a 3-phase car and tick until it is granted power.

    Returns the car's grant (W); the car does not draw yet (its cable locks).
    """
    controller = bench.controller
    await controller.propose(
        Pool.BATTERIES, source_id="automation.discharge", priority=10, power=-4_770.0
    )
    for _ in range(8):
        await asyncio.sleep(0.1)
        await controller.tick()
    bench.sim.plug_ev(CHARGER, EvSpec(phases=3, max_current_a=32.0, soc_pct=20))
    for _ in range(15):
        await asyncio.sleep(0.1)
        await controller.tick()
        granted = held_setpoint(bench.sim, CHARGER) or 0.0
        if granted > 0.0:
            return granted
    raise AssertionError("the car was never granted power")


def grid_peak_now(bench: Bench) -> float:
    """The busiest line's current now (A)."""
    return max(abs(a) for a in bench.sim.model.component(GRID_METER).phases.currents())


async def watch(bench: Bench, seconds: float) -> float:
    """The grid's busiest line over `seconds` (A), without any tick."""
    peak = 0.0
    for _ in range(round(seconds / 0.05)):
        await asyncio.sleep(0.05)
        peak = max(peak, grid_peak_now(bench))
    return peak


async def test_a_withdrawn_discharge_lowers_the_charger_it_made_room_for() -> None:
    """The withdrawal lowers the car's grant before the battery stops feeding in."""
    async with control_bench(generated_behind(FUSE_A), ticking=False) as bench:
        granted = await granted_while_the_cable_locks(bench)
        assert granted > 15_000.0  # the discharge's room is in it
        await bench.controller.withdraw(
            Pool.BATTERIES, source_id="automation.discharge"
        )
        assert (held_setpoint(bench.sim, CHARGER) or 0.0) < granted
        assert await watch(bench, 3.0) <= FUSE_A + 0.01
        assert bench.sim.overloads[GRID].peak_a <= FUSE_A + 0.01


async def test_stopping_lowers_the_charger_before_the_batteries_go_to_zero() -> None:
    """Unload, reload or a restart ends the discharge too: the car yields first.

    Stopping sends the batteries 0 W at once while the chargers' setpoints stand
    until they lapse; the grid reached 31.4 A on the 25 A fuse (review).
    """
    async with control_bench(generated_behind(FUSE_A), ticking=False) as bench:
        granted = await granted_while_the_cable_locks(bench)
        await bench.controller.stop()
        assert (held_setpoint(bench.sim, CHARGER) or 0.0) < granted
        assert await watch(bench, 2.5) <= FUSE_A + 0.01
        assert bench.sim.overloads[GRID].peak_a <= FUSE_A + 0.01


async def test_a_discharge_turned_into_a_charge_waits_for_the_charger() -> None:
    """The charge takes only what the car's lowered grant leaves, at once."""
    async with control_bench(generated_behind(FUSE_A), ticking=False) as bench:
        granted = await granted_while_the_cable_locks(bench)
        await bench.controller.propose(
            Pool.BATTERIES,
            source_id="automation.discharge",
            priority=10,
            power=12_696.0,
        )
        assert (held_setpoint(bench.sim, CHARGER) or 0.0) < granted
        assert await watch(bench, 3.0) <= FUSE_A + 0.01
        assert bench.sim.overloads[GRID].peak_a <= FUSE_A + 0.01


async def test_a_charger_granted_more_than_it_draws_narrows_the_import_room() -> None:
    """The room counts a charger at its grant where it draws less (unit level)."""
    async with control_bench(generated_behind(FUSE_A), ticking=False) as bench:
        store = TelemetryStore()
        fuse = GridFuse(
            FormulaCurrents(f"#{GRID_METER}", store),
            store,
            bench.topology,
            voltage_v=230.0,
            standing=dict,
        )
        for metric in CURRENTS:
            record(store, GRID_METER, metric, 5.0)
            record(store, CHARGER, metric, 2.0)
        for inverter in BATTERY_INVERTERS:
            record(store, inverter, Metric.AC_POWER_ACTIVE, 0.0)
        free = fuse.room(BATTERY_INVERTERS)
        assert free is not None
        fuse.granted_a = lambda: {CHARGER: (16.0, 16.0, 16.0)}
        narrowed = fuse.room(BATTERY_INVERTERS)
        assert narrowed is not None
        # 14 A a line more may flow through the charger; the inverters' lines
        # are not known yet, so a watt of theirs may be on any one: 14 A × 230 V.
        assert free.highest_w - narrowed.highest_w == pytest.approx(14.0 * 230.0)
        assert narrowed.lowest_w == free.lowest_w  # the export is not affected
        fuse.granted_a = lambda: {CHARGER: (1.0, 1.0, 1.0)}
        lowered = fuse.room(BATTERY_INVERTERS)
        assert lowered is not None
        assert lowered.highest_w == pytest.approx(free.highest_w)


async def test_a_deeper_discharge_does_not_wait_for_a_slow_charger_round() -> None:
    """A battery round that adds no import does not queue behind the chargers.

    With 1,250 chargers (or a slow microgrid) a charger round takes long; a
    battery proposal waited a whole one although it had nothing to lower (review).
    """
    async with control_bench(generated_behind(FUSE_A), ticking=False) as bench:
        controller = bench.controller
        await granted_while_the_cable_locks(bench)
        ev_pool = controller._pools[Pool.EV_CHARGERS]
        assert isinstance(ev_pool, EvPoolSteering)
        send = ev_pool._send_plans
        sending = asyncio.Event()

        async def slow_send(*args: Any, **kwargs: Any) -> Any:
            sending.set()
            await asyncio.sleep(1.0)
            return await send(*args, **kwargs)

        ev_pool._send_plans = slow_send  # type: ignore[method-assign]
        ev_round = asyncio.create_task(
            controller.propose(
                Pool.EV_CHARGERS, source_id="automation.ev", priority=5, power=10_000.0
            )
        )
        await sending.wait()
        started = time.monotonic()
        await controller.propose(
            Pool.BATTERIES,
            source_id="automation.discharge",
            priority=10,
            power=-6_000.0,
        )
        took = time.monotonic() - started
        await ev_round
        assert took < 0.5, f"the battery proposal waited {took:.2f} s"


async def test_a_shrinking_discharge_allocates_the_chargers_once_a_tick() -> None:
    """Peak shaving moves the battery target every tick: one charger round each."""
    async with control_bench(generated_behind(FUSE_A), ticking=False) as bench:
        controller = bench.controller
        await granted_while_the_cable_locks(bench)
        ev_pool = controller._pools[Pool.EV_CHARGERS]
        batteries = controller._pools[Pool.BATTERIES]
        steer = ev_pool.steer
        rounds = 0

        async def counting(*args: Any, **kwargs: Any) -> Any:
            nonlocal rounds
            rounds += 1
            return await steer(*args, **kwargs)

        ev_pool.steer = counting  # type: ignore[method-assign]
        per_tick = []
        for step in range(1, 6):
            batteries.manager.propose(
                Proposal(
                    source_id="automation.discharge",
                    priority=10,
                    power=-4_770.0 + 150.0 * step,
                    component_ids=batteries.component_ids,
                    creation_time=controller._clock(),
                    keep_alive=True,
                )
            )
            rounds = 0
            await controller.tick()
            per_tick.append(rounds)
        assert max(per_tick) == 1, per_tick
