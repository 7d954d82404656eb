"""Base entities: one per entry's hub or component, with coalesced writes.

Every entity of a microgrid reads the same `MicrogridSnapshot`, which the monitor
pushes once a second. Writing every entity's state on every push would flood the
recorder on a large site, so the base entity writes only when what it shows changed
and at most once per `min_interval`; a change inside that window is written once the
window closes, so the last value always lands.

"What it shows" is the value as displayed: a sensor's number rounded to the
precision the user sees (the registry's display precision, else the suggested
one), so noise below that precision writes nothing. And an entity that shows only
its component's data skips even the comparison while the snapshot hands out the
same component object as before (the store reuses it while nothing changed): on a
large site most components repeat themselves, second after second.

`MicrogridEntity` takes the entity's description (and its component, if it has
one) and derives everything else: the unique id, the device, the coordinator.
`SteeringEntity` also follows the controller's status feed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from operator import attrgetter, is_
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol

from frequenz.client.microgrid.component import Component
from homeassistant.components.binary_sensor import BinarySensorEntity
from homeassistant.components.number import NumberEntity
from homeassistant.components.sensor import SensorEntity
from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .actors import ha_priority
from .coordinator import MicrogridCoordinator
from .engine.control import ControllerStatus, Pool
from .engine.graph import Topology
from .engine.snapshot import ComponentSnapshot, MicrogridSnapshot

if TYPE_CHECKING:
    from .runtime import FrequenzMicrogridConfigEntry
    from .status_feed import ControllerStatusFeed

DEFAULT_MIN_INTERVAL: Final = timedelta(seconds=1)
"""Shortest time between two state writes of one entity."""

LARGE_SITE_COMPONENTS: Final = 1_200
"""Above this many components with a device, their entities start disabled.

Home Assistant adds at most 10,000 enabled entities per config entry
(`MAX_ENABLED_ENTITIES_PER_CONFIG_ENTRY`) and drops every one past that with a
warning. A component has about seven entities enabled by default, so from
~1,350 components on, whichever components' entities happened to come last
would have none. Above this size every component entity starts disabled
instead (the hub's pool, energy and steering entities stay enabled): the user
enables those wanted, and each enabled one is also one less to update and
write on every tick.
"""


def is_large_site(topology: Topology) -> bool:
    """Whether the site has more components with a device than `LARGE_SITE_COMPONENTS`.

    Counted from the topology's id sets (meters, inverters, batteries, EV
    chargers): every component entity asks.
    """
    devices = (
        len(topology.meter_ids)
        + len(topology.battery_inverter_ids)
        + len(topology.pv_inverter_ids)
        + len(topology.battery_ids)
        + len(topology.ev_charger_ids)
    )
    return devices > LARGE_SITE_COMPONENTS


def async_add_by_subentry(
    add: AddConfigEntryEntitiesCallback, entities: Iterable[Entity]
) -> None:
    """Add entities, each under its config subentry (its `config_subentry_id`, if any).

    Home Assistant lists a subentry's devices and entities with it (and removes
    them with it) only when they are added under it: a user-defined circuit's.
    """
    groups: dict[str | None, list[Entity]] = {}
    for entity in entities:
        subentry_id: str | None = getattr(entity, "config_subentry_id", None)
        groups.setdefault(subentry_id, []).append(entity)
    for subentry_id, group in groups.items():
        add(group, config_subentry_id=subentry_id)


def _shown_value_getter(entity: Entity) -> Callable[[Any], object]:
    """Return what decides an entity's shown state, the cheapest way to get it.

    A sensor's or number's state is its native value converted by the entity's unit
    and precision, which do not change while it runs (a registry change writes the
    state by itself), so the native value decides the state, without the conversion
    work of `SensorEntity.state`; a sensor's number as rounded for display. A
    binary sensor's state is `is_on`.
    """
    if isinstance(entity, SensorEntity):
        return _displayed_native_value
    if isinstance(entity, NumberEntity):
        return attrgetter("native_value")
    if isinstance(entity, BinarySensorEntity):
        return attrgetter("is_on")
    return attrgetter("state")


def _displayed_native_value(entity: MicrogridEntity) -> object:
    """A sensor's native value, rounded as displayed (see `change_precision`)."""
    value = entity.native_value  # type: ignore[attr-defined]
    precision = entity.change_precision
    if precision is None or type(value) is not float:
        return value
    return round(value, precision)


def display_precision(entity: Entity) -> int | None:
    """The decimals a sensor shows of its native value (`None`: all, or no sensor).

    The user's choice in the entity registry, else the suggested precision. Only
    while the state is in the native unit: a converted unit (W shown as kW) has a
    precision of its own, and then every change counts.
    """
    if (
        not isinstance(entity, SensorEntity)
        or entity.unit_of_measurement != entity.native_unit_of_measurement
    ):
        return None
    registry_entry = entity.registry_entry
    options: Mapping[str, Any] | None = (
        None if registry_entry is None else registry_entry.options.get("sensor")
    )
    chosen = None if not options else options.get("display_precision")
    precision = entity.suggested_display_precision if chosen is None else chosen
    return precision if isinstance(precision, int) else None


