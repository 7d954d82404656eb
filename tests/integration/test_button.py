"""Release buttons: withdraw Home Assistant's proposal; the pool falls back."""

from __future__ import annotations

from homeassistant.core import HomeAssistant

from custom_components.frequenz_microgrid.simulator import MicrogridSimulator
from tests.observations import setpoints_to

from .conftest import setup_entry, wait_for
from .steering_helpers import (
    BATTERY,
    BATTERY_INVERTER,
    GARAGE_WALLBOX,
    PV_INVERTER,
    call_action,
    last_setpoint,
    number_value,
    plug_ev_and_wait_for_charging,
    press,
    propose,
    set_number,
    setup_steerable,
    state,
    wait_for_setpoint,
    wait_for_state,
)


async def test_release_battery_goes_back_to_zero(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await setup_steerable(hass, simulator, BATTERY)
    await set_number(hass, entry, "batteries_setpoint", 3000.0)
    await wait_for_setpoint(simulator, BATTERY_INVERTER, 3000.0)
    sent = len(setpoints_to(simulator, BATTERY_INVERTER))

    await press(hass, entry, "batteries_release")

    await wait_for_setpoint(simulator, BATTERY_INVERTER, 0.0, after=sent)
    assert number_value(hass, entry, "batteries_setpoint") is None
    assert state(hass, entry, "batteries_setpoint").attributes["applied"] is False
    await wait_for_state(hass, entry, "batteries_target_power", "unknown")
    assert simulator.unsafe_setpoint_count == 0


async def test_release_pv_goes_back_to_full_production(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await setup_steerable(hass, simulator, PV_INVERTER)
    await set_number(hass, entry, "pv_limit", 2000.0)
    await wait_for_setpoint(simulator, PV_INVERTER, -2000.0)
    sent = len(setpoints_to(simulator, PV_INVERTER))

    await press(hass, entry, "pv_release")

    bounds = simulator.model.setpoint_bounds(PV_INVERTER)
    assert bounds is not None
    await wait_for_setpoint(simulator, PV_INVERTER, bounds.inclusion_lower, after=sent)
    assert number_value(hass, entry, "pv_limit") is None
    assert simulator.unsafe_setpoint_count == 0


async def test_release_ev_goes_back_to_full_charging(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await setup_entry(hass, simulator.url)
    unlimited = await plug_ev_and_wait_for_charging(
        hass, entry, simulator, GARAGE_WALLBOX
    )
    await set_number(hass, entry, "ev_chargers_limit", 4500.0)
    assert (last_setpoint(simulator, GARAGE_WALLBOX) or 0.0) <= 4500.0 < unlimited

    await press(hass, entry, "ev_chargers_release")

    await wait_for(
        lambda: last_setpoint(simulator, GARAGE_WALLBOX) == unlimited,
        what="the EV to charge as before the limit",
    )
    assert number_value(hass, entry, "ev_chargers_limit") is None
    assert simulator.unsafe_setpoint_count == 0


async def test_release_keeps_the_proposals_of_actions(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await setup_steerable(hass, simulator, BATTERY)
    await call_action(hass, "propose_power", propose(entry, "batteries", power=1000.0))
    # Same priority: the shifting matryoshka adds both actors' powers.
    await set_number(hass, entry, "batteries_setpoint", 2000.0)
    await wait_for_setpoint(simulator, BATTERY_INVERTER, 3000.0)

    await press(hass, entry, "batteries_release")

    await wait_for_setpoint(simulator, BATTERY_INVERTER, 1000.0)
    await wait_for_state(hass, entry, "batteries_target_power", "1000.0")
    assert simulator.unsafe_setpoint_count == 0
