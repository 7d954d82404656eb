"""Sensor "planned power" of each EV charger: the charging plan's slot now.

Its state is the power the hub's plan gives the charger in the current
15-minute slot (0 W where the plan holds it back; unknown where no need of the
charger is planned). Its attributes carry the charger's plan as
`get_charging_plan` answers it — each need with its slots, source, price and
cost — and the energy that cannot be met, so a dashboard card or an automation
sees the plan without an action call. The slots are left out of the recorder
(they change with every re-plan and would fill the database).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from frequenz.client.microgrid.component import Component
from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import UnitOfPower

from .charging_hub_entity import ChargingHubEntity, chargers
from .plan_actions import plan_response

if TYPE_CHECKING:
    from .hub_plan import HubPlanner
    from .runtime import FrequenzMicrogridConfigEntry

PLANNED_POWER = SensorEntityDescription(
    key="planned_power",
    translation_key="planned_power",
    device_class=SensorDeviceClass.POWER,
    state_class=SensorStateClass.MEASUREMENT,
    native_unit_of_measurement=UnitOfPower.WATT,
    suggested_display_precision=0,
)


def plan_sensors(
    entry: FrequenzMicrogridConfigEntry, only: Collection[int] | None = None
) -> list[PlannedPowerSensor]:
    """A "planned power" sensor per EV charger, `only` those (none: no planner)."""
    planner = entry.runtime_data.planner
    if planner is None:
        return []
    return [
        PlannedPowerSensor(entry, planner, charger) for charger in chargers(entry, only)
    ]


class PlannedPowerSensor(ChargingHubEntity, SensorEntity):
    """The plan's power for one charger now, and its plan as attributes."""

    _unrecorded_attributes = frozenset({"needs"})

    def __init__(
        self,
        entry: FrequenzMicrogridConfigEntry,
        planner: HubPlanner,
        charger: Component,
    ) -> None:
        """Follow `charger`'s part of `planner`'s plan."""
        super().__init__(entry, PLANNED_POWER, charger)
        self.planner = planner
        self.charger_id = int(charger.id)

    async def async_added_to_hass(self) -> None:
        """Also show every new plan at once."""
        await super().async_added_to_hass()
        self.async_on_remove(self.planner.add_listener(self.async_write_ha_state))

    @property
    def native_value(self) -> float | None:
        """The planned power now (W); `None` where no need is planned."""
        power = self.planner.planned_power_w(self.charger_id)
        return None if power is None else round(power, 1)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The charger's needs with their slots, and what cannot be met."""
        response = plan_response(self.planner, self.charger_id)
        return {
            "unmet_kwh": response["unmet_kwh"],
            "cost": response["cost"],
            "needs": response["chargers"].get(str(self.charger_id), []),
        }
