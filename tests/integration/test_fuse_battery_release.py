"""Through Home Assistant: a discharge withdrawn while a car's cable locks.

`generated:10` behind a 25 A grid fuse, over real gRPC. The battery discharges
4.77 kW; a car plugged in is granted 17.25 kW in the room that frees; the
simulated cable takes about 2 s to lock before the car draws. The discharge is
withdrawn half a second before the lock (found by a probe: the charger kept its
grant, and the grid reached 31.4 A once the car drew, until the next tick). Now
the withdrawal lowers the charger before the battery stops: the action's own
round, and the simulated grid connection point never carries more than 25 A
(`serving` fails on any overload too).
"""

from __future__ import annotations

import asyncio
import dataclasses

from homeassistant.core import HomeAssistant

from custom_components.frequenz_microgrid.simulator import EvSpec, generate_scenario
from custom_components.frequenz_microgrid.simulator.scenario import Kind

from .conftest import serving, setup_entry, wait_for
from .steering_helpers import call_action, last_setpoint, propose, wait_until_working

FUSE_A = 25
GRID = 1
GRID_METER = 2
CHARGER = 10
CABLE_LOCKS_S = 2.0
"""The simulated car draws about this long after it is plugged in."""


async def test_a_withdrawn_discharge_lowers_the_car_before_it_draws(
    hass: HomeAssistant,
) -> None:
    scenario = generate_scenario(10)
    scenario = dataclasses.replace(
        scenario,
        components=tuple(
            dataclasses.replace(c, fuse_current_a=FUSE_A) if c.kind is Kind.GRID else c
            for c in scenario.components
        ),
    )
    async with serving(hass, scenario) as sim:
        entry = await setup_entry(hass, sim.url, unique_id="1")
        await wait_until_working(entry, 4, 8, 5, 9)
        await call_action(
            hass,
            "propose_power",
            propose(entry, "batteries", actor="discharge", power=-4770),
        )
        await asyncio.sleep(0.8)
        sim.plug_ev(CHARGER, EvSpec(phases=3, max_current_a=32.0, soc_pct=20))
        plugged = sim.clock.now()
        await wait_for(
            lambda: (last_setpoint(sim, CHARGER) or 0.0) > 15_000.0,
            what="the car granted the discharge's room",
        )
        granted = last_setpoint(sim, CHARGER)
        await wait_for(
            lambda: sim.clock.now() >= plugged + CABLE_LOCKS_S - 0.5,
            what="half a second before the cable locks",
        )
        await call_action(
            hass,
            "withdraw_proposal",
            {
                "config_entry_id": entry.entry_id,
                "pool": "batteries",
                "actor": "discharge",
            },
        )
        assert (last_setpoint(sim, CHARGER) or 0.0) < (granted or 0.0)
        peak = 0.0
        for _ in range(30):
            await asyncio.sleep(0.05)
            currents = sim.model.component(GRID_METER).phases.currents()
            peak = max(peak, *(abs(a) for a in currents))
        assert peak <= FUSE_A + 0.01
        assert sim.overloads[GRID].peak_a <= FUSE_A + 0.01
