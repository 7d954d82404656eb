"""`set_component_reactive_power` against the simulator over real gRPC (issue 17)."""

from __future__ import annotations

import math
from typing import Any

from frequenz.client.microgrid.metrics import Metric
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
import pytest

from custom_components.frequenz_microgrid.const import DOMAIN
from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator

from .conftest import wait_for
from .steering_helpers import (
    BATTERY,
    BATTERY_INVERTER,
    GARAGE_WALLBOX,
    PV_INVERTER,
    setup_steerable,
)

SERVICE = "set_component_reactive_power"
RATED_VAR = 5000.0
"""The home scenario's battery inverter: ±5 kvar reactive bounds."""


async def _call(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, component: int, power: Any
) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN,
        SERVICE,
        {"config_entry_id": entry.entry_id, "component": component, "power": power},
        blocking=True,
        return_response=True,
    )
    assert isinstance(response, dict)
    return response


async def _bounds_known(entry: FrequenzMicrogridConfigEntry, *inverters: int) -> None:
    reactive = entry.runtime_data.engine.reactive
    await wait_for(
        lambda: all(_has_bounds(entry, cid) for cid in inverters),
        what="the reactive bounds",
    )
    assert reactive.setpoints == {}


def _has_bounds(entry: FrequenzMicrogridConfigEntry, component: int) -> bool:
    try:
        entry.runtime_data.engine.reactive.check(component, 0.0)
    except ValueError:
        return False
    return True


async def test_reactive_setpoint_reaches_the_inverter_and_is_released(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await setup_steerable(hass, simulator, BATTERY)
    await _bounds_known(entry, BATTERY_INVERTER)
    control = simulator.control

    response = await _call(hass, entry, BATTERY_INVERTER, 1200)

    assert response["component"] == BATTERY_INVERTER
    assert response["power"] == 1200.0
    assert response["bounds"] == {"lower": -RATED_VAR, "upper": RATED_VAR}
    assert response["kept_alive"] is True
    assert response["valid_until"] is not None
    received = control.reactive_setpoints[-1]
    assert (received.component_id, received.power_w) == (BATTERY_INVERTER, 1200.0)
    # The inverter follows, and its telemetry tells the engine so.
    store = entry.runtime_data.engine.monitor.store
    await wait_for(
        lambda: store.value(BATTERY_INVERTER, Metric.AC_POWER_REACTIVE) == 1200.0,
        what="the reactive power to follow",
    )
    assert entry.runtime_data.engine.reactive.setpoints == {BATTERY_INVERTER: 1200.0}

    released = await _call(hass, entry, BATTERY_INVERTER, 0)
    assert released["kept_alive"] is False
    assert entry.runtime_data.engine.reactive.setpoints == {}
    assert control.unsafe_setpoint_count == 0


@pytest.mark.parametrize(
    ("component", "power", "key"),
    [
        (BATTERY_INVERTER, RATED_VAR + 1, "reactive_out_of_bounds"),
        (BATTERY_INVERTER, -RATED_VAR - 1, "reactive_out_of_bounds"),
        (BATTERY_INVERTER, math.nan, "not_finite"),
        (BATTERY_INVERTER, math.inf, "not_finite"),
        (999, 100, "reactive_not_an_inverter"),
        (BATTERY, 100, "reactive_not_an_inverter"),
        (GARAGE_WALLBOX, 100, "reactive_not_an_inverter"),
    ],
)
async def test_bad_reactive_setpoints_are_refused_and_nothing_is_sent(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    component: int,
    power: float,
    key: str,
) -> None:
    entry = await setup_steerable(hass, simulator)
    await _bounds_known(entry, BATTERY_INVERTER, PV_INVERTER)
    control = simulator.control
    before = (control.requests_received, control.reactive_setpoints_received)

    with pytest.raises(ServiceValidationError) as refused:
        await _call(hass, entry, component, power)

    assert refused.value.translation_domain == DOMAIN
    assert refused.value.translation_key == key
    assert (control.requests_received, control.reactive_setpoints_received) == before
    assert entry.runtime_data.engine.reactive.setpoints == {}
    assert control.unsafe_setpoint_count == 0


async def test_unloading_releases_the_reactive_setpoint(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await setup_steerable(hass, simulator, BATTERY)
    await _bounds_known(entry, PV_INVERTER)
    await _call(hass, entry, PV_INVERTER, -700)

    assert await hass.config_entries.async_unload(entry.entry_id)

    last = simulator.control.reactive_setpoints[-1]
    assert (last.component_id, last.power_w) == (PV_INVERTER, 0.0)
    assert simulator.control.unsafe_setpoint_count == 0
