"""Steering end to end: action → controller → real gRPC → simulated inverters.

Each test drives Home Assistant's actions against the built-in simulator and checks
what physically arrived there: the setpoints the simulator received, its component
states, and that not one setpoint was unsafe (outside a component's bounds or inside
its exclusion zone). Bad input is covered in `test_actions.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import math

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import HomeAssistant
import pytest

from custom_components.frequenz_microgrid.engine.health import ComponentHealth
from custom_components.frequenz_microgrid.runtime import (
    FrequenzMicrogridConfigEntry,
)
from custom_components.frequenz_microgrid.simulator import (
    EvSpec,
    Fault,
    MicrogridSimulator,
    generate_scenario,
    load_scenario,
)
from tests.observations import held_setpoint

from .conftest import serving, setup_entry, wait_for
from .steering_helpers import (
    BATTERY,
    BATTERY_INVERTER,
    DRIVEWAY_WALLBOX,
    GARAGE_WALLBOX,
    GRID_METER,
    call_action,
    last_setpoint,
    propose,
    wait_until_working,
)

# The generated 10-component microgrid: two battery pairs, two PV inverters and
# two EV chargers behind the grid meter.
INVERTER_A, BATTERY_A = 3, 4  # 20 kWh at 48 % SoC
INVERTER_B, BATTERY_B = 7, 8  # 20 kWh at 76 % SoC
HOME_CHARGERS = (GARAGE_WALLBOX, DRIVEWAY_WALLBOX)
HOME_FUSE_A = 40.0
VOLTAGE = 230.0


@pytest.fixture
async def two_batteries(hass: HomeAssistant) -> AsyncIterator[MicrogridSimulator]:
    """A generated microgrid with two battery pairs at different SoC."""
    async with serving(hass, generate_scenario(10)) as sim:
        yield sim


@pytest.fixture
async def fast_home(hass: HomeAssistant) -> AsyncIterator[MicrogridSimulator]:
    """The `home` scenario, 60 simulated seconds per real second."""
    async with serving(
        hass, load_scenario("home"), speed=60.0, sample_period_s=0.1
    ) as sim:
        yield sim


async def set_up(
    hass: HomeAssistant, sim: MicrogridSimulator, *working: int
) -> FrequenzMicrogridConfigEntry:
    """Set up an entry on `sim` and wait until the given components work."""
    entry = await setup_entry(hass, sim.url, unique_id=str(sim.scenario.microgrid_id))
    await wait_until_working(entry, *working)
    return entry


async def test_power_reaches_the_inverters_as_a_soc_balanced_split(
    hass: HomeAssistant, two_batteries: MicrogridSimulator
) -> None:
    sim = two_batteries
    entry = await set_up(hass, sim, BATTERY_A, BATTERY_B)
    socs = {
        cid: sim.model.component(cid).battery.soc_pct  # type: ignore[union-attr]
        for cid in (BATTERY_A, BATTERY_B)
    }
    response = await call_action(
        hass, "propose_power", propose(entry, "batteries", power=6000)
    )

    # Charging, equal capacities, exponent 1: shares by the room left below the
    # 90 % SoC limit (spec §2).
    room = {cid: 90.0 - soc for cid, soc in socs.items()}
    total_room = sum(room.values())
    expected = {
        INVERTER_A: 6000 * room[BATTERY_A] / total_room,
        INVERTER_B: 6000 * room[BATTERY_B] / total_room,
    }
    assert expected[INVERTER_A] > 2 * expected[INVERTER_B], "an uneven split"
    result = response["result"]
    assert result["kind"] == "success"
    assert result["succeeded_components"] == [BATTERY_A, BATTERY_B]
    for inverter, power in expected.items():
        # SoC read from telemetry a moment before the call: within 1 %.
        assert last_setpoint(sim, inverter) == pytest.approx(power, rel=0.01)
        assert result["setpoints"][str(inverter)] == last_setpoint(sim, inverter)
    assert math.fsum(result["setpoints"].values()) == pytest.approx(6000)
    assert sim.unsafe_setpoint_count == 0


async def test_two_actors_with_priorities_and_bounds(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator,
) -> None:
    """The spec's shifting matryoshka: powers add up, bounds narrow and shift."""
    entry = setup_integration
    await wait_until_working(entry, BATTERY)
    high = await call_action(
        hass,
        "propose_power",
        propose(
            entry,
            "batteries",
            power=1000,
            lower=-2000,
            upper=3000,
            priority=10,
            actor="peak_shaving",
        ),
    )
    # Priority 10 is the highest: it gets the battery's ±5 kW.
    assert high["bounds"]["inclusion_lower"] == -5000.0
    assert high["bounds"]["inclusion_upper"] == 5000.0
    assert high["target_power"] == 1000.0

    low = await call_action(
        hass,
        "propose_power",
        propose(entry, "batteries", power=4000, priority=1, actor="solar_surplus"),
    )
    # Below priority 10: its bounds [-2000, 3000] shifted down by its 1000 W.
    assert low["bounds"]["inclusion_lower"] == -3000.0
    assert low["bounds"]["inclusion_upper"] == 2000.0
    # 1000 W + the lower priority's 4000 W clamped to 2000 W.
    assert low["target_power"] == 3000.0
    assert last_setpoint(simulator, BATTERY_INVERTER) == 3000.0

    # Withdrawing the higher priority frees the lower one: 4000 W.
    withdrawn = await call_action(
        hass,
        "withdraw_proposal",
        {
            "config_entry_id": entry.entry_id,
            "pool": "batteries",
            "actor": "peak_shaving",
        },
    )
    assert withdrawn["target_power"] == 4000.0
    assert last_setpoint(simulator, BATTERY_INVERTER) == 4000.0
    assert simulator.unsafe_setpoint_count == 0


