"""A scenario's components and connections as Microgrid API (v1alpha18) messages.

Every component carries a name, manufacturer, model, rated bounds and the
category-specific info the client needs to build a complete object (a
`BatteryInverter`, `LiIonBattery`, `AcEvCharger`, `GridConnectionPoint` with its
rated fuse current, …) without flagging it as problematic. A meter with a
circuit rating (a feeder's fuse) reports it as rated per-phase current bounds
(±`fuse_current_a` on AC_CURRENT_PHASE_1..3): the API has no fuse field for meters.
"""

from __future__ import annotations

from frequenz.api.common.v1alpha8.metrics import bounds_pb2, metrics_pb2
from frequenz.api.common.v1alpha8.microgrid.electrical_components import (
    electrical_components_pb2 as ec_pb2,
)

from .physics.model import CONTROLLABLE_KINDS
from .scenario import ComponentSpec, Kind, Scenario

_CATEGORY = {
    Kind.GRID: ec_pb2.ELECTRICAL_COMPONENT_CATEGORY_GRID_CONNECTION_POINT,
    Kind.METER: ec_pb2.ELECTRICAL_COMPONENT_CATEGORY_METER,
    Kind.BATTERY_INVERTER: ec_pb2.ELECTRICAL_COMPONENT_CATEGORY_INVERTER,
    Kind.PV_INVERTER: ec_pb2.ELECTRICAL_COMPONENT_CATEGORY_INVERTER,
    Kind.BATTERY: ec_pb2.ELECTRICAL_COMPONENT_CATEGORY_BATTERY,
    Kind.EV_CHARGER: ec_pb2.ELECTRICAL_COMPONENT_CATEGORY_EV_CHARGER,
}


_PHASE_CURRENTS = (
    metrics_pb2.METRIC_AC_CURRENT_PHASE_1,
    metrics_pb2.METRIC_AC_CURRENT_PHASE_2,
    metrics_pb2.METRIC_AC_CURRENT_PHASE_3,
)


def category_of(spec: ComponentSpec) -> ec_pb2.ElectricalComponentCategory.ValueType:
    """The API category of a simulated component."""
    return _CATEGORY[spec.kind]


def component_to_proto(
    spec: ComponentSpec, microgrid_id: int
) -> ec_pb2.ElectricalComponent:
    """One component as `ListElectricalComponents` returns it."""
    mode = (
        ec_pb2.ELECTRICAL_COMPONENT_OPERATIONAL_MODE_CONTROL_AND_TELEMETRY
        if spec.kind in CONTROLLABLE_KINDS
        else ec_pb2.ELECTRICAL_COMPONENT_OPERATIONAL_MODE_TELEMETRY_ONLY
    )
    return ec_pb2.ElectricalComponent(
        id=spec.id,
        microgrid_id=microgrid_id,
        name=spec.name,
        category=category_of(spec),
        category_specific_info=_category_specific_info(spec),
        manufacturer=spec.manufacturer,
        model_name=spec.model,
        metric_config_bounds=_rated_bounds(spec),
        operational_mode=mode,
    )


def connections_to_proto(
    scenario: Scenario,
) -> list[ec_pb2.ElectricalComponentConnection]:
    """The scenario's tree as (source, destination) connection messages."""
    return [
        ec_pb2.ElectricalComponentConnection(
            source_electrical_component_id=source,
            destination_electrical_component_id=destination,
        )
        for source, destination in scenario.connections()
    ]


def _category_specific_info(
    spec: ComponentSpec,
) -> ec_pb2.ElectricalComponentCategorySpecificInfo | None:
    info = ec_pb2.ElectricalComponentCategorySpecificInfo
    match spec.kind:
        case Kind.GRID:
            return info(
                grid_connection_point=ec_pb2.GridConnectionPoint(
                    rated_fuse_current=spec.fuse_current_a
                )
            )
        case Kind.BATTERY_INVERTER:
            return info(inverter=ec_pb2.Inverter(type=ec_pb2.INVERTER_TYPE_BATTERY))
        case Kind.PV_INVERTER:
            return info(inverter=ec_pb2.Inverter(type=ec_pb2.INVERTER_TYPE_PV))
        case Kind.BATTERY:
            return info(battery=ec_pb2.Battery(type=ec_pb2.BATTERY_TYPE_LI_ION))
        case Kind.EV_CHARGER:
            return info(ev_charger=ec_pb2.EvCharger(type=ec_pb2.EV_CHARGER_TYPE_AC))
        case Kind.METER:
            return None


def _rated_bounds(spec: ComponentSpec) -> list[ec_pb2.MetricConfigBounds]:
    """Static (rated) bounds: what the hardware can ever do."""
    ranges: list[tuple[metrics_pb2.Metric.ValueType, float, float]] = []
    if spec.inverter is not None:
        rated = spec.inverter.rated_power_w
        lower = 0.0 if spec.kind is Kind.EV_CHARGER else -rated
        upper = 0.0 if spec.kind is Kind.PV_INVERTER else rated
        ranges.append((metrics_pb2.METRIC_AC_POWER_ACTIVE, lower, upper))
        ranges.append((metrics_pb2.METRIC_AC_POWER_REACTIVE, -rated, rated))
    if spec.battery is not None:
        ranges.append(
            (
                metrics_pb2.METRIC_DC_POWER,
                -spec.battery.max_discharge_w,
                spec.battery.max_charge_w,
            )
        )
    if spec.ev_charger is not None:
        bounds = spec.ev_charger.power_bounds()
        ranges.append((metrics_pb2.METRIC_AC_POWER_ACTIVE, 0.0, bounds.inclusion_upper))
        ranges.extend(
            (metric, 0.0, spec.ev_charger.max_current_a) for metric in _PHASE_CURRENTS
        )
    if spec.kind is Kind.METER and spec.fuse_current_a > 0:
        # The API has no fuse field for meters: a feeder's rating is stated as
        # the meter's rated per-phase current (the integration reads it as a
        # circuit to hold, engine.hub.circuits).
        fuse = float(spec.fuse_current_a)
        ranges.extend((metric, -fuse, fuse) for metric in _PHASE_CURRENTS)
    return [
        ec_pb2.MetricConfigBounds(
            metric=metric, config_bounds=bounds_pb2.Bounds(lower=lower, upper=upper)
        )
        for metric, lower, upper in ranges
    ]
