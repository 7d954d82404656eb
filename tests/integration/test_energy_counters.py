"""Energy totals over real gRPC where counters are summed over several components.

The simulator's own counters (grid connection, inverters) are the truth: the grid
totals must net the feeders at the grid connection, and a pool total must keep
counting while one of its members is silent.
"""

from __future__ import annotations

import asyncio
from typing import Any

from homeassistant.core import HomeAssistant
import pytest

from custom_components.frequenz_microgrid.const import CONF_FRESHNESS_S
from custom_components.frequenz_microgrid.simulator import Fault, MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.scenario import (
    Kind,
    Scenario,
    scenario_from_dict,
)

from .conftest import serving, setup_entry, state_or_none, wait_for

MICROGRID_ID = 77
RATED = {"rated_power_w": 10_000}
BATTERY = {"capacity_wh": 20_000, "max_charge_w": 10_000}


def pv(peak_w: int) -> dict[str, int]:
    return {"rated_power_w": 10_000, "peak_w": peak_w}


def _scenario(name: str, rows: list[dict[str, Any]]) -> Scenario:
    return scenario_from_dict(
        {
            "name": name,
            "microgrid_id": MICROGRID_ID,
            "start_time_of_day": "12:00",
            "topology": [
                {"id": 1, "kind": "grid", "parent": None, "fuse_current_a": 400},
                *rows,
            ],
        }
    )


def two_feeders() -> Scenario:
    """No grid meter: feeder 2 (1 kW load, 9 kWp PV) and feeder 5 (2 kW, battery).

    The grid formula is `#2 + #5`: at noon feeder 2 exports and feeder 5 imports.
    """
    return _scenario(
        "two_feeders",
        [
            {"id": 2, "kind": "meter", "parent": 1, "base_load_w": 1000},
            {"id": 3, "kind": "meter", "parent": 2},
            {"id": 4, "kind": "pv_inverter", "parent": 3, **pv(9000)},
            {"id": 5, "kind": "meter", "parent": 1, "base_load_w": 2000},
            {"id": 6, "kind": "meter", "parent": 5},
            {"id": 7, "kind": "battery_inverter", "parent": 6, **RATED},
            {"id": 8, "kind": "battery", "parent": 7, **BATTERY},
        ],
    )


def two_of_each() -> Scenario:
    """A grid meter; two PV inverters behind a PV meter, two battery inverters."""
    return _scenario(
        "two_of_each",
        [
            {"id": 2, "kind": "meter", "parent": 1, "base_load_w": 1000},
            {"id": 20, "kind": "meter", "parent": 2},
            {"id": 21, "kind": "pv_inverter", "parent": 20, **pv(6000)},
            {"id": 22, "kind": "pv_inverter", "parent": 20, **pv(4000)},
            {"id": 10, "kind": "meter", "parent": 2},
            {"id": 11, "kind": "battery_inverter", "parent": 10, **RATED},
            {"id": 12, "kind": "battery", "parent": 11, **BATTERY},
            {"id": 13, "kind": "battery_inverter", "parent": 10, **RATED},
            {"id": 14, "kind": "battery", "parent": 13, **BATTERY},
        ],
    )


def value(hass: HomeAssistant, key: str) -> float | None:
    """A hub sensor's state as a number (`None` while it has none)."""
    state = state_or_none(hass, f"{MICROGRID_ID}_{key}", ("sensor",))
    try:
        return None if state is None else float(state.state)
    except ValueError:
        return None


def truth_kwh(sim: MicrogridSimulator) -> dict[str, float]:
    """The simulator's own counters: the grid connection's and the inverters'."""
    model = sim.model
    grid = model.component(1).energy

    runtimes = list(model.components.values())
    charged = sum(
        c.energy.consumed_wh for c in runtimes if c.spec.kind is Kind.BATTERY_INVERTER
    )
    produced = sum(
        c.energy.delivered_wh for c in runtimes if c.spec.kind is Kind.PV_INVERTER
    )
    return {
        "grid_import_energy": grid.consumed_wh / 1000.0,
        "grid_export_energy": grid.delivered_wh / 1000.0,
        "battery_charge_energy": charged / 1000.0,
        "pv_production_energy": produced / 1000.0,
    }