async def test_evs_plugging_in_get_fair_shares_within_the_fuse(
    hass: HomeAssistant, fast_home: MicrogridSimulator
) -> None:
    sim = fast_home
    entry = await set_up(hass, sim, BATTERY)
    for charger in HOME_CHARGERS:
        sim.plug_ev(charger, EvSpec(soc_pct=20.0, phases=3, max_current_a=32.0))
    # No proposal: the EV pool's default is its maximum, shared fairly.
    await wait_for(
        lambda: all((last_setpoint(sim, c) or 0.0) > 0 for c in HOME_CHARGERS),
        what="both EVs charging",
    )
    await wait_for(
        lambda: math.isclose(
            last_setpoint(sim, GARAGE_WALLBOX) or 0.0,
            last_setpoint(sim, DRIVEWAY_WALLBOX) or 1.0,
            rel_tol=0.05,
        ),
        what="equal shares",
    )
    shares = [last_setpoint(sim, c) or 0.0 for c in HOME_CHARGERS]
    # Both EVs could take 32 A; the 40 A fuse (less the household's load) can't:
    # each gets well above the 6 A minimum, both together stay under the fuse.
    assert all(share > 3 * VOLTAGE * 6.0 for share in shares)
    assert sum(shares) <= 3 * VOLTAGE * HOME_FUSE_A
    grid = sim.model.component(GRID_METER).phases
    assert max(grid.l1, grid.l2, grid.l3) / VOLTAGE <= HOME_FUSE_A + 1e-6

    # An EV limit from an automation: the pool target is shared fairly too.
    response = await call_action(
        hass, "propose_power", propose(entry, "ev_chargers", power=9000)
    )
    assert response["target_power"] == 9000.0
    await wait_for(
        lambda: math.isclose(
            sum(last_setpoint(sim, c) or 0.0 for c in HOME_CHARGERS),
            9000.0,
            rel_tol=0.01,
        ),
        what="EV pool at 9 kW",
    )
    assert sim.unsafe_setpoint_count == 0


async def test_failing_inverter_partial_failure_back_off_and_recovery(
    hass: HomeAssistant, two_batteries: MicrogridSimulator
) -> None:
    sim = two_batteries
    entry = await set_up(hass, sim, BATTERY_A, BATTERY_B)
    controller = entry.runtime_data.engine.controller
    sim.inject_fault(INVERTER_B, Fault.REJECT_SET_POWER)

    response = await call_action(
        hass, "propose_power", propose(entry, "batteries", power=6000)
    )
    result = response["result"]
    assert result["kind"] == "partial_failure"
    assert result["failed_components"] == [BATTERY_B]
    assert result["succeeded_components"] == [BATTERY_A]
    # The failed battery is blocked and its power placed on the other one.
    health = {c.component_id: c for c in controller.status().components}
    assert health[BATTERY_B].health is ComponentHealth.UNCERTAIN
    assert health[BATTERY_B].blocked_until is not None
    assert held_setpoint(sim, INVERTER_A) == pytest.approx(6000)
    assert held_setpoint(sim, INVERTER_B) is None
    status = await call_action(
        hass, "get_power_status", {"config_entry_id": entry.entry_id}
    )
    components = {c["component"]: c for c in status["components"]}
    assert components[BATTERY_B]["health"] == "uncertain"
    assert components[BATTERY_B]["blocked_until"] is not None

    # Repaired: once its block has run out it gets its share again.
    sim.clear_fault(INVERTER_B)
    await wait_for(
        lambda: (held_setpoint(sim, INVERTER_B) or 0.0) > 0,
        what="the recovered inverter steered again",
    )
    await wait_for(
        lambda: all(
            c.health is ComponentHealth.WORKING
            for c in controller.status().components
            if c.component_id in (BATTERY_A, BATTERY_B)
        ),
        what="both batteries working",
    )
    total = (held_setpoint(sim, INVERTER_A) or 0.0) + (
        held_setpoint(sim, INVERTER_B) or 0.0
    )
    assert total == pytest.approx(6000, rel=0.01)
    assert sim.unsafe_setpoint_count == 0


