"""Proposals are not held up: by another pool's calls, by a tick, by change checks."""

from __future__ import annotations

import asyncio
import time

from frequenz.client.microgrid.component import ComponentStateCode

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.control import Pool
from custom_components.frequenz_microgrid.engine.control.changes import ChangeDetector
from custom_components.frequenz_microgrid.engine.health import HealthTracker, Reading
from custom_components.frequenz_microgrid.engine.results import PartialFailure
from custom_components.frequenz_microgrid.simulator import Fault
from tests.engine.test_control_bench import Bench, control_bench
from tests.observations import held_setpoint, record_state, setpoints_to

HOME_INVERTER = 3
HOME_PV_INVERTER = 5
# "depot": A (11 → 12), B (13 → 14), C (15 → 16 + 17).
DEPOT_INVERTER_A = 11
DEPOT_INVERTER_C = 15
HANGING_CALL_TIMEOUT_S = 4.0
PROMPT_S = 1.5
"""Well under the hanging call's timeout: what "not held up" means here."""


async def received_count_grows(bench: Bench, component_id: int, count: int) -> float:
    """Wait until the component got more than `count` setpoints; return how long."""
    return await bench.wait_for(
        lambda: len(setpoints_to(bench.sim, component_id)) > count
    )


async def test_a_hanging_pv_call_does_not_hold_up_a_battery_proposal() -> None:
    async with control_bench("home", timeout_s=HANGING_CALL_TIMEOUT_S) as bench:
        controller = bench.controller
        bench.sim.inject_fault(HOME_PV_INVERTER, Fault.TIMEOUT_SET_POWER)
        curtail = asyncio.create_task(
            controller.propose(Pool.PV, source_id="pv", priority=1, power=-500.0)
        )
        await received_count_grows(bench, HOME_PV_INVERTER, 0)  # the call hangs now

        started = time.monotonic()
        outcome = await controller.propose(
            Pool.BATTERIES, source_id="battery", priority=1, power=1500.0
        )

        assert time.monotonic() - started < PROMPT_S
        assert outcome.target_power == 1500.0
        assert held_setpoint(bench.sim, HOME_INVERTER) == 1500.0
        assert not curtail.done()  # the PV call is still waiting for its timeout
        pv_outcome = await curtail
        assert isinstance(pv_outcome.result, PartialFailure)
        bench.sim.clear_fault(HOME_PV_INVERTER)


async def test_a_proposal_preempts_a_tick_stuck_on_a_hanging_inverter() -> None:
    async with control_bench("depot", timeout_s=HANGING_CALL_TIMEOUT_S) as bench:
        controller = bench.controller
        await controller.propose(
            Pool.BATTERIES, source_id="a", priority=1, power=10_000.0
        )
        held_by_c = held_setpoint(bench.sim, DEPOT_INVERTER_C)
        assert held_by_c is not None
        assert held_by_c > 2000.0

        # Inverter A stops answering; C derates below its setpoint, so the next
        # tick corrects the whole set — and its call to A hangs.
        bench.sim.inject_fault(DEPOT_INVERTER_A, Fault.TIMEOUT_SET_POWER)
        sent_to_a = len(setpoints_to(bench.sim, DEPOT_INVERTER_A))
        bench.sim.model.augment_bounds(
            DEPOT_INVERTER_C, PowerBounds(-2000.0, 2000.0), 60.0
        )
        await received_count_grows(bench, DEPOT_INVERTER_A, sent_to_a)
        # C's correction travels beside A's hanging call: it lands at once.
        await bench.wait_for(
            lambda: held_setpoint(bench.sim, DEPOT_INVERTER_C) == 2000.0,
            timeout_s=PROMPT_S,
        )

        sent_to_c = len(setpoints_to(bench.sim, DEPOT_INVERTER_C))
        proposal = asyncio.create_task(
            controller.propose(Pool.BATTERIES, source_id="a", priority=1, power=-3000.0)
        )
        elapsed = await received_count_grows(bench, DEPOT_INVERTER_C, sent_to_c)

        assert elapsed < PROMPT_S  # not after the tick's call to A timed out
        held = held_setpoint(bench.sim, DEPOT_INVERTER_C)
        assert held is not None
        assert -2000.0 <= held < 0.0
        outcome = await proposal
        assert outcome.target_power == -3000.0
        bench.sim.clear_fault(DEPOT_INVERTER_A)


async def test_a_proposal_steers_on_the_last_ticks_view_until_it_is_too_old() -> None:
    # Only the clock moves (no ticks): the view from the bench's settling tick is
    # used while young; once older than INPUTS_MAX_AGE_S, a proposal refreshes it.
    async with control_bench("home") as bench:
        controller = bench.controller
        await bench.monitor.stop()  # no more ticks, and the store stops changing
        store = bench.monitor.store
        record_state(store, HOME_INVERTER, [ComponentStateCode.ERROR])

        young = await controller.propose(
            Pool.BATTERIES, source_id="a", priority=1, power=1000.0
        )
        assert young.target_power == 1000.0
        assert (
            held_setpoint(bench.sim, HOME_INVERTER) == 1000.0
        )  # the tick's view: working

        await asyncio.sleep(2.1)  # INPUTS_MAX_AGE_S has passed
        old = await controller.propose(
            Pool.BATTERIES, source_id="a", priority=1, power=1200.0
        )
        assert old.target_power == 0.0  # refreshed: no working battery any more
        assert 1200.0 not in setpoints_to(bench.sim, HOME_INVERTER)


# --- change detection --------------------------------------------------------------

PV = 5
READY = frozenset({ComponentStateCode.READY})


def tracker_with_working_pv(now: float) -> HealthTracker:
    health = HealthTracker()
    health.add_pv_inverter(PV)
    health.observe(PV, Reading(at=now, states=READY))
    return health


def test_pool_changes_are_reported_once() -> None:
    changes = ChangeDetector(HealthTracker(), ())

    assert changes.pools_changed(("batteries", 1000.0))
    assert not changes.pools_changed(("batteries", 1000.0))
    assert changes.pools_changed(("batteries", 1200.0))


def test_health_changes_are_reported_once_per_component() -> None:
    health = tracker_with_working_pv(now=100.0)
    changes = ChangeDetector(health, {PV})

    assert changes.all_health_changed(100.0)  # first look
    assert not changes.all_health_changed(100.5)
    assert changes.all_health_changed(200.0)  # its data went stale
    assert not changes.health_changed(200.0, [PV, 999])  # untracked ids are skipped


def test_after_a_successful_dispatch_only_blocked_components_are_rechecked() -> None:
    health = tracker_with_working_pv(now=100.0)
    changes = ChangeDetector(health, {PV})
    assert changes.all_health_changed(100.0)

    # Telemetry moves on ticks; a dispatch that went through cannot change it.
    health.observe(PV, Reading(at=100.0, states=frozenset()))
    assert not changes.recheck_after_dispatch(100.0, {PV}, any_failed=False)
    health.observe(PV, Reading(at=100.0, states=READY))

    health.record_failure({PV}, 100.0)
    assert changes.recheck_after_dispatch(100.0, {PV}, any_failed=True)  # blocked
    health.record_success({PV})
    assert changes.recheck_after_dispatch(100.0, {PV}, any_failed=False)  # unblocked
    assert not changes.recheck_after_dispatch(100.0, {PV}, any_failed=False)
