"""What the sensor platform creates: one description per sensor, by kind of source.

* `PoolSensorDescription` reads the whole microgrid's snapshot (grid, PV, EV and
  battery pools) and belongs to the hub device;
* `ComponentSensorDescription` reads one component's snapshot and is created for
  every component of its categories — per-phase values only once the component has
  actually sent that metric, so a single-phase meter gets no empty L2/L3 sensors;
* `InfoSensorDescription` shows a static fact of the microgrid (no telemetry);
* `EnergySensorDescription` keeps a restored, monotonic kWh total per flow direction
  for the Energy dashboard (see `energy.py`);
* `SteeringSensorDescription` reads the steering controller's status of one pool:
  its target power, the bounds granted to Home Assistant's priority and the last
  distribution result (see `steering_status.py`).

The value functions live here too, so that a newcomer finds what a sensor shows
next to its unit and device class; `sensor.py` only creates and runs the entities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import math
from typing import TYPE_CHECKING, Any

from frequenz.client.microgrid import MicrogridInfo
from frequenz.client.microgrid.component import ComponentCategory, ComponentStateCode
from frequenz.client.microgrid.metrics import Metric
from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfFrequency,
    UnitOfPower,
    UnitOfReactivePower,
    UnitOfTemperature,
)
from homeassistant.helpers.typing import StateType

from .component_states import (
    CABLE_STATES,
    OPERATING_STATES,
    STATEFUL_COMPONENTS,
    first_state,
)
from .engine.bounds import PowerBounds
from .engine.control import ComponentSetStatus, Pool
from .engine.energy import positive_part
from .engine.snapshot import ComponentSnapshot, EnergySnapshot, MicrogridSnapshot
from .steering_status import granted_bounds

if TYPE_CHECKING:
    from .engine.graph import Topology

CABLE_PREFIX = "EV_CHARGING_CABLE_"

PHASES = (1, 2, 3)


def state_option(code: ComponentStateCode) -> str:
    """Return the enum-sensor option (translation key) of a component state."""
    return code.name.removeprefix(CABLE_PREFIX).lower()


def component_state(snapshot: ComponentSnapshot) -> str | None:
    """Return the component's most important operating state as an option."""
    code = first_state(snapshot, OPERATING_STATES)
    return None if code is None else state_option(code)


def cable_state(snapshot: ComponentSnapshot) -> str | None:
    """Return an EV charger's cable state as an option."""
    code = first_state(snapshot, CABLE_STATES)
    return None if code is None else state_option(code)


def finite(value: float | None) -> float | None:
    """Return `value` unless it is unknown or infinite (an unbounded side)."""
    return value if value is not None and math.isfinite(value) else None


def negated(value: float | None) -> float | None:
    """Return `-value`, keeping "unknown" unknown."""
    return None if value is None else -value


def directed(value: float | None) -> float | None:
    """Return the part of a power that flows in a counter's direction."""
    return None if value is None else positive_part(value)


@dataclass(frozen=True, kw_only=True)
class PoolSensorDescription(SensorEntityDescription):
    """A sensor of the whole microgrid, computed by the monitor."""

    value_fn: Callable[[MicrogridSnapshot], StateType]
    exists_fn: Callable[[Topology], bool] = lambda _: True


@dataclass(frozen=True, kw_only=True)
class ComponentSensorDescription(SensorEntityDescription):
    """A sensor of one component, for every component of `categories`."""

    value_fn: Callable[[ComponentSnapshot], StateType]
    categories: frozenset[ComponentCategory]
    measured_metric: Metric | None = None
    """When set, the sensor is only created once the component has sent this metric."""
    on_demand_metric: Metric | None = None
    """A detail metric streamed from the component only while this sensor is enabled.

    Such a sensor exists (disabled by default) for every component of its
    categories from the start, without waiting for data that is not streamed.
    """


@dataclass(frozen=True, kw_only=True)
class InfoSensorDescription(SensorEntityDescription):
    """A static fact about the microgrid (from its metadata)."""

    value_fn: Callable[[MicrogridInfo], str | None]


@dataclass(frozen=True, kw_only=True)
class EnergySensorDescription(SensorEntityDescription):
    """A kWh total for the Energy dashboard, for one flow direction."""

    counter_fn: Callable[[EnergySnapshot], float | None]
    """The components' own counter (Wh), when every component of the pool sends it."""
    meters_fn: Callable[[EnergySnapshot], frozenset[int]]
    """The components whose counters `counter_fn` sums."""
    power_fn: Callable[[MicrogridSnapshot], float | None]
    """The flow's power (W, ≥ 0) to integrate when there is no counter."""
    exists_fn: Callable[[Topology], bool]


