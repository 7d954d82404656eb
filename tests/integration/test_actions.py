"""The actions against the simulator over real gRPC: validation, responses, effects.

Every refused call must change nothing: no setpoint reaches the simulator and no
proposal is left in the controller.
"""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import probatio as vol
import pytest

from custom_components.frequenz_microgrid.const import DOMAIN
from custom_components.frequenz_microgrid.engine.control import Pool
from custom_components.frequenz_microgrid.runtime import (
    FrequenzMicrogridConfigEntry,
)
from custom_components.frequenz_microgrid.simulator import Fault, MicrogridSimulator
from tests.observations import setpoints_to

from .conftest import wait_for
from .steering_helpers import (
    BATTERY,
    BATTERY_INVERTER,
    GRID_METER,
    PV_INVERTER,
    call_action,
    last_setpoint,
    propose,
    wait_until_working,
)


async def wait_until_steerable(entry: FrequenzMicrogridConfigEntry) -> None:
    """Wait until the battery and PV inverter work and the first tick is done.

    The first tick sends the idle EV chargers their 0 W; after that nothing is
    sent without a reason, so a test can count setpoints.
    """
    await wait_until_working(entry, BATTERY, PV_INVERTER)
    controller = entry.runtime_data.engine.controller

    def first_tick_done() -> bool:
        ev_set = next(
            iter(controller.status().pools[Pool.EV_CHARGERS].component_sets), None
        )
        return ev_set is not None and ev_set.last_result is not None

    await wait_for(first_tick_done, what="the EV chargers' first distribution")


def cases(
    table: list[tuple[str, dict[str, Any], str]],
) -> list[Any]:
    """Turn `(name, data, translation key)` rows into named pytest parameters."""
    return [pytest.param(data, key, id=name) for name, data, key in table]


async def test_propose_power_response_and_setpoint(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator,
) -> None:
    entry = setup_integration
    await wait_until_steerable(entry)
    response = await call_action(
        hass,
        "propose_power",
        propose(
            entry,
            "batteries",
            power=1500,
            lower=-3000,
            upper=4000,
            priority=5,
            actor="tariff",
        ),
    )
    assert response["pool"] == "batteries"
    assert response["components"] == [BATTERY]
    assert response["priority"] == 5
    assert response["target_power"] == 1500.0
    # The bounds granted to priority 5: the battery's ±5 kW, nothing above it.
    assert response["bounds"]["inclusion_lower"] == -5000.0
    assert response["bounds"]["inclusion_upper"] == 5000.0
    result = response["result"]
    assert result["kind"] == "success"
    assert result["succeeded_power"] == 1500.0
    assert result["succeeded_components"] == [BATTERY]
    assert result["excess_power"] == 0.0
    assert result["setpoints"] == {str(BATTERY_INVERTER): 1500.0}
    last = simulator.setpoints[-1]
    assert (last.component_id, last.power_w) == (BATTERY_INVERTER, 1500.0)

    # The same actor replaces its own proposal.
    response = await call_action(
        hass,
        "propose_power",
        propose(entry, "batteries", power=-1000, priority=5, actor="tariff"),
    )
    assert response["target_power"] == -1000.0
    status = await call_action(
        hass, "get_power_status", {"config_entry_id": entry.entry_id}
    )
    (battery_set,) = status["pools"]["batteries"]["component_sets"]
    assert [p["source_id"] for p in battery_set["proposals"]] == ["action:tariff"]
    assert battery_set["proposals"][0]["power"] == -1000.0
    assert battery_set["proposals"][0]["keep_alive"] is True
    assert battery_set["target_power"] == -1000.0
    assert battery_set["last_result"]["kind"] == "success"
    components = {c["component"]: c for c in status["components"]}
    assert components[BATTERY]["health"] == "working"
    assert components[BATTERY]["blocked_until"] is None
    assert simulator.setpoints[-1].power_w == -1000.0
    assert simulator.unsafe_setpoint_count == 0


