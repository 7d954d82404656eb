"""Charging hub: a simulated day on 100 chargers, fair allocation vs earliest-come.

A hub of 100 chargers behind 3 feeder circuits (160 A per phase each) and a
grid connection, 300 EV sessions over one day (`charging_hub_scenario`, seeded),
and a stepped site limit (kW) with 5 kW tolerance. Each tick the chargers'
telemetry goes from the simulator's physics through the real telemetry path
(simulator proto → `telemetry_from_proto` → `TelemetryStore`) into
`ev_charger_input`, as `engine/control/ev_pool.py` feeds the allocator; the
allocation step turns it into setpoints, which the physics follows from
`ACTUATION_DELAY_S` after the tick on. No gRPC and no real time: the day runs as
fast as it computes.

Allocation steps (`ALLOCATORS`):

- ``fair``: the engine's `EvChargerAllocator`, one per circuit with the
  circuit's fuse as its per-phase limit; the site's envelope upper limit less
  the other loads, in watts, is shared among the circuits max-min fairly per
  connected EV (each circuit capped by what its EVs and its fuse can take) and
  is each circuit allocator's target. (Nested circuit constraints inside one
  allocator replace this split once `engine/hub/circuits.py` lands.)
- ``greedy``: what evcc does — EVs in order of plug-in, each gets as much as
  it can take of what is left of the site limit and of its circuit's current
  (counted on the circuit's most loaded phase), nothing below 6 A.

Figures per run: `violations_beyond_tolerance` = ticks (after the first tick of
each new step) whose mean site power exceeds the limit by more than the
tolerance; `phase_overloads` = ticks in which any fuse (grid or feeder)
carried more current than its rating on some phase, as the simulator measures
it; `limit_energy_kwh` = energy drawn above the limit; `delivered_kwh` = energy
the chargers delivered; `sessions_under_1kwh` = sessions that got less than
1 kWh; `tick_ms_p99` = the allocation step's wall time per tick (building the
inputs from the store and allocating), `tick_cpu_ms_p99` the CPU time it took
(the two differ when other processes share the machine).

    scripts/python -m benchmarks.charging_hub [--chargers 100 --circuits 3
        --sessions 300 --tick-s 5]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
import math
import statistics
import time

from frequenz.client.microgrid.metrics import Metric
from google.protobuf.timestamp_pb2 import Timestamp

from custom_components.frequenz_microgrid.engine.control.inputs import (
    CHARGER_PHASES,
    ev_charger_input,
)
from custom_components.frequenz_microgrid.engine.distribution.ev_chargers import (
    EvAllocatorConfig,
    EvChargerAllocator,
    EvChargerInput,
)
from custom_components.frequenz_microgrid.engine.telemetry import TelemetryStore
from custom_components.frequenz_microgrid.engine.telemetry_message import (
    telemetry_from_proto,
)
from custom_components.frequenz_microgrid.simulator import (
    Scenario,
    charging_hub_scenario,
)
from custom_components.frequenz_microgrid.simulator.hub_scenario import (
    GRID_METER_ID,
    HubRatings,
)
from custom_components.frequenz_microgrid.simulator.physics.model import (
    MicrogridModel,
)
from custom_components.frequenz_microgrid.simulator.scenario import Kind
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
CHARGER_METRICS = (
    Metric.AC_POWER_ACTIVE.value,
    Metric.AC_CURRENT_PHASE_1.value,
    Metric.AC_CURRENT_PHASE_2.value,
    Metric.AC_CURRENT_PHASE_3.value,
)
STARVED_WH = 1000.0


@dataclass(frozen=True, slots=True)
class Circuit:
    """A feeder: its meter, per-phase fuse and chargers."""

    meter_id: int
    fuse_a: float
    charger_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TickInputs:
    """What an allocation step sees at the start of a tick."""

    now_s: float
    limit_w: float
    other_site_w: float
    """Site power that is not the chargers' (building, PV), measured (W)."""
    chargers: Mapping[int, EvChargerInput]
    connected_since: Mapping[int, float]
    circuits: Sequence[Circuit]
    circuit_other_a: Mapping[int, tuple[float, float, float]]
    """Per feeder meter: per-phase current that is not its chargers' (A)."""


