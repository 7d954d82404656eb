"""Numbers: Home Assistant's own setpoint for each pool.

Each number is one actor of the controller (`home_assistant:<pool>` at the entry's
default priority, kept alive while the entry is loaded). Its value is that actor's
standing proposal, read back from the controller, so it shows what Home Assistant
asks for — not what the pool does (the target-power sensor shows that).

* Battery power setpoint (W, passive sign convention: positive charges). Its range
  is what the controller grants Home Assistant's priority.
* EV charging power limit (W, ≥ 0): the chargers share at most this much. It is
  proposed as an upper bound alone (no power): the EVs charge as fast as the bound
  allows, actors of lower priority can ask for less, never more, and a limit
  below the smallest EV's minimum charging power stops charging (a power would
  snap up to that minimum, past the limit).
* PV production limit (W, ≥ 0): the inverters produce at most this much. The user
  sees a positive "maximum production"; the controller gets `-limit` as a lower
  bound alone (production is negative).

After a restart the last value is restored. It is sent again only if the entry's
option `reapply_setpoints` is on; otherwise the number shows it with the attribute
`applied: false` until it is set again (the safe default: nothing is steered that
nobody asked for since the restart). A value restored but never applied is
shown again after the next restart, and never re-applied, even once the option
is on: only a value that was in force when Home Assistant stopped is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
import dataclasses
from dataclasses import dataclass
import math
from typing import TYPE_CHECKING, Any

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberExtraStoredData,
    NumberMode,
    RestoreNumber,
)
from homeassistant.const import PERCENTAGE, EntityCategory, UnitOfPower, UnitOfTime
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .action_fields import refusal_as
from .actors import ha_source_id, release_signal
from .charging_hub_entity import ChargingHubEntity
from .const import (
    CONF_REAPPLY_SETPOINTS,
    DEFAULT_REAPPLY_SETPOINTS,
    DOMAIN,
    LOGGER,
)
from .engine import members
from .engine.bounds import Bounds, PowerBounds, sum_bounds
from .engine.control import (
    ControllerStatus,
    MicrogridController,
    Pool,
    ProposalStatus,
)
from .engine.hub.modes import MAX_BOOST_S, check_boost_duration
from .engine.hub.solar import MAX_DELAY_S, check_delay
from .engine.results import Error, OutOfBounds, Result
from .entity import SteeringEntity, of_steerable_pools
from .restore_owner import OWNER_KEY, RestoresOwnData
from .steering_errors import raise_if_nothing_accepted
from .steering_status import granted_bounds, own_proposal, pool_set_status
from .topology_refresh import async_add_entities_on_topology_change

if TYPE_CHECKING:
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .engine.snapshot import MicrogridSnapshot
    from .runtime import FrequenzMicrogridConfigEntry

PARALLEL_UPDATES = 1
"""One setpoint at a time per platform: proposals are processed in order anyway."""


def reported_range(
    snapshot: MicrogridSnapshot, component_ids: Iterable[int]
) -> PowerBounds | None:
    """Return the sum of the AC power bounds the (fresh) components report.

    What the hardware can do regardless of who is connected: an EV charger reports
    its bounds with or without a vehicle, so a limit can be set before one arrives.
    """
    reported = [
        bounds
        for cid in component_ids
        if (component := snapshot.component(cid)) is not None
        and (bounds := component.bounds.get(members.AC_POWER)) is not None
    ]
    return sum_bounds(reported) if reported else None


def battery_pool_range(
    snapshot: MicrogridSnapshot, _component_ids: Iterable[int]
) -> PowerBounds | None:
    """Return the battery pool's bounds as the monitor computes them."""
    return snapshot.battery.bounds


@dataclass(frozen=True, kw_only=True)
class PoolNumberDescription(NumberEntityDescription):
    """Home Assistant's setpoint for one pool, and how it maps to a proposal."""

    pool: Pool
    power_fn: Callable[[float], float | None] = lambda value: value
    """The proposal's power (passive sign convention) for the value set; `None`
    for a limit (bounds alone)."""
    value_fn: Callable[[ProposalStatus], float | None] = lambda p: p.power
    """The value shown for the standing proposal (the inverse of the above)."""
    bounds_fn: Callable[[float], Bounds]
    """The proposal's bounds for the value set (what lower priorities may use)."""
    range_fn: Callable[[PowerBounds], tuple[float, float]]
    """The number's min and max for the pool's power range."""
    hardware_range_fn: Callable[[MicrogridSnapshot, Iterable[int]], PowerBounds | None]
    """The pool's power range from telemetry, when the controller has none."""
    hardware_first: bool = False
    """Prefer the telemetry range over the controller's (EV chargers without a
    vehicle count as not working, so the controller's range would be 0 W)."""
    # Every pool number is a power in W.
    device_class: NumberDeviceClass | None = NumberDeviceClass.POWER
    native_unit_of_measurement: str | None = UnitOfPower.WATT


