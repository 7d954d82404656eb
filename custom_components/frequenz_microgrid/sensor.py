"""Sensors: pool measurements, per-component telemetry, energy totals, steering.

The entities of the sensor platform. What each sensor shows (unit, device class,
value function) is in `sensor_descriptions.py`; here they are created — component
sensors per phase only once the component has sent that metric, detail sensors
(streamed on demand, `detail_metrics.py`) for every component at once — and run.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from frequenz.client.microgrid.component import Component
from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import UnitOfEnergy
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .assets_sensors import assets_sensors
from .circuit_entities import CIRCUIT_SENSOR_TYPES, circuit_sensors
from .devices import has_device
from .engine import members
from .engine.control import ComponentSetStatus
from .engine.energy import EnergyTotal
from .engine.snapshot import ComponentSnapshot, MicrogridSnapshot
from .engine.topology_change import TopologyChange
from .entity import (
    MicrogridEntity,
    SteeringEntity,
    async_add_by_subentry,
    of_steerable_pools,
)
from .plan_sensors import plan_sensors
from .restore_owner import OwnedSensorData, RestoresOwnData
from .sensor_descriptions import (
    COMPONENT_SENSORS,
    ENERGY_SENSORS,
    INFO_SENSORS,
    POOL_SENSORS,
    STEERING_SENSORS,
    ComponentSensorDescription,
    EnergySensorDescription,
    InfoSensorDescription,
    PoolSensorDescription,
    SteeringSensorDescription,
    directed,
)
from .session_sensors import session_sensors
from .steering_status import pool_set_status
from .target_entities import target_sensors
from .topology_refresh import async_add_entities_on_topology_change

if TYPE_CHECKING:
    from .runtime import FrequenzMicrogridConfigEntry

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the pool, component and energy sensors of a microgrid."""
    topology = entry.runtime_data.engine.topology
    coordinator = entry.runtime_data.coordinator
    hub: list[SensorEntity] = [
        PoolSensor(entry, d) for d in POOL_SENSORS if d.exists_fn(topology)
    ]
    hub.extend(InfoSensor(entry, d) for d in INFO_SENSORS)
    hub.extend(assets_sensors(entry))
    hub.extend(EnergySensor(entry, d) for d in ENERGY_SENSORS if d.exists_fn(topology))
    hub.extend(
        SteeringSensor(entry, d) for d in of_steerable_pools(entry, STEERING_SENSORS)
    )
    hub.extend(session_sensors(entry))
    hub.extend(charger_energy_sensors(entry))
    hub.extend(circuit_sensors(entry))
    hub.extend(target_sensors(entry))
    hub.extend(plan_sensors(entry))
    async_add_by_subentry(async_add_entities, hub)

    # Every (component, sensor) pair that may exist; those that wait for their
    # metric (per-phase values, temperatures…) are added once it is measured.
    waiting = [
        (component, description)
        for component in topology.components.values()
        if has_device(component)
        for description in COMPONENT_SENSORS
        if component.category in description.categories
    ]

    @callback
    def add_component_sensors() -> None:
        """Add the component sensors whose data is there now."""
        if not waiting:
            return
        snapshot = coordinator.data
        ready: list[ComponentSensor] = []
        still_waiting = []
        for component, description in waiting:
            metric = description.measured_metric
            if metric is not None:
                data = (
                    None if snapshot is None else snapshot.component(int(component.id))
                )
                if data is None or data.value(metric) is None:
                    still_waiting.append((component, description))
                    continue
            ready.append(ComponentSensor(entry, description, component))
        waiting[:] = still_waiting
        if ready:
            async_add_entities(ready)

    add_component_sensors()
    entry.async_on_unload(coordinator.async_add_listener(add_component_sensors))

    @callback
    def topology_changed(change: TopologyChange) -> list[SensorEntity]:
        """Wait for the new components' sensors; return the pools' for the new graph."""
        topology = entry.runtime_data.engine.topology
        waiting[:] = [
            (component, description)
            for component, description in waiting
            if int(component.id) not in change.removed
        ]
        waiting.extend(
            (component, description)
            for component_id in sorted(change.added)
            if has_device(component := topology.components[component_id])
            for description in COMPONENT_SENSORS
            if component.category in description.categories
        )
        add_component_sensors()
        return [
            *(PoolSensor(entry, d) for d in POOL_SENSORS if d.exists_fn(topology)),
            *(EnergySensor(entry, d) for d in ENERGY_SENSORS if d.exists_fn(topology)),
            *(
                SteeringSensor(entry, d)
                for d in of_steerable_pools(entry, STEERING_SENSORS)
            ),
            *session_sensors(entry, change.added),
            *charger_energy_sensors(entry, change.added),
            *circuit_sensors(entry),
            *target_sensors(entry, change.added),
            *plan_sensors(entry, change.added),
        ]

    async_add_entities_on_topology_change(
        hass,
        entry,
        async_add_entities,
        topology_changed,
        governs=(PoolSensor, EnergySensor, SteeringSensor, *CIRCUIT_SENSOR_TYPES),
    )