@dataclass(frozen=True, kw_only=True)
class SteeringSensorDescription(SensorEntityDescription):
    """A sensor of one pool's steering, read from the controller's status."""

    pool: Pool
    value_fn: Callable[[ComponentSetStatus, int], StateType]
    """The value, from the pool's status and Home Assistant's priority."""
    attributes_fn: Callable[[ComponentSetStatus], dict[str, Any] | None] = lambda _: (
        None
    )


RESULT_KINDS = ["success", "partial_failure", "out_of_bounds", "error"]
"""The options of the last-result sensor (`results.result_kind`)."""


def last_result_kind(status: ComponentSetStatus, _priority: int) -> str | None:
    """Return the kind of the pool's last distribution result, if any."""
    return None if status.last_result is None else status.last_result["kind"]


def last_result_details(status: ComponentSetStatus) -> dict[str, Any] | None:
    """Return the last result's details: powers, components, setpoints."""
    if status.last_result is None:
        return None
    return {k: v for k, v in status.last_result.items() if k != "kind"}


def _steering_sensors(pool: Pool) -> tuple[SteeringSensorDescription, ...]:
    """Describe the target, granted bounds and last result sensors of a pool."""

    def power(key: str, **kw: Any) -> SteeringSensorDescription:
        return SteeringSensorDescription(
            key=f"{pool.value}_{key}",
            translation_key=f"{pool.value}_{key}",
            pool=pool,
            device_class=SensorDeviceClass.POWER,
            native_unit_of_measurement=UnitOfPower.WATT,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=0,
            **kw,
        )

    def granted(edge: Callable[[PowerBounds], float]) -> Callable[..., float | None]:
        def value(status: ComponentSetStatus, priority: int) -> float | None:
            bounds = granted_bounds(status, priority)
            return None if bounds is None else finite(edge(bounds))

        return value

    return (
        power("target_power", value_fn=lambda s, _: s.target_power),
        power(
            "granted_lower",
            value_fn=granted(lambda b: b.inclusion_lower),
            entity_category=EntityCategory.DIAGNOSTIC,
        ),
        power(
            "granted_upper",
            value_fn=granted(lambda b: b.inclusion_upper),
            entity_category=EntityCategory.DIAGNOSTIC,
        ),
        SteeringSensorDescription(
            key=f"{pool.value}_last_result",
            translation_key=f"{pool.value}_last_result",
            pool=pool,
            device_class=SensorDeviceClass.ENUM,
            options=RESULT_KINDS,
            value_fn=last_result_kind,
            attributes_fn=last_result_details,
        ),
    )


STEERING_SENSORS: tuple[SteeringSensorDescription, ...] = tuple(
    description for pool in Pool for description in _steering_sensors(pool)
)


def _power(
    key: str, value_fn: Callable[[MicrogridSnapshot], float | None], **kw: Any
) -> PoolSensorDescription:
    """Describe a pool power sensor (W, measurement)."""
    return PoolSensorDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=value_fn,
        **kw,
    )


def _pool_current(
    pool: str,
    phase: int,
    current_fn: Callable[[MicrogridSnapshot], tuple[float | None, ...]],
    exists_fn: Callable[[Topology], bool],
) -> PoolSensorDescription:
    """Describe one phase's current of a pool (A, measurement)."""
    return PoolSensorDescription(
        key=f"{pool}_current_l{phase}",
        translation_key=f"{pool}_current_l{phase}",
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda s: current_fn(s)[phase - 1],
        exists_fn=exists_fn,
    )


def _battery_bound(
    key: str, edge: Callable[[PowerBounds], float]
) -> PoolSensorDescription:
    """Describe one edge of the battery pool's power bounds (diagnostic)."""
    return _power(
        key,
        lambda s: None if s.battery.bounds is None else finite(edge(s.battery.bounds)),
        entity_category=EntityCategory.DIAGNOSTIC,
        exists_fn=_has_batteries,
    )


def _has_grid(topology: Topology) -> bool:
    return topology.formulas.grid is not None


def _has_batteries(topology: Topology) -> bool:
    return topology.formulas.battery is not None


def _has_pv(topology: Topology) -> bool:
    return topology.formulas.pv is not None


def _has_ev_chargers(topology: Topology) -> bool:
    return topology.formulas.ev_charger is not None


