"""Circuits held by the EV steering, against the simulator over real gRPC.

A garage feeder (32 A per phase, 2.3 kW of other load) with three chargers,
and one more charger on the grid: the feeder is discovered from its meter's
rated current, its phases are never over its rating at the simulated meter, an
envelope's upper limit holds the feeder's power, and the circuit's status says
how it stands. The bench asserts 0 unsafe setpoints and 0 overload A·s.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from custom_components.frequenz_microgrid.engine.control import Pool
from custom_components.frequenz_microgrid.engine.hub.circuits import ROOT_CIRCUIT_ID
from custom_components.frequenz_microgrid.engine.hub.envelope import (
    LimitEnvelope,
    LimitStep,
)
from custom_components.frequenz_microgrid.engine.hub.peak_shaving import (
    PEAK_SHAVING_PRIORITY,
    PEAK_SHAVING_SOURCE,
)
from custom_components.frequenz_microgrid.simulator import (
    DeliveryOrder,
    EvSpec,
    MicrogridSimulator,
    TelemetryTiming,
)
from tests.circuit_scenario import (
    BATTERY_INVERTER,
    GARAGE_BASE_LOAD_W,
    GARAGE_CHARGERS,
    GARAGE_CIRCUIT,
    GARAGE_FUSE_A,
    GARAGE_METER,
    GRID_FUSE_A,
    HOUSE_LOAD_W,
    SHAVING_CHARGER,
    VOLTAGE_V,
    YARD_CHARGER,
    garage_scenario,
    shaving_scenario,
)
from tests.engine.depot_plug_in import phase_currents
from tests.engine.test_control_bench import Bench, control_bench

EVERY_CHARGER = (*GARAGE_CHARGERS, YARD_CHARGER)


def plug_all(bench: Bench) -> None:
    for charger_id in EVERY_CHARGER:
        bench.sim.plug_ev(charger_id, EvSpec(phases=3, max_current_a=32.0))


def garage_phases(sim: MicrogridSimulator) -> tuple[float, ...]:
    sim.model.advance_to(sim.clock.now())
    return phase_currents(sim, GARAGE_METER)


def garage_power_w(sim: MicrogridSimulator) -> float:
    return sum(garage_phases(sim)) * VOLTAGE_V


def charger_current_a(sim: MicrogridSimulator, charger_id: int) -> float:
    sim.model.advance_to(sim.clock.now())
    charger = sim.model.component(charger_id).ev_charger
    assert charger is not None
    return charger.current_a


async def test_the_garage_feeder_is_discovered_and_its_fuse_shared_fairly() -> None:
    async with control_bench(garage_scenario(), speed=2.0) as bench:
        tree = bench.controller.circuit_limits.tree
        assert tree.ids == [ROOT_CIRCUIT_ID, GARAGE_CIRCUIT]
        garage = tree.get(GARAGE_CIRCUIT)
        assert garage is not None
        assert garage.charger_ids == frozenset(GARAGE_CHARGERS)
        assert garage.phase_limit_a == GARAGE_FUSE_A
        assert garage.meter_id == GARAGE_METER

        plug_all(bench)
        base_a = GARAGE_BASE_LOAD_W / 3 / VOLTAGE_V
        fair_a = (GARAGE_FUSE_A - base_a) / len(GARAGE_CHARGERS)
        peak = [0.0, 0.0, 0.0]

        def settled() -> bool:
            for index, current in enumerate(garage_phases(bench.sim)):
                peak[index] = max(peak[index], current)
            return all(
                abs(charger_current_a(bench.sim, cid) - fair_a) < 0.5
                for cid in GARAGE_CHARGERS
            )

        await bench.wait_for(settled, timeout_s=6.0)
        # The yard charger gets what the grid fuse leaves beside the full garage.
        yard_a = GRID_FUSE_A - GARAGE_FUSE_A
        assert abs(charger_current_a(bench.sim, YARD_CHARGER) - yard_a) < 0.5
        assert max(peak) <= GARAGE_FUSE_A + 1e-6
        assert sum(garage_phases(bench.sim)) <= 3 * GRID_FUSE_A

        status = bench.controller.circuit_limits.statuses[GARAGE_CIRCUIT]
        assert status.step is None
        assert not status.limit_exceeded
        assert all(0.0 <= a < 2.0 for a in status.headroom_a)


async def test_an_envelope_step_holds_the_feeder_power_and_yields_fairly() -> None:
    async with control_bench(garage_scenario(), speed=2.0) as bench:
        plug_all(bench)
        await bench.wait_for(
            lambda: all(
                charger_current_a(bench.sim, cid) > 8.0 for cid in GARAGE_CHARGERS
            ),
            timeout_s=6.0,
        )
        limits = bench.controller.circuit_limits
        upper_w = 17_000.0
        limits.set(
            GARAGE_CIRCUIT,
            LimitEnvelope.of([LimitStep(time.time() - 1.0, 0.0, upper_w)], 1000.0),
        )
        # 17 kW less 2.3 kW of other load: 14.7 kW = 21.3 A per phase for the
        # three chargers, 7.1 A each (above the 6 A minimum: all keep charging).
        share_a = (upper_w - GARAGE_BASE_LOAD_W) / (3 * VOLTAGE_V) / 3
        # The yard charger gets the grid fuse's room the garage gave back.
        await bench.wait_for(
            lambda: (
                all(
                    abs(charger_current_a(bench.sim, cid) - share_a) < 0.3
                    for cid in GARAGE_CHARGERS
                )
                and charger_current_a(bench.sim, YARD_CHARGER) == 32.0
            ),
            timeout_s=6.0,
        )
        assert garage_power_w(bench.sim) <= upper_w + 1.0
        # The integration's view (the feeder meter's telemetry) follows the
        # simulator within a round or two.
        await bench.wait_for(
            lambda: not limits.statuses[GARAGE_CIRCUIT].limit_exceeded, timeout_s=3.0
        )
        status = limits.statuses[GARAGE_CIRCUIT]
        assert status.step is not None
        assert (status.step.lower_w, status.step.upper_w) == (0.0, upper_w)
        assert status.upper_limit_w == upper_w
        assert abs(status.uncontrollable_w - GARAGE_BASE_LOAD_W) < 50.0

        # A step below what fits the minimum of all three: only some charge.
        limits.set(
            GARAGE_CIRCUIT,
            LimitEnvelope.of([LimitStep(time.time() - 1.0, 0.0, 8000.0)], 1000.0),
        )
        await bench.wait_for(
            lambda: garage_power_w(bench.sim) <= 8000.0 + 1.0, timeout_s=6.0
        )
        charging = [
            cid for cid in GARAGE_CHARGERS if charger_current_a(bench.sim, cid) > 0.0
        ]
        assert len(charging) == 1
        assert limits.clear(GARAGE_CIRCUIT)
        await bench.wait_for(
            lambda: garage_power_w(bench.sim) > 8000.0 + 1000.0, timeout_s=6.0
        )


async def test_the_grid_root_envelope_holds_every_charger() -> None:
    async with control_bench(garage_scenario(), speed=2.0) as bench:
        plug_all(bench)
        limits = bench.controller.circuit_limits
        upper_w = 20_000.0
        limits.set(
            ROOT_CIRCUIT_ID,
            LimitEnvelope.of([LimitStep(time.time() - 1.0, 0.0, upper_w)], 0.0),
        )

        def grid_power_w() -> float:
            bench.sim.model.advance_to(bench.sim.clock.now())
            return sum(phase_currents(bench.sim, 2)) * VOLTAGE_V

        await bench.wait_for(
            lambda: (
                all(charger_current_a(bench.sim, c) > 0.0 for c in EVERY_CHARGER)
                and grid_power_w() <= upper_w + 1.0
            ),
            timeout_s=6.0,
        )
        await bench.wait_for(
            lambda: (
                limits.statuses[ROOT_CIRCUIT_ID].measured_power_w <= upper_w + 100.0
            ),
            timeout_s=3.0,
        )
        assert limits.statuses[ROOT_CIRCUIT_ID].upper_limit_w == upper_w


@pytest.mark.parametrize(
    ("order", "lag"),
    [
        (DeliveryOrder.STREAMS, {}),
        (DeliveryOrder.RANDOM, {}),
        (DeliveryOrder.REVERSED, {GARAGE_CHARGERS[0]: 0.25}),
    ],
)
async def test_the_feeder_holds_when_telemetry_arrives_out_of_step(
    order: DeliveryOrder, lag: dict[int, float]
) -> None:
    """Issue 13's timing rules hold for the feeder's meter as for the grid's.

    Telemetry spread over each round (the feeder meter first, last or at
    random; one bay's charger lagging): EVs plugging in one by one, then a
    stepped limit; the simulated feeder never carries more than its rating
    (the bench asserts 0 overload ampere-seconds) and the power limit holds.
    """
    timing = TelemetryTiming(spread_s=0.09, order=order, jitter_s=0.01, lag_s=lag)
    async with control_bench(garage_scenario(), speed=2.0, timing=timing) as bench:
        for charger_id in EVERY_CHARGER:
            bench.sim.plug_ev(charger_id, EvSpec(phases=3, max_current_a=32.0))
            await asyncio.sleep(0.3)
        base_a = GARAGE_BASE_LOAD_W / 3 / VOLTAGE_V
        fair_a = (GARAGE_FUSE_A - base_a) / len(GARAGE_CHARGERS)
        await bench.wait_for(
            lambda: all(
                abs(charger_current_a(bench.sim, cid) - fair_a) < 0.5
                for cid in GARAGE_CHARGERS
            ),
            timeout_s=8.0,
        )
        bench.controller.circuit_limits.set(
            GARAGE_CIRCUIT,
            LimitEnvelope.of([LimitStep(time.time() - 1.0, 0.0, 15_000.0)]),
        )
        await bench.wait_for(
            lambda: garage_power_w(bench.sim) <= 15_000.0 + 1.0, timeout_s=6.0
        )
        assert max(garage_phases(bench.sim)) <= GARAGE_FUSE_A


async def test_batteries_shave_what_the_evs_cannot_yield_below_the_grid_limit() -> None:
    """Grid limit 6 kW, 9 kW of household: the EV stops, the battery gives 3 kW.

    The EV yields first (it gets 0 W: the household alone is above the limit);
    the battery discharges the rest through the power manager's peak shaver, and
    the grid settles at the limit. Clearing the limit withdraws the shaver.
    """
    async with control_bench(shaving_scenario(), speed=2.0) as bench:
        bench.sim.plug_ev(SHAVING_CHARGER, EvSpec(phases=3, max_current_a=32.0))
        await bench.wait_for(
            lambda: charger_current_a(bench.sim, SHAVING_CHARGER) > 20.0, timeout_s=6.0
        )
        limits = bench.controller.circuit_limits
        upper_w = 6000.0
        limits.set(
            ROOT_CIRCUIT_ID,
            LimitEnvelope.of([LimitStep(time.time() - 1.0, 0.0, upper_w)], 500.0),
        )

        def power_w(component_id: int) -> float:
            bench.sim.model.advance_to(bench.sim.clock.now())
            return bench.sim.model.component(component_id).active_power_w

        def grid_w() -> float:
            return power_w(2)

        await bench.wait_for(
            lambda: (
                abs(grid_w() - upper_w) < 300.0
                and charger_current_a(bench.sim, SHAVING_CHARGER) == 0.0
            ),
            timeout_s=8.0,
        )
        battery = power_w(BATTERY_INVERTER)
        assert battery < -(HOUSE_LOAD_W - upper_w) + 300.0
        pool = bench.controller.status().pools[Pool.BATTERIES]
        proposals = [p for s in pool.component_sets for p in s.proposals]
        assert [p.source_id for p in proposals] == [PEAK_SHAVING_SOURCE]
        assert proposals[0].priority == PEAK_SHAVING_PRIORITY

        limits.clear(ROOT_CIRCUIT_ID)
        await bench.wait_for(
            lambda: abs(power_w(BATTERY_INVERTER)) < 100.0,
            timeout_s=6.0,
        )
        pool = bench.controller.status().pools[Pool.BATTERIES]
        assert not [p for s in pool.component_sets for p in s.proposals]
