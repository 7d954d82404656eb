"""The microgrid's topology: its components, how they are wired, and its pools.

Loaded once per connection from the Microgrid API. The wiring goes through
`frequenz-microgrid-component-graph`, the library the Frequenz SDK uses, so the pool
formulas (which meter or inverter measures which pool, with which fallbacks) are the
same ones the SDK evaluates; we only keep the formula strings and compile them
ourselves (see `formula.py`). Generating them holds the GIL for a long time on a
large site, so `load_topology` and `build_topology_off_loop` generate a large
site's formulas in a child process (`topology_worker.py`) and do the rest in an
executor thread: the event loop is never held for long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
import logging
from typing import Final

from frequenz.client.microgrid import MicrogridApiClient, MicrogridInfo
from frequenz.client.microgrid.component import (
    Battery,
    BatteryInverter,
    Component,
    ComponentConnection,
    EvCharger,
    GridConnectionPoint,
    Meter,
    SolarInverter,
)

from .topology_fingerprint import read_fingerprint
from .topology_worker import (
    Decoded,
    Generated,
    RawTopology,
    WorkerError,
    decode,
    formulas_in_child_process,
    generate_formulas,
)

_LOGGER = logging.getLogger(__name__)

CHILD_PROCESS_MIN_COMPONENTS: Final = 200
"""From this size on a site's formulas are generated in a child process.

