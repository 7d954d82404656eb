"""Frequenz Microgrid: watch and steer a microgrid from Home Assistant.

Setting up an entry is the one place that wires it: it connects a Microgrid API
client (to a real microgrid, or to the built-in simulator a demo entry starts on a
loopback port), loads the topology, builds the engine (`MicrogridEngine`: the
monitor and the steering controller the actions and number entities talk to) with
the coordinator as the receiver of its snapshots, registers the devices, and starts
the status feed, repair issues and the topology refresh (components connected or
disconnected while it runs: `topology_refresh`). Unloading and Home Assistant
stop release all of it again, in the reverse order: proposals are withdrawn and
the components released before the client disconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import contextlib
import math
from typing import Any

from frequenz.client.microgrid import MicrogridApiClient
from frequenz.microgrid_component_graph import InvalidGraphError
from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
)
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryError,
    ConfigEntryNotReady,
    HomeAssistantError,
)
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.typing import ConfigType

from .actions import async_setup_actions
from .assets_sync import AssetsSync
from .charger_mode_actions import async_setup_charger_mode_actions
from .charging_hub_store import (
    ChargingHubSettings,
    async_remove_charging_hub_settings,
)
from .circuit_actions import async_setup_circuit_actions
from .circuit_flow import circuits_fingerprint, user_circuits
from .circuit_store import CircuitLimitsStore
from .connection import ConnectionProblem, classify_error, open_client
from .const import (
    CONF_API_KEY,
    CONF_ASSETS_API_KEY,
    CONF_ASSETS_SIGNING_SECRET,
    CONF_ASSETS_URL,
    CONF_DEMO,
    CONF_FRESHNESS_S,
    CONF_SCENARIO,
    CONF_SIGNING_SECRET,
    CONF_URL,
    CONNECT_TIMEOUT_S,
    DEFAULT_FRESHNESS_S,
    DEFAULT_RESERVATION_GRACE_MIN,
    DEMO_HOST,
    DOMAIN,
    LOGGER,
)
from .coordinator import MicrogridCoordinator
from .detail_metrics import enabled_detail_metrics
from .devices import async_apply_inventory, async_register_devices
from .engine.graph import Topology, load_topology
from .engine.hub.reservations import MAX_GRACE_S
from .engine.microgrid import MicrogridEngine
from .engine.snapshot import MicrogridSnapshot
from .hub_plan import HubPlanner, seed_demo_bookings
from .hub_reservations import HubReservations, async_remove_reservations
from .identity import microgrid_id
from .plan_actions import async_setup_plan_actions
from .reactive_actions import async_setup_reactive_actions
from .repairs import RepairTracker
from .report_actions import async_setup_report_actions
from .reservation_actions import async_setup_reservation_actions
from .runtime import FrequenzMicrogridConfigEntry, MicrogridRuntimeData
from .session_recorder import SessionRecorder, async_remove_sessions
from .simulator import MicrogridSimulator, load_scenario
from .status_feed import ControllerStatusFeed
from .target_actions import async_setup_target_actions
from .target_store import HubTargets, async_remove_targets, reservation_guarantee
from .topology_refresh import TopologyRefresh

PLATFORMS: list[Platform] = [
    Platform.SENSOR,
    Platform.BINARY_SENSOR,
    Platform.NUMBER,
    Platform.BUTTON,
    Platform.EVENT,
    Platform.SELECT,
    Platform.SWITCH,
    Platform.CALENDAR,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, once for every entry (they name their entry)."""
    async_setup_actions(hass)
    async_setup_report_actions(hass)
    async_setup_charger_mode_actions(hass)
    async_setup_reservation_actions(hass)
    async_setup_circuit_actions(hass)
    async_setup_reactive_actions(hass)
    async_setup_target_actions(hass)
    async_setup_plan_actions(hass)
    return True


