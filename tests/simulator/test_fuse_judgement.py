"""The simulator judges safety on its own: setpoints, overloads, telemetry timing."""

from __future__ import annotations

import asyncio

from custom_components.frequenz_microgrid.simulator import (
    DeliveryOrder,
    EvSpec,
    MicrogridSimulator,
    TelemetryTiming,
    load_scenario,
    running_simulator,
)
from custom_components.frequenz_microgrid.simulator.cli import apply_command
from custom_components.frequenz_microgrid.simulator.physics.model import (
    MicrogridModel,
)
from custom_components.frequenz_microgrid.simulator.safety import setpoint_allowed
from custom_components.frequenz_microgrid.simulator.scenario import scenario_from_dict
from custom_components.frequenz_microgrid.simulator.timing import DeliverySchedule

GRID = 1
DEPOT_CHARGERS = range(31, 43)
WATTS_PER_AMP = 3 * 230.0


def test_a_setpoint_is_safe_at_0_w_or_inside_an_advertised_range() -> None:
    ranges = [(-5000.0, -100.0), (100.0, 5000.0)]
    assert setpoint_allowed(0.0, ranges)
    assert setpoint_allowed(-5000.0, ranges)
    assert setpoint_allowed(100.0, ranges)
    assert not setpoint_allowed(50.0, ranges)  # in the exclusion zone
    assert not setpoint_allowed(5000.5, ranges)
    assert not setpoint_allowed(float("nan"), ranges)


def test_chargers_each_within_bounds_can_overload_the_fuse_and_are_counted() -> None:
    model = MicrogridModel(load_scenario("depot"))
    for charger_id in DEPOT_CHARGERS:
        model.plug_ev(charger_id, EvSpec(phases=3, max_current_a=32.0))
    model.advance_to(3.0)  # the cables lock after 2 s
    for charger_id in DEPOT_CHARGERS:  # 12 × 32 A: every setpoint is within bounds
        model.set_active_power(charger_id, 32 * WATTS_PER_AMP, 60.0)
    model.advance_to(5.0)

    record = model.overloads[GRID]
    assert record.rating_a == 250.0
    assert record.peak_a > 250.0  # less the PV's morning production
    assert record.seconds == 2.0
    excess = sum(
        max(0.0, abs(c) - 250.0) for c in model.component(GRID).phases.currents()
    )
    assert record.ampere_seconds == excess * 2.0


def test_a_load_within_the_fuse_is_no_overload() -> None:
    model = MicrogridModel(load_scenario("depot"))
    model.plug_ev(31, EvSpec(phases=3, max_current_a=32.0))
    model.advance_to(3.0)
    model.set_active_power(31, 32 * WATTS_PER_AMP, 60.0)
    model.advance_to(10.0)
    assert model.overloads[GRID].ampere_seconds == 0.0
    assert 0.0 < model.overloads[GRID].peak_a < 250.0


def test_a_round_is_spread_in_order_with_jitter_and_a_lagging_component() -> None:
    timing = TelemetryTiming(spread_s=0.4, lag_s={7: 2.0})
    assert DeliverySchedule(timing).delays([5, 6, 7]) == [0.0, 0.2, 2.4]
    reversed_ = TelemetryTiming(spread_s=0.4, order=DeliveryOrder.REVERSED)
    assert DeliverySchedule(reversed_).delays([5, 6, 7]) == [0.4, 0.2, 0.0]
    jittered = DeliverySchedule(TelemetryTiming(jitter_s=0.1, seed=3))
    delays = jittered.delays(list(range(20)))
    assert all(0.0 <= d <= 0.1 for d in delays)
    assert len(set(delays)) > 1
    shuffled = DeliverySchedule(
        TelemetryTiming(spread_s=1.0, order=DeliveryOrder.RANDOM)
    )
    assert sorted(shuffled.delays(list(range(5)))) == [0.0, 0.25, 0.5, 0.75, 1.0]


async def test_a_lagging_component_arrives_late_with_its_own_sample_time() -> None:
    timing = TelemetryTiming(lag_s={2: 0.3})
    async with running_simulator(
        load_scenario("depot"), sample_period_s=0.1, timing=timing
    ) as sim:
        meter = sim.subscribe(2, frozenset())
        charger = sim.subscribe(31, frozenset())
        for subscription in (meter, charger):  # the greetings
            subscription.queue.get_nowait()
        await asyncio.sleep(0.25)
        assert meter.queue.empty()  # 0.3 s late
        assert not charger.queue.empty()
        await asyncio.sleep(0.2)
        assert not meter.queue.empty()
        sim.unsubscribe(meter)
        sim.unsubscribe(charger)


async def test_status_reports_overloads_beside_unsafe_setpoints() -> None:
    async with running_simulator(load_scenario("depot")) as sim:
        status = await apply_command(sim, "status")
    assert "unsafe_setpoints=0" in status
    assert "overload_as=0.000" in status
    assert "peak_a[1]=" in status


def test_a_scenario_file_can_set_the_telemetry_timing() -> None:
    data = {
        "name": "skewed",
        "topology": [
            {"id": 1, "kind": "grid", "fuse_current_a": 40},
            {"id": 2, "kind": "meter", "parent": 1, "fuse_current_a": 25},
        ],
        "telemetry": {"spread_s": 0.4, "order": "random", "lag_s": {"2": 3}},
    }
    scenario = scenario_from_dict(data)
    assert scenario.telemetry_timing == TelemetryTiming(
        spread_s=0.4, order=DeliveryOrder.RANDOM, lag_s={2: 3.0}
    )
    assert MicrogridSimulator(scenario).telemetry_timing == scenario.telemetry_timing
    assert MicrogridModel(scenario).overloads[2].rating_a == 25.0  # a circuit