async def test_setpoint_still_held_after_three_lifetimes(
    hass: HomeAssistant, fast_home: MicrogridSimulator
) -> None:
    sim = fast_home
    entry = await set_up(hass, sim, BATTERY)
    await call_action(hass, "propose_power", propose(entry, "batteries", power=2000))
    first = next(
        s for s in reversed(sim.setpoints) if s.component_id == BATTERY_INVERTER
    )
    three_lifetimes = first.sim_time + 3 * first.lifetime_s
    await wait_for(
        lambda: sim.clock.now() > three_lifetimes,
        timeout_s=3 * first.lifetime_s / sim.clock.speed + 5,
        what="three setpoint lifetimes",
    )
    assert held_setpoint(sim, BATTERY_INVERTER) == 2000.0
    refreshes = [
        s
        for s in sim.setpoints
        if s.component_id == BATTERY_INVERTER and s.sim_time > first.sim_time
    ]
    assert len(refreshes) >= 3, "re-sent before every lifetime lapsed"
    assert all(s.power_w == 2000.0 for s in refreshes)
    assert sim.unsafe_setpoint_count == 0


@pytest.mark.parametrize("how", ["unload", "stop"])
async def test_unload_and_stop_release_the_components(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator,
    how: str,
) -> None:
    entry = setup_integration
    await wait_until_working(entry, BATTERY)
    await call_action(hass, "propose_power", propose(entry, "batteries", power=2500))
    await call_action(hass, "propose_power", propose(entry, "pv", power=-1000))
    assert held_setpoint(simulator, BATTERY_INVERTER) == 2500.0
    runtime = entry.runtime_data
    controller = runtime.engine.controller

    if how == "unload":
        assert await hass.config_entries.async_unload(entry.entry_id)
    else:
        hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()

    # The battery is sent back to 0 W at once; the PV limit is no longer kept
    # alive (it lapses to full production); no proposal is left.
    assert last_setpoint(simulator, BATTERY_INVERTER) == 0.0
    assert held_setpoint(simulator, BATTERY_INVERTER) == 0.0
    status = controller.status()
    assert all(not s.proposals for p in status.pools.values() for s in p.component_sets)
    sent = len(simulator.setpoints)
    assert not runtime.client.is_connected
    assert len(simulator.setpoints) == sent
    if how == "unload":
        assert entry.state is ConfigEntryState.NOT_LOADED
    assert simulator.unsafe_setpoint_count == 0


async def test_a_withdrawn_subset_leaves_the_status(hass: HomeAssistant) -> None:
    """The status lists the sets that steer, not a subset released long ago.

    `generated:10` has the battery pairs 3/4 and 7/8. After a proposal for
    battery 4 alone is withdrawn and the whole pool proposed, inverter 3 is
    steered by the pool's set; the subset showed its last release (3: 0 W)
    for good (found by an oracle probe).
    """
    async with serving(hass, generate_scenario(10)) as sim:
        entry = await setup_entry(hass, sim.url, unique_id="1")
        await wait_until_working(entry, BATTERY_A, BATTERY_B)
        subset = propose(
            entry, "batteries", actor="b", components=[BATTERY_A], power=-3000
        )
        await call_action(hass, "propose_power", subset)
        withdrawal = {"config_entry_id": entry.entry_id, "pool": "batteries"}
        await call_action(hass, "withdraw_proposal", {**withdrawal, "actor": "b"})
        whole = propose(entry, "batteries", actor="a", power=-6000)
        await call_action(hass, "propose_power", whole)

        async def listed_sets() -> list[list[int]]:
            status = await call_action(
                hass, "get_power_status", {"config_entry_id": entry.entry_id}
            )
            sets = status["pools"]["batteries"]["component_sets"]
            return [component_set["components"] for component_set in sets]

        for _ in range(30):
            if await listed_sets() == [[BATTERY_A, BATTERY_B]]:
                break
            await asyncio.sleep(0.1)
        assert await listed_sets() == [[BATTERY_A, BATTERY_B]]