Readings = dict[str, tuple[float | None, float]]


def readings(hass: HomeAssistant, sim: MicrogridSimulator) -> Readings:
    """Each total as the entity shows it and as the simulator counted it (kWh)."""
    return {key: (value(hass, key), kwh) for key, kwh in truth_kwh(sim).items()}


def gained(before: Readings, after: Readings, key: str) -> tuple[float, float]:
    """(what the entity gained, what really flowed) in kWh between two readings."""
    (entity_0, truth_0), (entity_1, truth_1) = before[key], after[key]
    assert entity_0 is not None, key
    assert entity_1 is not None, key
    return entity_1 - entity_0, truth_1 - truth_0


async def _set_up(hass: HomeAssistant, sim: MicrogridSimulator) -> None:
    await setup_entry(
        hass, sim.url, unique_id=str(MICROGRID_ID), options={CONF_FRESHNESS_S: 3}
    )
    await wait_for(
        lambda: all(
            value(hass, key) is not None
            for key in ("grid_import_energy", "pv_production_energy")
        ),
        timeout_s=20,
        what="the energy totals",
    )
    await asyncio.sleep(2)


async def test_grid_energy_nets_the_feeder_meters(hass: HomeAssistant) -> None:
    """The site exports ~3 kW net: no import counted, export at the net rate.

    Feeder 2 exports ~8 kW, feeder 5 imports ~4.5 kW (2 kW load, battery charging
    at 2.5 kW): their own counters would add 4.5 kW of import and 8 kW of export.
    """
    async with serving(hass, two_feeders()) as sim:
        sim.model.set_active_power(7, 2500.0, 900.0)
        await _set_up(hass, sim)
        grid_w = value(hass, "grid_power")
        assert grid_w is not None
        assert grid_w < -2000.0
        before = readings(hass, sim)
        await asyncio.sleep(5)
        after = readings(hass, sim)
        imported, imported_truly = gained(before, after, "grid_import_energy")
        assert imported_truly == 0.0
        assert imported < 0.0005, f"phantom import of {imported * 1000:.1f} Wh"
        exported, exported_truly = gained(before, after, "grid_export_energy")
        assert exported == pytest.approx(exported_truly, rel=0.3)


async def test_pool_energy_counts_while_a_member_is_silent(
    hass: HomeAssistant,
) -> None:
    """PV inverter 22 and the idle battery inverter 13 fall silent, then return.

    While they are silent the pools' power is still known (PV through the PV
    meter, the batteries through inverter 11): the totals keep counting, and when
    the members are back their counters add no second copy of the gap.
    """
    async with serving(hass, two_of_each()) as sim:
        sim.model.set_active_power(11, 5000.0, 900.0)
        await _set_up(hass, sim)
        start = readings(hass, sim)
        sim.inject_fault(22, Fault.STOP_DATA)
        sim.inject_fault(13, Fault.STOP_DATA)
        await asyncio.sleep(4)  # past the 3 s freshness: both silent
        silent = readings(hass, sim)
        await asyncio.sleep(5)
        still_silent = readings(hass, sim)
        for key in ("pv_production_energy", "battery_charge_energy"):
            counted, truly = gained(silent, still_silent, key)
            assert truly > 0.003, key
            assert counted == pytest.approx(truly, rel=0.3), (
                f"{key}: +{counted:.4f} kWh counted, +{truly:.4f} kWh flowed"
            )
        sim.clear_fault(22)
        sim.clear_fault(13)
        await asyncio.sleep(4)
        back = readings(hass, sim)
        for key in ("pv_production_energy", "battery_charge_energy"):
            counted, truly = gained(start, back, key)
            assert counted == pytest.approx(truly, rel=0.15), key
            # A second copy of the 9 s gap would triple the 4 s on return; a
            # busy machine's second of lag between the readings moves it by half.
            counted, truly = gained(still_silent, back, key)
            assert counted == pytest.approx(truly, rel=0.8), (
                f"{key}: +{counted:.4f} kWh on return, +{truly:.4f} kWh flowed"
            )