POOL_SENSORS: tuple[PoolSensorDescription, ...] = (
    _power("grid_power", lambda s: s.grid_power_w, exists_fn=_has_grid),
    *(_pool_current("grid", p, lambda s: s.grid_current_a, _has_grid) for p in PHASES),
    _power(
        "consumer_power",
        lambda s: s.consumer_power_w,
        exists_fn=lambda t: t.formulas.consumer is not None,
    ),
    _power(
        "producer_power",
        lambda s: s.producer_power_w,
        exists_fn=lambda t: t.formulas.producer is not None,
    ),
    _power("pv_power", lambda s: s.pv_power_w, exists_fn=_has_pv),
    # Positive, for the Energy dashboard's solar power (PV power is negative).
    _power(
        "pv_production_power",
        lambda s: directed(negated(s.pv_power_w)),
        exists_fn=_has_pv,
    ),
    _power("ev_power", lambda s: s.ev_power_w, exists_fn=_has_ev_chargers),
    *(
        _pool_current("ev", p, lambda s: s.ev_current_a, _has_ev_chargers)
        for p in PHASES
    ),
    _power("battery_power", lambda s: s.battery.power_w, exists_fn=_has_batteries),
    PoolSensorDescription(
        key="battery_soc",
        translation_key="battery_soc",
        device_class=SensorDeviceClass.BATTERY,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda s: s.battery.soc_pct,
        exists_fn=_has_batteries,
    ),
    PoolSensorDescription(
        key="battery_usable_capacity",
        translation_key="battery_usable_capacity",
        device_class=SensorDeviceClass.ENERGY_STORAGE,
        native_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
        suggested_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        value_fn=lambda s: s.battery.usable_capacity_wh,
        exists_fn=_has_batteries,
    ),
    _battery_bound("battery_inclusion_lower", lambda b: b.inclusion_lower),
    _battery_bound("battery_inclusion_upper", lambda b: b.inclusion_upper),
    _battery_bound("battery_exclusion_lower", lambda b: b.exclusion_lower),
    _battery_bound("battery_exclusion_upper", lambda b: b.exclusion_upper),
)

INFO_SENSORS: tuple[InfoSensorDescription, ...] = (
    InfoSensorDescription(
        key="delivery_area",
        translation_key="delivery_area",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda info: info.delivery_area.code if info.delivery_area else None,
    ),
    InfoSensorDescription(
        key="location",
        translation_key="location",
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda info: str(info.location) if info.location else None,
    ),
)

AC_COMPONENTS = frozenset(
    {ComponentCategory.METER, ComponentCategory.INVERTER, ComponentCategory.EV_CHARGER}
)
BATTERIES = frozenset({ComponentCategory.BATTERY})
INVERTERS = frozenset({ComponentCategory.INVERTER})
EV_CHARGERS = frozenset({ComponentCategory.EV_CHARGER})

_CURRENT_METRICS = (
    Metric.AC_CURRENT_PHASE_1,
    Metric.AC_CURRENT_PHASE_2,
    Metric.AC_CURRENT_PHASE_3,
)
_VOLTAGE_METRICS = (
    Metric.AC_VOLTAGE_PHASE_1_N,
    Metric.AC_VOLTAGE_PHASE_2_N,
    Metric.AC_VOLTAGE_PHASE_3_N,
)
_PHASE_POWER_METRICS = (
    Metric.AC_POWER_ACTIVE_PHASE_1,
    Metric.AC_POWER_ACTIVE_PHASE_2,
    Metric.AC_POWER_ACTIVE_PHASE_3,
)


def _metric(
    key: str,
    metric: Metric,
    categories: frozenset[ComponentCategory],
    *,
    measured: bool = False,
    **kw: Any,
) -> ComponentSensorDescription:
    """Describe a sensor showing one metric of a component as sent.

    `measured`: created once the component sent the metric.
    """
    return ComponentSensorDescription(
        key=key,
        translation_key=key,
        state_class=SensorStateClass.MEASUREMENT,
        categories=categories,
        measured_metric=metric if measured else None,
        value_fn=lambda c: c.value(metric),
        **kw,
    )


def _on_demand_metric(
    key: str, metric: Metric, categories: frozenset[ComponentCategory], **kw: Any
) -> ComponentSensorDescription:
    """Describe a detail sensor whose metric is streamed only while it is enabled.

    Always disabled by default: enabled, it widens every component's telemetry
    stream (`detail_metrics`), so only a user who wants the detail pays for it.
    """
    return _metric(
        key,
        metric,
        categories,
        on_demand_metric=metric,
        entity_registry_enabled_default=False,
        **kw,
    )


