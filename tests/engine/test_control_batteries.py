"""Battery steering against the simulator over real gRPC: split, priorities, faults."""

from __future__ import annotations

import asyncio
import time

import pytest

from custom_components.frequenz_microgrid.engine.bounds import Bounds, PowerBounds
from custom_components.frequenz_microgrid.engine.control import ControllerStatus, Pool
from custom_components.frequenz_microgrid.engine.distribution.battery import (
    BatteryDistribution,
    BatteryState,
    InverterBatteries,
    distribute_battery_power,
)
from custom_components.frequenz_microgrid.engine.health import (
    ComponentHealth,
    ComponentStatus,
)
from custom_components.frequenz_microgrid.engine.results import (
    Error,
    PartialFailure,
    Success,
)
from custom_components.frequenz_microgrid.simulator import Fault, MicrogridSimulator
from tests.engine.test_control_bench import Bench, control_bench
from tests.observations import held_setpoint, setpoints_to

# "home": one battery behind one inverter.
HOME_INVERTER = 3
HOME_BATTERY = 4
# "depot": A (11 → 12), B (13 → 14, 1 kW exclusion zone), C (15 → 16 + 17).
DEPOT_PAIRS = {11: (12,), 13: (14,), 15: (16, 17)}


def model_pair(sim: MicrogridSimulator, inverter_id: int) -> InverterBatteries:
    """The distribution input of one pair, read from the simulator's own model."""
    model = sim.model
    batteries = []
    for battery_id in DEPOT_PAIRS[inverter_id]:
        runtime = model.component(battery_id)
        assert runtime.battery is not None
        params = runtime.battery.params
        bounds = model.reported_bounds(battery_id)
        assert bounds is not None
        batteries.append(
            BatteryState(
                component_id=battery_id,
                capacity_wh=params.capacity_wh,
                soc_pct=runtime.battery.soc_pct,
                soc_lower_pct=params.soc_lower_pct,
                soc_upper_pct=params.soc_upper_pct,
                bounds=bounds,
            )
        )
    inverter_bounds = model.reported_bounds(inverter_id)
    assert inverter_bounds is not None
    pair = InverterBatteries.aggregate(inverter_id, inverter_bounds, batteries)
    assert pair is not None
    return pair


def status_of(status: ControllerStatus, component_id: int) -> ComponentStatus:
    return next(c for c in status.components if c.component_id == component_id)


def health_of(status: ControllerStatus, component_id: int) -> ComponentHealth:
    return status_of(status, component_id).health


async def test_a_depot_proposal_reaches_the_inverters_as_a_soc_balanced_split() -> None:
    async with control_bench("depot") as bench:
        expected = distribute_battery_power(
            42_000.0, [model_pair(bench.sim, inv) for inv in sorted(DEPOT_PAIRS)]
        )
        outcome = await bench.controller.propose(
            Pool.BATTERIES, source_id="automation.charge", priority=10, power=42_000.0
        )

        assert isinstance(expected, BatteryDistribution)
        assert isinstance(outcome.result, Success)
        assert outcome.target_power == 42_000.0
        assert outcome.component_ids == frozenset({12, 14, 16, 17})
        assert outcome.result.succeeded_components == {12, 14, 16, 17}
        for inverter_id, power in expected.setpoints.items():
            assert outcome.result.setpoints[inverter_id] == pytest.approx(
                power, rel=1e-3
            )
            held = outcome.result.setpoints[inverter_id]
            assert held_setpoint(bench.sim, inverter_id) == pytest.approx(
                held, abs=0.01
            )  # float32
        # SoC balancing: the emptiest pair (A at 40 %) takes more than B (60 %).
        assert held_setpoint(bench.sim, 11) > held_setpoint(bench.sim, 13) > 0  # type: ignore[operator]
        assert sum(outcome.result.setpoints.values()) == pytest.approx(42_000.0)