class PoolSensor(MicrogridEntity, SensorEntity):
    """A measurement of the whole microgrid."""

    entity_description: PoolSensorDescription
    _value_decides_availability = True

    @property
    def native_value(self) -> StateType:
        """Return the pool value, `None` when unknown or stale."""
        snapshot = self.snapshot
        return None if snapshot is None else self.entity_description.value_fn(snapshot)


class InfoSensor(MicrogridEntity, SensorEntity):
    """A static fact about the microgrid (delivery area, location)."""

    entity_description: InfoSensorDescription
    _value_decides_availability = True

    @property
    def native_value(self) -> str | None:
        """Return the fact from the microgrid's metadata."""
        info = self.coordinator.config_entry.runtime_data.devices.info
        return self.entity_description.value_fn(info)

    def _data_available(self) -> bool:
        """Always: the fact does not depend on telemetry."""
        return True


class ComponentSensor(MicrogridEntity, SensorEntity):
    """A measurement or state of one component."""

    entity_description: ComponentSensorDescription
    _value_decides_availability = True
    _shows_component_data_only = True

    @property
    def native_value(self) -> StateType:
        """Return the component's value, `None` when unknown or stale."""
        data = self.component_snapshot
        return None if data is None else self.entity_description.value_fn(data)


class SteeringSensor(SteeringEntity, SensorEntity):
    """What the controller reports about one pool's steering."""

    entity_description: SteeringSensorDescription
    _unrecorded_attributes = frozenset(
        {"components", "succeeded_components", "failed_components", "setpoints"}
    )

    @property
    def _set_status(self) -> ComponentSetStatus | None:
        return pool_set_status(self.controller_status, self.entity_description.pool)

    @property
    def native_value(self) -> StateType:
        """Return the value; unknown while the controller has none (no target)."""
        status = self._set_status
        if status is None:
            return None
        return self.entity_description.value_fn(status, self.priority)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Return the description's details (the last result's), if any."""
        status = self._set_status
        return None if status is None else self.entity_description.attributes_fn(status)


@dataclass
class EnergyTotalData(OwnedSensorData):
    """What an energy sensor stores: its state plus the total and meter baseline."""

    total: EnergyTotal = field(default_factory=EnergyTotal)

    def as_dict(self) -> dict[str, Any]:
        """Return the sensor's stored state with the total's own fields."""
        return super().as_dict() | self.total.as_dict()


class _EnergyTotalSensor(MicrogridEntity, RestoresOwnData, RestoreSensor):
    """A monotonic kWh total for the Energy dashboard, restored across restarts.

    Subclasses say where a snapshot's counter reading (`_counter`) and power
    (`_power_w`) are; each snapshot adds the reading, else the power sample
    (`EnergyTotal` keeps the total monotonic either way).
    """

    _value_decides_availability = True

    def __init__(
        self,
        entry: FrequenzMicrogridConfigEntry,
        description: SensorEntityDescription,
        component: Component | None = None,
    ) -> None:
        """Create the total of `description`, empty until restored or measured."""
        super().__init__(entry, description, component)
        self._total = EnergyTotal()

    async def async_added_to_hass(self) -> None:
        """Restore the total, then account for the snapshot already there."""
        await super().async_added_to_hass()
        if (stored := await self.async_get_last_extra_data()) is not None:
            self._total = EnergyTotal.from_dict(stored.as_dict())
        self._account(self.snapshot)

    @property
    def extra_restore_state_data(self) -> EnergyTotalData:
        """Store the total and the meter baseline (not the kWh state alone)."""
        return EnergyTotalData(
            self.native_value,
            self.native_unit_of_measurement,
            owner=self.unique_id,
            total=self._total,
        )

    @property
    def native_value(self) -> float | None:
        """Return the total in kWh, `None` until one is known."""
        total = self._total.total_wh
        return None if total is None else total / 1000.0

    @callback
    def _handle_coordinator_update(self) -> None:
        """Account every snapshot, even those whose state write is coalesced away."""
        self._account(self.snapshot)
        super()._handle_coordinator_update()

    def _account(self, snapshot: MicrogridSnapshot | None) -> None:
        """Add a snapshot's counter reading or power sample to the total."""
        if snapshot is None:
            return
        counter = self._counter(snapshot)
        if counter is not None:
            self._total.add_meter_reading(*counter)
            return
        power = self._power_w(snapshot) if snapshot.reachable else None
        self._total.add_power_sample(snapshot.taken_at, power)

    @abstractmethod
    def _counter(
        self, snapshot: MicrogridSnapshot
    ) -> tuple[float, frozenset[int]] | None:
        """The counter reading (Wh) and the components it sums, if there is one."""

    @abstractmethod
    def _power_w(self, snapshot: MicrogridSnapshot) -> float | None:
        """The flow's power (W, ≥ 0) to integrate when there is no counter."""


