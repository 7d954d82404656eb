"""Components connected or disconnected while the entry runs, without a reload.

The topology (components and connections, from the Microgrid API) is re-read
every `TOPOLOGY_REFRESH_INTERVAL` and each time the microgrid is reachable again
after an outage (a reconnect is when a changed site is most likely). Nearly
every read is unchanged: it is compared with the topology in use and nothing
else happens (no entity is touched, no state written). When it changed:

- the engine follows it (`MicrogridEngine.follow_topology`): streams, pool
  formulas, pools, circuits and proposals; nothing is sent to a component
  that left;
- the reservation book takes the new chargers (bookings of chargers that left
  are dropped); the sessions, the charging plan and the repair issues know the
  new components;
- the devices of components and circuits that left are removed, with their
  entities;
- every platform adds the entities the new topology has and it has not
  (`async_add_entities_on_topology_change`), which registers the new devices
  (components, and circuits of new feeders); entities of a pool that has no
  components any more (the last PV inverter left) are removed from the entity
  registry, as those of a removed device are.

A failed read changes nothing and is tried again at the next occasion: the
microgrid being away is the monitor's business, not this module's. A new wiring
that is not a valid microgrid is not followed (a warning says why).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from frequenz.client.microgrid import ApiClientError
from frequenz.microgrid_component_graph import InvalidGraphError
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import entity_platform, entity_registry as er
from homeassistant.helpers.dispatcher import (
    async_dispatcher_connect,
    async_dispatcher_send,
)
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_time_interval

from .const import CONNECT_TIMEOUT_S, DOMAIN, LOGGER
from .devices import (
    async_refresh_component_devices,
    async_remove_circuit_devices,
    async_remove_component_devices,
)
from .engine.graph import Topology, build_topology_off_loop
from .engine.pools import CompiledFormulas
from .engine.topology_change import TopologyChange, unchanged
from .engine.topology_fingerprint import TopologyFingerprint, read_fingerprint
from .engine.topology_worker import CachingDecoder, Decoded, RawTopology
from .entity import async_add_by_subentry

if TYPE_CHECKING:
    from .runtime import FrequenzMicrogridConfigEntry

TOPOLOGY_REFRESH_INTERVAL: Final = timedelta(minutes=5)
"""How often the topology is re-read besides on every reconnect.