async def test_two_actors_shift_their_powers_like_the_spec_says() -> None:
    async with control_bench("home") as bench:
        controller = bench.controller
        high = await controller.propose(
            Pool.BATTERIES,
            source_id="peak_shaving",
            priority=20,
            power=1000.0,
            bounds=Bounds(-2000.0, 3000.0),
        )
        low = await controller.propose(
            Pool.BATTERIES, source_id="automation.solar", priority=5, power=4000.0
        )

        # Shifting matryoshka: 1000 W, then 4000 W clamped into the high actor's
        # [-2000, 3000] shifted down by its 1000 W = [-3000, 2000] → 1000 + 2000.
        assert high.target_power == 1000.0
        assert low.target_power == 3000.0
        assert low.bounds == PowerBounds(-3000.0, 2000.0)
        assert high.bounds == PowerBounds(-5000.0, 5000.0)
        assert held_setpoint(bench.sim, HOME_INVERTER) == 3000.0
        assert setpoints_to(bench.sim, HOME_INVERTER) == [1000.0, 3000.0]

        withdrawn = await controller.withdraw(Pool.BATTERIES, source_id="peak_shaving")
        assert withdrawn.target_power == 4000.0
        assert held_setpoint(bench.sim, HOME_INVERTER) == 4000.0

        await controller.withdraw(Pool.BATTERIES, source_id="automation.solar")
        assert setpoints_to(bench.sim, HOME_INVERTER)[-1] == 0.0
        assert (
            controller.status().pools[Pool.BATTERIES].component_sets[0].proposals == ()
        )


@pytest.mark.parametrize(
    "fault",
    [
        Fault.REJECT_SET_POWER,  # a gRPC error
        Fault.REPLY_REJECTED,  # a REJECTED reply, which the bare client takes for OK
    ],
)
async def test_a_rejected_setpoint_blocks_the_battery_until_the_fault_clears(
    fault: Fault,
) -> None:
    async with control_bench("home", timeout_s=0.5) as bench:
        bench.sim.inject_fault(HOME_INVERTER, fault)
        before = time.monotonic()
        outcome = await bench.controller.propose(
            Pool.BATTERIES, source_id="automation.x", priority=1, power=2000.0
        )

        assert isinstance(outcome.result, PartialFailure)
        assert outcome.result.failed_components == {HOME_BATTERY}
        assert outcome.result.failed_power == 2000.0
        battery = status_of(bench.controller.status(), HOME_BATTERY)
        assert battery.health is ComponentHealth.UNCERTAIN
        assert battery.blocked_until is not None
        assert before + 1.0 <= battery.blocked_until <= time.monotonic() + 1.0
        assert held_setpoint(bench.sim, HOME_INVERTER) is None

        # The block is honoured: no retry before it runs out.
        attempts = len(setpoints_to(bench.sim, HOME_INVERTER))
        blocked_until = battery.blocked_until
        await bench.wait_for(lambda: time.monotonic() > blocked_until - 0.2)
        assert len(setpoints_to(bench.sim, HOME_INVERTER)) == attempts

        bench.sim.clear_fault(HOME_INVERTER)
        # On a loaded machine a retry may just beat the clearing and double the
        # block (2 s): allow for that one more back-off.
        await bench.wait_for(
            lambda: held_setpoint(bench.sim, HOME_INVERTER) == 2000.0, timeout_s=6.0
        )
        # The simulator holds the setpoint before its answer is back: wait for
        # the controller to record the outcome, not only for the microgrid.
        await bench.wait_for(lambda: last_result_kind(bench) == "success")
        assert (
            health_of(bench.controller.status(), HOME_BATTERY)
            is ComponentHealth.WORKING
        )


async def test_an_accepted_setpoint_that_fails_moves_its_power_to_the_others() -> None:
    async with control_bench("depot") as bench:
        bench.sim.inject_fault(11, Fault.REPLY_FAILED)  # ACCEPTED, then FAILED
        outcome = await bench.controller.propose(
            Pool.BATTERIES, source_id="automation.x", priority=1, power=6000.0
        )
        assert isinstance(outcome.result, Success)  # as far as the first replies go
        assert held_setpoint(bench.sim, 11) is None  # but 11 never took it

        # The FAILED reply blocks battery 12; the next tick re-distributes.
        await bench.wait_for(
            lambda: (
                health_of(bench.controller.status(), 12) is ComponentHealth.UNCERTAIN
            )
        )
        await bench.wait_for(  # (the API carries float32 setpoints)
            lambda: (
                abs(
                    (held_setpoint(bench.sim, 13) or 0.0)
                    + (held_setpoint(bench.sim, 15) or 0.0)
                    - 6000.0
                )
                < 0.01
            )
        )
        assert held_setpoint(bench.sim, 11) is None
        # (Once the block runs out, 11 is tried again and fails again: back-off.)


