"""Charging plan: a simulated week on a 100-charger depot, planned vs live splits.

The depot of `benchmarks.charging_hub` (100 chargers of 6–32 A on three phases,
three 160 A feeders, an 800 A grid fuse) under that benchmark's stepped site
limit, repeated every day, and a day-ahead-like price series in 15-minute steps
(cheap nights, morning and evening peaks, seeded noise). Sessions over the week,
each with an energy to deliver by its departure: half are booked ahead in a
`ReservationBook` (overlap-checked; the planner knows them from the start), the
others plug in unannounced and set a deadline target at plug-in. A car arrives
at its start, leaves at its departure and draws what its charger is given until
its energy is delivered. A tenth of the bookings are no-shows: the plan holds
room for them until the booking is released 15 minutes after its start (as the
reservation book does). The depot's other loads (40 kW by day, 15 kW at night)
share the site limit; the plan takes them as last measured, as Home Assistant's
planner does.

Engine level, no Home Assistant and no gRPC: every tick (60 s) each strategy
turns the chargers' state into `TickInputs` and setpoints, as the live EV pool
does:

- ``planned``: every charger in *smart* mode (`ChargerModes`, the engine's own
  mode table) following the hub's plan (`engine.hub.planner`), on top of the
  live fair split (`charging_hub.NestedCircuitAllocation`) that holds every
  circuit. The hub re-plans at plug-ins, departures and 15-minute slot
  boundaries, as `hub_plan.HubPlanner` does (not every tick); `replan_ms_p99` is
  the 99th percentile of those re-plans' wall time.
- ``fair``: the live fair share without a plan (`NestedCircuitAllocation`).
- ``greedy``: earliest come, each as much as is left (`charging_hub.greedy_allocation`).

Figures: `unmet_kwh` = energy sessions asked for and did not get by their
departure; `cost` / `cost_fair` = what the sessions that both strategies served
in full paid for their energy (the same deliveries; each tick's energy at its
15-minute slot's price); `cost_total*` = the site's whole energy bill;
`delivered_kwh`; `replan_cpu_ms_p99` = the re-plans' CPU time (wall time also
counts other processes on the machine); `sessions_met*` = sessions served in
full; `limit_ticks` = ticks whose site power was above the upper
limit in force (must be 0); `bookings_per_s` = overlap-checked bookings per second
booking the week's reservations into fresh books.

    scripts/python -m benchmarks.charging_plan [--sessions 900 --seed 16]

One line:

    charging_plan chargers=100 sessions=… unmet_kwh=… unmet_kwh_fair=…
        unmet_kwh_greedy=… cost=… cost_fair=… replan_ms_p99=… bookings_per_s=…
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
import gc
import itertools
import math
import random
import time

from custom_components.frequenz_microgrid.engine.control.inputs import CHARGER_PHASES
from custom_components.frequenz_microgrid.engine.distribution.ev_chargers import (
    EvChargerInput,
)
from custom_components.frequenz_microgrid.engine.hub.circuits import (
    ROOT_CIRCUIT_ID,
    Circuit,
    CircuitTree,
)
from custom_components.frequenz_microgrid.engine.hub.envelope import LimitEnvelope
from custom_components.frequenz_microgrid.engine.hub.forecast import (
    ForecastPoint,
    TimeSeries,
)
from custom_components.frequenz_microgrid.engine.hub.modes import (
    ChargerMode,
    ChargerModes,
)
from custom_components.frequenz_microgrid.engine.hub.plan_needs import (
    needs_from_reservations,
)
from custom_components.frequenz_microgrid.engine.hub.planner import (
    SLOT_S,
    ChargingNeed,
    ChargingPlan,
    PlanCircuit,
    plan_charging,
)
from custom_components.frequenz_microgrid.engine.hub.reservations import (
    Reservation,
    ReservationBook,
    charger_capacities,
)
from custom_components.frequenz_microgrid.simulator.hub_scenario import HubRatings

from .charging_hub import (
    STEPS,
    VOLTAGE_V,
    AllocationStep,
    NestedCircuitAllocation,
    TickInputs,
    _p99,
    envelope_of,
    greedy_allocation,
)

WEEK_S = 7 * 86400.0
START = 1_800_000_000.0 - 1_800_000_000.0 % 86400.0
"""The week's first midnight (UTC), a slot boundary."""
TICK_S = 60.0
MAX_CURRENT_A = 32.0
CHARGERS = 100
FEEDERS = 3
MET_WITHIN_WH = 10.0
"""A session short of less than this got its energy (a tick's rounding)."""
NO_SHOW_SHARE = 0.1
"""Bookings whose car never comes (the plan holds room for them until released)."""
GRACE_S = 15 * 60.0
"""A booking whose car has not come this long after its start is released."""


