"""Sensors of the charging sessions: per charger and for the whole hub.

Per EV charger, the session energy (kWh) and duration: of the session in progress,
or of the last one while the charger is free (the `session` attribute says which:
`current` or `last`), with the session's solar / battery / grid split and peak as
attributes. On the hub: chargers occupied and free now (datafev's
`query_actual_occupation`) and the utilisation since local midnight.

The session sensors show stored records, so they stay available while the
microgrid is unreachable (the session is then still open: silence is not an
unplug); the occupancy sensors follow the live data.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, UnitOfEnergy, UnitOfTime
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .engine.hub.occupancy import Occupancy, actual_occupation, utilisation
from .engine.hub.sessions import ChargingSession, SessionTracker
from .entity import MicrogridEntity

if TYPE_CHECKING:
    from .runtime import FrequenzMicrogridConfigEntry

SESSION_ATTRIBUTES = (
    "session_id",
    "started_at",
    "ended_at",
    "solar_kwh",
    "battery_kwh",
    "grid_kwh",
    "peak_power_kw",
    "energy_source",
)
"""Record fields shown as attributes of the per-charger session sensors."""


@dataclass(frozen=True, kw_only=True)
class SessionSensorDescription(SensorEntityDescription):
    """A per-charger sensor of its current or last session."""

    value_fn: Callable[[ChargingSession, datetime], StateType]


@dataclass(frozen=True, kw_only=True)
class OccupancySensorDescription(SensorEntityDescription):
    """A hub sensor of the chargers' occupancy."""

    value_fn: Callable[[SessionTracker, datetime], StateType]


def _utilisation_today(tracker: SessionTracker, now: datetime) -> float | None:
    share = utilisation(
        tracker.sessions(),
        len(tracker.charger_ids),
        dt_util.start_of_local_day(dt_util.as_local(now)),
        now,
    )
    return None if share is None else round(share * 100.0, 2)


def _occupancy(
    field: Callable[[Occupancy], int],
) -> Callable[[SessionTracker, datetime], int]:
    return lambda tracker, _now: field(actual_occupation(tracker))


SESSION_SENSORS: tuple[SessionSensorDescription, ...] = (
    SessionSensorDescription(
        key="session_energy",
        translation_key="session_energy",
        device_class=SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        value_fn=lambda session, _now: round(session.energy_wh / 1000.0, 4),
    ),
    SessionSensorDescription(
        key="session_duration",
        translation_key="session_duration",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        suggested_unit_of_measurement=UnitOfTime.MINUTES,  # "735 s" reads badly
        suggested_display_precision=0,
        value_fn=lambda session, now: int(session.duration(now).total_seconds()),
    ),
)

OCCUPANCY_SENSORS: tuple[OccupancySensorDescription, ...] = (
    OccupancySensorDescription(
        key="chargers_occupied",
        translation_key="chargers_occupied",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_occupancy(lambda occupancy: occupancy.occupied),
    ),
    OccupancySensorDescription(
        key="chargers_free",
        translation_key="chargers_free",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_occupancy(lambda occupancy: occupancy.free),
    ),
    OccupancySensorDescription(
        key="utilisation_today",
        translation_key="utilisation_today",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=_utilisation_today,
    ),
)


def session_sensors(
    entry: FrequenzMicrogridConfigEntry, only: Collection[int] | None = None
) -> list[SensorEntity]:
    """The session and occupancy sensors of an entry with EV chargers.

    `only`: the session sensors of just these chargers (and the occupancy ones).
    """
    runtime = entry.runtime_data
    recorder = runtime.sessions
    if recorder is None or not recorder.tracker.charger_ids:
        return []
    topology = runtime.engine.topology
    sensors: list[SensorEntity] = [
        OccupancySensor(entry, description) for description in OCCUPANCY_SENSORS
    ]
    sensors.extend(
        ChargerSessionSensor(entry, description, topology.components[charger_id])
        for charger_id in recorder.tracker.charger_ids
        if only is None or charger_id in only
        for description in SESSION_SENSORS
    )
    return sensors


class _SessionsEntity(MicrogridEntity):
    """An entity reading the entry's session tracker."""

    @property
    def tracker(self) -> SessionTracker:
        """The entry's session tracker (set up whenever these entities exist)."""
        recorder = self.coordinator.config_entry.runtime_data.sessions
        assert recorder is not None
        return recorder.tracker

    @property
    def now(self) -> datetime:
        """The time of the latest snapshot (what the sessions were updated to)."""
        snapshot = self.snapshot
        return snapshot.taken_at if snapshot is not None else dt_util.utcnow()


class ChargerSessionSensor(_SessionsEntity, SensorEntity):
    """The energy or duration of a charger's current (or last) session."""

    entity_description: SessionSensorDescription
    min_interval: ClassVar[timedelta] = timedelta(seconds=5)
    _unrecorded_attributes = frozenset({"session_id", "started_at", "ended_at"})

    @property
    def _session(self) -> ChargingSession | None:
        assert self.component_id is not None
        return self.tracker.current_or_last(self.component_id)

    def _data_available(self) -> bool:
        """Always: a stored session does not depend on live telemetry."""
        return True

    @property
    def native_value(self) -> StateType:
        """The session's value; unknown before the charger's first session."""
        session = self._session
        return (
            None
            if session is None
            else self.entity_description.value_fn(session, self.now)
        )

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Which session is shown (`current` or `last`) and its record."""
        session = self._session
        if session is None:
            return None
        record = session.record(self.now)
        return {
            "session": "current" if session.is_open else "last",
            **{key: record[key] for key in SESSION_ATTRIBUTES},
        }

    def _rendered(self) -> tuple[bool, object]:
        """A change of the shown session alone (same value) is a change too."""
        available, value = super()._rendered()
        session = self._session
        return (
            available,
            (value, None if session is None else (session.session_id, session.is_open)),
        )


class OccupancySensor(_SessionsEntity, SensorEntity):
    """Chargers occupied or free, or the utilisation today, of the whole hub."""

    entity_description: OccupancySensorDescription
    _value_decides_availability = True

    @property
    def native_value(self) -> StateType:
        """The hub's value now."""
        return self.entity_description.value_fn(self.tracker, self.now)