def last_result_kind(bench: Bench) -> str | None:
    """The kind of the battery pool's last result (`None` before any)."""
    last = bench.controller.status().pools[Pool.BATTERIES].component_sets[0]
    return None if last.last_result is None else str(last.last_result["kind"])


async def test_a_setpoint_is_still_held_after_three_lifetimes() -> None:
    # Speed 10: the 10 s lifetime lapses after 1 s of real time.
    async with control_bench("home", speed=10.0, lifetime_s=10.0) as bench:
        await bench.controller.propose(
            Pool.BATTERIES, source_id="automation.x", priority=1, power=-1500.0
        )
        start = bench.sim.clock.now()
        while bench.sim.clock.now() - start < 32.0:
            assert held_setpoint(bench.sim, HOME_INVERTER) == -1500.0
            await asyncio.sleep(0.2)
        assert len(setpoints_to(bench.sim, HOME_INVERTER)) >= 4


async def test_a_standing_setpoint_that_became_unsafe_is_corrected_at_once() -> None:
    async with control_bench("home") as bench:
        await bench.controller.propose(
            Pool.BATTERIES, source_id="automation.x", priority=1, power=3000.0
        )
        assert held_setpoint(bench.sim, HOME_INVERTER) == 3000.0

        # The inverter narrows its bounds (e.g. derating): 3000 W is not allowed.
        model = bench.sim.model
        model.augment_bounds(HOME_INVERTER, PowerBounds(-1000.0, 1000.0), 60.0)
        elapsed = await bench.wait_for(
            lambda: held_setpoint(bench.sim, HOME_INVERTER) == 1000.0
        )

        assert elapsed < 1.0  # a few ticks: sample, monitor tick, controller tick
        (batteries,) = bench.controller.status().pools[Pool.BATTERIES].component_sets
        assert batteries.target_power == 1000.0  # clamped to the new system bounds
        assert batteries.system_bounds == PowerBounds(-1000.0, 1000.0)


async def test_a_keep_alive_never_re_sends_what_the_battery_no_longer_allows() -> None:
    """A refresh re-sends a value decided earlier: checked on the latest bounds.

    No tick runs unless the controller asks for one (`ticking=False`), so nothing
    but the keep-alive would send 3000 W again (speed 20, lifetime 10 s: a
    refresh every ~0.3 s of real time). The battery, not the inverter, narrows
    its bounds (a discharge bound shrinking with the SoC is the same thing).
    """
    async with control_bench(
        "home", speed=20.0, lifetime_s=10.0, ticking=False
    ) as bench:
        await bench.controller.propose(
            Pool.BATTERIES, source_id="automation.x", priority=1, power=3000.0
        )
        assert held_setpoint(bench.sim, HOME_INVERTER) == 3000.0
        sent_before = len(setpoints_to(bench.sim, HOME_INVERTER))

        bench.sim.model.augment_bounds(
            HOME_BATTERY, PowerBounds(-1000.0, 1000.0), 600.0
        )
        await asyncio.sleep(1.0)  # three refresh periods

        assert bench.sim.unsafe_setpoint_count == 0
        sent = setpoints_to(bench.sim, HOME_INVERTER)[sent_before:]
        assert sent[0] == 1000.0  # re-distributed within the battery's new bounds
        assert set(sent) == {1000.0}  # and kept alive as such
        assert held_setpoint(bench.sim, HOME_INVERTER) == 1000.0


async def test_a_keep_alive_holds_back_once_the_battery_data_is_stale() -> None:
    """Stale telemetry allows nothing: the refresh is withheld, the battery released.

    Again only the keep-alive could re-send (`ticking=False`); the battery's
    stream stays open but silent, so its data is stale after the 0.5 s freshness
    window (10 simulated seconds at speed 20).
    """
    async with control_bench(
        "home", speed=20.0, lifetime_s=10.0, ticking=False, freshness_s=0.5
    ) as bench:
        await bench.controller.propose(
            Pool.BATTERIES, source_id="automation.x", priority=1, power=3000.0
        )
        assert held_setpoint(bench.sim, HOME_INVERTER) == 3000.0

        bench.sim.inject_fault(HOME_BATTERY, Fault.STOP_DATA)
        stale_from = bench.sim.clock.now() + 0.5 * bench.sim.clock.speed
        await asyncio.sleep(1.5)  # the freshness window, then three refreshes

        late = [
            s
            for s in bench.sim.setpoints
            # (5 simulated s: a refresh checked just before may arrive just after)
            if s.component_id == HOME_INVERTER and s.sim_time > stale_from + 5.0
        ]
        assert late == []  # nothing re-sent on stale data
        await bench.wait_for(lambda: held_setpoint(bench.sim, HOME_INVERTER) is None)
        bench.sim.clear_fault(HOME_BATTERY)


