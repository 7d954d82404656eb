"""Charging hub: a simulated day on 100 chargers, fair allocation vs earliest-come.

A hub of 100 chargers behind 3 feeder circuits (160 A per phase each) and a
grid connection, 300 EV sessions over one day (`charging_hub_scenario`, seeded),
and a stepped site limit (kW) with 5 kW tolerance. Each tick the chargers'
telemetry goes from the simulator's physics through the real telemetry path
(simulator proto → `telemetry_from_proto` → `TelemetryStore`) into
`ev_charger_input`, as `engine/control/ev_pool.py` feeds the allocator; the
allocation step turns it into setpoints, which the physics follows from
`ACTUATION_DELAY_S` after the tick on. gRPC only to load the topology, no real
time: the day runs as fast as it computes.

Allocation steps (`ALLOCATORS`):

- ``fair``: the engine's `EvChargerAllocator` over all chargers, holding the
  circuit tree the engine discovers in the topology the simulator serves over
  gRPC (`engine.hub.circuits`): the grid's fuse less the other loads as its
  per-phase limit, each feeder as a `CircuitCapacity` (its rating less its other
  loads), and the site's `LimitEnvelope` (upper limit less the other loads) as
  the root circuit's power capacity; the pool target is full charging.
- ``greedy``: what evcc does — EVs in order of plug-in, each gets as much as
  it can take of what is left of the site limit and of its circuits' current
  (counted on the most loaded phase), nothing below 6 A.

Figures per run: `violations_beyond_tolerance` = ticks (after the first tick of
each new step) whose mean site power the envelope counts as exceeded (above the
upper limit by more than the tolerance); `phase_overloads` = ticks in which any
fuse (grid or feeder) carried more current than its rating on some phase, as the
simulator measures it; `limit_energy_kwh` = energy drawn above the limit;
`delivered_kwh` = energy the chargers delivered; `sessions_under_1kwh` =
sessions that got less than 1 kWh; `tick_ms_p99` = the allocation step's wall
time per tick (building the inputs from the store and allocating),
`tick_cpu_ms_p99` the CPU time it took (the two differ when other processes
share the machine).

    scripts/python -m benchmarks.charging_hub [--chargers 100 --circuits 3
        --sessions 300 --tick-s 5]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
import math
import statistics
import time

from frequenz.client.microgrid import MicrogridApiClient
from frequenz.client.microgrid.metrics import Metric
from google.protobuf.timestamp_pb2 import Timestamp

from custom_components.frequenz_microgrid.engine.control.inputs import (
    CHARGER_PHASES,
    ev_charger_input,
    grid_fuse_a,
)
from custom_components.frequenz_microgrid.engine.distribution.ev_chargers import (
    CircuitCapacity,
    EvAllocatorConfig,
    EvChargerAllocator,
    EvChargerInput,
)
from custom_components.frequenz_microgrid.engine.graph import Topology, load_topology
from custom_components.frequenz_microgrid.engine.hub.circuits import (
    Circuit,
    CircuitTree,
    build_circuit_tree,
)
from custom_components.frequenz_microgrid.engine.hub.envelope import (
    LimitEnvelope,
    LimitStep,
)
from custom_components.frequenz_microgrid.engine.telemetry import TelemetryStore
from custom_components.frequenz_microgrid.engine.telemetry_message import (
    telemetry_from_proto,
)
from custom_components.frequenz_microgrid.simulator import (
    Scenario,
    charging_hub_scenario,
    running_simulator,
)
from custom_components.frequenz_microgrid.simulator.hub_scenario import (
    GRID_METER_ID,
    HubRatings,
)
from custom_components.frequenz_microgrid.simulator.physics.model import (
    MicrogridModel,
)
from custom_components.frequenz_microgrid.simulator.telemetry import (
    readings,
    telemetry_message,
)

VOLTAGE_V = 230.0
TOLERANCE_W = 5_000.0
SETPOINT_LIFETIME_S = 60.0
ACTUATION_DELAY_S = 1.0
"""Simulated seconds from a tick's telemetry until the chargers follow its setpoints
(sending, the charger and the EV adjusting): at a step down, the old setpoints
overshoot the new limit for this long."""
STEPS: tuple[tuple[float, float], ...] = (
    (0 * 3600.0, 350_000.0),
    (6 * 3600.0, 250_000.0),
    (9 * 3600.0, 150_000.0),
    (12 * 3600.0, 220_000.0),
    (16 * 3600.0, 120_000.0),
    (19 * 3600.0, 250_000.0),
    (21 * 3600.0, 100_000.0),
    (23 * 3600.0, 350_000.0),
)
"""The site's upper limit over the day: (start, W), forward-filled."""
FEED_IN_LIMIT_W = -1_000_000.0
"""The steps' lower limit (feeding in is not limited here)."""
CHARGER_METRICS = (
    Metric.AC_POWER_ACTIVE.value,
    Metric.AC_CURRENT_PHASE_1.value,
    Metric.AC_CURRENT_PHASE_2.value,
    Metric.AC_CURRENT_PHASE_3.value,
)
STARVED_WH = 1000.0


