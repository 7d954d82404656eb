"""Binary sensors: EV connected (plug) and component problems."""

from __future__ import annotations

from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from frequenz.client.microgrid.component import ComponentErrorCode, ComponentStateCode
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.frequenz_microgrid import binary_sensor
from custom_components.frequenz_microgrid.engine.snapshot import ComponentSnapshot
from custom_components.frequenz_microgrid.simulator import Fault, MicrogridSimulator

from .conftest import (
    HOME_MICROGRID_ID,
    setup_entry,
    state_of,
    state_or_none,
    wait_for,
)
from .microgrid_factory import (
    BAT_INV,
    ENTRY_KEY,
    EV_CHARGER,
    HandFedPlatforms,
    entity_snapshot,
    fresh_component,
    home_topology,
    let_a_second_pass,
    snapshot_at,
)
from .steering_helpers import (
    BATTERY,
    BATTERY_INVERTER,
    DRIVEWAY_WALLBOX,
    GARAGE_WALLBOX,
    PV_INVERTER,
)

CABLE = ComponentStateCode
BINARY_SENSOR = ("binary_sensor",)


def _state(hass: HomeAssistant, cid: int, key: str) -> str:
    return state_of(hass, f"{ENTRY_KEY}_{cid}_{key}", BINARY_SENSOR).state


def _component(
    cid: int, *states: ComponentStateCode, errors: bool = False
) -> ComponentSnapshot:
    overvoltage = frozenset({ComponentErrorCode.OVERVOLTAGE})
    return fresh_component(cid, *states, errors=overvoltage if errors else frozenset())


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ((CABLE.EV_CHARGING_CABLE_UNPLUGGED,), False),
        ((CABLE.EV_CHARGING_CABLE_PLUGGED_AT_STATION,), False),
        (
            (
                CABLE.EV_CHARGING_CABLE_PLUGGED_AT_STATION,
                CABLE.EV_CHARGING_CABLE_PLUGGED_AT_EV,
            ),
            True,
        ),
        ((CABLE.EV_CHARGING_CABLE_LOCKED_AT_EV, CABLE.READY), True),
        ((CABLE.READY,), None),
    ],
)
def test_ev_connected(
    states: tuple[ComponentStateCode, ...], expected: bool | None
) -> None:
    assert binary_sensor.ev_connected(_component(EV_CHARGER, *states)) is expected


def test_problem_details_name_the_codes() -> None:
    snapshot = fresh_component(
        BAT_INV,
        CABLE.ERROR,
        errors=frozenset({ComponentErrorCode.OVERVOLTAGE, 9999}),
    )
    assert binary_sensor.problem_details(snapshot) == {
        "errors": ["code_9999", "overvoltage"],
        "warnings": [],
    }


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ((CABLE.READY, CABLE.RELAY_CLOSED), True),
        ((CABLE.READY, CABLE.RELAY_OPEN), False),
        ((CABLE.READY,), None),
    ],
)
def test_relay_closed(
    states: tuple[ComponentStateCode, ...], expected: bool | None
) -> None:
    assert binary_sensor.relay_closed(_component(BAT_INV, *states)) is expected


def test_problem_from_errors_or_error_state() -> None:
    assert binary_sensor.has_problem(_component(BAT_INV, CABLE.READY)) is False
    assert binary_sensor.has_problem(_component(BAT_INV, CABLE.ERROR)) is True
    assert (
        binary_sensor.has_problem(_component(BAT_INV, CABLE.READY, errors=True)) is True
    )