async def test_a_result_is_shown_as_one_dict_until_the_next_result() -> None:
    """The status hands out the same result dict while the result is the same.

    Entities compare what they show once per snapshot: a 1,250-charger pool's
    result rebuilt as a new dict every time was milliseconds per second.
    """
    async with control_bench("depot") as bench:
        controller = bench.controller
        await controller.propose(
            Pool.BATTERIES, source_id="a", priority=1, power=30_000.0
        )

        def shown() -> dict[str, object] | None:
            (batteries,) = controller.status().pools[Pool.BATTERIES].component_sets
            return batteries.last_result

        first = shown()
        assert first is not None
        assert first["requested_power"] == 30_000.0
        assert shown() is first  # the same result: the same dict

        await controller.propose(
            Pool.BATTERIES, source_id="a", priority=1, power=-12_000.0
        )
        second = shown()
        assert second is not first
        assert second is not None
        assert second["requested_power"] == -12_000.0
        assert first["requested_power"] == 30_000.0  # the old one left as it was
        assert shown() is second


async def test_a_battery_that_can_no_longer_be_steered_is_stopped() -> None:
    """Its data turns NaN while it charges: 0 W at once, not the old charge.

    Found by an end-to-end probe: with the charge withdrawn and a discharge
    asked while the battery sent NaN, no pair was usable and nothing was sent,
    so the inverter went on charging at +3 kW for the setpoint's lifetime
    (60 s), against the discharge asked.
    """
    async with control_bench("home") as bench:
        controller = bench.controller
        await controller.propose(
            Pool.BATTERIES, source_id="charge", priority=1, power=3000.0
        )
        assert held_setpoint(bench.sim, HOME_INVERTER) == 3000.0

        bench.sim.inject_fault(HOME_BATTERY, Fault.SEND_NAN)
        await bench.wait_for(lambda: held_setpoint(bench.sim, HOME_INVERTER) == 0.0)
        # Shown as excluded, with the reason (not working yet never steered).
        status = status_of(controller.status(), HOME_BATTERY)
        assert status.health is ComponentHealth.NOT_WORKING
        assert status.problem == "battery capacity is unknown"
        await controller.withdraw(Pool.BATTERIES, source_id="charge")
        outcome = await controller.propose(
            Pool.BATTERIES, source_id="discharge", priority=1, power=-3000.0
        )
        assert isinstance(outcome.result, Error)  # nothing usable to discharge
        for _ in range(3):  # held at 0 W: neither the old charge nor blind power
            await asyncio.sleep(0.5)
            assert held_setpoint(bench.sim, HOME_INVERTER) == 0.0

        bench.sim.clear_fault(HOME_BATTERY)
        await bench.wait_for(lambda: held_setpoint(bench.sim, HOME_INVERTER) == -3000.0)
        assert bench.sim.unsafe_setpoint_count == 0


async def test_a_battery_taken_out_of_service_gets_not_even_a_stop() -> None:
    """Outside its operational lifetime nothing goes to it, not even 0 W."""
    async with control_bench("home") as bench:
        controller = bench.controller
        await controller.propose(
            Pool.BATTERIES, source_id="charge", priority=1, power=3000.0
        )
        assert held_setpoint(bench.sim, HOME_INVERTER) == 3000.0
        sent_before = len(setpoints_to(bench.sim, HOME_INVERTER))

        controller.set_out_of_service(frozenset({HOME_BATTERY}))
        await asyncio.sleep(1.5)  # the change re-distributes at once; then ticks
        assert setpoints_to(bench.sim, HOME_INVERTER)[sent_before:] == []
