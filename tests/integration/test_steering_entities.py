"""Steering sensors and binary sensors, restore/re-apply, snapshots of every entity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import HomeAssistantError
import pytest
from pytest_homeassistant_custom_component.common import (
    mock_restore_cache_with_extra_data,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.frequenz_microgrid.binary_sensor import (
    BLOCKED_REASON,
    exclusion_details,
)
from custom_components.frequenz_microgrid.const import CONF_REAPPLY_SETPOINTS
from custom_components.frequenz_microgrid.engine.health import (
    ComponentHealth,
    ComponentKind,
    ComponentStatus,
)
from custom_components.frequenz_microgrid.simulator import Fault, MicrogridSimulator
from tests.observations import held_setpoint, setpoints_to

from .conftest import setup_entry, wait_for
from .microgrid_factory import entity_snapshot
from .steering_helpers import (
    BATTERY,
    BATTERY_INVERTER,
    DRIVEWAY_WALLBOX,
    GARAGE_WALLBOX,
    PV_INVERTER,
    last_setpoint,
    number_value,
    press,
    set_number,
    setup_steerable,
    state,
    steering_entries,
    wait_for_setpoint,
    wait_for_state,
)

BATTERY_NUMBER = "number.simulated_home_battery_power_setpoint"
"""The battery number's entity id (from the `home` hub's name) for the restore cache."""

# --- Excluded: the attributes -----------------------------------------------------


def _status(
    kind: ComponentKind, health: ComponentHealth, problem: str | None = None
) -> ComponentStatus:
    blocked = 105.0 if health is ComponentHealth.UNCERTAIN else None
    return ComponentStatus(1, kind, health, problem, blocked)


def test_exclusion_details_convert_the_block_to_a_time() -> None:
    blocked = _status(ComponentKind.BATTERY, ComponentHealth.UNCERTAIN)
    epoch = datetime(2025, 1, 1, tzinfo=UTC)

    def to_wall_time(at: float) -> datetime:
        return epoch + timedelta(seconds=at)

    assert exclusion_details(blocked, to_wall_time) == {
        "health": "uncertain",
        "reason": BLOCKED_REASON,
        "blocked_until": "2025-01-01T00:01:45+00:00",
    }
    broken = _status(ComponentKind.BATTERY, ComponentHealth.NOT_WORKING, "no data")
    assert exclusion_details(broken, to_wall_time) == {
        "health": "not_working",
        "reason": "no data",
        "blocked_until": None,
    }


# --- Against the simulator ---------------------------------------------------------


async def test_steering_entities_snapshot(
    hass: HomeAssistant, simulator: MicrogridSimulator, snapshot: SnapshotAssertion
) -> None:
    entry = await setup_steerable(hass, simulator, BATTERY, PV_INVERTER)

    def chargers_idle() -> bool:
        return all(
            state(hass, entry, f"{c}_excluded").attributes.get("reason")
            == "no EV connected"
            for c in (GARAGE_WALLBOX, DRIVEWAY_WALLBOX)
        )

    await wait_for(chargers_idle, what="the chargers to be idle")
    await wait_for_state(hass, entry, "ev_chargers_last_result", "success")

    entries = steering_entries(hass, entry)
    assert {e.domain for e in entries} == {
        "number",
        "button",
        "sensor",
        "binary_sensor",
    }
    snap = entity_snapshot(snapshot)
    for entity_entry in entries:
        assert entity_entry == snap(name=f"{entity_entry.entity_id}-entry")
        assert hass.states.get(entity_entry.entity_id) == snap(
            name=f"{entity_entry.entity_id}-state"
        )
    assert simulator.unsafe_setpoint_count == 0


def _restore_battery_number(hass: HomeAssistant, value: float, **extra: Any) -> None:
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(BATTERY_NUMBER, str(value)),
                {
                    "native_value": value,
                    "native_min_value": -5000.0,
                    "native_max_value": 5000.0,
                    "native_step": 1.0,
                    "native_unit_of_measurement": "W",
                    **extra,
                },
            )
        ],
    )


async def test_restored_value_is_not_applied_by_default(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    _restore_battery_number(hass, 2500.0)
    entry = await setup_entry(hass, simulator.url)
    assert state(hass, entry, "batteries_setpoint").entity_id == BATTERY_NUMBER
    await wait_for_state(hass, entry, f"{BATTERY}_excluded", "off")

    assert number_value(hass, entry, "batteries_setpoint") == 2500.0
    assert state(hass, entry, "batteries_setpoint").attributes["applied"] is False
    assert state(hass, entry, "batteries_target_power").state == "unknown"
    assert not any(setpoints_to(simulator, BATTERY_INVERTER))

    # Releasing also drops the restored value.
    await press(hass, entry, "batteries_release")
    await wait_for_state(hass, entry, "batteries_setpoint", "unknown")
    # Setting it again applies it.
    await set_number(hass, entry, "batteries_setpoint", 2500.0)
    await wait_for_setpoint(simulator, BATTERY_INVERTER, 2500.0)
    assert state(hass, entry, "batteries_setpoint").attributes["applied"] is True
    assert simulator.unsafe_setpoint_count == 0


async def test_restored_value_is_reapplied_when_the_option_is_on(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    _restore_battery_number(hass, 2500.0)
    entry = await setup_entry(
        hass, simulator.url, options={CONF_REAPPLY_SETPOINTS: True}
    )

    await wait_for_setpoint(simulator, BATTERY_INVERTER, 2500.0)
    assert number_value(hass, entry, "batteries_setpoint") == 2500.0
    await wait_for(
        lambda: state(hass, entry, "batteries_setpoint").attributes["applied"],
        what="the restored value to show as applied",
    )
    await wait_for_state(hass, entry, "batteries_target_power", "2500.0")
    assert simulator.unsafe_setpoint_count == 0


async def test_a_restored_value_that_was_never_applied_is_never_reapplied(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """Restored with `applied: false`: shown again, not sent even with the option."""
    _restore_battery_number(hass, 2500.0, applied=False)
    entry = await setup_entry(
        hass, simulator.url, options={CONF_REAPPLY_SETPOINTS: True}
    )
    await wait_for_state(hass, entry, f"{BATTERY}_excluded", "off")
    await wait_for(
        lambda: state(hass, entry, "batteries_release").state != "unavailable",
        what="the steering entities",
    )

    assert number_value(hass, entry, "batteries_setpoint") == 2500.0
    assert state(hass, entry, "batteries_setpoint").attributes["applied"] is False
    assert not any(setpoints_to(simulator, BATTERY_INVERTER))


async def test_only_a_value_in_force_survives_reloads_to_be_reapplied(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """Set, reload twice without re-apply, then turn re-apply on: nothing sent.

    And the other way round: a value in force when the entry reloads with the
    option on is sent again.
    """
    entry = await setup_steerable(hass, simulator, BATTERY)
    await set_number(hass, entry, "batteries_setpoint", 2000.0)
    await wait_for_setpoint(simulator, BATTERY_INVERTER, 2000.0)

    for _ in range(2):
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        await wait_for_state(hass, entry, f"{BATTERY}_excluded", "off")
        assert number_value(hass, entry, "batteries_setpoint") == 2000.0
        assert state(hass, entry, "batteries_setpoint").attributes["applied"] is False
    sent_before = len(setpoints_to(simulator, BATTERY_INVERTER))
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, CONF_REAPPLY_SETPOINTS: True}
    )
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for_state(hass, entry, f"{BATTERY}_excluded", "off")
    assert 2000.0 not in setpoints_to(simulator, BATTERY_INVERTER)[sent_before:]
    assert state(hass, entry, "batteries_setpoint").attributes["applied"] is False

    # A value in force when the entry reloads is sent again (the option is on).
    await set_number(hass, entry, "batteries_setpoint", 1500.0)
    await wait_for_setpoint(simulator, BATTERY_INVERTER, 1500.0)
    sent_before = len(setpoints_to(simulator, BATTERY_INVERTER))
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(
        lambda: 1500.0 in setpoints_to(simulator, BATTERY_INVERTER)[sent_before:],
        what="the value in force to be re-applied",
    )
    await wait_for(
        lambda: state(hass, entry, "batteries_setpoint").attributes["applied"],
        what="the re-applied value to show as applied",
    )


async def test_failing_inverter_partial_failure_exclusion_and_recovery(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await setup_steerable(hass, simulator, BATTERY)
    simulator.inject_fault(BATTERY_INVERTER, Fault.REJECT_SET_POWER)

    with pytest.raises(HomeAssistantError) as raised:
        await set_number(hass, entry, "batteries_setpoint", 2000.0)
    assert raised.value.translation_key == "setpoints_failed"

    result = state(hass, entry, "batteries_last_result")
    assert result.state == "partial_failure"
    assert result.attributes["failed_power"] == 2000.0
    assert result.attributes["succeeded_power"] == 0.0
    assert result.attributes["failed_components"]
    seen: dict[str, Any] = {}

    def excluded_as_blocked() -> bool:
        shown = state(hass, entry, f"{BATTERY}_excluded")
        seen.update(shown.attributes)
        return shown.state == "on" and shown.attributes["reason"] == BLOCKED_REASON

    await wait_for(excluded_as_blocked, what="the battery to be excluded")
    assert seen["health"] == "uncertain"
    assert seen["blocked_until"] is not None

    simulator.clear_fault(BATTERY_INVERTER)
    await wait_for_state(hass, entry, "batteries_last_result", "success", timeout_s=15)
    await wait_for_state(hass, entry, f"{BATTERY}_excluded", "off")
    assert last_setpoint(simulator, BATTERY_INVERTER) == 2000.0
    assert held_setpoint(simulator, BATTERY_INVERTER) is not None
    assert simulator.unsafe_setpoint_count == 0


async def test_last_result_shows_each_new_result_of_the_same_kind(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """Two successes in a row: the sensor's details follow the newer one.

    Only the attributes change (the state stays `success`), and the shown
    attributes are frozen once per result: a stale cache would keep the first.
    """
    entry = await setup_steerable(hass, simulator, BATTERY)
    for power in (1500.0, -800.0):
        await set_number(hass, entry, "batteries_setpoint", power)

        def shows(power: float = power) -> bool:
            shown = state(hass, entry, "batteries_last_result")
            return bool(shown.attributes.get("requested_power") == power)

        await wait_for(shows, what=f"the last result of {power} W")
        shown = state(hass, entry, "batteries_last_result")
        assert shown.state == "success"
        assert sum(
            float(value) for value in shown.attributes["setpoints"].values()
        ) == pytest.approx(power, abs=0.01)
    assert simulator.unsafe_setpoint_count == 0
