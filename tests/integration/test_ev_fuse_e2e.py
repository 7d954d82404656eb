"""The depot's fuse through Home Assistant, with telemetry arriving out of step.

Issue 13, as a user met it: on the depot (250 A fuse) with the batteries charging
and PV held at 0 W, EVs plug in one after another while the grid meter reports
first and the chargers over the rest of each 1 s round. The verdict comes from
the simulated grid connection point itself, not from the integration's view:
no ampere-second above the fuse, every EV at its fair share within 5 s of each
plug-in, no EV switched off, no unsafe setpoint.
"""

from __future__ import annotations

from homeassistant.core import HomeAssistant

from custom_components.frequenz_microgrid.simulator import (
    DeliveryOrder,
    TelemetryTiming,
    load_scenario,
)
from tests.engine.depot_plug_in import (
    CHARGERS,
    assert_fuse_held_and_shares_fair,
    plug_in_one_by_one,
    plug_together,
)

from .conftest import serving, setup_entry
from .steering_helpers import call_action, propose, wait_until_working

FIRST_TOGETHER = 6
"""EVs plugged in at once first (they fit at 32 A each)."""
ONE_BY_ONE = 3
"""EVs plugged in one by one after them: from now on the fuse binds."""


async def test_evs_plugging_in_one_by_one_never_exceed_the_depot_fuse(
    hass: HomeAssistant,
) -> None:
    timing = TelemetryTiming(spread_s=0.9, order=DeliveryOrder.STREAMS)
    async with serving(
        hass, load_scenario("depot"), sample_period_s=1.0, timing=timing
    ) as sim:
        entry = await setup_entry(
            hass, sim.url, unique_id=str(sim.scenario.microgrid_id)
        )
        await wait_until_working(entry, 12, 14, 16, 17)
        await call_action(
            hass, "propose_power", propose(entry, "batteries", power=30_000)
        )
        await call_action(hass, "propose_power", propose(entry, "pv", power=0))
        await plug_together(sim, CHARGERS[:FIRST_TOGETHER])

        run = await plug_in_one_by_one(
            sim, CHARGERS[FIRST_TOGETHER : FIRST_TOGETHER + ONE_BY_ONE]
        )

        assert_fuse_held_and_shares_fair(run)
        assert sim.overload_ampere_seconds == 0.0  # nor at any rated meter
        assert sim.unsafe_setpoint_count == 0
