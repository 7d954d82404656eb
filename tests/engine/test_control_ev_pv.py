"""EV and PV steering against the simulator over real gRPC."""

from __future__ import annotations

import asyncio

from custom_components.frequenz_microgrid.engine.control import Pool
from custom_components.frequenz_microgrid.engine.results import Success
from custom_components.frequenz_microgrid.simulator import EvSpec, MicrogridSimulator
from tests.engine.test_control_bench import Bench, control_bench
from tests.observations import held_setpoint, setpoints_to

# "home": 40 A grid fuse, two 3-phase 6–32 A chargers, an 8 kW PV inverter (peak
# 7 kW at noon, when the scenario starts) and a 600 W household.
GARAGE = 6
DRIVEWAY = 7
PV_INVERTER = 5
FUSE_A = 40.0
WATTS_PER_AMP = 3 * 230.0


def current_a(sim: MicrogridSimulator, charger_id: int) -> float:
    sim.model.advance_to(sim.clock.now())
    charger = sim.model.component(charger_id).ev_charger
    assert charger is not None
    return charger.current_a


def plug_both(bench: Bench) -> float:
    """Plug a 3-phase EV into each charger; return the simulated plug-in time."""
    for charger_id in (GARAGE, DRIVEWAY):
        bench.sim.plug_ev(charger_id, EvSpec(phases=3, max_current_a=32.0))
    return bench.sim.clock.now()


async def test_plugged_evs_get_their_fair_share_of_the_fuse_within_5_s() -> None:
    async with control_bench("home", speed=2.0) as bench:
        plugged_at = plug_both(bench)

        # PV exports at noon, which is not credited: the fuse's 40 A are shared.
        fair_a = FUSE_A / 2
        await bench.wait_for(
            lambda: all(current_a(bench.sim, c) == fair_a for c in (GARAGE, DRIVEWAY))
        )

        assert bench.sim.clock.now() - plugged_at <= 5.0
        assert held_setpoint(bench.sim, GARAGE) == fair_a * WATTS_PER_AMP
        assert held_setpoint(bench.sim, DRIVEWAY) == fair_a * WATTS_PER_AMP
        pool = bench.controller.status().pools[Pool.EV_CHARGERS]
        (everyone,) = pool.component_sets
        assert everyone.component_ids == frozenset({GARAGE, DRIVEWAY})
        assert everyone.system_bounds is not None
        assert everyone.system_bounds.inclusion_upper == 2 * 32 * WATTS_PER_AMP


async def test_an_ev_pool_target_is_shared_and_withdrawn_back_to_full() -> None:
    async with control_bench("home", speed=2.0) as bench:
        plug_both(bench)
        await bench.wait_for(
            lambda: held_setpoint(bench.sim, GARAGE) == 20 * WATTS_PER_AMP
        )

        outcome = await bench.controller.propose(
            Pool.EV_CHARGERS, source_id="automation.cheap", priority=1, power=9000.0
        )
        assert outcome.target_power == 9000.0
        assert isinstance(outcome.result, Success)
        assert outcome.result.setpoints == {GARAGE: 4500.0, DRIVEWAY: 4500.0}
        assert (
            held_setpoint(bench.sim, GARAGE)
            == held_setpoint(bench.sim, DRIVEWAY)
            == 4500.0
        )

        await bench.controller.withdraw(Pool.EV_CHARGERS, source_id="automation.cheap")
        await bench.wait_for(
            lambda: (
                held_setpoint(bench.sim, GARAGE)
                == held_setpoint(bench.sim, DRIVEWAY)
                == 20 * WATTS_PER_AMP
            )
        )


async def test_a_charger_without_ev_gets_0_w_and_an_unplugged_one_returns_to_0() -> (
    None
):
    async with control_bench("home", speed=2.0) as bench:
        assert setpoints_to(bench.sim, GARAGE) == [0.0]
        bench.sim.plug_ev(GARAGE, EvSpec(phases=3, max_current_a=32.0))
        await bench.wait_for(lambda: (held_setpoint(bench.sim, GARAGE) or 0.0) > 0.0)
        # Alone on the fuse: the charger's own maximum limits it.
        assert held_setpoint(bench.sim, GARAGE) == 32 * WATTS_PER_AMP
        assert setpoints_to(bench.sim, DRIVEWAY) == [0.0]

        bench.sim.unplug_ev(GARAGE)
        await bench.wait_for(lambda: held_setpoint(bench.sim, GARAGE) == 0.0)


async def test_pv_is_curtailed_and_restored_to_full_production_on_withdrawal() -> None:
    async with control_bench("home", speed=10.0, lifetime_s=10.0) as bench:
        assert (
            setpoints_to(bench.sim, PV_INVERTER) == []
        )  # nobody asked: PV is left alone

        outcome = await bench.controller.propose(
            Pool.PV, source_id="automation.negative_price", priority=1, power=-3000.0
        )
        assert isinstance(outcome.result, Success)
        assert outcome.result.setpoints == {PV_INVERTER: -3000.0}
        assert held_setpoint(bench.sim, PV_INVERTER) == -3000.0
        bench.sim.tick()
        pv = bench.sim.model.component(PV_INVERTER)
        assert pv.active_power_w == -3000.0

        await bench.controller.withdraw(Pool.PV, source_id="automation.negative_price")
        # Full production at once (the rated 8 kW), then no longer kept alive.
        assert setpoints_to(bench.sim, PV_INVERTER)[-1] == -8000.0
        await bench.wait_for(lambda: held_setpoint(bench.sim, PV_INVERTER) is None)
        assert setpoints_to(bench.sim, PV_INVERTER)[-1] == -8000.0


async def test_zero_limits_hold_after_three_lifetimes() -> None:
    """0 W is a limit for chargers and PV (their default is no limit): kept alive."""
    # Speed 10: the 10 s lifetime lapses after 1 s of real time.
    async with control_bench("home", speed=10.0, lifetime_s=10.0) as bench:
        outcome = await bench.controller.propose(
            Pool.PV, source_id="automation.negative_price", priority=1, power=0.0
        )
        assert isinstance(outcome.result, Success)
        start = bench.sim.clock.now()
        while bench.sim.clock.now() - start < 32.0:
            for component_id in (PV_INVERTER, GARAGE, DRIVEWAY):
                assert held_setpoint(bench.sim, component_id) == 0.0, component_id
            await asyncio.sleep(0.2)
        bench.sim.tick()
        assert bench.sim.model.component(PV_INVERTER).active_power_w == 0.0
        for component_id in (PV_INVERTER, GARAGE, DRIVEWAY):
            assert len(setpoints_to(bench.sim, component_id)) >= 4, component_id


async def test_a_single_phase_ev_charges_and_shares_the_fuse_fairly() -> None:
    async with control_bench("home", speed=2.0) as bench:
        bench.sim.plug_ev(DRIVEWAY, EvSpec(phases=1, max_current_a=32.0))
        await bench.wait_for(lambda: current_a(bench.sim, DRIVEWAY) == 32.0)
        # The charger converts watts over its three phases: the setpoint stays the
        # watts of 32 A per phase, although the EV draws on L1 only.
        assert held_setpoint(bench.sim, DRIVEWAY) == 32 * WATTS_PER_AMP

        bench.sim.plug_ev(GARAGE, EvSpec(phases=3, max_current_a=32.0))
        # Both draw on L1, where the 40 A fuse is shared fairly.
        await bench.wait_for(
            lambda: (
                current_a(bench.sim, GARAGE) == current_a(bench.sim, DRIVEWAY)
                and current_a(bench.sim, GARAGE) == FUSE_A / 2
            )
        )