def _no_bounds(_: float) -> Bounds:
    return Bounds()


NUMBERS: tuple[PoolNumberDescription, ...] = (
    PoolNumberDescription(
        key="batteries_setpoint",
        translation_key="batteries_setpoint",
        pool=Pool.BATTERIES,
        native_step=1.0,
        mode=NumberMode.BOX,
        bounds_fn=_no_bounds,
        range_fn=lambda b: (b.inclusion_lower, b.inclusion_upper),
        hardware_range_fn=battery_pool_range,
    ),
    PoolNumberDescription(
        key="ev_chargers_limit",
        translation_key="ev_chargers_limit",
        pool=Pool.EV_CHARGERS,
        native_step=100.0,
        mode=NumberMode.SLIDER,
        power_fn=lambda _: None,
        value_fn=lambda proposal: proposal.bounds.upper,
        bounds_fn=lambda value: Bounds(None, value),
        range_fn=lambda b: (0.0, max(0.0, b.inclusion_upper)),
        hardware_range_fn=reported_range,
        hardware_first=True,
    ),
    PoolNumberDescription(
        key="pv_limit",
        translation_key="pv_limit",
        pool=Pool.PV,
        native_step=100.0,
        mode=NumberMode.SLIDER,
        power_fn=lambda _: None,
        value_fn=lambda proposal: (
            None if proposal.bounds.lower is None else 0.0 - proposal.bounds.lower
        ),
        bounds_fn=lambda value: Bounds(0.0 - value, None),
        range_fn=lambda b: (0.0, max(0.0, -b.inclusion_lower)),
        hardware_range_fn=reported_range,
        hardware_first=True,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up Home Assistant's setpoint for every pool the microgrid has."""
    async_add_entities(
        PoolNumber(entry, description)
        for description in of_steerable_pools(entry, NUMBERS)
    )
    async_add_entities(_hub_setting_numbers(entry))
    async_add_entities_on_topology_change(
        hass,
        entry,
        async_add_entities,
        lambda _: [
            *(PoolNumber(entry, d) for d in of_steerable_pools(entry, NUMBERS)),
            *_hub_setting_numbers(entry),
        ],
        governs=(PoolNumber,),
    )


def _hub_setting_numbers(
    entry: FrequenzMicrogridConfigEntry,
) -> list[HubSettingNumber]:
    """The charging hub's settings the topology in use has a use for."""
    topology = entry.runtime_data.engine.topology
    return [
        HubSettingNumber(entry, description)
        for description in HUB_SETTING_NUMBERS
        if description.exists_fn(topology.ev_charger_ids, topology.battery_ids)
    ]


@dataclass
class PoolNumberStoredData(NumberExtraStoredData):
    """A pool number's restore data: its value and whether it was in force."""

    applied: bool = True
    """False for a value restored and never sent since: it is never re-applied.
    Data stored before this field existed counts as applied (as it was treated)."""
    owner: str | None = None
    """The unique id of the number that stored it (`restore_owner`)."""

    @classmethod
    def from_dict(cls, restored: dict[str, Any]) -> PoolNumberStoredData | None:
        """Read the number's data and the `applied` flag (default: applied)."""
        base = NumberExtraStoredData.from_dict(restored)
        if base is None:
            return None
        owner = restored.get(OWNER_KEY)
        return cls(
            **dataclasses.asdict(base),
            applied=restored.get("applied") is not False,
            owner=owner if isinstance(owner, str) else None,
        )


class PoolNumber(SteeringEntity, RestoresOwnData, RestoreNumber):
    """Home Assistant's own proposal for one pool."""

    entity_description: PoolNumberDescription
    _unrecorded_attributes = frozenset({"applied"})
    _restored: float | None = None
    """A value restored after a restart and not sent (yet)."""

    @property
    def pool(self) -> Pool:
        """The pool this number steers."""
        return self.entity_description.pool

    # -- state ----------------------------------------------------------------

    @property
    def proposal(self) -> ProposalStatus | None:
        """Home Assistant's standing proposal for the pool, if any."""
        set_status = pool_set_status(self.controller_status, self.pool)
        return own_proposal(set_status, self.pool, self.priority)

    @property
    def native_value(self) -> float | None:
        """The proposal's value; a restored one not applied yet; else unknown."""
        proposal = self.proposal
        if proposal is None:
            return self._restored
        return self.entity_description.value_fn(proposal)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Whether the value shown is standing with the controller."""
        return {"applied": self.proposal is not None}

    @property
    def extra_restore_state_data(self) -> PoolNumberStoredData:
        """The value to restore, and whether it is in force now."""
        return PoolNumberStoredData(
            **dataclasses.asdict(super().extra_restore_state_data),
            applied=self.proposal is not None,
            owner=self.unique_id,
        )

    @property
    def native_min_value(self) -> float:
        """The lowest value the pool can take now."""
        return self._range()[0]

    @property
    def native_max_value(self) -> float:
        """The highest value the pool can take now."""
        return self._range()[1]

    _range_of: tuple[object, object, int, tuple[float, float]] | None = None
    """The last range and the snapshot, status and priority it was found for."""

    def _range(self) -> tuple[float, float]:
        """Min and max from the first known, finite power range.

        Home Assistant's granted bounds, then the pool's system bounds, then the
        telemetry (EV and PV: telemetry first); 0…0 while nothing is known.
        Found once per snapshot and controller status (a render asks for both
        edges, and the telemetry's range sums every component's bounds).
        """
        snapshot, status, priority = (
            self.snapshot,
            self.controller_status,
            self.priority,
        )
        known = self._range_of
        if (
            known is not None
            and known[0] is snapshot
            and known[1] is status
            and known[2] == priority
        ):
            return known[3]
        found = self._find_range(snapshot, status, priority)
        self._range_of = (snapshot, status, priority, found)
        return found

    def _find_range(
        self,
        snapshot: MicrogridSnapshot | None,
        status: ControllerStatus,
        priority: int,
    ) -> tuple[float, float]:
        description = self.entity_description
        controller_range = granted_bounds(pool_set_status(status, self.pool), priority)
        hardware_range = (
            None
            if snapshot is None
            else description.hardware_range_fn(
                snapshot, self.feed.controller.pool_components(self.pool)
            )
        )
        candidates = (
            (hardware_range, controller_range)
            if description.hardware_first
            else (controller_range, hardware_range)
        )
        for bounds in candidates:
            if bounds is not None:
                low, high = description.range_fn(bounds)
                if math.isfinite(low) and math.isfinite(high) and low <= high:
                    return (low, high)
        return (0.0, 0.0)

    # -- changes --------------------------------------------------------------

    async def async_added_to_hass(self) -> None:
        """Restore the last value; re-send it only if the option says so."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                release_signal(self.coordinator.config_entry.entry_id, self.pool),
                self._handle_release,
            )
        )
        extra = await self.async_get_last_extra_data()
        last = (
            None if extra is None else PoolNumberStoredData.from_dict(extra.as_dict())
        )
        if last is None or last.native_value is None:
            return
        self._restored = last.native_value
        options = self.coordinator.config_entry.options
        if not last.applied or not options.get(
            CONF_REAPPLY_SETPOINTS, DEFAULT_REAPPLY_SETPOINTS
        ):
            return
        try:
            await self._async_propose(last.native_value)
        except HomeAssistantError as err:
            LOGGER.warning("Could not re-apply %s: %s", self.entity_id, err)

    async def async_set_native_value(self, value: float) -> None:
        """Propose `value` for the pool; raise if the microgrid can't take it."""
        try:
            await self._async_propose(value)
        finally:
            self.async_write_ha_state()

    async def _async_propose(self, value: float) -> None:
        """Send Home Assistant's proposal for `value` to the controller."""
        description = self.entity_description
        # The pool's whole set overlaps a subset an action steers.
        with refusal_as(
            lambda error: HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="setpoint_refused",
                translation_placeholders={"error": error},
            )
        ):
            outcome = await self.feed.controller.propose(
                self.pool,
                source_id=ha_source_id(self.pool),
                priority=self.priority,
                power=description.power_fn(value),
                bounds=description.bounds_fn(value),
                keep_alive=True,
            )
        self._restored = None
        result = outcome.result
        raise_if_nothing_accepted(result)
        if (reason := _failure_reason(result)) is not None:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="setpoint_not_applied",
                translation_placeholders={"value": f"{value:g}", "reason": reason},
            )

    @callback
    def _handle_release(self) -> None:
        """Forget a restored value: the release button was pressed."""
        self._restored = None
        self.async_write_ha_state()


