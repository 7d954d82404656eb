"""Controller lifecycle against the simulator: expiry, listeners, release on stop."""

from __future__ import annotations

import asyncio

import pytest

from custom_components.frequenz_microgrid.engine.control import Pool
from custom_components.frequenz_microgrid.engine.power_manager import (
    ProposalRefusedError,
    RefusalReason,
)
from custom_components.frequenz_microgrid.engine.results import PartialFailure, Success
from custom_components.frequenz_microgrid.simulator import EvSpec, Fault
from tests.engine.test_control_bench import control_bench
from tests.observations import held_setpoint, setpoints_to

HOME_INVERTER = 3
HOME_BATTERY = 4
PV_INVERTER = 5
GARAGE = 6


async def test_stop_sends_batteries_0_w_and_lets_ev_and_pv_lapse() -> None:
    async with control_bench("home", speed=10.0, lifetime_s=10.0) as bench:
        controller = bench.controller
        await controller.propose(
            Pool.BATTERIES, source_id="automation.x", priority=1, power=2500.0
        )
        await controller.propose(
            Pool.PV, source_id="automation.x", priority=1, power=-2000.0
        )
        bench.sim.plug_ev(GARAGE, EvSpec())
        await bench.wait_for(lambda: (held_setpoint(bench.sim, GARAGE) or 0.0) > 0.0)
        ev_setpoints = len(setpoints_to(bench.sim, GARAGE))
        pv_setpoints = len(setpoints_to(bench.sim, PV_INVERTER))

        await controller.stop()

        assert setpoints_to(bench.sim, HOME_INVERTER)[-1] == 0.0
        assert held_setpoint(bench.sim, HOME_INVERTER) == 0.0
        assert all(
            not s.proposals
            for p in controller.status().pools.values()
            for s in p.component_sets
        )
        # Nothing more is sent to EV chargers and PV: they lapse to their default.
        await bench.wait_for(
            lambda: (
                held_setpoint(bench.sim, GARAGE) is None
                and held_setpoint(bench.sim, PV_INVERTER) is None
            )
        )
        assert len(setpoints_to(bench.sim, GARAGE)) == ev_setpoints
        assert len(setpoints_to(bench.sim, PV_INVERTER)) == pv_setpoints
        controller.on_tick()  # ignored once stopped
        await asyncio.sleep(0.3)
        assert len(setpoints_to(bench.sim, GARAGE)) == ev_setpoints


async def test_a_proposal_without_keep_alive_expires_and_one_with_it_stays() -> None:
    async with control_bench("home", max_proposal_age_s=0.5) as bench:
        controller = bench.controller
        await controller.propose(
            Pool.BATTERIES,
            source_id="automation.once",
            priority=2,
            power=1000.0,
            keep_alive=False,
        )
        await controller.propose(
            Pool.BATTERIES, source_id="number.battery", priority=1, power=500.0
        )
        assert held_setpoint(bench.sim, HOME_INVERTER) == 1500.0

        # The tick drops the expired proposal; the kept-alive one stands alone.
        await bench.wait_for(lambda: held_setpoint(bench.sim, HOME_INVERTER) == 500.0)
        (batteries,) = controller.status().pools[Pool.BATTERIES].component_sets
        assert [p.source_id for p in batteries.proposals] == ["number.battery"]
        assert batteries.proposals[0].keep_alive
        assert batteries.target_power == 500.0


async def test_listeners_hear_about_changes_until_they_unsubscribe() -> None:
    # Without the monitor's ticks: one of them running while the proposal awaits
    # its setpoints would (rightly) tell the listener about the proposal early.
    async with control_bench("home", ticking=False) as bench:
        calls: list[float | None] = []

        def on_change() -> None:
            sets = bench.controller.status().pools[Pool.BATTERIES].component_sets
            calls.append(sets[0].target_power if sets else None)

        unsubscribe = bench.controller.listen(on_change)
        await bench.controller.propose(
            Pool.BATTERIES, source_id="a", priority=1, power=700.0
        )
        assert calls == [700.0]
        await bench.controller.tick()  # nothing changed: nobody is told
        assert calls == [700.0]
        unsubscribe()
        await bench.controller.propose(
            Pool.BATTERIES, source_id="a", priority=1, power=800.0
        )
        assert calls == [700.0]


async def test_a_subset_proposal_steers_only_its_pairs() -> None:
    async with control_bench("depot") as bench:
        controller = bench.controller
        assert controller.pool_components(Pool.BATTERIES) == {12, 14, 16, 17}
        outcome = await controller.propose(
            Pool.BATTERIES,
            source_id="a",
            priority=1,
            power=-20_000.0,
            component_ids=frozenset({16, 17}),
        )
        assert isinstance(outcome.result, Success)
        assert outcome.result.setpoints == {15: -20_000.0}
        assert held_setpoint(bench.sim, 15) == -20_000.0
        assert setpoints_to(bench.sim, 11) == setpoints_to(bench.sim, 13) == []
        with pytest.raises(ProposalRefusedError, match="overlap") as overlap:
            await controller.propose(
                Pool.BATTERIES, source_id="b", priority=1, power=1.0
            )
        with pytest.raises(ProposalRefusedError, match="subset") as subset:
            await controller.propose(
                Pool.BATTERIES,
                source_id="b",
                priority=1,
                power=1.0,
                component_ids=frozenset({31}),
            )
        assert overlap.value.reason is RefusalReason.OVERLAPPING_SET
        assert subset.value.reason is RefusalReason.NOT_A_POOL_SUBSET


async def test_a_failing_depot_inverter_gives_its_share_to_the_others() -> None:
    async with control_bench("depot", timeout_s=0.5) as bench:
        bench.sim.inject_fault(11, Fault.FAIL_SET_POWER)
        outcome = await bench.controller.propose(
            Pool.BATTERIES, source_id="a", priority=1, power=30_000.0
        )

        assert isinstance(outcome.result, PartialFailure)
        assert outcome.result.failed_components == {12}
        # Re-sent at once without the blocked pair: the others carry all of it.
        assert held_setpoint(bench.sim, 11) is None
        assert (held_setpoint(bench.sim, 13) or 0.0) + (
            held_setpoint(bench.sim, 15) or 0.0
        ) == pytest.approx(30_000.0, abs=0.1)
        (batteries,) = bench.controller.status().pools[Pool.BATTERIES].component_sets
        assert batteries.last_result is not None
        assert batteries.last_result["kind"] == "success"
        assert batteries.last_result["components"] == [12, 14, 16, 17]
        assert sorted(batteries.last_result["setpoints"]) == ["13", "15"]
