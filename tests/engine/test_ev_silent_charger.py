"""A silent EV charger: left in the fuse meter's reading, its setpoint reserved.

A charger that sends no current still draws through the fuse meter, so it is
not subtracted from the meter (NaN there used to make every phase look taken
and stop every charger); what its last setpoint allows is reserved on top, as
it may draw that before anything shows it.
"""

from __future__ import annotations

import asyncio
import math

import pytest

from custom_components.frequenz_microgrid.engine.distribution.ev_chargers import (
    EvAllocatorConfig,
    EvChargerAllocator,
    EvChargerInput,
)
from custom_components.frequenz_microgrid.engine.distribution.ev_fuse import (
    PlannedSetpoint,
    SentSetpoint,
    TimedCurrents,
    committed_beside_meter,
    current_at_fuse_sample,
    hold_back_raises,
    other_loads,
)
from custom_components.frequenz_microgrid.simulator import (
    EvSpec,
    Fault,
    MicrogridSimulator,
)
from tests.engine.test_control_bench import control_bench

NAN3 = (math.nan, math.nan, math.nan)
WATTS_PER_AMP = 3 * 230.0
LIMIT_A = 80.0


def ev(component_id: int, drawing_a: float) -> EvChargerInput:
    return EvChargerInput(
        component_id=component_id,
        ev_connected=True,
        measured_currents_a=(drawing_a,) * 3,
        measured_power_w=drawing_a * WATTS_PER_AMP,
        min_current_a=6.0,
        max_current_a=32.0,
    )


def silent(component_id: int) -> EvChargerInput:
    return EvChargerInput(component_id=component_id, ev_connected=True, working=False)


def allocate_beside(
    silent_setpoints: list[SentSetpoint], truth_silent_a: float
) -> tuple[dict[int, float], tuple[float, float, float]]:
    """Two heard EVs at 10 A, a silent charger drawing `truth_silent_a` (unseen).

    Household 5 A per phase; the fuse meter sees all of it. Returns the
    allocated currents and the others as the allocator was given them.
    """
    household_a = 5.0
    meter = (household_a + 2 * 10.0 + truth_silent_a,) * 3
    fuse = TimedCurrents(meter, 10.0, 10.0)
    heard = TimedCurrents((10.0,) * 3, 10.0, 10.0)
    others = other_loads(
        meter,
        [
            (current_at_fuse_sample(heard, fuse, []), []),
            (current_at_fuse_sample(heard, fuse, []), []),
            (current_at_fuse_sample(None, fuse, silent_setpoints), silent_setpoints),
        ],
    )
    allocation = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=LIMIT_A)).allocate(
        math.inf,
        [ev(1, 10.0), ev(2, 10.0), silent(3)],
        now=0.0,
        other_currents_a=others,
    )
    currents = {cid: s.current_a for cid, s in allocation.setpoints.items()}
    return currents, others


def test_a_silent_idle_charger_does_not_stop_the_others() -> None:
    held_at_0 = [SentSetpoint((0.0, 0.0, 0.0), 1.0, 1.1)]
    currents, others = allocate_beside(held_at_0, truth_silent_a=0.0)

    assert others == pytest.approx((5.0, 5.0, 5.0))  # the household alone
    assert currents[1] == currents[2] == 32.0  # 5 + 2 × 32 ≤ 80 − tolerance
    assert currents[3] == 0.0


@pytest.mark.parametrize("truth_silent_a", [0.0, 8.0, 20.0])
def test_a_silent_charging_charger_keeps_its_setpoint_reserved(
    truth_silent_a: float,
) -> None:
    """It may draw up to its 20 A setpoint at any moment: the fuse still holds."""
    charging = [SentSetpoint((20.0, 20.0, 20.0), 1.0, 1.1)]
    currents, others = allocate_beside(charging, truth_silent_a)

    # The meter shows what it draws now; its setpoint is reserved on top.
    assert others == pytest.approx((5.0 + truth_silent_a + 20.0,) * 3)
    assert currents[1] == currents[2] > 0.0
    usable = LIMIT_A - EvAllocatorConfig().fuse_tolerance_a
    # Ground truth: whatever it draws now, it may go to its setpoint.
    assert 5.0 + 20.0 + currents[1] + currents[2] <= usable + 1e-9


