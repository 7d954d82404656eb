"""The circuit tree: which chargers sit behind which fuse or feeder limit.

The grid connection point is the root circuit: every charger is behind it, and
its per-phase fuse is the connection point's rated fuse current. Below it, a
*sub-circuit* is a feeder with its own limits – a fuse in A per phase and/or a
fixed limit in W – and the chargers behind it, optionally measured by a meter:

- **Discovered** from the topology: a meter whose rated per-phase current bounds
  say its circuit's rating (the Microgrid API gives meters no fuse field; the
  simulator and real sites state it as the meter's rated AC current bounds) and
  that has EV chargers behind it. Its own meter measures it.
- **User-defined** (a config subentry in Home Assistant): a name, chargers, a fuse
  and/or a kW limit, optionally a meter.

Circuits may nest in any way: the steering holds each one (spec §4, circuits),
and a charger's current never exceeds what *any* of its circuits leaves on any
phase. A power limit envelope over time (`envelope.LimitEnvelope`) can be set on
every circuit, the root included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
import math

from frequenz.client.microgrid.component import Component, Meter
from frequenz.client.microgrid.metrics import Metric

from ..graph import Topology

ROOT_CIRCUIT_ID = "grid"
"""The id of the grid connection point's circuit (every charger is behind it)."""

_PHASE_CURRENTS = (
    Metric.AC_CURRENT_PHASE_1,
    Metric.AC_CURRENT_PHASE_2,
    Metric.AC_CURRENT_PHASE_3,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Circuit:
    """One circuit: its chargers, its static limits, and what measures it."""

    circuit_id: str
    """Stable id: `ROOT_CIRCUIT_ID`, ``meter_<id>`` (discovered) or a user's id."""
    name: str
    charger_ids: frozenset[int]
    phase_limit_a: float | None = None
    """Fuse rating per phase (A); `None` = none."""
    power_limit_w: float | None = None
    """Fixed limit of the circuit's net consumption (W); `None` = none."""
    meter_id: int | None = None
    """The meter measuring the whole circuit; `None` for the root (the grid
    formula measures it) and for a circuit without a meter (its chargers alone
    count, nothing else is known to be on it)."""
    root: bool = False
    origin: str = "topology"
    """``topology`` (the root and discovered feeders) or ``user``."""

    @property
    def metered(self) -> bool:
        """Whether other loads on the circuit are measured (root or a meter)."""
        return self.root or self.meter_id is not None


@dataclass(frozen=True, slots=True)
class CircuitTree:
    """Every circuit of a site, the root first."""

    circuits: tuple[Circuit, ...] = field(default_factory=tuple)

    def get(self, circuit_id: str) -> Circuit | None:
        """The circuit with that id, or `None`."""
        return next((c for c in self.circuits if c.circuit_id == circuit_id), None)

    @property
    def ids(self) -> list[str]:
        """The circuit ids, root first."""
        return [c.circuit_id for c in self.circuits]

    def of_charger(self, charger_id: int) -> list[Circuit]:
        """The circuits a charger is behind."""
        return [c for c in self.circuits if charger_id in c.charger_ids]


def meter_rating_a(topology: Topology, meter_id: int) -> float | None:
    """The per-phase rating a meter states in its rated current bounds (A).

    The smallest finite upper bound of the three phase currents; `None` when
    the meter states none (or none above 0 A).
    """
    component = topology.components.get(meter_id)
    if not isinstance(component, Meter):
        return None
    uppers = rated_phase_currents_a(component)
    return min(uppers.values()) if uppers else None


def rated_phase_currents_a(component: Component) -> dict[int, float]:
    """The per-phase current ratings a component states (phase 1–3 → A).

    Only finite upper bounds above 0 A count; a phase without one is left out.
    """
    return {
        phase: float(bounds.upper)
        for phase, metric in enumerate(_PHASE_CURRENTS, start=1)
        if (bounds := component.rated_bounds.get(metric)) is not None
        and bounds.upper is not None
        and math.isfinite(bounds.upper)
        and bounds.upper > 0.0
    }


def chargers_behind(topology: Topology, component_id: int) -> frozenset[int]:
    """Every EV charger fed (directly or further down) by `component_id`."""
    found: set[int] = set()
    seen: set[int] = set()
    stack = list(topology.children_of(component_id))
    while stack:
        child = stack.pop()
        if child in seen:
            continue
        seen.add(child)
        if child in topology.ev_charger_ids:
            found.add(child)
        stack.extend(topology.children_of(child))
    return frozenset(found)


def root_circuit(topology: Topology, phase_limit_a: float | None) -> Circuit:
    """The grid connection's circuit: every charger, the given per-phase fuse."""
    return Circuit(
        circuit_id=ROOT_CIRCUIT_ID,
        name="Grid connection",
        charger_ids=frozenset(topology.ev_charger_ids),
        phase_limit_a=phase_limit_a,
        root=True,
    )


def discover_circuits(topology: Topology) -> list[Circuit]:
    """The feeders the topology states: rated meters with chargers behind them."""
    circuits: list[Circuit] = []
    for meter_id in sorted(topology.meter_ids):
        rating = meter_rating_a(topology, meter_id)
        chargers = chargers_behind(topology, meter_id)
        if rating is None or not chargers:
            continue
        component = topology.components[meter_id]
        circuits.append(
            Circuit(
                circuit_id=f"meter_{meter_id}",
                name=component.name or f"Meter {meter_id}",
                charger_ids=chargers,
                phase_limit_a=rating,
                meter_id=meter_id,
            )
        )
    return circuits


def build_circuit_tree(
    topology: Topology,
    root_phase_limit_a: float | None,
    user_defined: Sequence[Circuit] = (),
) -> CircuitTree:
    """The root, the discovered feeders and the user's circuits, in that order.

    A user-defined circuit keeps only chargers the topology has; one whose id
    collides with an earlier circuit is dropped (ids are unique).
    """
    circuits = [
        root_circuit(topology, root_phase_limit_a),
        *discover_circuits(topology),
    ]
    taken = {c.circuit_id for c in circuits}
    for circuit in user_defined:
        if circuit.circuit_id in taken:
            continue
        taken.add(circuit.circuit_id)
        circuits.append(
            Circuit(
                circuit_id=circuit.circuit_id,
                name=circuit.name,
                charger_ids=circuit.charger_ids & topology.ev_charger_ids,
                phase_limit_a=circuit.phase_limit_a,
                power_limit_w=circuit.power_limit_w,
                meter_id=circuit.meter_id
                if circuit.meter_id in topology.meter_ids
                else None,
                origin="user",
            )
        )
    return CircuitTree(tuple(circuits))
