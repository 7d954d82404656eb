"""Target forecast: what the deadline targets' forecast costs the event loop.

`HubTargets` re-runs `ChargingTargets.refresh` (the least-laxity forecast behind
*expected completion*, *at risk* and the hub's unmet energy) from the
coordinator's snapshot listener, on the event loop. This drives the engine's
table as that listener does, once a simulated second, on a 100-charger depot
(an 800 A root, three 250 A feeders of 33–34 chargers, every charger 3 × 6–16 A)
with every car plugged in and 20 of them, spread over the feeders, holding a
target (10–60 kWh, departures 1–8 h ahead), for ten simulated minutes
in which:

- each car with a target draws what the last forecast gave it, three of them
  only 70 % of it (a car tapering: its energy strays from the forecast);
- each feeder's other loads flicker by ±100 W, and one steps by 1.5 kW every
  5 minutes (a heat pump);
- every 3 minutes a car without a target leaves and another plugs in.

Two policies, side by side:

- ``every_5s``: the previous one: re-run every 5 s and when a car comes or goes;
- ``on_change``: re-run when a car comes or goes or `forecast_stale` says an
  input changed (at least every `FORECAST_MAX_AGE_S`).

Figures (CPU time of this thread): `run_ms_mean` one forecast run;
`check_ms_mean` one `forecast_stale` check (0 for ``every_5s``); `loop_ms_per_min`
all of it per simulated minute, what the event loop pays; `runs`;
`completion_lag_min_p95` / `_max`: per second, the largest difference over the
targets between the expected completion shown and the one a run at that second
would give (how stale the entity can be; it shows minutes), its 95th percentile
and maximum over the run. A car that only just gets power on a full feeder moves
by minutes with every 100 W of flicker: the maximum is mostly the model's own
jitter, under either policy.

    scripts/python -m benchmarks.target_forecast [--minutes 10]

One line per policy:

    target_forecast policy=<p> chargers=100 targets=20 runs=<n> run_ms_mean=<x>
        check_ms_mean=<y> loop_ms_per_min=<z> completion_lag_min_p95=<l>
        completion_lag_min_max=<m>
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
import random
import statistics
import time

from custom_components.frequenz_microgrid.engine.distribution.ev_chargers import (
    EvChargerInput,
)
from custom_components.frequenz_microgrid.engine.hub.circuits import (
    Circuit,
    CircuitTree,
)
from custom_components.frequenz_microgrid.engine.hub.limits import CircuitLimits
from custom_components.frequenz_microgrid.engine.hub.target_forecast import (
    circuit_budgets,
)
from custom_components.frequenz_microgrid.engine.hub.targets import (
    ChargingTarget,
    ChargingTargets,
)

CHARGERS = 100
TARGETS = 20
TARGET_IDS = tuple(range(1, CHARGERS + 1, CHARGERS // TARGETS))
"""The chargers whose cars have a target: every fifth, on every feeder."""
TAPERING = frozenset(TARGET_IDS[:3])
"""Cars with a target that draw only 70 % of what the forecast gave them."""
START = 1_800_000_000.0
OLD_REFRESH_S = 5.0
"""The previous policy's period (`target_store.REFRESH_S` before)."""