def site_other_w(now: float) -> float:
    """The depot's other loads (W): workshop and offices by day, less at night."""
    hour = (now - START) % 86400.0 / 3600.0
    return 40_000.0 if 7.0 <= hour < 19.0 else 15_000.0


@dataclass(frozen=True, slots=True)
class Session:
    """One visit: a charger, a period, an energy to deliver by the departure."""

    charger_id: int
    start: float
    end: float
    energy_wh: float
    booked: bool
    arrives: bool = True
    """False: a booking whose car never comes (no session, nothing unmet)."""


def depot_tree(chargers: int, feeders: int, ratings: HubRatings) -> CircuitTree:
    """The root (grid fuse) and the fused feeders, chargers split evenly."""
    ids = list(range(1, chargers + 1))
    return CircuitTree(
        (
            Circuit(
                circuit_id=ROOT_CIRCUIT_ID,
                name="Grid",
                charger_ids=frozenset(ids),
                phase_limit_a=ratings.grid_fuse_a,
                root=True,
            ),
            *(
                Circuit(
                    circuit_id=f"feeder_{f}",
                    name=f"Feeder {f + 1}",
                    charger_ids=frozenset(
                        i for n, i in enumerate(ids) if n * feeders // chargers == f
                    ),
                    phase_limit_a=ratings.circuit_fuse_a,
                    meter_id=1000 + f,
                )
                for f in range(feeders)
            ),
        )
    )


def weekly_envelope() -> LimitEnvelope:
    """`charging_hub.STEPS` repeated on every day of the week."""
    return envelope_of(
        [(day * 86400.0 + at, upper) for day in range(8) for at, upper in STEPS]
    )


def price_series(rng: random.Random) -> TimeSeries:
    """A day-ahead-like price per kWh for every 15 minutes of the week."""

    def base(hour: float) -> float:
        if hour < 6:
            return 0.16
        if hour < 10:
            return 0.32
        if hour < 16:
            return 0.22
        if hour < 21:
            return 0.40
        return 0.24

    slots = int(8 * 86400 / SLOT_S)
    return TimeSeries.of(
        ForecastPoint(
            START + i * SLOT_S,
            START + (i + 1) * SLOT_S,
            round(base((i * SLOT_S % 86400) / 3600) + rng.uniform(-0.04, 0.04), 4),
        )
        for i in range(slots)
    )