type AllocationStep = Callable[[TickInputs], dict[int, float]]


type Steps = Sequence[tuple[float, float]]


def limit_at(steps: Steps, now_s: float) -> float:
    """The stepped limit in force at `now_s` (forward-filled)."""
    limit = steps[0][1]
    for start, upper in steps:
        if start <= now_s:
            limit = upper
    return limit


# --- fair: the engine's allocator per circuit ---------------------------------


class FairAllocation:
    """Per-circuit `EvChargerAllocator`s under a fair split of the site limit."""

    def __init__(self, circuits: Sequence[Circuit]) -> None:
        """One allocator per circuit, its fuse as the per-phase limit."""
        self._allocators = {
            c.meter_id: EvChargerAllocator(EvAllocatorConfig(phase_limit_a=c.fuse_a))
            for c in circuits
        }

    def __call__(self, tick: TickInputs) -> dict[int, float]:
        """Setpoints for every charger this tick."""
        budget = tick.limit_w - max(0.0, tick.other_site_w)
        shares = _fair_split(budget, tick)
        setpoints: dict[int, float] = {}
        for circuit in tick.circuits:
            allocation = self._allocators[circuit.meter_id].allocate(
                shares[circuit.meter_id],
                [tick.chargers[cid] for cid in circuit.charger_ids],
                tick.now_s,
                other_currents_a=tick.circuit_other_a[circuit.meter_id],
            )
            setpoints.update(allocation.powers())
        return setpoints


def _fair_split(budget_w: float, tick: TickInputs) -> dict[int, float]:
    """The site budget per circuit: equal per connected EV, within what fits.

    A circuit can use at most what its EVs take (maximum current, or what a
    tapering EV draws plus 2 A) and what its fuse carries; the rest goes to the
    other circuits (water-filling over watts per EV).
    """
    demand: dict[int, tuple[int, float]] = {}
    for circuit in tick.circuits:
        evs = [tick.chargers[c] for c in circuit.charger_ids]
        evs = [e for e in evs if e.ev_connected and e.working]
        wanted = math.fsum(_wanted_a(e) * CHARGER_PHASES * VOLTAGE_V for e in evs)
        fuse_w = circuit.fuse_a * CHARGER_PHASES * VOLTAGE_V
        demand[circuit.meter_id] = (len(evs), min(wanted, fuse_w))
    shares = dict.fromkeys(demand, 0.0)
    open_ = {cid for cid, (n, cap) in demand.items() if n and cap > 0.0}
    left = max(0.0, budget_w)
    while open_ and left > 1e-6:
        per_ev = left / sum(demand[c][0] for c in open_)
        full = {c for c in open_ if demand[c][1] - shares[c] <= per_ev * demand[c][0]}
        if not full:
            for c in open_:
                shares[c] += per_ev * demand[c][0]
            break
        for c in full:
            left -= demand[c][1] - shares[c]
            shares[c] = demand[c][1]
        open_ -= full
    return shares


def _wanted_a(charger: EvChargerInput) -> float:
    """What an EV can take: its maximum, or a little above what a full one draws."""
    drawn = max(
        (charger.measured_currents_a[p - 1] for p in charger.phases), default=0.0
    )
    return (
        charger.max_current_a
        if drawn < 1.0
        else min(charger.max_current_a, drawn + 2.0)
    )


# --- greedy: earliest come, as evcc ---------------------------------------------