async def test_bounds_alone_and_default_priority_from_options(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator,
) -> None:
    entry = setup_integration
    await wait_until_steerable(entry)
    hass.config_entries.async_update_entry(entry, options={"default_priority": 7})
    await hass.async_block_till_done()  # an options change reloads the entry
    await wait_until_steerable(entry)
    response = await call_action(
        hass,
        "propose_power",
        propose(entry, "batteries", upper=-500),
    )
    assert response["priority"] == 7
    # Bounds alone ask for no power, but bind every lower priority.
    assert response["bounds"]["inclusion_upper"] == 5000.0
    response = await call_action(
        hass,
        "propose_power",
        propose(entry, "batteries", power=2000, priority=0, actor="charger"),
    )
    assert response["bounds"]["inclusion_upper"] == -500.0
    assert response["target_power"] == -500.0
    assert simulator.setpoints[-1].power_w == -500.0


async def test_withdraw_returns_the_pool_to_its_default(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator,
) -> None:
    entry = setup_integration
    await wait_until_steerable(entry)
    await call_action(
        hass,
        "propose_power",
        propose(entry, "batteries", power=2500),
    )
    response = await call_action(
        hass,
        "withdraw_proposal",
        {"config_entry_id": entry.entry_id, "pool": "batteries"},
    )
    assert response["pool"] == "batteries"
    assert response["target_power"] is None
    status = await call_action(
        hass, "get_power_status", {"config_entry_id": entry.entry_id}
    )
    for component_set in status["pools"]["batteries"]["component_sets"]:
        assert component_set["proposals"] == []
    # Nobody asks for power any more: the battery is sent back to 0 W.
    assert simulator.setpoints[-1].component_id == BATTERY_INVERTER
    assert simulator.setpoints[-1].power_w == 0.0


async def test_set_component_bounds_narrows_the_simulated_bounds(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator,
) -> None:
    entry = setup_integration
    response = await call_action(
        hass,
        "set_component_bounds",
        {
            "config_entry_id": entry.entry_id,
            "component": BATTERY_INVERTER,
            "lower": -2000,
            "upper": 1500,
            "validity": "60",
        },
    )
    assert response["component"] == BATTERY_INVERTER
    assert response["valid_until"] is not None
    bounds = simulator.model.setpoint_bounds(BATTERY_INVERTER)
    assert bounds is not None
    assert (bounds.inclusion_lower, bounds.inclusion_upper) == (-2000.0, 1500.0)

    # A battery takes DC power bounds (the simulator refuses AC ones for it).
    await call_action(
        hass,
        "set_component_bounds",
        {
            "config_entry_id": entry.entry_id,
            "component": BATTERY,
            "lower": -1000,
            "upper": 1000,
            "validity": 5,
        },
    )
    bounds = simulator.model.setpoint_bounds(BATTERY_INVERTER)
    assert bounds is not None
    assert (bounds.inclusion_lower, bounds.inclusion_upper) == (-1000.0, 1000.0)


async def test_steering_keeps_to_bounds_set_a_moment_ago(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator,
) -> None:
    """Bounds just set hold for the steering at once, not from the next sample.

    The microgrid applies them at once but reports them with the inverter's
    next sample: a proposal in between (or the one in force) sent 5 kW to an
    inverter bounded to 2 kW (found by a probe of the README's examples).
    """
    entry = setup_integration
    await wait_until_working(entry, BATTERY)
    await call_action(
        hass,
        "propose_power",
        propose(entry, "batteries", power=5000, actor="a", priority=1),
    )
    assert last_setpoint(simulator, BATTERY_INVERTER) == 5000.0
    sent_before = len(setpoints_to(simulator, BATTERY_INVERTER))
    unsafe_before = simulator.unsafe_setpoint_count
    await call_action(
        hass,
        "set_component_bounds",
        {
            "config_entry_id": entry.entry_id,
            "component": BATTERY_INVERTER,
            "lower": -2000,
            "upper": 2000,
            "validity": 60,
        },
    )
    response = await call_action(
        hass, "propose_power", propose(entry, "batteries", power=3000, actor="b")
    )
    assert response["result"]["setpoints"] == {str(BATTERY_INVERTER): 2000.0}
    sent = setpoints_to(simulator, BATTERY_INVERTER)[sent_before:]
    assert sent
    assert max(sent) == 2000.0
    assert simulator.unsafe_setpoint_count == unsafe_before