def _failure_reason(result: Result | None) -> str | None:
    """Why a distribution sent nothing, or `None` if it sent something."""
    match result:
        case Error(msg=msg):
            return msg
        case OutOfBounds(bounds=bounds):
            ranges = ", ".join(f"{lo:g}…{hi:g} W" for lo, hi in bounds.to_ranges())
            return f"outside the allowed power ({ranges})"
        case _:
            return None


# --- charging hub settings ----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class HubSettingDescription(NumberEntityDescription):
    """A number setting of the charging hub, read from and written to the engine."""

    value_fn: Callable[[MicrogridController], float]
    set_fn: Callable[[MicrogridController, float], None]
    """Apply the value (raises `ValueError` for a value the engine refuses)."""
    exists_fn: Callable[[frozenset[int], frozenset[int]], bool] = (
        lambda chargers, _batteries: bool(chargers)
    )
    """Whether the microgrid needs it, given its charger and battery ids."""
    # What every hub setting shares: a configuration value in whole units.
    entity_category: EntityCategory | None = EntityCategory.CONFIG
    native_step: float | None = 1.0
    mode: NumberMode = NumberMode.BOX


def _set_boost_minutes(controller: MicrogridController, minutes: float) -> None:
    check_boost_duration(minutes * 60.0)
    controller.charger_modes.default_boost_s = minutes * 60.0