Below it the graph library takes a few tens of milliseconds at most, less than
starting a process costs (tests and homes build in a thread).
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolFormulas:
    """The graph's formula strings, one per pool (`None` when the pool is empty).

    A formula names components (`#N`), not metrics: the same string gives a pool's
    active power when evaluated over `AC_POWER_ACTIVE` and its current per phase over
    `AC_CURRENT_PHASE_1..3` (as the SDK does for the grid and EV charger pools).
    """

    battery: str | None = None
    ev_charger: str | None = None
    pv: str | None = None
    grid: str | None = None
    consumer: str | None = None
    producer: str | None = None

    @classmethod
    def from_generated(cls, generated: Generated) -> PoolFormulas:
        """Take the generated formulas; say why any is missing."""
        for problem in generated["problems"]:
            _LOGGER.warning(problem)
        return cls(**generated["formulas"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Topology:
    """Everything static about one microgrid, as the API describes it."""

    info: MicrogridInfo
    components: Mapping[int, Component]
    connections: tuple[ComponentConnection, ...]
    battery_ids: frozenset[int] = frozenset()
    battery_inverter_ids: frozenset[int] = frozenset()
    pv_inverter_ids: frozenset[int] = frozenset()
    ev_charger_ids: frozenset[int] = frozenset()
    meter_ids: frozenset[int] = frozenset()
    grid_id: int | None = None
    formulas: PoolFormulas = PoolFormulas()
    _parents: Mapping[int, tuple[int, ...]] = field(default_factory=dict, repr=False)
    _children: Mapping[int, tuple[int, ...]] = field(default_factory=dict, repr=False)
    _inverters_of_battery: Mapping[int, tuple[int, ...]] = field(
        init=False, repr=False, compare=False
    )
    _batteries_of_inverter: Mapping[int, tuple[int, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        """Work out the battery–inverter links once: steering asks on every step."""
        object.__setattr__(
            self,
            "_inverters_of_battery",
            _links(self.battery_ids, self.parents_of, self.battery_inverter_ids),
        )
        object.__setattr__(
            self,
            "_batteries_of_inverter",
            _links(self.battery_inverter_ids, self.children_of, self.battery_ids),
        )

    def parent_of(self, component_id: int) -> int | None:
        """Return the component feeding `component_id` (e.g. a battery's inverter).

        `None` for the grid connection point or an unconnected component. A component
        with several parents (rare) returns the lowest id, so the answer is stable.
        """
        parents = self._parents.get(component_id, ())
        return parents[0] if parents else None

    def parents_of(self, component_id: int) -> tuple[int, ...]:
        """Return every component feeding `component_id`, sorted by id."""
        return self._parents.get(component_id, ())

    def children_of(self, component_id: int) -> tuple[int, ...]:
        """Return the components `component_id` feeds (e.g. an inverter's batteries)."""
        return self._children.get(component_id, ())

    def inverters_of_battery(self, battery_id: int) -> tuple[int, ...]:
        """Return the battery inverters a battery is connected to."""
        return self._inverters_of_battery.get(battery_id, ())

    def batteries_of_inverter(self, inverter_id: int) -> tuple[int, ...]:
        """Return the batteries behind a battery inverter."""
        return self._batteries_of_inverter.get(inverter_id, ())


def _links(
    ids: Iterable[int],
    neighbours: Callable[[int], tuple[int, ...]],
    wanted: frozenset[int],
) -> dict[int, tuple[int, ...]]:
    """Each id's neighbours (parents or children) that are among `wanted`."""
    return {cid: tuple(n for n in neighbours(cid) if n in wanted) for cid in ids}


def _ids_of(components: Iterable[Component], kind: type[Component]) -> frozenset[int]:
    return frozenset(int(c.id) for c in components if isinstance(c, kind))


def build_topology(
    info: MicrogridInfo,
    components: Iterable[Component],
    connections: Iterable[ComponentConnection],
    formulas: PoolFormulas | None = None,
) -> Topology:
    """Build a `Topology` from the API's answers (pure).

    `formulas`: generated already (by a child process, which also checked the
    wiring); otherwise they are generated here, holding the GIL all along
    (see `load_topology`).

    Raises:
        frequenz.microgrid_component_graph.InvalidGraphError: the components and
            connections do not form a valid microgrid.

    """
    component_list = list(components)
    connection_list = tuple(connections)
    if formulas is None:
        formulas = PoolFormulas.from_generated(
            generate_formulas(component_list, connection_list)
        )
    parents: dict[int, list[int]] = {}
    children: dict[int, list[int]] = {}
    for conn in connection_list:
        source, destination = int(conn.source), int(conn.destination)
        parents.setdefault(destination, []).append(source)
        children.setdefault(source, []).append(destination)

    grid_ids = sorted(_ids_of(component_list, GridConnectionPoint))
    return Topology(
        info=info,
        components={int(c.id): c for c in component_list},
        connections=connection_list,
        battery_ids=_ids_of(component_list, Battery),
        battery_inverter_ids=_ids_of(component_list, BatteryInverter),
        pv_inverter_ids=_ids_of(component_list, SolarInverter),
        ev_charger_ids=_ids_of(component_list, EvCharger),
        meter_ids=_ids_of(component_list, Meter),
        grid_id=grid_ids[0] if grid_ids else None,
        formulas=formulas,
        _parents={cid: tuple(sorted(ids)) for cid, ids in parents.items()},
        _children={cid: tuple(sorted(ids)) for cid, ids in children.items()},
    )


async def decode_off_loop(raw: RawTopology) -> Decoded:
    """Decode the API's raw answers in an executor thread (~0.3 s per 1,000)."""
    return await asyncio.to_thread(decode, raw)


async def build_topology_off_loop(raw: RawTopology, decoded: Decoded) -> Topology:
    """`build_topology` without holding the event loop for long.

    A large site's formulas come from a child process (the graph library would
    hold the GIL, and so the loop, for up to a second); should the child fail,
    they are generated in the thread after all. Everything else runs in an
    executor thread, in pure Python that gives the loop its turns.

    Raises:
        frequenz.microgrid_component_graph.InvalidGraphError: the answers do
            not form a valid microgrid.
    """
    info, components, connections = decoded
    formulas: PoolFormulas | None = None
    if len(components) >= CHILD_PROCESS_MIN_COMPONENTS:
        try:
            formulas = PoolFormulas.from_generated(await formulas_in_child_process(raw))
        except WorkerError as err:
            _LOGGER.warning(
                "Pool formulas generated in Home Assistant's process (slow for "
                "%d components): the child process failed: %s",
                len(components),
                err,
            )
    return await asyncio.to_thread(
        build_topology, info, components, connections, formulas
    )


async def load_topology(client: MicrogridApiClient) -> Topology:
    """Fetch the microgrid's metadata, components and connections and build a graph.

    The answers are decoded and built off the event loop (`build_topology_off_loop`).

    Raises:
        frequenz.client.microgrid.ApiClientError: the API cannot be reached or
            refused the request (e.g. `OperationUnauthenticated`).
        frequenz.microgrid_component_graph.InvalidGraphError: the microgrid's
            wiring is not a valid graph.

    """
    raw = await read_fingerprint(client)
    return await build_topology_off_loop(raw, await decode_off_loop(raw))