def test_a_one_phase_setpoint_is_reserved_on_every_phase() -> None:
    """Its EV may change while it is silent: the setpoint's current on any line."""
    one_phase = [SentSetpoint((16.0, 0.0, 0.0), 1.0, 1.1)]
    assert other_loads((5.0, 5.0, 5.0), [(NAN3, one_phase)]) == (21.0, 21.0, 21.0)
    # The newest and any it may still follow: the most of them.
    lowered = [*one_phase, SentSetpoint((8.0, 0.0, 0.0), 2.0)]
    assert other_loads((5.0, 5.0, 5.0), [(NAN3, lowered)]) == (21.0, 21.0, 21.0)


def test_an_unknown_fuse_reading_stays_unknown() -> None:
    others = other_loads((math.nan, 5.0, 5.0), [(NAN3, [])])
    assert math.isnan(others[0])
    assert others[1:] == (5.0, 5.0)


def test_a_silent_charger_does_not_hold_back_the_others_raises() -> None:
    """Its current is in the other loads already: it counts 0 A beside them."""
    logged = [SentSetpoint((20.0, 20.0, 20.0), 1.0, 1.1)]
    assert committed_beside_meter(None, logged) == (0.0, 0.0, 0.0)
    raised = PlannedSetpoint(
        power_w=20 * WATTS_PER_AMP,
        currents_a=(20.0, 20.0, 20.0),
        standing_power_w=10 * WATTS_PER_AMP,
        committed_a=(10.0, 10.0, 10.0),
    )
    off = PlannedSetpoint(
        power_w=0.0,
        currents_a=(0.0, 0.0, 0.0),
        standing_power_w=20 * WATTS_PER_AMP,
        committed_a=committed_beside_meter(None, logged),
    )
    assert hold_back_raises({1: raised, 3: off}, (30.0, 30.0, 30.0)) == {
        1: 20 * WATTS_PER_AMP,
        3: 0.0,
    }


def test_a_heard_charger_nan_on_a_phase_counts_its_reserve_there() -> None:
    logged = [SentSetpoint((16.0, 16.0, 16.0), 1.0, 1.1)]
    reading = TimedCurrents((16.0, math.nan, 16.0), 2.0, 2.0)
    assert committed_beside_meter(reading, logged) == (16.0, 16.0, 16.0)


# -- the whole chain against the simulator ("home": 40 A fuse, chargers 6 and 7) --

GARAGE = 6
DRIVEWAY = 7
FRESHNESS_S = 3.0


def current_a(sim: MicrogridSimulator, charger_id: int) -> float:
    sim.model.advance_to(sim.clock.now())
    charger = sim.model.component(charger_id).ev_charger
    assert charger is not None
    return charger.current_a


async def test_home_a_silent_idle_charger_leaves_the_other_ev_charging() -> None:
    async with control_bench("home", freshness_s=FRESHNESS_S) as bench:
        sim = bench.sim
        sim.plug_ev(GARAGE, EvSpec(phases=3, max_current_a=32.0))
        await bench.wait_for(lambda: current_a(sim, GARAGE) == 32.0)
        await asyncio.sleep(2.0)

        sim.inject_fault(DRIVEWAY, Fault.STOP_DATA)  # idle, no EV
        await asyncio.sleep(FRESHNESS_S + 3.0)  # stale, several ticks on
        for _ in range(10):
            assert current_a(sim, GARAGE) == 32.0
            await asyncio.sleep(0.2)


async def test_home_a_silent_charging_charger_keeps_its_share_reserved() -> None:
    async with control_bench("home", freshness_s=FRESHNESS_S) as bench:
        sim = bench.sim
        for charger_id in (GARAGE, DRIVEWAY):
            sim.plug_ev(charger_id, EvSpec(phases=3, max_current_a=32.0))
        await bench.wait_for(
            lambda: current_a(sim, GARAGE) == current_a(sim, DRIVEWAY) == 20.0
        )
        await asyncio.sleep(2.0)  # the integration reads both at 20 A

        sim.inject_fault(DRIVEWAY, Fault.STOP_DATA)  # charging at 20 A
        await asyncio.sleep(FRESHNESS_S + 3.0)
        for _ in range(10):
            # It may still draw its 20 A: the garage does not take them, and
            # charges on in what the fuse leaves beside them.
            assert current_a(sim, DRIVEWAY) == 20.0
            assert 0.0 < current_a(sim, GARAGE) <= 20.0
            await asyncio.sleep(0.2)
