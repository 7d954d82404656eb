"""What each simulated component reports: metric samples and state snapshots.

`readings` reads the model once per component and tick; `telemetry_message`
turns those readings into the API message for one metric filter, so the server
can serialise it once and fan the bytes out to every stream with that filter.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
import math

from frequenz.api.common.v1alpha8.metrics import bounds_pb2, metrics_pb2
from frequenz.api.common.v1alpha8.microgrid.electrical_components import (
    electrical_components_pb2 as ec_pb2,
)
from google.protobuf.timestamp_pb2 import Timestamp

from .physics.ac import NOMINAL_FREQUENCY_HZ, NOMINAL_VOLTAGE_V
from .physics.ev_charger import CableState
from .physics.model import AC_KINDS, ComponentRuntime, MicrogridModel, Operation
from .scenario import Kind

M = metrics_pb2
S = ec_pb2

BATTERY_DC_VOLTAGE_V = 400.0
"""Nominal DC voltage of the simulated battery packs."""
PV_DC_VOLTAGE_V = 600.0
"""DC voltage of a PV inverter's strings at their maximum power point."""
INVERTER_AMBIENT_C = 25.0
"""An inverter's heat-sink temperature when idle."""
INVERTER_FULL_LOAD_RISE_C = 20.0
"""How much warmer the heat sink runs at rated power (steady state)."""

IDLE_THRESHOLD_W = 1.0
"""Below this magnitude (W) a battery or inverter reports READY, not (DIS)CHARGING."""

type MetricId = metrics_pb2.Metric.ValueType
type StateCode = ec_pb2.ElectricalComponentStateCode.ValueType
type Ranges = list[tuple[float, float]]

_CABLE_CODES: dict[CableState, tuple[StateCode, ...]] = {
    CableState.UNPLUGGED: (
        S.ELECTRICAL_COMPONENT_STATE_CODE_EV_CHARGING_CABLE_UNPLUGGED,
    ),
    CableState.PLUGGED: (
        S.ELECTRICAL_COMPONENT_STATE_CODE_EV_CHARGING_CABLE_PLUGGED_AT_STATION,
        S.ELECTRICAL_COMPONENT_STATE_CODE_EV_CHARGING_CABLE_PLUGGED_AT_EV,
    ),
    CableState.LOCKED: (
        S.ELECTRICAL_COMPONENT_STATE_CODE_EV_CHARGING_CABLE_LOCKED_AT_STATION,
        S.ELECTRICAL_COMPONENT_STATE_CODE_EV_CHARGING_CABLE_LOCKED_AT_EV,
    ),
}


@dataclass(frozen=True, slots=True)
class Readings:
    """One component's values at one instant, before any metric filter."""

    component_id: int
    samples: dict[MetricId, tuple[float, Ranges]]
    states: tuple[StateCode, ...]
    errors: tuple[ec_pb2.ElectricalComponentDiagnosticCode.ValueType, ...]


def readings(model: MicrogridModel, component_id: int) -> Readings:
    """Read every metric, state and diagnostic of one component from the model."""
    runtime = model.component(component_id)
    kind = runtime.spec.kind
    samples: dict[MetricId, tuple[float, Ranges]] = {}
    if kind in AC_KINDS:
        _add_ac_samples(model, runtime, samples)
    if kind is Kind.BATTERY:
        _add_battery_samples(model, runtime, samples)
    if kind in (Kind.BATTERY_INVERTER, Kind.PV_INVERTER):
        _add_inverter_dc_samples(model, runtime, samples)
    errors = (
        (S.ELECTRICAL_COMPONENT_DIAGNOSTIC_CODE_HARDWARE_INACCESSIBLE,)
        if runtime.in_error
        else ()
    )
    return Readings(component_id, samples, _states(model, runtime), errors)