async def test_binary_sensors_follow_the_components(
    hass: HomeAssistant, platforms: HandFedPlatforms, freezer: FrozenDateTimeFactory
) -> None:
    _, coordinator = await platforms.setup(
        binary_sensor,
        home_topology(),
        snapshot_at(
            components={
                EV_CHARGER: _component(
                    EV_CHARGER, CABLE.READY, CABLE.EV_CHARGING_CABLE_UNPLUGGED
                ),
                BAT_INV: _component(BAT_INV, CABLE.READY),
            }
        ),
    )
    assert _state(hass, EV_CHARGER, "ev_connected") == STATE_OFF
    assert _state(hass, EV_CHARGER, "problem") == STATE_OFF
    assert _state(hass, BAT_INV, "problem") == STATE_OFF

    coordinator.async_set_updated_data(
        snapshot_at(
            1,
            components={
                EV_CHARGER: _component(
                    EV_CHARGER, CABLE.CHARGING, CABLE.EV_CHARGING_CABLE_LOCKED_AT_EV
                ),
                BAT_INV: _component(BAT_INV, CABLE.ERROR, errors=True),
            },
        )
    )
    await hass.async_block_till_done()
    assert _state(hass, EV_CHARGER, "ev_connected") == STATE_ON
    assert _state(hass, BAT_INV, "problem") == STATE_ON

    # The inverter goes silent (stale): its facts are unknown, not "no problem".
    coordinator.async_set_updated_data(
        snapshot_at(2, components={EV_CHARGER: _component(EV_CHARGER, CABLE.READY)})
    )
    await let_a_second_pass(hass, freezer)
    assert _state(hass, BAT_INV, "problem") == STATE_UNAVAILABLE
    # A charger without a cable state can't say whether an EV is connected.
    assert _state(hass, EV_CHARGER, "ev_connected") == STATE_UNAVAILABLE
    assert _state(hass, EV_CHARGER, "problem") == STATE_OFF


# --- Against the simulator over real gRPC -----------------------------------------


def _sim_state(hass: HomeAssistant, cid: int, key: str) -> str | None:
    state = state_or_none(hass, f"{HOME_MICROGRID_ID}_{cid}_{key}", BINARY_SENSOR)
    return None if state is None else state.state


def _steering_settled(hass: HomeAssistant) -> bool:
    """Whether the excluded sensors show the controller's view of fresh data."""
    chargers = (GARAGE_WALLBOX, DRIVEWAY_WALLBOX)
    for cid in (BATTERY, PV_INVERTER, *chargers):
        state = state_or_none(
            hass, f"{HOME_MICROGRID_ID}_{cid}_excluded", BINARY_SENSOR
        )
        if state is None or state.state != STATE_OFF:
            return False
        if cid in chargers and state.attributes.get("reason") != "no EV connected":
            return False
    return True


async def test_home_scenario_snapshot_and_live_changes(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    entity_registry_enabled_by_default: None,
    snapshot: SnapshotAssertion,
) -> None:
    with patch(
        "custom_components.frequenz_microgrid.PLATFORMS", [Platform.BINARY_SENSOR]
    ):
        entry = await setup_entry(hass, simulator.url)
        await wait_for(
            lambda: (
                _sim_state(hass, GARAGE_WALLBOX, "ev_connected") == STATE_OFF
                and _sim_state(hass, BATTERY_INVERTER, "problem") == STATE_OFF
                and _steering_settled(hass)
            ),
            what="first values",
        )
        await snapshot_platform(
            hass, er.async_get(hass), entity_snapshot(snapshot), entry.entry_id
        )

        simulator.plug_ev(GARAGE_WALLBOX)
        await wait_for(
            lambda: _sim_state(hass, GARAGE_WALLBOX, "ev_connected") == STATE_ON,
            what="the EV to show as connected",
        )
        simulator.inject_fault(BATTERY_INVERTER, Fault.ERROR_STATE)
        await wait_for(
            lambda: _sim_state(hass, BATTERY_INVERTER, "problem") == STATE_ON,
            what="the inverter's problem",
        )
        problem = state_of(
            hass, f"{HOME_MICROGRID_ID}_{BATTERY_INVERTER}_problem", BINARY_SENSOR
        )
        assert problem.attributes["errors"] == ["hardware_inaccessible"]
        assert problem.attributes["warnings"] == []
        simulator.inject_fault(BATTERY_INVERTER, Fault.WARNING)
        await wait_for(
            lambda: (
                state_of(
                    hass,
                    f"{HOME_MICROGRID_ID}_{BATTERY_INVERTER}_problem",
                    BINARY_SENSOR,
                ).attributes["warnings"]
                == ["overtemperature"]
            ),
            what="the inverter's warning",
        )
        simulator.clear_fault(BATTERY_INVERTER)
        await wait_for(
            lambda: _sim_state(hass, BATTERY_INVERTER, "problem") == STATE_OFF,
            what="the problem to clear",
        )
        await hass.config_entries.async_unload(entry.entry_id)