async def async_setup_entry(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry
) -> bool:
    """Connect to the microgrid, start monitoring it and set up the platforms.

    Whatever set-up started is stopped again if a later step fails or set-up is
    cancelled, through one exit stack: until the runtime exists each part undoes
    itself (in reverse: the client disconnects before its simulator stops), from
    then on `MicrogridRuntimeData.async_close` releases all of it.
    """
    async with contextlib.AsyncExitStack() as cleanup:
        simulator = (
            await _async_start_demo(hass, entry.data[CONF_SCENARIO])
            if entry.data.get(CONF_DEMO)
            else None
        )
        if simulator is not None:
            cleanup.push_async_callback(simulator.stop)
        url = simulator.url if simulator else entry.data[CONF_URL]
        client, topology = await _async_connect(entry, url)
        cleanup.push_async_callback(client.disconnect)

        coordinator = MicrogridCoordinator(hass, entry)
        sessions = SessionRecorder(hass, entry.entry_id, topology.ev_charger_ids)
        await sessions.async_load()

        @callback
        def _on_snapshot(snapshot: MicrogridSnapshot) -> None:
            """Account the sessions first, so entities read them with the snapshot."""
            sessions.handle_snapshot(snapshot)
            coordinator.async_set_updated_data(snapshot)

        assets = _assets_sync(hass, entry, simulator, topology)
        if assets is not None:
            cleanup.push_async_callback(assets.async_close)
            # Before devices and steering: names from the start, and no component
            # outside its operational lifetime is ever steered.
            await assets.async_refresh()
        circuit_store = CircuitLimitsStore(hass, entry.entry_id)
        topology_refresh = TopologyRefresh(hass, entry)

        @callback
        def _on_reachability(reachable: bool) -> None:
            """Log it; a reconnect re-reads the topology (it may have changed)."""
            coordinator.handle_reachability(reachable)
            topology_refresh.handle_reachability(reachable)

        engine = MicrogridEngine(
            client,
            topology,
            on_snapshot=_on_snapshot,
            on_reachability=_on_reachability,
            on_auth_error=coordinator.handle_auth_error,
            freshness_s=float(entry.options.get(CONF_FRESHNESS_S, DEFAULT_FRESHNESS_S)),
            detail_metrics=enabled_detail_metrics(hass, entry, topology),
            user_circuits=user_circuits(entry),
        )
        status_feed = ControllerStatusFeed(engine.controller, coordinator)
        hub_settings = ChargingHubSettings(hass, entry.entry_id, engine.controller)
        guarantee = reservation_guarantee(engine.controller, topology)
        reservations = HubReservations(
            hass,
            entry.entry_id,
            topology,
            engine.controller.circuit_limits.tree.circuits,
            reservation_grace_min(entry.options),
            guarantee,
        )
        guarantee.bookings = reservations.book.reservations
        targets = HubTargets(
            hass,
            entry.entry_id,
            engine.controller.charging_targets,
            sessions,
            reservations,
        )
        planner = HubPlanner(
            hass,
            controller=engine.controller,
            entry_id=entry.entry_id,
            topology=lambda: engine.topology,
            options=entry.options,
            reservations=reservations,
            sessions=sessions,
            simulator=simulator,
        )
        runtime = MicrogridRuntimeData(
            client=client,
            engine=engine,
            coordinator=coordinator,
            status_feed=status_feed,
            repairs=RepairTracker(hass, entry.entry_id, entry.title, topology),
            devices=async_register_devices(
                hass,
                entry,
                topology,
                inventory=None if assets is None else assets.inventory,
                circuit_ids=engine.controller.circuit_limits.tree.ids,
            ),
            simulator=simulator,
            sessions=sessions,
            hub_settings=hub_settings,
            assets=assets,
            reservations=reservations,
            targets=targets,
            circuit_store=circuit_store,
            topology_refresh=topology_refresh,
            planner=planner,
        )
        entry.runtime_data = runtime
        cleanup.pop_all()  # the runtime releases all of it from here on
        cleanup.push_async_callback(runtime.async_close)
        await circuit_store.async_restore(engine.controller.circuit_limits)
        if assets is not None:
            assets.steer_within_lifetimes(engine.controller)
        # Modes first: a charger set to off must not charge for a moment.
        await hub_settings.async_load()
        entry.async_on_unload(hub_settings.follow())
        await reservations.async_load()
        entry.async_on_unload(reservations.follow(coordinator, sessions.open_sessions))
        entry.async_on_unload(reservations.listen_stamped(sessions.session_changed))
        entry.async_on_unload(sessions.async_add_listener(reservations.stamp_session))
        # After the booking stamp: a session under a booking takes its target.
        await targets.async_load()
        entry.async_on_unload(targets.follow(coordinator))
        if simulator is not None:
            seed_demo_bookings(reservations, simulator, engine.controller)
        await engine.start()
        coordinator.async_set_updated_data(engine.monitor.snapshot())
        entry.async_on_unload(planner.async_start(coordinator))
        entry.async_on_unload(runtime.repairs.follow(coordinator, status_feed))
        entry.async_on_unload(_close_on_stop(hass, runtime))
        entry.async_on_unload(_reload_on_new_circuits(hass, entry))
        await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
        entry.async_on_unload(topology_refresh.start())
        sessions.start_following()
        if assets is not None:
            assets.listen(
                lambda inventory: async_apply_inventory(
                    hass, entry.entry_id, runtime.devices, inventory
                )
            )
            assets.start()
        cleanup.pop_all()  # set up: keep it all running
    return True


