"""A silent EV charger through Home Assistant, judged by the simulator.

A charger whose telemetry stops still draws through the grid meter. It must not
stop the other EVs (its unknown current used to make every phase look taken),
and while it may still draw what its last setpoint allows, the others must not
take that share. The verdict is the simulator's: no ampere-second above a fuse
(`serving` checks it), no unsafe setpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from homeassistant.core import HomeAssistant

from custom_components.frequenz_microgrid.circuit_flow import SUBENTRY_CIRCUIT
from custom_components.frequenz_microgrid.const import CONF_FRESHNESS_S
from custom_components.frequenz_microgrid.simulator import (
    EvSpec,
    Fault,
    MicrogridSimulator,
    load_scenario,
)
from tests.circuit_scenario import GARAGE_CHARGERS, garage_scenario

from .conftest import serving, setup_entry, wait_for

FRESHNESS_S = 3.0
"""A short freshness window: the silent charger is stale 3 s after its last data."""
WATCH_S = 3.0
"""How long the others are watched once it is stale (many steering rounds)."""


def current_a(sim: MicrogridSimulator, charger_id: int) -> float:
    sim.model.advance_to(sim.clock.now())
    charger = sim.model.component(charger_id).ev_charger
    assert charger is not None
    return charger.current_a


async def watch(check: Callable[[], None]) -> None:
    """Run `check` every 0.2 s over `WATCH_S`, after the charger went stale."""
    await asyncio.sleep(FRESHNESS_S + 2.0)
    for _ in range(round(WATCH_S / 0.2)):
        check()
        await asyncio.sleep(0.2)


async def test_depot_a_silent_idle_charger_does_not_stop_the_others(
    hass: HomeAssistant,
) -> None:
    """Three EVs at 32 A; unplugged charger 40 goes silent: they charge on."""
    scenario = load_scenario("depot")
    charging = (31, 32, 33)
    async with serving(hass, scenario) as sim:
        for charger_id in charging:
            sim.plug_ev(charger_id, EvSpec(capacity_wh=400_000))
        await setup_entry(
            hass,
            sim.url,
            unique_id=str(scenario.microgrid_id),
            options={CONF_FRESHNESS_S: FRESHNESS_S},
        )
        await wait_for(
            lambda: all(current_a(sim, c) == 32.0 for c in charging),
            timeout_s=30,
            what="three EVs at 32 A",
        )
        await asyncio.sleep(1.0)

        sim.inject_fault(40, Fault.STOP_DATA)

        def all_charge() -> None:
            for charger_id in charging:
                assert current_a(sim, charger_id) == 32.0, charger_id

        await watch(all_charge)
        assert sim.unsafe_setpoint_count == 0


async def test_home_a_silent_charging_charger_keeps_its_share(
    hass: HomeAssistant,
) -> None:
    """Two EVs share the 40 A fuse at 20 A; the driveway's charger goes silent.

    It may still draw its 20 A (its setpoint has not lapsed): the garage does
    not take them, yet charges on in what the fuse leaves.
    """
    garage, driveway = 6, 7
    async with serving(hass, load_scenario("home")) as sim:
        for charger_id in (garage, driveway):
            sim.plug_ev(charger_id, EvSpec(phases=3, max_current_a=32.0))
        await setup_entry(hass, sim.url, options={CONF_FRESHNESS_S: FRESHNESS_S})
        await wait_for(
            lambda: current_a(sim, garage) == current_a(sim, driveway) == 20.0,
            timeout_s=30,
            what="both EVs at 20 A",
        )
        await asyncio.sleep(2.0)  # the integration reads both at 20 A

        sim.inject_fault(driveway, Fault.STOP_DATA)

        def share_kept() -> None:
            assert current_a(sim, driveway) == 20.0  # still drawing, unseen
            assert 0.0 < current_a(sim, garage) <= 20.0

        await watch(share_kept)
        assert sim.unsafe_setpoint_count == 0


async def test_a_silent_charger_on_a_circuit_without_a_meter_takes_its_maximum(
    hass: HomeAssistant,
) -> None:
    """An unmetered circuit keeps a silent charger's maximum free.

    No meter shows what it draws, and once its setpoint lapses it may draw its
    maximum (it is no longer kept alive). A user circuit of 40 A over two
    garage bays, no meter: bay 2 charges at what the feeder allows; bay 1
    (idle, 0 W) goes silent. Its 32 A maximum is reserved, so bay 2 is lowered
    to the 8 A left (not kept up on the strength of bay 1's last 0 W).
    """
    scenario = garage_scenario()
    first, second = GARAGE_CHARGERS[:2]
    async with serving(hass, scenario) as sim:
        entry = await setup_entry(
            hass,
            sim.url,
            unique_id=str(scenario.microgrid_id),
            options={CONF_FRESHNESS_S: FRESHNESS_S},
        )
        result = await hass.config_entries.subentries.async_init(
            (entry.entry_id, SUBENTRY_CIRCUIT), context={"source": "user"}
        )
        await hass.config_entries.subentries.async_configure(
            result["flow_id"],
            {"name": "Bays", "chargers": [str(first), str(second)], "fuse_a": 40},
        )
        await hass.async_block_till_done()
        sim.plug_ev(second, EvSpec(phases=3, max_current_a=32.0))
        await wait_for(lambda: current_a(sim, second) > 20.0, what="bay 2 charging")

        sim.inject_fault(first, Fault.STOP_DATA)
        await wait_for(
            lambda: current_a(sim, second) <= 8.0 + 0.1,
            timeout_s=FRESHNESS_S + 10.0,
            what="bay 2 lowered to what bay 1's maximum leaves",
        )

        def check() -> None:
            assert current_a(sim, second) <= 8.0 + 0.1

        await watch(check)
        assert sim.unsafe_setpoint_count == 0