class MicrogridEntity(CoordinatorEntity[MicrogridCoordinator]):
    """An entity fed by microgrid snapshots, with coalesced state writes.

    Available only while the coordinator has data and the microgrid API answers;
    platform entities add "and the value is known".
    """

    _attr_has_entity_name = True

    _value_decides_availability: ClassVar[bool] = False
    """Whether the entity is also unavailable while its value is unknown (`None`)."""

    min_interval: ClassVar[timedelta] = DEFAULT_MIN_INTERVAL
    """How often the state is written at most."""

    _attributes_are_shown: ClassVar[bool] = False
    """Whether a change of the extra attributes alone (same state) is written too.

    Off for the many component entities whose attributes follow their state;
    on for those whose attributes change on their own (a limit's next change, a
    forecast's unmet energy), which would otherwise go stale.
    """

    _shows_component_data_only: ClassVar[bool] = False
    """Whether the state is a function of the component's snapshot alone (and of
    the availability of data): then a snapshot with the same component object as
    the last one changes nothing, and the entity is not re-rendered."""

    change_precision: int | None = None
    """A sensor's decimals that count as a change (`display_precision`)."""

    def __init__(
        self,
        entry: FrequenzMicrogridConfigEntry,
        description: EntityDescription,
        component: Component | None = None,
    ) -> None:
        """Create the entity of `description` on `component`'s device, else the hub's.

        Its unique id is `{entry}_{key}` on the hub, `{entry}_{component}_{key}`
        on a component.
        """
        runtime = entry.runtime_data
        self.component_id = None if component is None else int(component.id)
        # The coordinator tells an entity of its component's data alone only
        # when that component changed (the context names it).
        super().__init__(
            runtime.coordinator,
            self.component_id if self._shows_component_data_only else None,
        )
        self.entity_description = description
        self._attr_unique_id = runtime.devices.unique_id(description.key, component)
        self._attr_device_info = runtime.devices.device_info(component)
        if component is not None and is_large_site(runtime.engine.topology):
            self._attr_entity_registry_enabled_default = False
        self._written: tuple[bool, object] | None = None
        self._cooldown: CALLBACK_TYPE | None = None
        self._change_pending = False
        self._shown_value_of = _shown_value_getter(self)
        self._checked_inputs: tuple[object, ...] | None = None

    @property
    def snapshot(self) -> MicrogridSnapshot | None:
        """The latest snapshot, or `None` before the first one."""
        return self.coordinator.data

    @property
    def component_snapshot(self) -> ComponentSnapshot | None:
        """This component's latest fresh data, or `None` if it is silent or stale."""
        snapshot = self.snapshot
        if snapshot is None or self.component_id is None:
            return None
        return snapshot.component(self.component_id)

    @property
    def available(self) -> bool:
        """Whether the data is current (and, if it decides, the value known)."""
        return self._rendered()[0]

    def _data_available(self) -> bool:
        """Whether the data is current: coordinator healthy and microgrid reachable."""
        snapshot = self.snapshot
        return super().available and snapshot is not None and snapshot.reachable

    def _rendered(self) -> tuple[bool, object]:
        """What a state write would show; writes are skipped while it is unchanged.

        Runs for every entity on every snapshot (thousands a second on a large
        microgrid), so it compares the value the state is made from, not `state`,
        and evaluates that value once for both the availability and the state.
        """
        if not self._data_available():
            return (False, None)
        value = self._shown_value_of(self)
        if value is None and self._value_decides_availability:
            return (False, None)
        if self._attributes_are_shown:
            return (True, (value, self._frozen_extra_attributes()))
        return (True, value)

    _extra_frozen: tuple[tuple[str, ...], tuple[object, ...], object] | None = None
    """The last extra attributes' keys, values and frozen form."""

    def _frozen_extra_attributes(self) -> object:
        """The extra attributes, comparable by value; frozen anew only on a change.

        A pool's last result lists every component and setpoint, and the
        controller hands out the very same lists while the result is the same:
        freezing those of 1,250 chargers on every snapshot cost a millisecond.
        Attribute values are never changed in place, so the same objects under
        the same keys are the same attributes.
        """
        attributes = self.extra_state_attributes
        if attributes is None:
            return None
        keys, values = tuple(attributes), tuple(attributes.values())
        known = self._extra_frozen
        if (
            known is not None
            and known[0] == keys
            and all(map(is_, known[1], values, strict=True))
        ):
            return known[2]
        frozen = _frozen(attributes)
        self._extra_frozen = (keys, values, frozen)
        return frozen

    async def async_added_to_hass(self) -> None:
        """Start listening and make sure a pending trailing write dies with us."""
        await super().async_added_to_hass()
        self._read_change_precision()
        self.async_on_remove(self._cancel_cooldown)

    @callback
    def async_registry_entry_updated(self) -> None:
        """The user may have chosen another display precision or unit."""
        super().async_registry_entry_updated()
        self._read_change_precision()

    def _read_change_precision(self) -> None:
        self.change_precision = display_precision(self)
        self._checked_inputs = None  # what counts as a change may have changed

    @callback
    def _async_write_ha_state(self) -> None:
        """Write the state and remember what was written (for change detection).

        Home Assistant routes every state write through this hook (the public
        `async_write_ha_state` is final), whoever asks for it.
        """
        super()._async_write_ha_state()
        self._written = self._rendered()
        # What was just written is what these inputs show: the coordinator tells
        # a component-data entity only of a change, so the first one must count.
        self._checked_inputs = self._render_inputs()

    def _render_inputs(self) -> tuple[object, ...] | None:
        """All the state is made of, if the entity can tell (compared with `==`).

        While they equal those of the last update, that update already wrote,
        scheduled or dismissed what they show, and the entity is not re-rendered.
        `None`: no such shortcut, render on every update.
        """
        return self._component_inputs() if self._shows_component_data_only else None

    def _component_inputs(self) -> tuple[bool, bool, ComponentSnapshot | None]:
        """What a component-data-only entity's state is made of (compared by identity).

        The coordinator's success, the microgrid's reachability and the component's
        snapshot object.
        """
        snapshot = self.snapshot
        if snapshot is None:
            return (self.coordinator.last_update_success, False, None)
        component_id = self.component_id
        return (
            self.coordinator.last_update_success,
            snapshot.reachable,
            None if component_id is None else snapshot.components.get(component_id),
        )

    @callback
    def _handle_coordinator_update(self) -> None:
        """Write now if something changed and the window is open, else later.

        An entity of its component's data alone whose inputs are the very ones of
        the last update stops here: that update already wrote, scheduled or
        dismissed what they show.
        """
        inputs = self._render_inputs()
        if inputs is not None:
            if inputs == self._checked_inputs:
                return
            self._checked_inputs = inputs
        if self._rendered() == self._written:
            self._change_pending = False
            return
        if self._cooldown is not None:
            self._change_pending = True
            return
        self._write_and_start_cooldown()

    @callback
    def _write_and_start_cooldown(self) -> None:
        """Write the state and close the window for `min_interval`."""
        self._change_pending = False
        self.async_write_ha_state()
        self._cooldown = async_call_later(
            self.hass, self.min_interval, self._cooldown_over
        )

    @callback
    def _cooldown_over(self, _now: datetime) -> None:
        """Open the window; write the change that arrived meanwhile, if any."""
        self._cooldown = None
        if self._change_pending and self._rendered() != self._written:
            self._write_and_start_cooldown()
        self._change_pending = False

    @callback
    def _cancel_cooldown(self) -> None:
        """Drop a scheduled trailing write (the entity is going away)."""
        if self._cooldown is not None:
            self._cooldown()
            self._cooldown = None