def reservation_grace_min(options: Mapping[str, Any]) -> float:
    """The reservation grace option (minutes), bounded to what the book accepts.

    A stored value that is not a number, not finite or out of range (an edited
    file, an older version's bounds) must not keep the entry from setting up: it
    falls back to the default or is clamped into 0 … `MAX_GRACE_S`.
    """
    try:
        grace_min = HubReservations.grace_min_of(options)
    except TypeError, ValueError:
        grace_min = DEFAULT_RESERVATION_GRACE_MIN
    if not math.isfinite(grace_min):
        grace_min = DEFAULT_RESERVATION_GRACE_MIN
    return min(max(grace_min, 0.0), MAX_GRACE_S / 60.0)


async def async_unload_entry(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry
) -> bool:
    """Unload the platforms, then stop streaming and disconnect."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.async_close()
    return unloaded


async def async_remove_entry(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry
) -> None:
    """Delete what the entry kept on disk: sessions, targets, limits, hub, bookings."""
    await async_remove_sessions(hass, entry.entry_id)
    await async_remove_targets(hass, entry.entry_id)
    await CircuitLimitsStore(hass, entry.entry_id).async_remove()
    await async_remove_charging_hub_settings(hass, entry.entry_id)
    await async_remove_reservations(hass, entry.entry_id)


async def _async_start_demo(hass: HomeAssistant, scenario: str) -> MicrogridSimulator:
    """Start the built-in simulator for a demo entry on a free loopback port."""
    try:
        # Scenario files are read from disk: not in the event loop.
        data = await hass.async_add_executor_job(load_scenario, scenario)
        simulator = MicrogridSimulator(data)
        await simulator.start(host=DEMO_HOST, port=0)
    except Exception as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="demo_failed",
            translation_placeholders={"scenario": scenario, "error": str(err)},
        ) from err
    return simulator


def _assets_sync(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    simulator: MicrogridSimulator | None,
    topology: Topology,
) -> AssetsSync | None:
    """Prepare reading the Assets API, if the entry has one.

    A demo entry reads its simulator's; a real one the URL of its options. A
    broken URL (only possible by editing the stored entry) leaves the entry
    without the inventory, never without telemetry.
    """
    api_key: str | None = None
    secret: str | None = None
    url: str | None = entry.options.get(CONF_ASSETS_URL)
    if simulator is not None:
        url = simulator.assets_url
    elif url:
        api_key = entry.options.get(CONF_ASSETS_API_KEY)
        secret = entry.options.get(CONF_ASSETS_SIGNING_SECRET)
    else:
        return None
    try:
        return AssetsSync(
            hass,
            entry_id=entry.entry_id,
            title=entry.title,
            url=url,
            api_key=api_key,
            signing_secret=secret,
            microgrid_id=int(topology.info.id),
        )
    except ValueError as err:
        LOGGER.error("The Assets API URL of %s is not valid: %s", entry.title, err)
        return None


async def _async_connect(
    entry: FrequenzMicrogridConfigEntry, url: str
) -> tuple[MicrogridApiClient, Topology]:
    """Open a client and load the topology, or raise the right setup error."""
    try:
        client = open_client(
            url,
            api_key=entry.data.get(CONF_API_KEY),
            signing_secret=entry.data.get(CONF_SIGNING_SECRET),
        )
    except ValueError as err:
        raise _setup_error(err) from err
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            topology = await load_topology(client)
    except BaseException as err:
        await client.disconnect()
        if isinstance(err, Exception):
            raise _setup_error(err) from err
        raise

    found = microgrid_id(topology.info)
    if not entry.data.get(CONF_DEMO) and found != entry.unique_id:
        await client.disconnect()
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="wrong_microgrid",
            translation_placeholders={
                "expected": str(entry.unique_id),
                "found": found,
            },
        )
    return client, topology


def _setup_error(err: Exception) -> HomeAssistantError:
    """Translate a failure to reach the microgrid into a setup outcome.

    A rejected key starts a reauth flow, a broken URL or wiring needs the user, and
    everything else is retried by Home Assistant with back-off.
    """
    placeholders = {"error": str(err) or type(err).__name__}
    if isinstance(err, InvalidGraphError):
        return ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="invalid_topology",
            translation_placeholders=placeholders,
        )
    match classify_error(err):
        case ConnectionProblem.INVALID_AUTH:
            return ConfigEntryAuthFailed(
                translation_domain=DOMAIN,
                translation_key="invalid_auth",
                translation_placeholders=placeholders,
            )
        case ConnectionProblem.INVALID_URL:
            return ConfigEntryError(
                translation_domain=DOMAIN,
                translation_key="invalid_url",
                translation_placeholders=placeholders,
            )
        case _:
            return ConfigEntryNotReady(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders=placeholders,
            )


@callback
def _reload_on_new_circuits(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry
) -> CALLBACK_TYPE:
    """Reload the entry when its circuit subentries change; returns unsubscribe.

    The steering is built from them. Options changes reload through the options
    flow (which forbids update listeners), so this follows the entry's change
    signal and compares the circuits with those it was set up with.
    """
    built_from = circuits_fingerprint(entry)

    @callback
    def _changed(change: ConfigEntryChange, changed: ConfigEntry[Any]) -> None:
        nonlocal built_from
        if (
            change is ConfigEntryChange.UPDATED
            and changed.entry_id == entry.entry_id
            and (fingerprint := circuits_fingerprint(changed)) != built_from
        ):
            # Once: the unloading that follows sends this signal too (its
            # state changes) while this listener is still subscribed.
            built_from = fingerprint
            hass.config_entries.async_schedule_reload(entry.entry_id)

    return async_dispatcher_connect(hass, SIGNAL_CONFIG_ENTRY_CHANGED, _changed)


def _close_on_stop(hass: HomeAssistant, runtime: MicrogridRuntimeData) -> CALLBACK_TYPE:
    """Release the entry's resources when Home Assistant stops.

    Returns a callback removing the listener, safe to call after it has fired
    (Home Assistant logs an error if a fired once-listener is removed again).
    """
    remove: CALLBACK_TYPE | None = None

    async def _async_close(_: Event) -> None:
        nonlocal remove
        remove = None
        await runtime.async_close()

    remove = hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _async_close)

    @callback
    def _remove() -> None:
        if remove is not None:
            remove()

    return _remove