@dataclass(frozen=True, slots=True)
class TickInputs:
    """What an allocation step sees at the start of a tick."""

    now_s: float
    limit_w: float
    """The site envelope's upper limit in force (W)."""
    other_site_w: float
    """Site power that is not the chargers' (building, PV), measured (W)."""
    other_site_a: tuple[float, float, float]
    """Per-phase current at the grid that is not the chargers' (A)."""
    root_fuse_a: float | None
    chargers: Mapping[int, EvChargerInput]
    connected_since: Mapping[int, float]
    circuits: Sequence[Circuit]
    """The feeders (the engine's circuit tree without its root)."""
    circuit_other_a: Mapping[str, tuple[float, float, float]]
    """Per feeder: per-phase current its meter measures that is not its chargers'."""


type AllocationStep = Callable[[TickInputs], dict[int, float]]
type Steps = Sequence[tuple[float, float]]


def envelope_of(steps: Steps) -> LimitEnvelope:
    """The site's limit envelope: the steps' upper limits, 5 kW tolerance."""
    return LimitEnvelope.of(
        (LimitStep(start, FEED_IN_LIMIT_W, upper) for start, upper in steps),
        TOLERANCE_W,
    )


# --- fair: the engine's allocator with nested circuits ------------------------


class NestedCircuitAllocation:
    """The engine's `EvChargerAllocator` over all chargers, holding every circuit.

    The root's fuse is the allocator's phase limit (less the site's other loads);
    each feeder is a `CircuitCapacity` of its fuse less its other loads; the
    site envelope's upper limit less the other loads is the root circuit's power
    capacity. The pool target is full charging (the EV pool's default).
    """

    def __init__(self, tree: CircuitTree) -> None:
        """One allocator with the root circuit's fuse as its per-phase limit."""
        root = tree.circuits[0]
        self._root = root
        self._allocator = EvChargerAllocator(
            EvAllocatorConfig(phase_limit_a=root.phase_limit_a)
        )

    def __call__(self, tick: TickInputs) -> dict[int, float]:
        """Setpoints for every charger this tick."""
        capacities = [
            CircuitCapacity(
                circuit.circuit_id,
                circuit.charger_ids,
                phase_capacity_a=_less(
                    circuit.phase_limit_a, tick.circuit_other_a[circuit.circuit_id]
                ),
            )
            for circuit in tick.circuits
        ]
        capacities.append(
            CircuitCapacity(
                self._root.circuit_id,
                self._root.charger_ids,
                power_capacity_w=tick.limit_w - max(0.0, tick.other_site_w),
            )
        )
        full = math.fsum(
            c.max_current_a * CHARGER_PHASES * VOLTAGE_V
            for c in tick.chargers.values()
            if c.ev_connected
        )
        allocation = self._allocator.allocate(
            full,
            [tick.chargers[cid] for cid in sorted(tick.chargers)],
            tick.now_s,
            other_currents_a=tick.other_site_a,
            circuits=capacities,
        )
        return allocation.powers()


def _less(
    limit_a: float | None, other_a: tuple[float, float, float]
) -> tuple[float, float, float]:
    """A fuse's per-phase capacity once the other loads took theirs."""
    if limit_a is None:
        return (math.inf, math.inf, math.inf)
    l1, l2, l3 = (limit_a - max(0.0, other) for other in other_a)
    return (l1, l2, l3)


# --- greedy: earliest come, as evcc ---------------------------------------------


def greedy_allocation(tick: TickInputs) -> dict[int, float]:
    """Earliest plug-in first, each as much as is left; below 6 A nothing.

    Like evcc's load management: a circuit's current is compared on its most
    loaded phase, whatever phases an EV uses, and the site limit in watts.
    """
    site_left = tick.limit_w - max(0.0, tick.other_site_w)
    grid_left = (tick.root_fuse_a or math.inf) - max(0.0, *tick.other_site_a)
    setpoints = dict.fromkeys(tick.chargers, 0.0)
    circuit_left = {
        c.circuit_id: (c.phase_limit_a or math.inf)
        - max(0.0, *tick.circuit_other_a[c.circuit_id])
        for c in tick.circuits
    }
    circuits_of = {
        cid: [c.circuit_id for c in tick.circuits if cid in c.charger_ids]
        for cid in tick.chargers
    }
    queue = sorted(
        (c for c in tick.chargers.values() if c.ev_connected and c.working),
        key=lambda c: (tick.connected_since[c.component_id], c.component_id),
    )
    for charger in queue:
        cid = charger.component_id
        by_site = site_left / (len(charger.phases) * VOLTAGE_V)
        current = min(
            charger.max_current_a,
            by_site,
            grid_left,
            *(circuit_left[c] for c in circuits_of[cid]),
        )
        if current < charger.min_current_a:
            continue
        setpoints[cid] = current * CHARGER_PHASES * VOLTAGE_V
        site_left -= current * len(charger.phases) * VOLTAGE_V
        grid_left -= current
        for circuit_id in circuits_of[cid]:
            circuit_left[circuit_id] -= current
    return setpoints