def _set_solar_start_delay(controller: MicrogridController, delay_s: float) -> None:
    controller.charger_modes.solar.start_delay_s = check_delay(delay_s)


def _set_solar_stop_delay(controller: MicrogridController, delay_s: float) -> None:
    controller.charger_modes.solar.stop_delay_s = check_delay(delay_s)


def _set_floor_soc(controller: MicrogridController, soc_pct: float) -> None:
    controller.battery_for_evs.set_floor_soc(soc_pct)
    controller.on_tick()  # bound (or free) the battery at once


def _solar_delay(
    key: str,
    value_fn: Callable[[MicrogridController], float],
    set_fn: Callable[[MicrogridController, float], None],
) -> HubSettingDescription:
    """The description of one of solar mode's two delays (seconds, same range)."""
    return HubSettingDescription(
        key=key,
        translation_key=key,
        device_class=NumberDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        native_min_value=0.0,
        native_max_value=MAX_DELAY_S,
        value_fn=value_fn,
        set_fn=set_fn,
    )


HUB_SETTING_NUMBERS: tuple[HubSettingDescription, ...] = (
    HubSettingDescription(
        key="boost_duration",
        translation_key="boost_duration",
        device_class=NumberDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MINUTES,
        native_min_value=1.0,
        native_max_value=MAX_BOOST_S / 60.0,
        value_fn=lambda c: c.charger_modes.default_boost_s / 60.0,
        set_fn=_set_boost_minutes,
    ),
    _solar_delay(
        "solar_start_delay",
        lambda c: c.charger_modes.solar.start_delay_s,
        _set_solar_start_delay,
    ),
    _solar_delay(
        "solar_stop_delay",
        lambda c: c.charger_modes.solar.stop_delay_s,
        _set_solar_stop_delay,
    ),
    HubSettingDescription(
        key="battery_floor_soc_for_evs",
        translation_key="battery_floor_soc_for_evs",
        native_unit_of_measurement=PERCENTAGE,
        native_min_value=0.0,
        native_max_value=100.0,
        mode=NumberMode.SLIDER,
        value_fn=lambda c: c.battery_for_evs.floor_soc_pct,
        set_fn=_set_floor_soc,
        exists_fn=lambda chargers, batteries: bool(chargers and batteries),
    ),
)


class HubSettingNumber(ChargingHubEntity, NumberEntity):
    """A number setting of the charging hub (kept across restarts by its store)."""

    entity_description: HubSettingDescription

    @property
    def native_value(self) -> float:
        """The setting now."""
        return self.entity_description.value_fn(self.controller)

    async def async_set_native_value(self, value: float) -> None:
        """Apply the setting (Home Assistant checked it against min and max)."""
        try:
            self.entity_description.set_fn(self.controller, value)
        except ValueError as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_hub_setting",
                translation_placeholders={
                    "value": f"{value:g}",
                    "min": f"{self.min_value:g}",
                    "max": f"{self.max_value:g}",
                },
            ) from err
        self._settings_changed()