def greedy_allocation(tick: TickInputs) -> dict[int, float]:
    """Earliest plug-in first, each as much as is left; below 6 A nothing."""
    site_left = tick.limit_w - max(0.0, tick.other_site_w)
    setpoints = dict.fromkeys(tick.chargers, 0.0)
    for circuit in tick.circuits:
        other = max(tick.circuit_other_a[circuit.meter_id])
        circuit_left = circuit.fuse_a - max(0.0, other)
        queue = sorted(
            (
                tick.chargers[cid]
                for cid in circuit.charger_ids
                if tick.chargers[cid].ev_connected and tick.chargers[cid].working
            ),
            key=lambda c: (tick.connected_since[c.component_id], c.component_id),
        )
        for charger in queue:
            by_site = site_left / (len(charger.phases) * VOLTAGE_V)
            current = min(charger.max_current_a, circuit_left, by_site)
            if current < charger.min_current_a:
                continue
            setpoints[charger.component_id] = current * CHARGER_PHASES * VOLTAGE_V
            circuit_left -= current
            site_left -= current * len(charger.phases) * VOLTAGE_V
    return setpoints


ALLOCATORS: dict[str, Callable[[Sequence[Circuit]], AllocationStep]] = {
    "fair": FairAllocation,
    "greedy": lambda _circuits: greedy_allocation,
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

    def __init__(self, scenario: Scenario, tick_s: float, steps: Steps = STEPS) -> None:
        """Build the physics and an empty telemetry store on simulated time."""
        self.scenario = scenario
        self.tick_s = tick_s
        self.steps = steps
        self.model = MicrogridModel(scenario)
        self.store = TelemetryStore(
            freshness_s=3 * tick_s, clock=lambda: self.model.now_s
        )
        self.charger_ids = scenario.charger_ids
        self.circuits = [
            Circuit(
                meter.id,
                float(meter.fuse_current_a),
                tuple(
                    c.id
                    for c in scenario.children(meter.id)
                    if c.kind is Kind.EV_CHARGER
                ),
            )
            for meter in scenario.components
            if meter.kind is Kind.METER and meter.fuse_current_a > 0
        ]
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
        circuit_other: dict[int, tuple[float, float, float]] = {}
        for circuit in self.circuits:
            meter = model.component(circuit.meter_id).phases.currents(VOLTAGE_V)
            evs = [
                model.component(c).phases.currents(VOLTAGE_V)
                for c in circuit.charger_ids
            ]
            l1, l2, l3 = (
                max(0.0, meter[p] - math.fsum(e[p] for e in evs)) for p in range(3)
            )
            circuit_other[circuit.meter_id] = (l1, l2, l3)
        return TickInputs(
            now_s=now_s,
            limit_w=limit_at(self.steps, now_s),
            other_site_w=other_site,
            chargers=chargers,
            connected_since=self.connected_since,
            circuits=self.circuits,
            circuit_other_a=circuit_other,
        )

    def run(
        self, name: str, step: AllocationStep, end_s: float = 86_400.0
    ) -> DayResult:
        """Step the day; the allocation step decides each tick's setpoints."""
        result = DayResult(name, len(self.charger_ids))
        model = self.model
        grid = model.component(GRID_METER_ID)
        step_starts = {start for start, _ in self.steps}
        overload_s = sum(r.seconds for r in model.overloads.values())
        now = 0.0
        while now < end_s:
            self._feed()
            started, started_cpu = time.perf_counter(), time.thread_time()
            setpoints = step(self._inputs(now))
            result.tick_ms.append((time.perf_counter() - started) * 1000.0)
            result.tick_cpu_ms.append((time.thread_time() - started_cpu) * 1000.0)
            before = grid.energy.consumed_wh - grid.energy.delivered_wh
            limit = limit_at(self.steps, now)
            # The chargers follow the new setpoints a moment after the tick.
            model.advance_to(now + min(ACTUATION_DELAY_S, self.tick_s))
            for cid, power in setpoints.items():
                model.set_active_power(cid, power, SETPOINT_LIFETIME_S)
            model.advance_to(now + self.tick_s)
            after = grid.energy.consumed_wh - grid.energy.delivered_wh
            mean_w = (after - before) * 3600.0 / self.tick_s
            if mean_w > limit:
                result.limit_energy_wh += (mean_w - limit) * self.tick_s / 3600.0
                if mean_w > limit + TOLERANCE_W and now not in step_starts:
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
    step: Callable[[Sequence[Circuit]], AllocationStep] | None = None,
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
    return day.run(allocator, make(day.circuits), end_s)


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