ALLOCATORS: dict[str, Callable[[CircuitTree], AllocationStep]] = {
    "fair": NestedCircuitAllocation,
    "greedy": lambda _tree: greedy_allocation,
}


# --- the day --------------------------------------------------------------------


@dataclass
class DayResult:
    """What the simulator measured over the day."""

    allocator: str
    chargers: int
    sessions: int = 0
    violations: int = 0
    phase_overloads: int = 0
    limit_energy_wh: float = 0.0
    delivered_wh: float = 0.0
    sessions_under_1kwh: int = 0
    tick_ms: list[float] = field(default_factory=list)
    tick_cpu_ms: list[float] = field(default_factory=list)

    def line(self) -> str:
        """The benchmark's result line."""
        ticks = sorted(self.tick_ms) or [0.0]
        return (
            f"charging_hub allocator={self.allocator} chargers={self.chargers} "
            f"sessions={self.sessions} "
            f"violations_beyond_tolerance={self.violations} "
            f"phase_overloads={self.phase_overloads} "
            f"limit_energy_kwh={self.limit_energy_wh / 1000:.2f} "
            f"delivered_kwh={self.delivered_wh / 1000:.0f} "
            f"sessions_under_1kwh={self.sessions_under_1kwh} "
            f"tick_ms_p99={_p99(ticks):.2f} "
            f"tick_ms_median={statistics.median(ticks):.2f} "
            f"tick_cpu_ms_p99={_p99(sorted(self.tick_cpu_ms) or [0.0]):.2f}"
        )


def _p99(ordered: Sequence[float]) -> float:
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