class EnergySensor(_EnergyTotalSensor):
    """A pool's total (grid import/export, battery, PV, EV charging)."""

    entity_description: EnergySensorDescription

    def _counter(
        self, snapshot: MicrogridSnapshot
    ) -> tuple[float, frozenset[int]] | None:
        description = self.entity_description
        reading = description.counter_fn(snapshot.energy)
        if reading is None:
            return None
        return reading, description.meters_fn(snapshot.energy)

    def _power_w(self, snapshot: MicrogridSnapshot) -> float | None:
        return self.entity_description.power_fn(snapshot)


CHARGER_ENERGY = SensorEntityDescription(
    key="charging_energy",
    translation_key="charger_energy",
    device_class=SensorDeviceClass.ENERGY,
    native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
    state_class=SensorStateClass.TOTAL_INCREASING,
    suggested_display_precision=3,
)
"""Each EV charger's energy: an individual device on the Energy dashboard."""


class ChargerEnergySensor(_EnergyTotalSensor):
    """One EV charger's charged energy, so each wallbox can be its own device.

    Follows the charger's own consumed-energy counter, else integrates its power.
    """

    def __init__(self, entry: FrequenzMicrogridConfigEntry, charger: Component) -> None:
        """Create the total of `charger`."""
        super().__init__(entry, CHARGER_ENERGY, charger)
        self._meters = frozenset({int(charger.id)})

    def _counter(
        self, snapshot: MicrogridSnapshot
    ) -> tuple[float, frozenset[int]] | None:
        data = self._data(snapshot)
        reading = None if data is None else data.value(members.ENERGY_CONSUMED)
        return None if reading is None else (reading, self._meters)

    def _power_w(self, snapshot: MicrogridSnapshot) -> float | None:
        data = self._data(snapshot)
        return None if data is None else directed(data.value(members.AC_POWER))

    def _data(self, snapshot: MicrogridSnapshot) -> ComponentSnapshot | None:
        if not snapshot.reachable or self.component_id is None:
            return None
        return snapshot.component(self.component_id)


def charger_energy_sensors(
    entry: FrequenzMicrogridConfigEntry, only: Collection[int] | None = None
) -> list[SensorEntity]:
    """The energy sensor of every EV charger (`only`: of just these)."""
    topology = entry.runtime_data.engine.topology
    return [
        ChargerEnergySensor(entry, topology.components[charger_id])
        for charger_id in sorted(topology.ev_charger_ids)
        if only is None or charger_id in only
    ]
