"""Entities of each circuit (issue 15), on a device per circuit linked to the hub.

Per circuit – the grid root, each feeder the topology states, each user-defined
one: the power limit in force (W), the headroom per phase (A) left after the
chargers' setpoints, whether the limit is exceeded beyond its tolerance, and the
energy drawn above the limit (kWh, kept across restarts). They read the status
the EV steering records each tick (`CircuitLimits.statuses`) whenever a snapshot
arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import math
from typing import TYPE_CHECKING, Any

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    UnitOfElectricCurrent,
    UnitOfEnergy,
    UnitOfPower,
)
from homeassistant.helpers.entity import EntityDescription
from homeassistant.util import dt as dt_util

from .circuit_flow import circuit_subentries
from .engine.hub.circuits import Circuit
from .engine.hub.limits import CircuitStatus
from .entity import MicrogridEntity
from .restore_owner import OwnedSensorData, RestoresOwnData

if TYPE_CHECKING:
    from .runtime import FrequenzMicrogridConfigEntry


@dataclass(frozen=True, kw_only=True)
class CircuitSensorDescription(SensorEntityDescription):
    """A number about one circuit, from its last status."""

    value_fn: Callable[[CircuitStatus], float | None]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _headroom(index: int) -> Callable[[CircuitStatus], float | None]:
    return lambda status: _finite(round(status.headroom_a[index], 2))


CIRCUIT_SENSORS: tuple[CircuitSensorDescription, ...] = (
    CircuitSensorDescription(
        key="limit_in_force",
        translation_key="circuit_limit_in_force",
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda status: _finite(status.upper_limit_w),
    ),
    *(
        CircuitSensorDescription(
            key=f"headroom_l{phase}",
            translation_key=f"circuit_headroom_l{phase}",
            device_class=SensorDeviceClass.CURRENT,
            native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=1,
            value_fn=_headroom(phase - 1),
        )
        for phase in (1, 2, 3)
    ),
)

ENERGY_ABOVE_LIMIT = SensorEntityDescription(
    key="energy_above_limit",
    translation_key="circuit_energy_above_limit",
    device_class=SensorDeviceClass.ENERGY,
    native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
    state_class=SensorStateClass.TOTAL_INCREASING,
    suggested_display_precision=3,
)

LIMIT_EXCEEDED = BinarySensorEntityDescription(
    key="limit_exceeded",
    translation_key="circuit_limit_exceeded",
    device_class=BinarySensorDeviceClass.PROBLEM,
)


class CircuitEntity(MicrogridEntity):
    """An entity of one circuit, on the circuit's device.

    Unknown (not unavailable) while a value is unknown: a circuit without a
    limit has no limit in force, one without a fuse no headroom.
    """

    _attributes_are_shown = True  # a new tolerance or next change, same limit

    def __init__(
        self,
        entry: FrequenzMicrogridConfigEntry,
        description: EntityDescription,
        circuit: Circuit,
    ) -> None:
        """Create `description`'s entity of `circuit`."""
        super().__init__(entry, description)
        devices = entry.runtime_data.devices
        self._attr_unique_id = devices.circuit_unique_id(
            circuit.circuit_id, description.key
        )
        self._attr_device_info = devices.circuit_device_info(
            circuit.circuit_id, circuit.name, root=circuit.root
        )
        self.circuit_id = circuit.circuit_id
        self.config_subentry_id = (
            circuit_subentries(entry).get(circuit.circuit_id)
            if circuit.origin == "user"
            else None
        )
        self._limits = entry.runtime_data.engine.controller.circuit_limits

    @property
    def circuit_status(self) -> CircuitStatus | None:
        """The circuit's status at the last tick (`None` before the first)."""
        return self._limits.statuses.get(self.circuit_id)


class CircuitSensor(CircuitEntity, SensorEntity):
    """The limit in force or the headroom of one phase."""

    entity_description: CircuitSensorDescription

    @property
    def native_value(self) -> float | None:
        """The description's value of the last status."""
        status = self.circuit_status
        return None if status is None else self.entity_description.value_fn(status)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """For the limit in force: its lower limit, tolerance and the next change."""
        if self.entity_description.key != "limit_in_force":
            return None
        status = self.circuit_status
        envelope = self._limits.envelope(self.circuit_id)
        if status is None:
            return None
        next_change = (
            None
            if envelope is None
            else envelope.next_change(dt_util.utcnow().timestamp())
        )
        return {
            "lower_limit": None if status.step is None else status.step.lower_w,
            "tolerance": status.tolerance_w,
            "next_change": None
            if next_change is None
            else dt_util.utc_from_timestamp(next_change).isoformat(),
        }


class CircuitEnergySensor(CircuitEntity, RestoresOwnData, RestoreSensor):
    """Energy drawn above the limit (kWh), continuing its restored total."""

    def __init__(
        self,
        entry: FrequenzMicrogridConfigEntry,
        description: EntityDescription,
        circuit: Circuit,
    ) -> None:
        """Start from 0 kWh until the last total is restored."""
        super().__init__(entry, description, circuit)
        self._restored_kwh = 0.0

    async def async_added_to_hass(self) -> None:
        """Continue the total kept before the restart (the engine counts from 0)."""
        await super().async_added_to_hass()
        last = await self.async_get_last_sensor_data()
        if last is not None and isinstance(last.native_value, int | float):
            value = float(last.native_value)
            if math.isfinite(value) and value >= 0.0:
                self._restored_kwh = value

    @property
    def extra_restore_state_data(self) -> OwnedSensorData:
        """The total, stored with this sensor's unique id (`restore_owner`)."""
        return OwnedSensorData(
            self.native_value, self.native_unit_of_measurement, self.unique_id
        )

    @property
    def native_value(self) -> float:
        """The restored total plus what the engine counted since set-up."""
        status = self.circuit_status
        counted = 0.0 if status is None else status.energy_above_limit_wh / 1000.0
        return round(self._restored_kwh + counted, 6)


class CircuitLimitExceeded(CircuitEntity, BinarySensorEntity):
    """On while the measured power is above the upper limit plus the tolerance.

    Off without a limit; unknown while the circuit's power is unknown.
    """

    @property
    def is_on(self) -> bool | None:
        """The last status's verdict; unknown while the power is unknown."""
        status = self.circuit_status
        if status is None:
            return None
        if math.isinf(status.upper_limit_w):
            return False  # no limit: nothing to exceed
        if math.isnan(status.measured_power_w):
            return None
        return status.limit_exceeded


def circuit_sensors(entry: FrequenzMicrogridConfigEntry) -> list[SensorEntity]:
    """The sensors of every circuit of the entry."""
    entities: list[SensorEntity] = []
    for circuit in entry.runtime_data.engine.controller.circuit_limits.tree.circuits:
        entities.extend(CircuitSensor(entry, d, circuit) for d in CIRCUIT_SENSORS)
        entities.append(CircuitEnergySensor(entry, ENERGY_ABOVE_LIMIT, circuit))
    return entities


def circuit_binary_sensors(
    entry: FrequenzMicrogridConfigEntry,
) -> list[BinarySensorEntity]:
    """The limit-exceeded sensor of every circuit of the entry."""
    return [
        CircuitLimitExceeded(entry, LIMIT_EXCEEDED, circuit)
        for circuit in entry.runtime_data.engine.controller.circuit_limits.tree.circuits
    ]


CIRCUIT_SENSOR_TYPES: tuple[type[SensorEntity], ...] = (
    CircuitSensor,
    CircuitEnergySensor,
)
"""The sensor classes of circuits (`circuit_sensors` returns all of them)."""