def telemetry_message(
    reading: Readings,
    metrics: Collection[MetricId],
    sample_time: Timestamp,
    *,
    nan: bool = False,
    inf: bool = False,
    warning: bool = False,
) -> ec_pb2.ElectricalComponentTelemetry:
    """The telemetry message for one metric filter (an empty filter means all).

    Metrics the component does not have are left out, as the API specifies.
    With `nan`, every value is NaN, with `inf` infinite with the value's sign
    (faults the client must cope with). With `warning`, the state snapshot
    carries an OVERTEMPERATURE warning.
    """
    message = ec_pb2.ElectricalComponentTelemetry(
        electrical_component_id=reading.component_id
    )
    wanted = metrics or reading.samples.keys()
    for metric in wanted:
        found = reading.samples.get(metric)
        if found is None:
            continue
        value, ranges = found
        sample = message.metric_samples.add()
        sample.sample_time.CopyFrom(sample_time)
        sample.metric = metric
        if nan:
            value = math.nan
        elif inf:
            value = math.copysign(math.inf, value)
        sample.value.simple_metric.value = value
        for lower, upper in ranges:
            sample.bounds.append(bounds_pb2.Bounds(lower=lower, upper=upper))
    snapshot = message.state_snapshots.add()
    snapshot.origin_time.CopyFrom(sample_time)
    snapshot.states.extend(reading.states)
    for code in reading.errors:
        snapshot.errors.add(diagnostic_code=code, message="injected fault")
    if warning:
        snapshot.warnings.add(
            diagnostic_code=S.ELECTRICAL_COMPONENT_DIAGNOSTIC_CODE_OVERTEMPERATURE,
            message="injected warning",
        )
    return message


def _add_ac_samples(
    model: MicrogridModel,
    runtime: ComponentRuntime,
    samples: dict[MetricId, tuple[float, Ranges]],
) -> None:
    phases = runtime.phases
    bounds = model.reported_bounds(runtime.spec.id)
    power_ranges: Ranges = bounds.to_ranges() if bounds is not None else []
    reactive_ranges: Ranges = []
    if runtime.spec.inverter is not None:
        rated = runtime.spec.inverter.rated_power_w
        reactive_ranges = [(-rated, rated)]
    currents = phases.currents(NOMINAL_VOLTAGE_V)
    samples.update(
        {
            M.METRIC_AC_POWER_ACTIVE: (phases.total, power_ranges),
            M.METRIC_AC_POWER_ACTIVE_PHASE_1: (phases.l1, []),
            M.METRIC_AC_POWER_ACTIVE_PHASE_2: (phases.l2, []),
            M.METRIC_AC_POWER_ACTIVE_PHASE_3: (phases.l3, []),
            M.METRIC_AC_POWER_REACTIVE: (runtime.reactive_power_w, reactive_ranges),
            M.METRIC_AC_CURRENT_PHASE_1: (currents[0], []),
            M.METRIC_AC_CURRENT_PHASE_2: (currents[1], []),
            M.METRIC_AC_CURRENT_PHASE_3: (currents[2], []),
            M.METRIC_AC_VOLTAGE_PHASE_1_N: (NOMINAL_VOLTAGE_V, []),
            M.METRIC_AC_VOLTAGE_PHASE_2_N: (NOMINAL_VOLTAGE_V, []),
            M.METRIC_AC_VOLTAGE_PHASE_3_N: (NOMINAL_VOLTAGE_V, []),
            M.METRIC_AC_FREQUENCY: (NOMINAL_FREQUENCY_HZ, []),
            M.METRIC_AC_ENERGY_ACTIVE_CONSUMED: (runtime.energy.consumed_wh, []),
            M.METRIC_AC_ENERGY_ACTIVE_DELIVERED: (runtime.energy.delivered_wh, []),
        }
    )