async def test_set_component_bounds_refused_by_the_microgrid(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator,
) -> None:
    """A failure at the microgrid is a `HomeAssistantError`, not a validation one."""
    entry = setup_integration
    await simulator.stop()
    with pytest.raises(HomeAssistantError) as raised:
        await call_action(
            hass,
            "set_component_bounds",
            {
                "config_entry_id": entry.entry_id,
                "component": BATTERY_INVERTER,
                "lower": -1,
                "upper": 1,
            },
        )
    assert not isinstance(raised.value, ServiceValidationError)
    assert raised.value.translation_key == "microgrid_error"


BAD_PROPOSALS: list[tuple[str, dict[str, Any], str]] = [
    ("negative EV power", {"pool": "ev_chargers", "power": -100}, "negative_ev_power"),
    ("positive PV power", {"pool": "pv", "power": 100}, "positive_pv_power"),
    (
        "lower above upper",
        {"pool": "batteries", "lower": 100, "upper": -100},
        "lower_above_upper",
    ),
    ("NaN power", {"pool": "batteries", "power": float("nan")}, "not_finite"),
    ("infinite power", {"pool": "batteries", "power": float("inf")}, "not_finite"),
    ("infinite bound", {"pool": "batteries", "lower": float("-inf")}, "not_finite"),
    ("nothing proposed", {"pool": "batteries"}, "empty_proposal"),
    (
        "component of another pool",
        {"pool": "batteries", "power": 100, "components": [PV_INVERTER]},
        "unknown_component",
    ),
    (
        "unknown component",
        {"pool": "batteries", "power": 100, "components": [BATTERY, 99]},
        "unknown_component",
    ),
]


@pytest.mark.parametrize(("data", "translation_key"), cases(BAD_PROPOSALS))
async def test_bad_proposal_is_refused_and_sends_nothing(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator,
    data: dict[str, Any],
    translation_key: str,
) -> None:
    entry = setup_integration
    await wait_until_steerable(entry)
    sent = len(simulator.setpoints)
    with pytest.raises(ServiceValidationError) as raised:
        await call_action(
            hass, "propose_power", {"config_entry_id": entry.entry_id, **data}
        )
    assert raised.value.translation_key == translation_key
    assert raised.value.translation_domain == DOMAIN
    assert len(simulator.setpoints) == sent
    status = entry.runtime_data.engine.controller.status()
    assert all(not s.proposals for p in status.pools.values() for s in p.component_sets)


BAD_BOUNDS: list[tuple[str, dict[str, Any], str]] = [
    ("lower above upper", {"lower": 10, "upper": -10}, "lower_above_upper"),
    ("NaN bound", {"lower": float("nan"), "upper": 10}, "not_finite"),
    ("bad validity", {"lower": -1, "upper": 1, "validity": 30}, "invalid_validity"),
    ("meter", {"component": GRID_METER, "lower": -1, "upper": 1}, "unknown_component"),
    ("unknown id", {"component": 99, "lower": -1, "upper": 1}, "unknown_component"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "translation_key"), cases(BAD_BOUNDS))
async def test_bad_bounds_are_refused_and_change_nothing(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator,
    data: dict[str, Any],
    translation_key: str,
) -> None:
    entry = setup_integration
    before = simulator.model.setpoint_bounds(BATTERY_INVERTER)
    with pytest.raises(ServiceValidationError) as raised:
        await call_action(
            hass,
            "set_component_bounds",
            {"config_entry_id": entry.entry_id, "component": BATTERY_INVERTER, **data},
        )
    assert raised.value.translation_key == translation_key
    assert simulator.model.setpoint_bounds(BATTERY_INVERTER) == before


async def test_schema_refuses_unknown_pool_and_priority_out_of_range(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator,
) -> None:
    entry = setup_integration
    sent = len(simulator.setpoints)
    for data in ({"pool": "heat_pumps", "power": 1}, {"pool": "pv", "priority": 101}):
        with pytest.raises(vol.Invalid):
            await call_action(
                hass, "propose_power", {"config_entry_id": entry.entry_id, **data}
            )
    assert len(simulator.setpoints) == sent