def week_sessions(rng: random.Random, chargers: int, count: int) -> list[Session]:
    """`count` sessions spread over the chargers, none overlapping on one charger."""
    sessions: list[Session] = []
    per_charger = max(1, count // chargers)
    for cid in range(1, chargers + 1):
        at = START + rng.uniform(0, 6) * 3600.0
        for _ in range(per_charger):
            stay = rng.uniform(3, 12) * 3600.0
            if at + stay > START + WEEK_S:
                break
            energy = min(rng.uniform(10_000.0, 60_000.0), 11_000.0 * stay / 3600.0)
            booked = rng.random() < 0.5
            arrives = not booked or rng.random() >= NO_SHOW_SHARE
            sessions.append(Session(cid, at, at + stay, energy, booked, arrives))
            at += stay + rng.uniform(0.5, 8) * 3600.0
    return sessions


@dataclass
class WeekResult:
    """What one strategy delivered, cost and took."""

    name: str
    sessions: int
    unmet_wh: float = 0.0
    delivered_wh: float = 0.0
    cost: float = 0.0
    limit_ticks: int = 0
    replan_ms: list[float] = field(default_factory=list)
    replan_cpu_ms: list[float] = field(default_factory=list)
    session_cost: dict[tuple[int, float], float] = field(default_factory=dict)
    """Per session (charger, start): what its energy cost."""
    met: set[tuple[int, float]] = field(default_factory=set)
    """The sessions that got all their energy by their departure."""

    def cost_of(self, sessions: set[tuple[int, float]]) -> float:
        """What these sessions' energy cost."""
        return math.fsum(self.session_cost.get(key, 0.0) for key in sessions)


class HubWeek:
    """Steps the week for one strategy; EVs draw what they get until delivered."""

    def __init__(
        self,
        sessions: Sequence[Session],
        tree: CircuitTree,
        envelope: LimitEnvelope,
        prices: TimeSeries,
    ) -> None:
        """The week's sessions, circuits, site envelope and prices."""
        self.sessions = sessions
        self.tree = tree
        self.envelope = envelope
        self.prices = prices
        self.price_of = prices.slot_means(START, SLOT_S, int(WEEK_S / SLOT_S))
        self.charger_ids = sorted(tree.circuits[0].charger_ids)

    def run(
        self,
        name: str,
        step: AllocationStep,
        on_change: Callable[[float, dict[int, Session], dict[int, float]], None]
        | None = None,
    ) -> WeekResult:
        """Run the week; `on_change` hears of plug-ins, departures and slot starts."""
        arriving = [s for s in self.sessions if s.arrives]
        result = WeekResult(name, len(arriving))
        by_charger: dict[int, list[Session]] = {}
        for session in sorted(arriving, key=lambda s: s.start):
            by_charger.setdefault(session.charger_id, []).append(session)
        plugged: dict[int, Session] = {}
        delivered: dict[int, float] = {}
        drawing: dict[int, float] = dict.fromkeys(self.charger_ids, 0.0)
        connected_since: dict[int, float] = {}
        feeders = [c for c in self.tree.circuits if not c.root]
        zero = (0.0, 0.0, 0.0)
        now = START
        while now < START + WEEK_S:
            changed = False
            for cid in self.charger_ids:
                current = plugged.get(cid)
                if current is not None and now >= current.end:
                    self._close(result, current, delivered[cid])
                    del plugged[cid]
                    connected_since.pop(cid, None)
                    changed = True
                queue = by_charger.get(cid)
                if cid not in plugged and queue and queue[0].start <= now:
                    plugged[cid] = queue.pop(0)
                    delivered[cid] = 0.0
                    connected_since[cid] = now
                    changed = True
            # Home Assistant's planner also re-plans at every slot boundary.
            at_boundary = (now - START) % SLOT_S == 0.0
            if (changed or (at_boundary and plugged)) and on_change is not None:
                on_change(now, plugged, delivered)
            step_in_force = self.envelope.in_force(now)
            limit = math.inf if step_in_force is None else step_in_force.upper_w
            inputs = {
                cid: _charger(cid, cid in plugged, drawing[cid])
                for cid in self.charger_ids
            }
            other_w = site_other_w(now)
            setpoints = step(
                TickInputs(
                    now_s=now,
                    limit_w=limit,
                    other_site_w=other_w,
                    other_site_a=(other_w / (CHARGER_PHASES * VOLTAGE_V),) * 3,
                    root_fuse_a=self.tree.circuits[0].phase_limit_a,
                    chargers=inputs,
                    connected_since=connected_since,
                    circuits=feeders,
                    circuit_other_a={c.circuit_id: zero for c in feeders},
                )
            )
            site_w = 0.0
            for cid in self.charger_ids:
                visit = plugged.get(cid)
                if visit is None:
                    drawing[cid] = 0.0
                    continue
                wanted = (visit.energy_wh - delivered[cid]) * 3600.0 / TICK_S
                drawing[cid] = max(0.0, min(setpoints.get(cid, 0.0), wanted))
                delivered[cid] += drawing[cid] * TICK_S / 3600.0
                site_w += drawing[cid]
            if site_w + other_w > limit + 1e-6:
                result.limit_ticks += 1
            result.delivered_wh += site_w * TICK_S / 3600.0
            price = self.price_of[int((now - START) // SLOT_S)] or 0.0
            result.cost += price * site_w * TICK_S / 3600.0 / 1000.0
            for cid, session in plugged.items():
                key = (cid, session.start)
                result.session_cost[key] = (
                    result.session_cost.get(key, 0.0)
                    + price * drawing[cid] * TICK_S / 3600.0 / 1000.0
                )
            now += TICK_S
        for cid, session in plugged.items():
            self._close(result, session, delivered[cid])
        for queue in by_charger.values():
            result.unmet_wh += math.fsum(s.energy_wh for s in queue)
        return result

    @staticmethod
    def _close(result: WeekResult, session: Session, delivered_wh: float) -> None:
        """Count a session that left: its unmet energy, whether it was met."""
        unmet = max(0.0, session.energy_wh - delivered_wh)
        result.unmet_wh += unmet
        if unmet <= MET_WITHIN_WH:
            result.met.add((session.charger_id, session.start))


def _charger(cid: int, connected: bool, drawing_w: float) -> EvChargerInput:
    amps = drawing_w / (CHARGER_PHASES * VOLTAGE_V)
    return EvChargerInput(
        component_id=cid,
        ev_connected=connected,
        measured_currents_a=(amps, amps, amps),
        measured_power_w=drawing_w,
        max_current_a=MAX_CURRENT_A,
        voltage_v=VOLTAGE_V,
    )


class PlannedHub:
    """Smart mode on every charger, following a plan re-made at plug-ins/departures."""

    def __init__(
        self,
        tree: CircuitTree,
        envelope: LimitEnvelope,
        prices: TimeSeries,
        reservations: Sequence[Reservation],
        result_replan_ms: list[float],
    ) -> None:
        """The fair split under the smart modes, the circuits and the bookings."""
        self._fair = NestedCircuitAllocation(tree)
        self._tree = tree
        self._envelope = envelope
        self._prices = prices
        self._reservations = list(reservations)
        self._replan_ms = result_replan_ms
        self.replan_cpu_ms: list[float] = []
        self._now = START
        self.plan: ChargingPlan | None = None
        ids = frozenset(tree.circuits[0].charger_ids)
        self.modes = ChargerModes(
            ids,
            clock=lambda: self._now,
            planned_power_w=self._planned,
        )
        for cid in ids:
            self.modes.set_mode(cid, ChargerMode.SMART)

    def _planned(self, charger_id: int) -> float | None:
        return None if self.plan is None else self.plan.power_w(charger_id, self._now)

    def replan(
        self, now: float, plugged: dict[int, Session], delivered: dict[int, float]
    ) -> None:
        """Plan the bookings still ahead and the plugged-in deadline targets."""
        started, started_cpu = time.perf_counter(), time.thread_time()
        # A booking whose car has not come within the grace is released, as the
        # reservation book does: until then the plan holds room for it.
        self._reservations = [
            r
            for r in self._reservations
            if r.start + GRACE_S > now
            or ((s := plugged.get(r.charger_id)) is not None and s.start == r.start)
        ]
        booked_ids = {r.reservation_id: r for r in self._reservations if r.end > now}
        done = {
            rid: delivered[r.charger_id]
            for rid, r in booked_ids.items()
            if (s := plugged.get(r.charger_id)) is not None and s.start == r.start
        }
        needs = needs_from_reservations(
            booked_ids.values(),
            now=now,
            delivered_wh=done,
            max_current_a=dict.fromkeys(range(1, CHARGERS + 1), MAX_CURRENT_A),
        )
        needs += [
            ChargingNeed(
                charger_id=cid,
                energy_wh=s.energy_wh - delivered[cid],
                earliest_start=now,
                departure=s.end,
                max_current_a=MAX_CURRENT_A,
                origin="target",
            )
            for cid, s in plugged.items()
            if not s.booked and s.energy_wh > delivered[cid]
        ]
        # The other loads as last measured, as HubPlanner takes them.
        circuits = [
            PlanCircuit.of(
                c,
                self._envelope if c.root else None,
                other_load_w=site_other_w(now) if c.root else 0.0,
            )
            for c in self._tree.circuits
        ]
        self.plan = plan_charging(needs, circuits, now=now, prices=self._prices)
        self._replan_ms.append((time.perf_counter() - started) * 1000.0)
        self.replan_cpu_ms.append((time.thread_time() - started_cpu) * 1000.0)

    def __call__(self, tick: TickInputs) -> dict[int, float]:
        """The smart modes shape the inputs; the fair split holds the circuits."""
        self._now = tick.now_s
        shaped = self.modes.apply(tick.chargers, tick.now_s)
        return self._fair(
            TickInputs(
                now_s=tick.now_s,
                limit_w=tick.limit_w,
                other_site_w=tick.other_site_w,
                other_site_a=tick.other_site_a,
                root_fuse_a=tick.root_fuse_a,
                chargers=shaped,
                connected_since=tick.connected_since,
                circuits=tick.circuits,
                circuit_other_a=tick.circuit_other_a,
            )
        )


def book(
    sessions: Sequence[Session], tree: CircuitTree
) -> tuple[list[Reservation], float]:
    """Book the booked sessions; return them and the bookings per second.

    The week is booked into fresh books until half a second has passed, so the
    rate is not one short burst.
    """
    powers = dict.fromkeys(
        tree.circuits[0].charger_ids, MAX_CURRENT_A * CHARGER_PHASES * VOLTAGE_V
    )
    capacities = charger_capacities(powers, list(tree.circuits))
    wanted = [s for s in sessions if s.booked]
    booked: list[Reservation] = []
    count = 0
    elapsed = 0.0
    while elapsed < 0.5 or not booked:
        ids = itertools.count(1)
        reservations = ReservationBook(
            capacities,
            clock=lambda: START - 1.0,
            new_id=lambda ids=ids: f"r{next(ids)}",  # type: ignore[misc]
        )
        began = time.perf_counter()
        made = [
            reservations.reserve(
                s.charger_id, s.start, s.end, energy_kwh=s.energy_wh / 1000.0
            )
            for s in wanted
        ]
        elapsed += time.perf_counter() - began
        count += len(wanted)
        booked = booked or made
    return booked, count / elapsed if elapsed > 0 else math.inf


def run(
    chargers: int = CHARGERS, sessions: int = 900, seed: int = 16
) -> dict[str, WeekResult | float]:
    """The week under each strategy, and the booking rate."""
    rng = random.Random(seed)
    tree = depot_tree(chargers, FEEDERS, HubRatings())
    envelope = weekly_envelope()
    prices = price_series(rng)
    visits = week_sessions(rng, chargers, sessions)
    reservations, bookings_per_s = book(visits, tree)
    week = HubWeek(visits, tree, envelope, prices)
    replan_ms: list[float] = []
    planned_hub = PlannedHub(tree, envelope, prices, reservations, replan_ms)
    # What was loaded so far (the client, gRPC, the simulator) lives as long as
    # the process: leave it out of the collector's full sweeps, as a long-running
    # Home Assistant's old generation mostly is, so a re-plan's time is the plan's.
    gc.collect()
    gc.freeze()
    planned = week.run("planned", planned_hub, planned_hub.replan)
    planned.replan_ms = replan_ms
    planned.replan_cpu_ms = planned_hub.replan_cpu_ms
    fair = week.run("fair", NestedCircuitAllocation(tree))
    greedy = week.run("greedy", greedy_allocation)
    return {
        "planned": planned,
        "fair": fair,
        "greedy": greedy,
        "bookings_per_s": bookings_per_s,
    }


def line(results: dict[str, WeekResult | float], chargers: int) -> str:
    """The benchmark's output line.

    `cost` and `cost_fair` are over the same deliveries: the sessions both got
    in full (each session's energy at its slots' prices); `cost_total*` over
    everything each delivered.
    """
    planned, fair, greedy = (results[k] for k in ("planned", "fair", "greedy"))
    assert isinstance(planned, WeekResult)
    assert isinstance(fair, WeekResult)
    assert isinstance(greedy, WeekResult)
    both = planned.met & fair.met
    return (
        f"charging_plan chargers={chargers} sessions={planned.sessions} "
        f"unmet_kwh={planned.unmet_wh / 1000:.1f} "
        f"unmet_kwh_fair={fair.unmet_wh / 1000:.1f} "
        f"unmet_kwh_greedy={greedy.unmet_wh / 1000:.1f} "
        f"cost={planned.cost_of(both):.0f} cost_fair={fair.cost_of(both):.0f} "
        f"replan_ms_p99={_p99(sorted(planned.replan_ms) or [0.0]):.1f} "
        f"bookings_per_s={results['bookings_per_s']:.0f} "
        f"sessions_met_both={len(both)} "
        f"sessions_met={len(planned.met)} sessions_met_fair={len(fair.met)} "
        f"sessions_met_greedy={len(greedy.met)} "
        f"cost_total={planned.cost:.0f} cost_total_fair={fair.cost:.0f} "
        f"delivered_kwh={planned.delivered_wh / 1000:.0f} "
        f"delivered_kwh_fair={fair.delivered_wh / 1000:.0f} "
        f"replan_cpu_ms_p99={_p99(sorted(planned.replan_cpu_ms) or [0.0]):.1f} "
        f"limit_ticks={planned.limit_ticks} replans={len(planned.replan_ms)}"
    )


def main() -> None:
    """Run the week and print the line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.charging_plan")
    parser.add_argument("--chargers", type=int, default=CHARGERS)
    parser.add_argument("--sessions", type=int, default=900)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    print(line(run(args.chargers, args.sessions, args.seed), args.chargers))


if __name__ == "__main__":
    main()