class HubDay:
    """One day of a hub scenario, stepped tick by tick against an allocation step."""

    def __init__(
        self,
        scenario: Scenario,
        tick_s: float,
        steps: Steps = STEPS,
        topology: Topology | None = None,
    ) -> None:
        """Build the physics, the circuit tree and a telemetry store on sim time.

        The circuits are what the engine discovers in the topology the simulator
        serves (`load_hub_topology`): the root with the grid's fuse, and each
        meter stating a rating with the chargers behind it.
        """
        self.scenario = scenario
        self.tick_s = tick_s
        self.steps = steps
        self.envelope = envelope_of(steps)
        self.model = MicrogridModel(scenario)
        self.store = TelemetryStore(
            freshness_s=3 * tick_s, clock=lambda: self.model.now_s
        )
        self.charger_ids = scenario.charger_ids
        topology = topology or asyncio.run(load_hub_topology(scenario))
        self.tree = build_circuit_tree(topology, grid_fuse_a(topology))
        self.feeders = [c for c in self.tree.circuits if not c.root]
        self.connected_since: dict[int, float] = {}

    def _feed(self) -> None:
        """The chargers' telemetry at the model's time, through the real parser."""
        stamp = Timestamp()
        stamp.FromNanoseconds(int(self.model.now_s * 1e9))
        for cid in self.charger_ids:
            proto = telemetry_message(readings(self.model, cid), CHARGER_METRICS, stamp)
            self.store.ingest_message(telemetry_from_proto(proto))

    def _inputs(self, now_s: float) -> TickInputs:
        chargers = {
            cid: ev_charger_input(
                self.store, cid, working=True, nominal_voltage_v=VOLTAGE_V
            )
            for cid in self.charger_ids
        }
        for cid, charger in chargers.items():
            if charger.ev_connected:
                self.connected_since.setdefault(cid, now_s)
            else:
                self.connected_since.pop(cid, None)
        model = self.model
        ev_w = math.fsum(model.component(c).phases.total for c in self.charger_ids)
        other_site = model.component(GRID_METER_ID).phases.total - ev_w
        circuit_other = {
            circuit.circuit_id: self._other_currents(circuit.meter_id, circuit)
            for circuit in self.feeders
            if circuit.meter_id is not None
        }
        step = self.envelope.in_force(now_s)
        return TickInputs(
            now_s=now_s,
            limit_w=math.inf if step is None else step.upper_w,
            other_site_w=other_site,
            other_site_a=self._other_currents(GRID_METER_ID, self.tree.circuits[0]),
            root_fuse_a=self.tree.circuits[0].phase_limit_a,
            chargers=chargers,
            connected_since=self.connected_since,
            circuits=self.feeders,
            circuit_other_a=circuit_other,
        )

    def _other_currents(
        self, meter_id: int, circuit: Circuit
    ) -> tuple[float, float, float]:
        """Per phase, what a meter measures that is not its circuit's chargers'."""
        model = self.model
        meter = model.component(meter_id).phases.currents(VOLTAGE_V)
        evs = [
            model.component(c).phases.currents(VOLTAGE_V) for c in circuit.charger_ids
        ]
        l1, l2, l3 = (meter[p] - math.fsum(e[p] for e in evs) for p in range(3))
        return (l1, l2, l3)

    def run(
        self, name: str, step: AllocationStep, end_s: float = 86_400.0
    ) -> DayResult:
        """Step the day; the allocation step decides each tick's setpoints."""
        result = DayResult(name, len(self.charger_ids))
        model = self.model
        grid = model.component(GRID_METER_ID)
        overload_s = sum(r.seconds for r in model.overloads.values())
        now = 0.0
        while now < end_s:
            self._feed()
            started, started_cpu = time.perf_counter(), time.thread_time()
            setpoints = step(self._inputs(now))
            result.tick_ms.append((time.perf_counter() - started) * 1000.0)
            result.tick_cpu_ms.append((time.thread_time() - started_cpu) * 1000.0)
            before = grid.energy.consumed_wh - grid.energy.delivered_wh
            in_force = self.envelope.in_force(now)
            limit = math.inf if in_force is None else in_force.upper_w
            first_tick = in_force is not None and in_force.start > now - self.tick_s
            # The chargers follow the new setpoints a moment after the tick.
            model.advance_to(now + min(ACTUATION_DELAY_S, self.tick_s))
            for cid, power in setpoints.items():
                model.set_active_power(cid, power, SETPOINT_LIFETIME_S)
            model.advance_to(now + self.tick_s)
            after = grid.energy.consumed_wh - grid.energy.delivered_wh
            mean_w = (after - before) * 3600.0 / self.tick_s
            if mean_w > limit:
                result.limit_energy_wh += (mean_w - limit) * self.tick_s / 3600.0
                if self.envelope.exceeded(mean_w, now) and not first_tick:
                    result.violations += 1
            carried = sum(r.seconds for r in model.overloads.values())
            if carried > overload_s:
                result.phase_overloads += 1
            overload_s = carried
            now += self.tick_s
        plugged = [
            s
            for c in self.charger_ids
            if (s := model.component(c).ev_charger.session) is not None  # type: ignore[union-attr]
        ]
        finished = list(model.finished_sessions)
        result.sessions = len(finished) + len(plugged)
        result.sessions_under_1kwh = sum(
            1 for r in finished if r.charged_wh < STARVED_WH
        ) + sum(1 for s in plugged if s.charged_wh < STARVED_WH)
        result.delivered_wh = math.fsum(
            model.component(c).energy.consumed_wh for c in self.charger_ids
        )
        return result


async def load_hub_topology(scenario: Scenario) -> Topology:
    """The topology as the engine loads it from the simulator over gRPC."""
    async with running_simulator(scenario, sample_period_s=3600.0) as sim:
        client = MicrogridApiClient(sim.url)
        try:
            return await load_topology(client)
        finally:
            await client.disconnect()


def run_day(
    allocator: str,
    *,
    chargers: int = 100,
    circuits: int = 3,
    sessions: int = 300,
    tick_s: float = 5.0,
    seed: int = 1,
    end_s: float = 86_400.0,
    steps: Steps = STEPS,
    ratings: HubRatings | None = None,
    step: Callable[[CircuitTree], AllocationStep] | None = None,
) -> DayResult:
    """One simulated day of the hub with one allocation step (by name, or `step`)."""
    scenario = charging_hub_scenario(
        chargers=chargers,
        circuits=circuits,
        sessions=sessions,
        seed=seed,
        ratings=ratings,
    )
    day = HubDay(scenario, tick_s, steps)
    make = step or ALLOCATORS[allocator]
    return day.run(allocator, make(day.tree), end_s)


def main() -> None:
    """Run the day with each allocation step; one line each."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.charging_hub")
    parser.add_argument("--chargers", type=int, default=100)
    parser.add_argument("--circuits", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--tick-s", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for allocator in ALLOCATORS:
        result = run_day(
            allocator,
            chargers=args.chargers,
            circuits=args.circuits,
            sessions=args.sessions,
            tick_s=args.tick_s,
            seed=args.seed,
        )
        print(result.line(), flush=True)


if __name__ == "__main__":
    main()