Components are connected by an installer, not every minute: five minutes shows
a new one soon enough, and a read costs three small unary calls.
"""


def topology_signal(entry_id: str) -> str:
    """The dispatcher signal a changed topology of the entry is sent on."""
    return f"{DOMAIN}_{entry_id}_topology_changed"


class TopologyRefresh:
    """Re-reads one entry's topology and applies a change (`start`)."""

    def __init__(
        self, hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry
    ) -> None:
        """Prepare; nothing is read before `start` (the entry is not set up yet)."""
        self._hass = hass
        self._entry = entry
        self._lock = asyncio.Lock()
        self._running = False
        self._fingerprint: TopologyFingerprint | None = None
        """The raw answers the topology in use was last confirmed from."""
        self._decoder = CachingDecoder()
        """Decodes only the components whose answers changed since last time."""

    @callback
    def start(self) -> CALLBACK_TYPE:
        """Re-read periodically from now on; returns a callback that stops it."""
        self._running = True
        cancel_interval = async_track_time_interval(
            self._hass,
            self._on_interval,
            TOPOLOGY_REFRESH_INTERVAL,
            name=f"{DOMAIN} topology refresh",
            cancel_on_shutdown=True,
        )

        @callback
        def _stop() -> None:
            self._running = False
            cancel_interval()

        return _stop

    @callback
    def handle_reachability(self, reachable: bool) -> None:
        """Re-read when the microgrid is reachable again (a reconnect)."""
        if reachable and self._running:
            self._schedule()

    @callback
    def _on_interval(self, _: datetime) -> None:
        self._schedule()

    @callback
    def _schedule(self) -> None:
        self._entry.async_create_background_task(
            self._hass, self.async_refresh(), f"{DOMAIN} topology refresh"
        )

    async def async_refresh(self) -> TopologyChange | None:
        """Read the topology and apply what changed; `None`: it could not be read.

        Refreshes never overlap: one that comes while another runs waits for it
        (and then finds nothing new).
        """
        async with self._lock:
            if not self._running:
                return None
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    reading = await self._async_read()
            except (ApiClientError, TimeoutError) as err:
                LOGGER.debug(
                    "Cannot re-read the topology of %s: %s", self._entry.title, err
                )
                return None
            except InvalidGraphError as err:
                # Kept on the topology in use; said at every refresh until fixed.
                LOGGER.warning(
                    "The new wiring of %s is not a valid microgrid, not followed: %s",
                    self._entry.title,
                    err,
                )
                return None
            if reading is None:
                return TopologyChange()
            return await self._async_apply(reading)

    async def _async_read(self) -> Topology | None:
        """The topology the API describes now; `None`: the one in use.

        Equal raw answers are the common case and cost next to nothing; others
        are decoded (in the executor) and compared; only a real change builds a
        new graph, without holding the event loop (`build_topology_off_loop`).
        """
        runtime = self._entry.runtime_data
        raw = await read_fingerprint(runtime.client)
        if raw == self._fingerprint:
            return None
        current = runtime.engine.topology
        decoded = await self._hass.async_add_executor_job(
            _decode_if_changed, self._decoder, current, raw
        )
        if decoded is None:
            self._fingerprint = raw
            return None
        topology = await build_topology_off_loop(raw, decoded)
        self._fingerprint = raw
        return topology

    async def _async_apply(self, topology: Topology) -> TopologyChange | None:
        """Follow a changed topology: the engine, the devices, the platforms."""
        runtime = self._entry.runtime_data
        engine = runtime.engine
        # Compiling 1,000 components' formulas is pure Python: a thread's work.
        formulas = await self._hass.async_add_executor_job(
            CompiledFormulas.from_topology, topology
        )
        if topology.info.id != engine.topology.info.id:
            LOGGER.warning(
                "%s now answers as microgrid %s, not %s: topology not followed",
                self._entry.title,
                int(topology.info.id),
                int(engine.topology.info.id),
            )
            return None
        circuits_before = set(engine.controller.circuit_limits.tree.ids)
        change = await engine.follow_topology(topology, formulas)
        if not change:
            return change
        circuits = engine.controller.circuit_limits.tree
        LOGGER.info(
            "Topology of %s changed: components %s added, %s removed",
            self._entry.title,
            sorted(change.added),
            sorted(change.removed),
        )
        if runtime.sessions is not None:  # sessions at the new chargers too
            runtime.sessions.tracker.charger_ids = tuple(
                sorted(topology.ev_charger_ids)
            )
        if runtime.reservations is not None:
            runtime.reservations.follow_topology(topology, circuits.circuits)
        runtime.repairs.follow_topology(topology)
        async_remove_component_devices(
            self._hass, self._entry.entry_id, runtime.devices, change.removed
        )
        async_remove_circuit_devices(
            self._hass,
            self._entry.entry_id,
            runtime.devices,
            circuits_before - set(circuits.ids),
        )
        async_refresh_component_devices(
            self._hass,
            self._entry.entry_id,
            runtime.devices,
            (topology.components[cid] for cid in sorted(change.updated)),
        )
        await asyncio.sleep(0)  # what the removals set off, apart from the additions
        async_dispatcher_send(self._hass, topology_signal(self._entry.entry_id), change)
        return change


def _decode_if_changed(
    decoder: CachingDecoder, current: Topology, raw: RawTopology
) -> Decoded | None:
    """The raw answers decoded, or `None` if they describe `current` (executor).

    Decoding and comparing 1,000 components is up to ~0.2 s of pure Python.
    """
    decoded = decoder.decode(raw)
    info, components, connections = decoded
    if info == current.info and unchanged(current, components, connections):
        return None
    return decoded


@callback
def async_add_entities_on_topology_change(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[TopologyChange], Iterable[Entity]],
    *,
    governs: Iterable[type[Entity]] = (),
) -> None:
    """Add a platform's entities for a changed topology (call in `async_setup_entry`).

    After each change, `build` returns the platform's entities for the new
    topology (it may return all of them: those the platform has already, by
    unique id, are left alone, so nothing existing is re-created).

    `governs`: the entity classes `build` returns *all* entities of (say, the
    pool entities): an entity of exactly such a class that it no longer returns
    (its pool has no components left) is removed from the entity registry, as
    with a removed device.
    """
    platform = entity_platform.async_get_current_platform()
    governed = frozenset(governs)

    async def _changed(change: TopologyChange) -> None:
        # Each platform in a loop iteration of its own: adding and removing
        # entities on a large site would otherwise hold the loop in one piece.
        await asyncio.sleep(0)
        if entry.state is not ConfigEntryState.LOADED:  # unloading meanwhile
            return
        built = list(build(change))
        present = {entity.unique_id: entity for entity in platform.entities.values()}
        if governed:  # an exact class look-up: thousands of entities on large sites
            wanted = {entity.unique_id for entity in built}
            registry = er.async_get(hass)
            for unique_id, entity in present.items():
                if (
                    type(entity) in governed
                    and unique_id not in wanted
                    and registry.async_get(entity.entity_id) is not None
                ):
                    registry.async_remove(entity.entity_id)
        new = [entity for entity in built if entity.unique_id not in present]
        if new:
            async_add_by_subentry(async_add_entities, new)

    entry.async_on_unload(
        async_dispatcher_connect(hass, topology_signal(entry.entry_id), _changed)
    )
