"""Number entities: Home Assistant's setpoint per pool, over gRPC to the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import pytest

from custom_components.frequenz_microgrid.engine.bounds import Bounds
from custom_components.frequenz_microgrid.engine.control import ProposalStatus
from custom_components.frequenz_microgrid.number import NUMBERS
from custom_components.frequenz_microgrid.simulator import (
    Fault,
    MicrogridSimulator,
    load_scenario,
)
from tests.observations import setpoints_to

from .conftest import serving, setup_entry, wait_for
from .steering_helpers import (
    BATTERY,
    BATTERY_INVERTER,
    DRIVEWAY_WALLBOX,
    GARAGE_WALLBOX,
    PV_INVERTER,
    call_action,
    last_setpoint,
    number_value,
    plug_ev_and_wait_for_charging,
    propose,
    set_number,
    setup_steerable,
    state,
    wait_for_setpoint,
    wait_for_state,
)

DEPOT_INVERTERS = {11: (12,), 13: (14,), 15: (16, 17)}
"""Battery inverters of the `depot` scenario and the batteries behind them."""


@pytest.mark.parametrize("value", [0.0, 1500.0, 22080.0])
def test_the_value_shown_is_the_value_proposed(value: float) -> None:
    for description in NUMBERS:
        proposal = ProposalStatus(
            source_id="home_assistant",
            priority=0,
            power=description.power_fn(value),
            bounds=description.bounds_fn(value),
            age_s=0.0,
            keep_alive=True,
        )
        assert description.value_fn(proposal) == pytest.approx(value)


def test_the_limits_are_bounds_alone() -> None:
    """A limit is a bound, not a power: a power would snap past it to a minimum."""
    pv = next(d for d in NUMBERS if d.key == "pv_limit")
    assert pv.power_fn(2000.0) is None
    assert pv.bounds_fn(2000.0) == Bounds(-2000.0, None)
    ev = next(d for d in NUMBERS if d.key == "ev_chargers_limit")
    assert ev.power_fn(5000.0) is None
    assert ev.bounds_fn(5000.0) == Bounds(None, 5000.0)


def _mean_soc(sim: MicrogridSimulator, battery_ids: tuple[int, ...]) -> float:
    socs = []
    for battery_id in battery_ids:
        battery = sim.model.component(battery_id).battery
        assert battery is not None
        socs.append(battery.soc_pct)
    return sum(socs) / len(socs)


@pytest.fixture
async def depot(hass: HomeAssistant) -> AsyncIterator[MicrogridSimulator]:
    """Run the `depot` scenario: three battery inverters at different SoC."""
    async with serving(hass, load_scenario("depot")) as sim:
        yield sim


async def test_battery_setpoint_is_split_by_soc(
    hass: HomeAssistant, depot: MicrogridSimulator
) -> None:
    entry = await setup_steerable(hass, depot, 12, 14, 16)

    await set_number(hass, entry, "batteries_setpoint", 20_000.0)

    latest = {inv: setpoints_to(depot, inv)[-1] for inv in DEPOT_INVERTERS}
    assert sum(latest.values()) == pytest.approx(20_000.0)
    soc = {inv: _mean_soc(depot, bats) for inv, bats in DEPOT_INVERTERS.items()}
    # Charging: the emptier battery takes more (equal capacity, no bound binding).
    assert soc[11] < soc[13]
    assert latest[11] > latest[13] > 0
    assert number_value(hass, entry, "batteries_setpoint") == 20_000.0
    assert state(hass, entry, "batteries_setpoint").attributes["applied"] is True
    await wait_for_state(hass, entry, "batteries_target_power", "20000.0")
    assert depot.unsafe_setpoint_count == 0


async def test_range_follows_the_pools_power(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await setup_entry(hass, simulator.url)
    battery = simulator.model.setpoint_bounds(BATTERY_INVERTER)
    pv = simulator.model.setpoint_bounds(PV_INVERTER)
    garage = simulator.model.setpoint_bounds(GARAGE_WALLBOX)
    driveway = simulator.model.setpoint_bounds(DRIVEWAY_WALLBOX)
    assert battery is not None
    assert pv is not None
    assert garage is not None
    assert driveway is not None

    def attributes(key: str) -> tuple[float, float]:
        shown = state(hass, entry, key).attributes
        return (shown["min"], shown["max"])

    await wait_for(
        lambda: (
            attributes("batteries_setpoint")
            == (battery.inclusion_lower, battery.inclusion_upper)
            and attributes("pv_limit") == (0.0, -pv.inclusion_lower)
            and attributes("ev_chargers_limit")
            == (0.0, garage.inclusion_upper + driveway.inclusion_upper)
        ),
        what="the numbers' ranges",
    )


async def test_pv_limit_caps_production(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await setup_steerable(hass, simulator, PV_INVERTER)

    await set_number(hass, entry, "pv_limit", 2000.0)

    await wait_for_setpoint(simulator, PV_INVERTER, -2000.0)
    assert number_value(hass, entry, "pv_limit") == 2000.0
    await wait_for_state(hass, entry, "pv_target_power", "-2000.0")
    await wait_for(
        lambda: simulator.model.component(PV_INVERTER).active_power_w >= -2000.0 - 1e-6,
        what="PV production to drop to the limit",
    )
    assert simulator.unsafe_setpoint_count == 0


async def test_ev_limit_caps_charging(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await setup_entry(hass, simulator.url)
    await plug_ev_and_wait_for_charging(
        hass, entry, simulator, GARAGE_WALLBOX, above_w=5000.0
    )

    await set_number(hass, entry, "ev_chargers_limit", 5000.0)

    charging = last_setpoint(simulator, GARAGE_WALLBOX)
    assert charging is not None
    assert 0.0 < charging <= 5000.0
    assert last_setpoint(simulator, DRIVEWAY_WALLBOX) == 0.0
    assert number_value(hass, entry, "ev_chargers_limit") == 5000.0
    assert simulator.unsafe_setpoint_count == 0


async def test_without_working_battery_range_closes_and_setting_raises(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await setup_entry(hass, simulator.url)
    simulator.inject_fault(BATTERY_INVERTER, Fault.ERROR_STATE)
    await wait_for_state(hass, entry, f"{BATTERY}_excluded", "on")
    # Nothing may be granted without a working battery: only 0 W is in range.
    await wait_for(
        lambda: state(hass, entry, "batteries_setpoint").attributes["max"] == 0.0,
        what="the range to close",
    )
    sent_before = len(setpoints_to(simulator, BATTERY_INVERTER))

    with pytest.raises(HomeAssistantError) as raised:
        await set_number(hass, entry, "batteries_setpoint", 0.0)

    assert raised.value.translation_key == "setpoint_not_applied"
    assert len(setpoints_to(simulator, BATTERY_INVERTER)) == sent_before
    # The request stands (it is retried), so the number shows it as applied.
    assert number_value(hass, entry, "batteries_setpoint") == 0.0
    assert state(hass, entry, "batteries_setpoint").attributes["applied"] is True
    await wait_for_state(hass, entry, "batteries_last_result", "error")

    simulator.clear_fault(BATTERY_INVERTER)
    await wait_for_state(hass, entry, f"{BATTERY}_excluded", "off")
    await wait_for(
        lambda: state(hass, entry, "batteries_setpoint").attributes["max"] > 0.0,
        what="the range to open again",
    )
    await set_number(hass, entry, "batteries_setpoint", 2000.0)
    await wait_for_setpoint(simulator, BATTERY_INVERTER, 2000.0, after=sent_before)
    await wait_for_state(hass, entry, "batteries_last_result", "success")
    assert simulator.unsafe_setpoint_count == 0


async def test_range_narrows_to_what_a_higher_priority_leaves(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await setup_steerable(hass, simulator, BATTERY)
    await set_number(hass, entry, "batteries_setpoint", 500.0)

    await call_action(
        hass,
        "propose_power",
        propose(
            entry,
            "batteries",
            lower=-1000.0,
            upper=2000.0,
            priority=10,
            actor="peak_shaving",
        ),
    )

    await wait_for(
        lambda: (
            state(hass, entry, "batteries_setpoint").attributes["min"] == -1000.0
            and state(hass, entry, "batteries_setpoint").attributes["max"] == 2000.0
        ),
        what="the number's range to narrow",
    )
    # The sensors write at most once a second each: their change may trail.
    await wait_for(
        lambda: (
            state(hass, entry, "batteries_granted_lower").state == "-1000.0"
            and state(hass, entry, "batteries_granted_upper").state == "2000.0"
        ),
        what="the granted-bounds sensors to follow",
    )
    # Home Assistant's 500 W fits inside what the higher priority leaves.
    await wait_for_setpoint(simulator, BATTERY_INVERTER, 500.0)
    with pytest.raises(ServiceValidationError):
        await set_number(hass, entry, "batteries_setpoint", 3000.0)
    assert simulator.unsafe_setpoint_count == 0
