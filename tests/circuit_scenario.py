"""A site with a garage feeder circuit, for the circuit tests (issue 15).

Grid connection 63 A; a grid meter; a garage feeder meter rated 32 A per phase
(stated to the API as its rated per-phase current) with a 2.3 kW base load and
three 6–32 A chargers behind it; one more charger directly behind the grid meter.
Built with `scenario_from_dict`; the shipped scenario files stay as they are.
"""

from __future__ import annotations

from typing import Any

from custom_components.frequenz_microgrid.simulator.scenario import (
    Scenario,
    scenario_from_dict,
)

GRID_FUSE_A = 63.0
GARAGE_METER = 30
GARAGE_FUSE_A = 32.0
GARAGE_BASE_LOAD_W = 2300.0
GARAGE_CHARGERS = (31, 32, 33)
YARD_CHARGER = 40
GARAGE_CIRCUIT = f"meter_{GARAGE_METER}"
VOLTAGE_V = 230.0


def _charger(component_id: int, parent: int, name: str) -> dict[str, Any]:
    return {
        "id": component_id,
        "kind": "ev_charger",
        "parent": parent,
        "name": name,
        "phases": 3,
        "min_current_a": 6,
        "max_current_a": 32,
    }


def garage_scenario() -> Scenario:
    """The garage-feeder site (see the module docstring)."""
    return scenario_from_dict(
        {
            "name": "garage_feeder",
            "microgrid_id": 7,
            "start_time_of_day": "08:00",
            "topology": [
                {
                    "id": 1,
                    "kind": "grid",
                    "parent": None,
                    "name": "Grid connection point",
                    "fuse_current_a": int(GRID_FUSE_A),
                },
                {"id": 2, "kind": "meter", "parent": 1, "name": "Grid meter"},
                {
                    "id": GARAGE_METER,
                    "kind": "meter",
                    "parent": 2,
                    "name": "Garage feeder",
                    "fuse_current_a": int(GARAGE_FUSE_A),
                    "base_load_w": GARAGE_BASE_LOAD_W,
                },
                *(
                    _charger(cid, GARAGE_METER, f"Garage bay {index}")
                    for index, cid in enumerate(GARAGE_CHARGERS, start=1)
                ),
                _charger(YARD_CHARGER, 2, "Yard charger"),
            ],
        }
    )


HOUSE_METER = 3
HOUSE_LOAD_W = 9000.0
BATTERY_METER = 10
BATTERY_INVERTER = 11
BATTERY = 12
SHAVING_CHARGER = 40


def shaving_scenario() -> Scenario:
    """A 9 kW household, a 10 kW battery at 80 % and one charger on the grid."""
    return scenario_from_dict(
        {
            "name": "peak_shaving",
            "microgrid_id": 8,
            "start_time_of_day": "18:00",
            "topology": [
                {
                    "id": 1,
                    "kind": "grid",
                    "parent": None,
                    "name": "Grid connection point",
                    "fuse_current_a": int(GRID_FUSE_A),
                },
                {"id": 2, "kind": "meter", "parent": 1, "name": "Grid meter"},
                {
                    "id": HOUSE_METER,
                    "kind": "meter",
                    "parent": 2,
                    "name": "House",
                    "base_load_w": HOUSE_LOAD_W,
                },
                {"id": BATTERY_METER, "kind": "meter", "parent": 2, "name": "Battery"},
                {
                    "id": BATTERY_INVERTER,
                    "kind": "battery_inverter",
                    "parent": BATTERY_METER,
                    "name": "Battery inverter",
                    "rated_power_w": 10_000,
                },
                {
                    "id": BATTERY,
                    "kind": "battery",
                    "parent": BATTERY_INVERTER,
                    "name": "Battery",
                    "capacity_wh": 20_000,
                    "max_charge_w": 10_000,
                    "soc_pct": 80,
                },
                _charger(SHAVING_CHARGER, 2, "Driveway charger"),
            ],
        }
    )