COMPONENT_SENSORS: tuple[ComponentSensorDescription, ...] = (
    _metric(
        "power",
        Metric.AC_POWER_ACTIVE,
        AC_COMPONENTS,
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        suggested_display_precision=0,
    ),
    _metric(
        "dc_power",
        Metric.DC_POWER,
        BATTERIES,
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        suggested_display_precision=0,
    ),
    *(
        _metric(
            f"current_l{phase}",
            metric,
            AC_COMPONENTS,
            measured=True,
            device_class=SensorDeviceClass.CURRENT,
            native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
            suggested_display_precision=1,
            entity_registry_enabled_default=False,
        )
        for phase, metric in zip(PHASES, _CURRENT_METRICS, strict=True)
    ),
    *(
        _on_demand_metric(
            f"voltage_l{phase}",
            metric,
            AC_COMPONENTS,
            device_class=SensorDeviceClass.VOLTAGE,
            native_unit_of_measurement=UnitOfElectricPotential.VOLT,
            suggested_display_precision=1,
            entity_category=EntityCategory.DIAGNOSTIC,
        )
        for phase, metric in zip(PHASES, _VOLTAGE_METRICS, strict=True)
    ),
    *(
        _on_demand_metric(
            f"power_l{phase}",
            metric,
            AC_COMPONENTS,
            device_class=SensorDeviceClass.POWER,
            native_unit_of_measurement=UnitOfPower.WATT,
            suggested_display_precision=0,
        )
        for phase, metric in zip(PHASES, _PHASE_POWER_METRICS, strict=True)
    ),
    _on_demand_metric(
        "reactive_power",
        Metric.AC_POWER_REACTIVE,
        AC_COMPONENTS,
        device_class=SensorDeviceClass.REACTIVE_POWER,
        native_unit_of_measurement=UnitOfReactivePower.VOLT_AMPERE_REACTIVE,
        suggested_display_precision=0,
    ),
    _on_demand_metric(
        "frequency",
        Metric.AC_FREQUENCY,
        AC_COMPONENTS,
        device_class=SensorDeviceClass.FREQUENCY,
        native_unit_of_measurement=UnitOfFrequency.HERTZ,
        suggested_display_precision=2,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    _on_demand_metric(
        "dc_voltage",
        Metric.DC_VOLTAGE,
        BATTERIES | INVERTERS,
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    _on_demand_metric(
        "dc_current",
        Metric.DC_CURRENT,
        BATTERIES | INVERTERS,
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    _metric(
        "soc",
        Metric.BATTERY_SOC_PCT,
        BATTERIES,
        device_class=SensorDeviceClass.BATTERY,
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=1,
    ),
    _metric(
        "capacity",
        Metric.BATTERY_CAPACITY,
        BATTERIES,
        measured=True,
        device_class=SensorDeviceClass.ENERGY_STORAGE,
        native_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
        suggested_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    _metric(
        "battery_temperature",
        Metric.BATTERY_TEMPERATURE,
        BATTERIES,
        measured=True,
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    _on_demand_metric(
        "inverter_temperature",
        Metric.INVERTER_TEMPERATURE,
        INVERTERS,
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    ComponentSensorDescription(
        key="component_state",
        translation_key="component_state",
        device_class=SensorDeviceClass.ENUM,
        options=[state_option(code) for code in OPERATING_STATES],
        categories=STATEFUL_COMPONENTS,
        value_fn=component_state,
    ),
    ComponentSensorDescription(
        key="cable_state",
        translation_key="cable_state",
        device_class=SensorDeviceClass.ENUM,
        options=[state_option(code) for code in CABLE_STATES],
        categories=EV_CHARGERS,
        value_fn=cable_state,
    ),
)


def _energy(
    key: str,
    counter_fn: Callable[[EnergySnapshot], float | None],
    meters_fn: Callable[[EnergySnapshot], frozenset[int]],
    power_fn: Callable[[MicrogridSnapshot], float | None],
    exists_fn: Callable[[Topology], bool],
) -> EnergySensorDescription:
    """Describe an Energy-dashboard total (kWh, total increasing)."""
    return EnergySensorDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=3,
        counter_fn=counter_fn,
        meters_fn=meters_fn,
        power_fn=power_fn,
        exists_fn=exists_fn,
    )


ENERGY_SENSORS: tuple[EnergySensorDescription, ...] = (
    _energy(
        "grid_import_energy",
        lambda e: e.grid_import_wh,
        lambda e: e.grid_meters,
        lambda s: directed(s.grid_power_w),
        _has_grid,
    ),
    _energy(
        "grid_export_energy",
        lambda e: e.grid_export_wh,
        lambda e: e.grid_meters,
        lambda s: directed(negated(s.grid_power_w)),
        _has_grid,
    ),
    _energy(
        "battery_charge_energy",
        lambda e: e.battery_charge_wh,
        lambda e: e.battery_meters,
        lambda s: directed(s.battery.power_w),
        _has_batteries,
    ),
    _energy(
        "battery_discharge_energy",
        lambda e: e.battery_discharge_wh,
        lambda e: e.battery_meters,
        lambda s: directed(negated(s.battery.power_w)),
        _has_batteries,
    ),
    _energy(
        "pv_production_energy",
        lambda e: e.pv_production_wh,
        lambda e: e.pv_meters,
        lambda s: directed(negated(s.pv_power_w)),
        _has_pv,
    ),
    _energy(
        "ev_charging_energy",
        lambda e: e.ev_charging_wh,
        lambda e: e.ev_meters,
        lambda s: directed(s.ev_power_w),
        _has_ev_chargers,
    ),
)
