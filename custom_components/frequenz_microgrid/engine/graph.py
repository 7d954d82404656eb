"""The microgrid's topology: its components, how they are wired, and its pools.

Loaded once per connection from the Microgrid API. The wiring goes through
`frequenz-microgrid-component-graph`, the library the Frequenz SDK uses, so the pool
formulas (which meter or inverter measures which pool, with which fallbacks) are the
same ones the SDK evaluates; we only keep the formula strings and compile them
ourselves (see `formula.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
import logging

from frequenz.client.common.microgrid.components import ComponentId
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
from frequenz.microgrid_component_graph import (
    ComponentGraph,
    ComponentGraphConfig,
    FormulaGenerationError,
)

_LOGGER = logging.getLogger(__name__)

type MicrogridGraph = ComponentGraph[Component, ComponentConnection, ComponentId]
"""The component graph over the client's own component and connection objects."""


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Topology:
    """Everything static about one microgrid, as the API describes it."""

    info: MicrogridInfo
    components: Mapping[int, Component]
    connections: tuple[ComponentConnection, ...]
    graph: MicrogridGraph
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


def _formula_or_none(name: str, generate: Callable[[], str]) -> str | None:
    """Generate a formula; `None` (logged) when the graph cannot express it."""
    try:
        return generate()
    except FormulaGenerationError as err:
        _LOGGER.warning("Cannot build the %s formula: %s", name, err)
        return None


def build_topology(
    info: MicrogridInfo,
    components: Iterable[Component],
    connections: Iterable[ComponentConnection],
    config: ComponentGraphConfig | None = None,
) -> Topology:
    """Build a `Topology` from the API's answers (pure; used by `load_topology`).

    Raises:
        frequenz.microgrid_component_graph.InvalidGraphError: the components and
            connections do not form a valid microgrid.

    """
    component_list = list(components)
    connection_list = tuple(connections)
    graph: MicrogridGraph = ComponentGraph(
        component_list, connection_list, config or ComponentGraphConfig()
    )
    parents: dict[int, list[int]] = {}
    children: dict[int, list[int]] = {}
    for conn in connection_list:
        source, destination = int(conn.source), int(conn.destination)
        parents.setdefault(destination, []).append(source)
        children.setdefault(source, []).append(destination)

    battery_ids = _ids_of(component_list, Battery)
    pv_inverter_ids = _ids_of(component_list, SolarInverter)
    ev_charger_ids = _ids_of(component_list, EvCharger)
    grid_ids = sorted(_ids_of(component_list, GridConnectionPoint))
    formulas = PoolFormulas(
        # An empty pool has no formula (the library would answer "0.0"): there is
        # nothing to measure, so the pool gets no entities rather than a fake 0 W.
        battery=_formula_or_none("battery", lambda: graph.battery_formula(None))
        if battery_ids
        else None,
        ev_charger=_formula_or_none(
            "EV charger", lambda: graph.ev_charger_formula(None)
        )
        if ev_charger_ids
        else None,
        pv=_formula_or_none("PV", lambda: graph.pv_formula(None))
        if pv_inverter_ids
        else None,
        grid=_formula_or_none("grid", graph.grid_formula),
        consumer=_formula_or_none("consumer", graph.consumer_formula),
        producer=_formula_or_none("producer", graph.producer_formula),
    )
    return Topology(
        info=info,
        components={int(c.id): c for c in component_list},
        connections=connection_list,
        graph=graph,
        battery_ids=battery_ids,
        battery_inverter_ids=_ids_of(component_list, BatteryInverter),
        pv_inverter_ids=pv_inverter_ids,
        ev_charger_ids=ev_charger_ids,
        meter_ids=_ids_of(component_list, Meter),
        grid_id=grid_ids[0] if grid_ids else None,
        formulas=formulas,
        _parents={cid: tuple(sorted(ids)) for cid, ids in parents.items()},
        _children={cid: tuple(sorted(ids)) for cid, ids in children.items()},
    )


async def load_topology(
    client: MicrogridApiClient, config: ComponentGraphConfig | None = None
) -> Topology:
    """Fetch the microgrid's metadata, components and connections and build a graph.

    Raises:
        frequenz.client.microgrid.ApiClientError: the API cannot be reached or
            refused the request (e.g. `OperationUnauthenticated`).
        frequenz.microgrid_component_graph.InvalidGraphError: the microgrid's
            wiring is not a valid graph.

    """
    info, components, connections = await asyncio.gather(
        client.get_microgrid_info(),
        client.list_components(),
        client.list_connections(),
    )
    return build_topology(info, components, connections, config)