async def test_schema_refuses_fractions_and_booleans_where_numbers_are_asked(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator,
) -> None:
    """Nothing is truncated: priority 1.5 is no priority 1, component 3.9 no 3.

    A whole number sent as a float (a template's 2.0) is that number.
    """
    entry = setup_integration
    await wait_until_steerable(entry)
    sent = len(simulator.setpoints)
    for odd in (
        {"priority": 1.5},
        {"priority": True},
        {"components": [BATTERY + 0.9]},
        {"power": True},
    ):
        with pytest.raises(vol.Invalid):
            await call_action(
                hass,
                "propose_power",
                {**propose(entry, "batteries", power=1000), **odd},
            )
    assert len(simulator.setpoints) == sent
    status = entry.runtime_data.engine.controller.status()
    assert not any(s.proposals for s in status.pools[Pool.BATTERIES].component_sets)

    response = await call_action(
        hass, "propose_power", propose(entry, "batteries", power=1000, priority=2.0)
    )
    assert response["priority"] == 2


async def test_priorities_at_the_ends_of_the_range_are_accepted(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator,
) -> None:
    """±100 are valid priorities (the range is inclusive); ±101 are refused.

    The highest priority pins the battery at 1.5 kW, so the lowest one's -2 kW
    (battery powers add up across priorities) has no room left; both proposals can
    be withdrawn by the priority they were proposed at.
    """
    entry = setup_integration
    await wait_until_steerable(entry)
    for priority, power, actor in ((-100, -2000, "lowest"), (100, 1500, "highest")):
        response = await call_action(
            hass,
            "propose_power",
            propose(
                entry,
                "batteries",
                power=power,
                lower=power,
                upper=power,
                priority=priority,
                actor=actor,
            ),
        )
        assert response["priority"] == priority
    assert response["target_power"] == 1500.0
    assert simulator.setpoints[-1].power_w == 1500.0

    sent = len(simulator.setpoints)
    for service in ("propose_power", "withdraw_proposal"):
        for priority in (-101, 101):
            with pytest.raises(vol.Invalid):
                await call_action(
                    hass,
                    service,
                    propose(entry, "batteries", priority=priority, actor="highest"),
                )
    assert len(simulator.setpoints) == sent

    response = await call_action(
        hass,
        "withdraw_proposal",
        propose(entry, "batteries", priority=100, actor="highest"),
    )
    assert response["target_power"] == -2000.0
    response = await call_action(
        hass,
        "withdraw_proposal",
        propose(entry, "batteries", priority=-100, actor="lowest"),
    )
    assert response["target_power"] is None


@pytest.mark.parametrize(
    "service", ["propose_power", "withdraw_proposal", "get_power_status"]
)
async def test_unknown_and_unloaded_entries_are_refused(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator,
    service: str,
) -> None:
    entry = setup_integration
    data: dict[str, Any] = {"pool": "batteries", "power": 100}
    if service == "get_power_status":
        data = {}
    elif service == "withdraw_proposal":
        data = {"pool": "batteries"}
    with pytest.raises(ServiceValidationError) as raised:
        await call_action(hass, service, {"config_entry_id": "nope", **data})
    assert raised.value.translation_domain == "homeassistant"
    assert raised.value.translation_key == "service_config_entry_not_found"

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    sent = len(simulator.setpoints)
    with pytest.raises(ServiceValidationError) as raised:
        await call_action(hass, service, {"config_entry_id": entry.entry_id, **data})
    assert raised.value.translation_domain == "homeassistant"
    assert raised.value.translation_key == "service_config_entry_not_loaded"
    assert len(simulator.setpoints) == sent


async def test_every_setpoint_failing_raises_and_keeps_the_proposal(
    hass: HomeAssistant,
    setup_integration: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator,
) -> None:
    """The only battery refusing its setpoint: nothing took effect, so it raises."""
    entry = setup_integration
    await wait_until_steerable(entry)
    simulator.inject_fault(BATTERY_INVERTER, Fault.REJECT_SET_POWER)
    with pytest.raises(HomeAssistantError) as raised:
        await call_action(
            hass,
            "propose_power",
            propose(entry, "batteries", power=1000),
        )
    assert raised.value.translation_key == "setpoints_failed"
    status = entry.runtime_data.engine.controller.status()
    (battery_set,) = status.pools[Pool.BATTERIES].component_sets
    assert [p.power for p in battery_set.proposals] == [1000.0]
    assert simulator.unsafe_setpoint_count == 0
