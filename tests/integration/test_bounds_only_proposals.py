"""Bounds without a power, and EV budgets below every EV's minimum, end to end.

A proposal that only sets bounds ("at most 7 kW for the EVs this evening",
"at most 2 kW of PV") limits what the pool does by default: the EVs charge
and the PV produces as much as the bounds allow. And an EV budget that fits
one EV's minimum but not two runs one EV instead of snapping past the budget.
All checked at the simulator: the setpoints it received and the power its
components draw.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from homeassistant.core import HomeAssistant
import pytest

from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import EvSpec, MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.scenario import (
    scenario_from_dict,
)
from tests.observations import held_setpoint

from .conftest import serving, setup_entry, wait_for
from .steering_helpers import (
    DRIVEWAY_WALLBOX,
    GARAGE_WALLBOX,
    PV_INVERTER,
    call_action,
    home_without_arrivals,
    number_value,
    propose,
    set_number,
    wait_for_state,
)

CHARGERS = (GARAGE_WALLBOX, DRIVEWAY_WALLBOX)
MIN_POWER_W = 6.0 * 3 * 230.0
"""One three-phase EV at its minimum current (6 A)."""


def held_total(sim: MicrogridSimulator) -> float:
    """What the two chargers are told to charge at now, together (W)."""
    return sum(held_setpoint(sim, c) or 0.0 for c in CHARGERS)


type Home = tuple[MicrogridSimulator, FrequenzMicrogridConfigEntry]


@pytest.fixture
async def home(hass: HomeAssistant) -> AsyncIterator[Home]:
    """The home without its EV arrivals, and its entry."""
    async with serving(
        hass, scenario_from_dict(home_without_arrivals()), sample_period_s=0.2
    ) as sim:
        entry = await setup_entry(
            hass, sim.url, unique_id=str(sim.scenario.microgrid_id)
        )
        yield sim, entry


async def plug_two_evs(sim: MicrogridSimulator) -> None:
    """Plug a 32 A three-phase EV into each charger; wait until both charge fully."""
    for charger in CHARGERS:
        sim.plug_ev(charger, EvSpec(max_current_a=32.0))
    await wait_for(lambda: held_total(sim) > 20_000.0, what="both EVs at full power")


async def test_an_upper_bound_alone_caps_the_evs_and_its_withdrawal_lifts_it(
    hass: HomeAssistant, home: Home
) -> None:
    """The README's evening limit: `upper: 7000` with no power, then withdrawn."""
    sim, entry = home
    await plug_two_evs(sim)

    response = await call_action(
        hass,
        "propose_power",
        propose(entry, "ev_chargers", actor="evening_peak", upper=7000),
    )
    assert response["target_power"] == 7000.0
    assert response["result"]["kind"] == "success"
    assert sum(response["result"]["setpoints"].values()) <= 7000.0 + 1e-3
    await wait_for(lambda: held_total(sim) <= 7000.0 + 1e-3, what="the cap")
    sim.model.advance_to(sim.clock.now())
    drawn = sum(sim.model.component(c).active_power_w for c in CHARGERS)
    assert drawn <= 7000.0 + 1.0

    await call_action(
        hass,
        "withdraw_proposal",
        {
            "config_entry_id": entry.entry_id,
            "pool": "ev_chargers",
            "actor": "evening_peak",
        },
    )
    await wait_for(
        lambda: held_total(sim) > 20_000.0, what="full charging after withdrawal"
    )


async def test_a_lower_bound_alone_curtails_the_pv(
    hass: HomeAssistant, home: Home
) -> None:
    """`lower: -2000` and no power: the PV produces at most 2 kW."""
    sim, entry = home
    await wait_for_state(hass, entry, f"{PV_INVERTER}_excluded", "off")
    sim.model.advance_to(sim.clock.now())
    assert sim.model.component(PV_INVERTER).active_power_w < -3000.0

    response = await call_action(
        hass, "propose_power", propose(entry, "pv", actor="cap", lower=-2000)
    )
    assert response["target_power"] == -2000.0
    assert response["result"]["setpoints"] == {str(PV_INVERTER): -2000.0}
    assert held_setpoint(sim, PV_INVERTER) == -2000.0

    def producing_at_most_2_kw() -> bool:
        sim.model.advance_to(sim.clock.now())
        return sim.model.component(PV_INVERTER).active_power_w >= -2000.0 - 1.0

    await wait_for(producing_at_most_2_kw, what="PV curtailed to 2 kW")


async def test_a_budget_for_one_ev_minimum_but_not_two_runs_one_ev(
    hass: HomeAssistant, home: Home
) -> None:
    """5 kW for two EVs of 4.14 kW minimum each: one charges, at 5 kW, not both.

    Summing the chargers' exclusion zones made the pool's zone (0, 8.28 kW), so
    the 5 kW target snapped to 8.28 kW (both EVs at their minimum).
    """
    sim, entry = home
    await plug_two_evs(sim)

    response = await call_action(
        hass, "propose_power", propose(entry, "ev_chargers", power=5000)
    )
    assert response["target_power"] == 5000.0
    assert response["bounds"]["exclusion_upper"] == MIN_POWER_W
    setpoints = sorted(response["result"]["setpoints"].values())
    assert setpoints == [0.0, 5000.0]
    await wait_for(
        lambda: sorted(held_setpoint(sim, c) or 0.0 for c in CHARGERS) == [0.0, 5000.0],
        what="one EV at 5 kW, the other waiting",
    )


async def test_the_ev_limit_number_never_lets_the_evs_exceed_it(
    hass: HomeAssistant, home: Home
) -> None:
    """5 kW: one EV at 5 kW; 3 kW: below one EV's minimum, so none charges.

    The number proposed its value as a power too, and a power inside the
    pool's exclusion zone snaps to the nearer edge: 3 kW became 4.14 kW.
    """
    sim, entry = home
    await plug_two_evs(sim)

    await set_number(hass, entry, "ev_chargers_limit", 5000.0)
    await wait_for(
        lambda: sorted(held_setpoint(sim, c) or 0.0 for c in CHARGERS) == [0.0, 5000.0],
        what="one EV at 5 kW",
    )
    assert number_value(hass, entry, "ev_chargers_limit") == 5000.0

    await set_number(hass, entry, "ev_chargers_limit", 3000.0)
    await wait_for(lambda: held_total(sim) == 0.0, what="no EV charging")
    assert number_value(hass, entry, "ev_chargers_limit") == 3000.0


async def test_withdrawing_a_bound_for_some_chargers_answers_for_them(
    hass: HomeAssistant, home: Home
) -> None:
    """The response names the chargers the bound was for, which charge again."""
    sim, entry = home
    await plug_two_evs(sim)
    await call_action(
        hass,
        "propose_power",
        propose(
            entry,
            "ev_chargers",
            actor="garage_cap",
            upper=5000,
            components=[GARAGE_WALLBOX],
        ),
    )
    await wait_for(lambda: held_setpoint(sim, GARAGE_WALLBOX) == 5000.0, what="the cap")
    response = await call_action(
        hass,
        "withdraw_proposal",
        {
            "config_entry_id": entry.entry_id,
            "pool": "ev_chargers",
            "actor": "garage_cap",
        },
    )
    assert response["components"] == [GARAGE_WALLBOX]
    await wait_for(
        lambda: (held_setpoint(sim, GARAGE_WALLBOX) or 0.0) > 5000.0,
        what="the garage EV back at full power",
    )
