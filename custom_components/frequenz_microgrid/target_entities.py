"""Entities of the deadline targets: per charger and for the whole hub.

Per EV charger: the target (kWh; unknown without one) with its departure and
progress as attributes, the expected completion (timestamp; unknown while no
car is plugged in or when the forecast does not reach the target by departure)
and *target at risk* (on as soon as the plugged-in car is forecast to miss its
target under the circuits' limits and envelopes). On the hub: the unmet energy
(kWh) the forecast expects over every plugged-in target.

They show the hub's settings and forecast, not telemetry, so they stay
available while the microgrid is away; each change of a target is shown at
once, the forecast with the snapshots (`HubTargets` re-runs it).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import UnitOfEnergy
from homeassistant.helpers.typing import StateType

from .charging_hub_entity import ChargingHubEntity, chargers
from .engine.hub.targets import ChargingTargets, TargetState

if TYPE_CHECKING:
    from .runtime import FrequenzMicrogridConfigEntry

CHARGING_TARGET = SensorEntityDescription(
    key="charging_target",
    translation_key="charging_target",
    device_class=SensorDeviceClass.ENERGY_STORAGE,
    native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
    suggested_display_precision=1,
)
EXPECTED_COMPLETION = SensorEntityDescription(
    key="target_expected_completion",
    translation_key="target_expected_completion",
    device_class=SensorDeviceClass.TIMESTAMP,
)
TARGET_AT_RISK = BinarySensorEntityDescription(
    key="target_at_risk",
    translation_key="target_at_risk",
    device_class=BinarySensorDeviceClass.PROBLEM,
)
UNMET_ENERGY = SensorEntityDescription(
    key="target_unmet_energy",
    translation_key="target_unmet_energy",
    device_class=SensorDeviceClass.ENERGY_STORAGE,
    state_class=SensorStateClass.MEASUREMENT,
    native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
    suggested_display_precision=2,
)


def target_sensors(
    entry: FrequenzMicrogridConfigEntry, only: Collection[int] | None = None
) -> list[SensorEntity]:
    """The target sensors of every charger (or `only` those) and the unmet energy."""
    if not entry.runtime_data.engine.topology.ev_charger_ids:
        return []
    sensors: list[SensorEntity] = [UnmetEnergySensor(entry, UNMET_ENERGY)]
    for charger in chargers(entry, only):
        sensors.append(ChargingTargetSensor(entry, CHARGING_TARGET, charger))
        sensors.append(ExpectedCompletionSensor(entry, EXPECTED_COMPLETION, charger))
    return sensors


def target_binary_sensors(
    entry: FrequenzMicrogridConfigEntry, only: Collection[int] | None = None
) -> list[BinarySensorEntity]:
    """A *target at risk* sensor for every charger (or `only` those)."""
    return [
        TargetAtRiskSensor(entry, TARGET_AT_RISK, charger)
        for charger in chargers(entry, only)
    ]


class _TargetEntity(ChargingHubEntity):
    """Reads the controller's targets; shows every change of a target at once."""

    _attributes_are_shown = True  # progress and forecasts move on their own

    @property
    def targets(self) -> ChargingTargets:
        """The controller's deadline targets."""
        return self.controller.charging_targets

    @property
    def target_state(self) -> TargetState | None:
        """This charger's target with its progress and forecast, if any."""
        assert self.component_id is not None
        return self.targets.state(self.component_id)

    async def async_added_to_hass(self) -> None:
        """Also show every change of the targets at once."""
        await super().async_added_to_hass()
        self.async_on_remove(self.targets.listen(self.async_write_ha_state))


class ChargingTargetSensor(_TargetEntity, SensorEntity):
    """The charger's target energy (kWh), with its departure and progress."""

    _unrecorded_attributes = frozenset({"session_id", "booking_id", "laxity_s"})

    @property
    def native_value(self) -> StateType:
        """The target energy in kWh; unknown without a target."""
        state = self.target_state
        if state is None or state.target.energy_wh is None:
            return None
        return round(state.target.energy_wh / 1000.0, 3)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Departure, delivered and remaining energy, laxity, booking."""
        state = self.target_state
        if state is None:
            return None
        record = state.as_dict()
        return {
            "departure": record["departure"],
            "delivered_kwh": round(state.delivered_wh / 1000.0, 3),
            "remaining_kwh": round(state.remaining_wh / 1000.0, 3),
            "laxity_s": record["laxity_s"],
            "plugged_in": state.target.session_id is not None,
            "session_id": state.target.session_id,
            "booking_id": state.target.booking_id,
        }


class ExpectedCompletionSensor(_TargetEntity, SensorEntity):
    """When the hub expects the charger's target to be met."""

    @property
    def native_value(self) -> datetime | None:
        """The forecast's completion time; unknown when none by departure."""
        state = self.target_state
        if state is None or state.outlook is None:
            return None
        completion = state.outlook.completion_s
        return None if completion is None else datetime.fromtimestamp(completion, UTC)


class TargetAtRiskSensor(_TargetEntity, BinarySensorEntity):
    """On while the plugged-in car is forecast to miss its target."""

    @property
    def is_on(self) -> bool:
        """Whether the target is at risk (off without a target or car)."""
        state = self.target_state
        return state is not None and state.at_risk

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """The energy forecast to be missing at departure (kWh)."""
        state = self.target_state
        unmet = None if state is None else state.unmet_wh
        if unmet is None:
            return None
        return {"unmet_kwh": round(unmet / 1000.0, 3)}


class UnmetEnergySensor(_TargetEntity, SensorEntity):
    """The energy the hub forecasts to miss over every plugged-in target (kWh)."""

    @property
    def native_value(self) -> StateType:
        """The hub's forecast unmet energy."""
        return round(self.targets.unmet_wh / 1000.0, 3)
