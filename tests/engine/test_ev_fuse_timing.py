"""The depot's fuse holds, and shares converge, whatever the telemetry's timing.

Twelve EVs plug into the depot one after another while its batteries charge at
30 kW and its PV is held at 0 W, on the real simulator over real gRPC. Each
example spreads, reorders, jitters or delays the simulator's telemetry rounds
differently (issue 13: a grid reading paired with charger readings from before
the last setpoints overloaded L1). The simulator judges on its own: the current
at the grid connection point never exceeds the 250 A fuse, every EV reaches its
fair share within 5 s of simulated time after each plug-in, and no EV is
switched off.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from custom_components.frequenz_microgrid.engine.control import Pool
from custom_components.frequenz_microgrid.simulator import (
    DeliveryOrder,
    TelemetryTiming,
)
from tests.engine.depot_plug_in import (
    CHARGERS,
    PlugInRun,
    assert_fuse_held_and_shares_fair,
    plug_in_one_by_one,
    plug_together,
)
from tests.engine.test_control_bench import TICK_S, Bench, control_bench

SPEED = 2.0
"""Simulated seconds per real second: telemetry every 0.2 s of simulated time.

Slow enough that a busy machine's event-loop delays stay small in simulated time."""
FIRST_TOGETHER = 6
"""EVs plugged in at once first: six fit the fuse at 32 A each; from the 7th on
the fuse binds and every plug-in moves everyone's share."""
BATTERY_CHARGE_W = 30_000.0


async def hold_other_loads(bench: Bench) -> None:
    """Batteries charging steadily, PV at 0 W: the other loads the EVs share with."""
    await bench.controller.propose(
        Pool.BATTERIES, source_id="test", priority=1, power=BATTERY_CHARGE_W
    )
    await bench.controller.propose(Pool.PV, source_id="test", priority=1, power=0.0)


timings = st.builds(
    TelemetryTiming,
    spread_s=st.floats(min_value=0.0, max_value=0.9 * TICK_S),
    order=st.sampled_from(list(DeliveryOrder)),
    jitter_s=st.sampled_from([0.0, 0.2 * TICK_S, TICK_S]),
    lag_s=st.sampled_from([{}, {2: 2 * TICK_S}, {CHARGERS[0]: 3 * TICK_S}]),
    seed=st.integers(min_value=0, max_value=1000),
)


async def plug_in_under(
    timing: TelemetryTiming, *, speed: float = SPEED, together: int = FIRST_TOGETHER
) -> PlugInRun:
    """Plug `together` depot EVs in at once, then the others one by one."""
    async with control_bench("depot", speed=speed, timing=timing) as bench:
        await hold_other_loads(bench)
        await plug_together(bench.sim, CHARGERS[:together])
        return await plug_in_one_by_one(bench.sim, CHARGERS[together:])


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(timing=timings)
async def test_the_fuse_holds_and_shares_converge_whatever_the_timing(
    timing: TelemetryTiming,
) -> None:
    assert_fuse_held_and_shares_fair(await plug_in_under(timing))


async def test_the_grid_meter_first_and_the_chargers_spread_over_the_round() -> None:
    """Issue 13's timing: before the fix this overloaded L1 by ~30 A.

    The grid meter reports first, the chargers over the rest of the period, so
    a tick mostly sees a fresh grid reading with charger readings from before
    the last setpoints.
    """
    timing = TelemetryTiming(spread_s=0.9 * TICK_S, order=DeliveryOrder.STREAMS)
    assert_fuse_held_and_shares_fair(await plug_in_under(timing))
