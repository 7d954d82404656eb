"""`set_component_reactive_power` against the simulator over real gRPC (issue 17)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from frequenz.client.microgrid.metrics import Metric
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
import pytest

from custom_components.frequenz_microgrid.const import DOMAIN
from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import (
    Fault,
    MicrogridSimulator,
    load_scenario,
)

from .conftest import serving, setup_entry, wait_for
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


FAST = 60.0
"""Simulated seconds per real second: a 60 s lifetime lapses within one second."""


def _held(sim: MicrogridSimulator, component: int) -> float | None:
    """The reactive power `component` holds now; `None` once its setpoint lapsed."""
    setpoint = sim.model.component(component).reactive_setpoint
    if setpoint is None or setpoint.expires_at_s < sim.clock.now():
        return None
    return setpoint.value


async def _lapses(
    sim: MicrogridSimulator, held: dict[int, float], sim_s: float
) -> list[tuple[int, int, float | None]]:
    """Watch for `sim_s` simulated seconds; return when and where a setpoint lapsed."""
    lapsed: list[tuple[int, int, float | None]] = []
    start = sim.clock.now()
    while sim.clock.now() < start + sim_s:
        lapsed += [
            (round(sim.clock.now() - start), cid, _held(sim, cid))
            for cid, power in held.items()
            if _held(sim, cid) != power
        ]
        await asyncio.sleep(0.05)
    return lapsed


async def test_reactive_keep_alive_follows_the_validity_the_microgrid_answers(
    hass: HomeAssistant,
) -> None:
    """A microgrid that grants shorter lifetimes (in real time): no lapse."""
    async with serving(
        hass, load_scenario("home"), speed=FAST, sample_period_s=0.1
    ) as sim:
        entry = await setup_entry(
            hass, sim.url, unique_id=str(sim.scenario.microgrid_id)
        )
        await _bounds_known(entry, BATTERY_INVERTER)
        await _call(hass, entry, BATTERY_INVERTER, 1200)

        assert await _lapses(sim, {BATTERY_INVERTER: 1200.0}, 3 * 60) == []
        assert sim.control.unsafe_setpoint_count == 0


async def test_one_hanging_inverter_lets_no_other_reactive_setpoint_lapse(
    hass: HomeAssistant,
) -> None:
    async with serving(
        hass, load_scenario("home"), speed=FAST, sample_period_s=0.1
    ) as sim:
        entry = await setup_entry(
            hass, sim.url, unique_id=str(sim.scenario.microgrid_id)
        )
        await _bounds_known(entry, BATTERY_INVERTER, PV_INVERTER)
        await _call(hass, entry, BATTERY_INVERTER, 1000)
        await _call(hass, entry, PV_INVERTER, 800)
        sim.inject_fault(BATTERY_INVERTER, Fault.TIMEOUT_SET_POWER)  # never answers

        assert await _lapses(sim, {PV_INVERTER: 800.0}, 3 * 60) == []
        sim.clear_fault(BATTERY_INVERTER)


async def test_reactive_setpoint_is_reapplied_once_the_inverter_recovers(
    hass: HomeAssistant,
) -> None:
    """Re-sends refused as unavailable: the setpoint stands and comes back."""
    async with serving(
        hass, load_scenario("home"), speed=FAST, sample_period_s=0.1
    ) as sim:
        entry = await setup_entry(
            hass, sim.url, unique_id=str(sim.scenario.microgrid_id)
        )
        reactive = entry.runtime_data.engine.reactive
        await _bounds_known(entry, PV_INVERTER)
        await _call(hass, entry, PV_INVERTER, 900)
        sim.inject_fault(PV_INVERTER, Fault.FAIL_SET_POWER)  # gRPC UNAVAILABLE
        refused = sim.control.reactive_setpoints_received

        await wait_for(lambda: _held(sim, PV_INVERTER) is None, what="a lapse")
        await wait_for(
            lambda: sim.control.reactive_setpoints_received >= refused + 2,
            what="re-sends of the standing setpoint (refused)",
        )
        assert reactive.setpoints == {PV_INVERTER: 900.0}
        sim.clear_fault(PV_INVERTER)
        await wait_for(
            lambda: _held(sim, PV_INVERTER) == 900.0,
            timeout_s=30,
            what="the setpoint to be re-applied",
        )
        assert reactive.setpoints == {PV_INVERTER: 900.0}
