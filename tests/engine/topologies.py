"""Hand-built topologies for the engine tests (client objects, no server)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from frequenz.client.common.microgrid import EnterpriseId, MicrogridId
from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid import MicrogridInfo, MicrogridStatus
from frequenz.client.microgrid.component import (
    AcEvCharger,
    BatteryInverter,
    Component,
    ComponentConnection,
    GridConnectionPoint,
    LiIonBattery,
    Meter,
    SolarInverter,
)

from custom_components.frequenz_microgrid.engine.graph import Topology, build_topology

MICROGRID = MicrogridId(7)

GRID = 1
MAIN_METER = 2
BATTERY_METER = 3
INVERTER_A = 4
BATTERY_A = 5
PV_METER = 6
PV_INVERTER = 7
EV_CHARGER = 8
HOUSE_METER = 9
INVERTER_B = 10
BATTERY_B = 11


def info() -> MicrogridInfo:
    """Return metadata as `get_microgrid_info` would."""
    return MicrogridInfo(
        id=MICROGRID,
        enterprise_id=EnterpriseId(3),
        name="Home",
        delivery_area=None,
        location=None,
        status=MicrogridStatus.ACTIVE,
        create_timestamp=datetime(2025, 1, 1, tzinfo=UTC),
    )


def component(
    kind: type[Component], cid: int, microgrid: MicrogridId = MICROGRID, **kw: Any
) -> Component:
    """Return a client component object of `kind` with id `cid`."""
    return kind(id=ComponentId(cid), microgrid_id=microgrid, **kw)


def home_components() -> list[Component]:
    """Return a home: main meter → battery meter (2 inverters), PV, EV, house."""
    return [
        component(GridConnectionPoint, GRID, rated_fuse_current=63),
        component(Meter, MAIN_METER),
        component(Meter, BATTERY_METER),
        component(BatteryInverter, INVERTER_A),
        component(LiIonBattery, BATTERY_A),
        component(Meter, PV_METER),
        component(SolarInverter, PV_INVERTER),
        component(AcEvCharger, EV_CHARGER),
        component(Meter, HOUSE_METER),
        component(BatteryInverter, INVERTER_B),
        component(LiIonBattery, BATTERY_B),
    ]


HOME_WIRING = [
    (GRID, MAIN_METER),
    (MAIN_METER, BATTERY_METER),
    (BATTERY_METER, INVERTER_A),
    (INVERTER_A, BATTERY_A),
    (BATTERY_METER, INVERTER_B),
    (INVERTER_B, BATTERY_B),
    (MAIN_METER, PV_METER),
    (PV_METER, PV_INVERTER),
    (MAIN_METER, EV_CHARGER),
    (MAIN_METER, HOUSE_METER),
]


def connections(wiring: Iterable[tuple[int, int]]) -> list[ComponentConnection]:
    """Return client connection objects for `(source, destination)` pairs."""
    return [
        ComponentConnection(source=ComponentId(a), destination=ComponentId(b))
        for a, b in wiring
    ]


def home_topology() -> Topology:
    """Return the home microgrid as the engine sees it."""
    return build_topology(info(), home_components(), connections(HOME_WIRING))