def _add_battery_samples(
    model: MicrogridModel,
    runtime: ComponentRuntime,
    samples: dict[MetricId, tuple[float, Ranges]],
) -> None:
    battery = runtime.battery
    assert battery is not None
    params = battery.params
    bounds = model.reported_bounds(runtime.spec.id)
    samples.update(
        {
            M.METRIC_BATTERY_SOC_PCT: (
                battery.soc_pct,
                [(params.soc_lower_pct, params.soc_upper_pct)],
            ),
            M.METRIC_BATTERY_CAPACITY: (params.capacity_wh, []),
            M.METRIC_DC_POWER: (
                battery.dc_power_w,
                bounds.to_ranges() if bounds is not None else [],
            ),
            M.METRIC_DC_VOLTAGE: (BATTERY_DC_VOLTAGE_V, []),
            M.METRIC_DC_CURRENT: (battery.dc_power_w / BATTERY_DC_VOLTAGE_V, []),
            M.METRIC_BATTERY_TEMPERATURE: (battery.temperature_c, []),
        }
    )


def _add_inverter_dc_samples(
    model: MicrogridModel,
    runtime: ComponentRuntime,
    samples: dict[MetricId, tuple[float, Ranges]],
) -> None:
    """DC side of an inverter: its batteries' DC power, or its PV strings'.

    A battery inverter's DC power is what its batteries take (the conversion
    losses are on the AC side of the model); a PV inverter's is its AC power.
    """
    if runtime.spec.kind is Kind.BATTERY_INVERTER:
        voltage = BATTERY_DC_VOLTAGE_V
        power = sum(
            battery.dc_power_w
            for child in model.children(runtime.spec.id)
            if (battery := model.component(child).battery) is not None
        )
    else:
        voltage = PV_DC_VOLTAGE_V
        power = runtime.active_power_w
    samples.update(
        {
            M.METRIC_DC_POWER: (power, []),
            M.METRIC_DC_VOLTAGE: (voltage, []),
            M.METRIC_DC_CURRENT: (power / voltage, []),
            M.METRIC_INVERTER_TEMPERATURE: (inverter_temperature_c(runtime), []),
        }
    )


def inverter_temperature_c(runtime: ComponentRuntime) -> float:
    """The heat sink's temperature: rising with the share of rated power."""
    inverter = runtime.spec.inverter
    if inverter is None or inverter.rated_power_w <= 0:
        return INVERTER_AMBIENT_C
    load = min(abs(runtime.active_power_w) / inverter.rated_power_w, 1.0)
    return INVERTER_AMBIENT_C + INVERTER_FULL_LOAD_RISE_C * load


def _states(model: MicrogridModel, runtime: ComponentRuntime) -> tuple[StateCode, ...]:
    """Operating state codes, plus relay (battery) and cable (EV charger) states."""
    kind = runtime.spec.kind
    codes: list[StateCode] = []
    if runtime.in_error:
        codes.append(S.ELECTRICAL_COMPONENT_STATE_CODE_ERROR)
    elif runtime.operation is Operation.OFF:
        codes.append(S.ELECTRICAL_COMPONENT_STATE_CODE_OFF)
    elif runtime.operation is Operation.STANDBY:
        codes.append(S.ELECTRICAL_COMPONENT_STATE_CODE_STANDBY)
    elif kind in (Kind.BATTERY, Kind.BATTERY_INVERTER, Kind.EV_CHARGER):
        codes.append(_flow_state(runtime.active_power_w))
    else:
        codes.append(S.ELECTRICAL_COMPONENT_STATE_CODE_READY)
    if kind is Kind.BATTERY:
        relay_closed = runtime.producing_power
        codes.append(
            S.ELECTRICAL_COMPONENT_STATE_CODE_RELAY_CLOSED
            if relay_closed
            else S.ELECTRICAL_COMPONENT_STATE_CODE_RELAY_OPEN
        )
    if runtime.ev_charger is not None:
        codes.extend(_CABLE_CODES[runtime.ev_charger.cable_state(model.now_s)])
    return tuple(codes)


def _flow_state(power_w: float) -> StateCode:
    if power_w > IDLE_THRESHOLD_W:
        return S.ELECTRICAL_COMPONENT_STATE_CODE_CHARGING
    if power_w < -IDLE_THRESHOLD_W:
        return S.ELECTRICAL_COMPONENT_STATE_CODE_DISCHARGING
    return S.ELECTRICAL_COMPONENT_STATE_CODE_READY
