"""What the states a component reports mean to the entities that show them.

A component reports a set of state codes at once (e.g. READY and CHARGING); the
sensors and binary sensors pick from it in an order of importance kept here.
"""

from __future__ import annotations

from collections.abc import Iterable

from frequenz.client.microgrid.component import ComponentCategory, ComponentStateCode

from .engine.snapshot import ComponentSnapshot

OPERATING_STATES: tuple[ComponentStateCode, ...] = (
    ComponentStateCode.ERROR,
    ComponentStateCode.UNAVAILABLE,
    ComponentStateCode.SWITCHING_OFF,
    ComponentStateCode.OFF,
    ComponentStateCode.SWITCHING_ON,
    ComponentStateCode.STANDBY,
    ComponentStateCode.CHARGING,
    ComponentStateCode.DISCHARGING,
    ComponentStateCode.READY,
    ComponentStateCode.UNKNOWN,
)
"""The component states the state sensor shows, most important first.

A component reports a set of states (e.g. READY and CHARGING); the sensor shows the
first of these that is in the set. Cable states have their own sensor.
"""

CABLE_STATES: tuple[ComponentStateCode, ...] = (
    ComponentStateCode.EV_CHARGING_CABLE_LOCKED_AT_EV,
    ComponentStateCode.EV_CHARGING_CABLE_PLUGGED_AT_EV,
    ComponentStateCode.EV_CHARGING_CABLE_LOCKED_AT_STATION,
    ComponentStateCode.EV_CHARGING_CABLE_PLUGGED_AT_STATION,
    ComponentStateCode.EV_CHARGING_CABLE_UNPLUGGED,
)
"""EV charger cable states, most connected first."""

STATEFUL_COMPONENTS = frozenset(
    {
        ComponentCategory.INVERTER,
        ComponentCategory.BATTERY,
        ComponentCategory.EV_CHARGER,
    }
)
"""Categories whose states and errors are shown (state and problem entities)."""


def first_state(
    snapshot: ComponentSnapshot, candidates: Iterable[ComponentStateCode]
) -> ComponentStateCode | None:
    """Return the first of `candidates` the component reports, or `None`."""
    return next((code for code in candidates if code in snapshot.states), None)