class Clock:
    """The simulated wall clock the table reads."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        """The simulated POSIX time."""
        return self.now


def depot() -> CircuitLimits:
    """An 800 A root over three 250 A feeders (33, 33, 34 chargers)."""
    ids = list(range(1, CHARGERS + 1))
    feeders = [ids[0:33], ids[33:66], ids[66:]]
    circuits = [
        Circuit(
            circuit_id="grid",
            name="Grid",
            charger_ids=frozenset(ids),
            phase_limit_a=800.0,
            root=True,
        ),
        *(
            Circuit(
                circuit_id=f"feeder_{n}",
                name=f"Feeder {n}",
                charger_ids=frozenset(members),
                phase_limit_a=250.0,
                meter_id=1000 + n,
            )
            for n, members in enumerate(feeders, start=1)
        ),
    ]
    return CircuitLimits(CircuitTree(tuple(circuits)))


def charger_input(cid: int) -> EvChargerInput:
    return EvChargerInput(
        component_id=cid,
        ev_connected=True,
        voltage_v=230.0,
        min_current_a=6.0,
        max_current_a=16.0,
    )


def run(policy: str, minutes: float, seed: int) -> str:
    """Simulate `minutes` once a second under `policy`; return the result line."""
    rng = random.Random(seed)
    clock = Clock()
    limits = depot()
    targets = ChargingTargets(
        frozenset(range(1, CHARGERS + 1)),
        clock=clock,
        budgets=lambda: circuit_budgets(limits),
    )
    inputs = {cid: charger_input(cid) for cid in range(1, CHARGERS + 1)}
    targets.apply(inputs, inputs)
    energy = dict.fromkeys(inputs, 0.0)
    sessions = {cid: f"{cid}-0" for cid in inputs}
    for cid in inputs:
        targets.observe_session(cid, sessions[cid], 0.0)
    now_dt = datetime.fromtimestamp(START, UTC)
    for cid in TARGET_IDS:
        targets.set(
            ChargingTarget(
                charger_id=cid,
                energy_wh=rng.uniform(10_000.0, 60_000.0),
                departure=now_dt + timedelta(hours=rng.uniform(1.0, 8.0)),
            )
        )
    base_others = {c.circuit_id: 5_000.0 for c in limits.tree.circuits}
    run_s: list[float] = []
    check_s: list[float] = []
    lag_min: list[float] = []
    last_run = clock.now
    ticks = round(minutes * 60)
    for tick in range(1, ticks + 1):
        clock.now = START + tick
        # The cars charge: those with a target as last forecast (some less).
        for cid in TARGET_IDS:
            state = targets.state(cid)
            outlook = None if state is None else state.outlook
            power = 0.0 if outlook is None else outlook.power_w
            energy[cid] += power * (0.7 if cid in TAPERING else 1.0) / 3600.0
        # Other loads: flicker, and a heat pump's step every 5 minutes.
        if tick % 300 == 0:
            base_others["feeder_1"] += 1_500.0 * (1 if tick % 600 else -1)
        for circuit in limits.tree.circuits:
            others = base_others[circuit.circuit_id] + rng.uniform(-100.0, 100.0)
            limits.observe(
                circuit,
                clock.now,
                measured_power_w=others,
                headroom_a=(0.0, 0.0, 0.0),
                uncontrollable_w=others,
            )
        # A walk-in leaves and another comes every 3 minutes.
        if tick % 180 == 0:
            cid = rng.choice([c for c in inputs if c not in TARGET_IDS])
            sessions[cid] = f"{cid}-{tick}"
            energy[cid] = 0.0
        # What `HubTargets._observe` does each snapshot.
        came_or_went = False
        for cid in sorted(inputs):
            came_or_went |= targets.observe_session(cid, sessions[cid], energy[cid])
        due = came_or_went
        if policy == "every_5s":
            due = due or clock.now - last_run >= OLD_REFRESH_S
        else:
            started = time.thread_time()
            due = due or targets.forecast_stale()
            check_s.append(time.thread_time() - started)
        if due:
            started = time.thread_time()
            targets.refresh()
            run_s.append(time.thread_time() - started)
            last_run = clock.now
        lag_min.append(_completion_lag_min(targets))
    total_ms = (sum(run_s) + sum(check_s)) * 1000.0
    return (
        f"target_forecast policy={policy} chargers={CHARGERS} targets={TARGETS} "
        f"runs={len(run_s)} run_ms_mean={statistics.fmean(run_s) * 1000:.2f} "
        f"check_ms_mean={statistics.fmean(check_s or [0.0]) * 1000:.3f} "
        f"loop_ms_per_min={total_ms / minutes:.1f} "
        f"completion_lag_min_p95={_p95(lag_min):.2f} "
        f"completion_lag_min_max={max(lag_min, default=0.0):.2f}"
    )


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if values else 0.0


def _completion_lag_min(targets: ChargingTargets) -> float:
    """The largest gap (min) between the completions shown and a fresh forecast's.

    A target expected to complete by one and not by the other counts as inf.
    """
    shown = _completions(targets)
    kept = targets._outlooks, targets._last_run  # measuring only: put back after
    targets.refresh()
    fresh = _completions(targets)
    targets._outlooks, targets._last_run = kept
    worst = 0.0
    for cid, then_s in shown.items():
        now_s = fresh.get(cid)
        if then_s is None or now_s is None:
            if then_s != now_s:
                return float("inf")
            continue
        worst = max(worst, abs(then_s - now_s) / 60.0)
    return worst


def _completions(targets: ChargingTargets) -> dict[int, float | None]:
    """Each target's expected completion as its entity shows it (POSIX s)."""
    completions: dict[int, float | None] = {}
    for cid in targets.targets():
        state = targets.state(cid)
        outlook = None if state is None else state.outlook
        completions[cid] = None if outlook is None else outlook.completion_s
    return completions


def main() -> None:
    """Print one line per policy."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    for policy in ("every_5s", "on_change"):
        print(run(policy, args.minutes, args.seed), flush=True)


if __name__ == "__main__":
    main()