class SteeringEntity(MicrogridEntity):
    """An entity showing the controller's status, with coalesced writes.

    Re-rendered on every snapshot (like every entity) and on every controller
    change. A change of its attributes alone also counts as a change: a result's
    details or a block's expiry can change while the state stays the same.
    """

    @property
    def feed(self) -> ControllerStatusFeed:
        """The entry's controller status feed."""
        return self.coordinator.config_entry.runtime_data.status_feed

    @property
    def controller_status(self) -> ControllerStatus:
        """The controller's current status."""
        return self.feed.status

    @property
    def priority(self) -> int:
        """Home Assistant's own priority (the entry's default priority)."""
        return ha_priority(self.coordinator.config_entry)

    async def async_added_to_hass(self) -> None:
        """Also follow the controller's changes."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.feed.async_add_listener(self._handle_coordinator_update)
        )

    _attributes_are_shown = True

    def _rendered(self) -> tuple[bool, object]:
        """What a write would show, capability attributes (a number's range) too."""
        available, state = super()._rendered()
        if not available:
            return (available, state)
        return (available, (state, _frozen(self.capability_attributes)))


class PoolDescription(Protocol):
    """An entity description of one pool's steering."""

    @property
    def pool(self) -> Pool:
        """The pool the entity steers or shows."""
        ...


def of_steerable_pools[D: PoolDescription](
    entry: FrequenzMicrogridConfigEntry, descriptions: Iterable[D]
) -> list[D]:
    """Return the descriptions whose pool the microgrid has components for."""
    controller = entry.runtime_data.engine.controller
    return [d for d in descriptions if controller.pool_components(d.pool)]


def _frozen(attributes: Mapping[str, Any] | None) -> object:
    """Return attributes in a form that compares by value (for change detection)."""
    return None if attributes is None else repr(sorted(attributes.items()))
