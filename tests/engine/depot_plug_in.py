"""EVs plugging in one after another on the depot, judged by the simulator's truth.

Shared by the tests and the `ev_fuse` benchmark, whatever runs the integration
(the engine's control bench or Home Assistant): it plugs EVs into the depot's
chargers one by one and watches the simulated microgrid itself — the per-phase
current at the grid connection point against its 250 A fuse, how long until
every connected EV draws its fair share, and whether any EV was switched off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
import math

from custom_components.frequenz_microgrid.simulator import EvSpec, MicrogridSimulator
from tests.observations import setpoints_to

GRID = 1
"""The depot's grid connection point (250 A fuse)."""
CHARGERS = tuple(range(31, 43))
"""The depot's twelve 6–32 A three-phase chargers."""
FAIR_TOLERANCE = 0.05
"""An EV within 5 % of its fair share has reached it."""
VOLTAGE_V = 230.0


@dataclass
class PlugInRun:
    """What the simulator saw while EVs plugged in one by one."""

    fuse_a: float
    peak_a: float = 0.0
    overload_ampere_seconds: float = 0.0
    overload_s: float = 0.0
    fair_share_s: list[float] = field(default_factory=list)
    """Per plug-in: simulated seconds until every connected EV drew its fair
    share (within 5 %); inf if that never happened within the wait."""
    switched_off: set[int] = field(default_factory=set)
    """Chargers whose EV was sent 0 W after charging, while still plugged in."""


def assert_fuse_held_and_shares_fair(run: PlugInRun) -> None:
    """Nothing above the fuse, fair shares ≤ 5 s after each plug-in, no switch-off."""
    assert run.overload_ampere_seconds == 0.0, run
    assert run.peak_a <= run.fuse_a + 0.01, run
    assert max(run.fair_share_s) <= 5.0, run
    assert run.switched_off == set(), run


def phase_currents(sim: MicrogridSimulator, component_id: int) -> tuple[float, ...]:
    """Per-phase current (A) the simulated component carries now."""
    return sim.model.component(component_id).phases.currents(VOLTAGE_V)


def fair_share_a(sim: MicrogridSimulator, plugged: Sequence[int]) -> float:
    """Max-min fair per-phase current of `plugged` three-phase 32 A EVs.

    From the simulator's own truth: the fuse less, per phase, everything at the
    grid connection point that is not a charger, shared equally; at most 32 A.
    """
    sim.model.advance_to(sim.clock.now())
    grid = phase_currents(sim, GRID)
    chargers = [phase_currents(sim, cid) for cid in CHARGERS]
    others = [grid[p] - math.fsum(c[p] for c in chargers) for p in range(3)]
    fuse = sim.scenario.component(GRID).fuse_current_a
    return min(32.0, *((fuse - max(0.0, other)) / len(plugged) for other in others))


def at_fair_share(sim: MicrogridSimulator, plugged: Sequence[int]) -> bool:
    """Whether every plugged EV draws within 5 % of its fair share now."""
    fair = fair_share_a(sim, plugged)
    return all(
        abs(max(phase_currents(sim, cid)) - fair) <= FAIR_TOLERANCE * fair
        for cid in plugged
    )


def plug(sim: MicrogridSimulator, charger_id: int) -> None:
    """Plug a three-phase EV that could take 32 A into a depot charger."""
    sim.plug_ev(charger_id, EvSpec(phases=3, max_current_a=32.0, soc_pct=20.0))


async def plug_together(
    sim: MicrogridSimulator, chargers: Sequence[int], *, timeout_s: float = 20.0
) -> None:
    """Plug EVs into `chargers` at once; return when they all charge at 32 A.

    A few that fit the fuse at their maximum make the start of a run short.
    """
    for charger_id in chargers:
        plug(sim, charger_id)
    async with asyncio.timeout(timeout_s):
        while not all(max(phase_currents(sim, c)) > 31.0 for c in chargers):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def plug_in_one_by_one(
    sim: MicrogridSimulator,
    chargers: Sequence[int] = CHARGERS,
    *,
    wait_s: float = 8.0,
    poll_s: float = 0.02,
) -> PlugInRun:
    """Plug EVs into `chargers` one after another; each waits for fair shares.

    The next EV plugs in once every connected EV (including any plugged in
    before) draws its fair share, or after `wait_s` simulated seconds.
    """
    fuse = float(sim.scenario.component(GRID).fuse_current_a)
    run = PlugInRun(fuse_a=fuse)
    plugged = [cid for cid in CHARGERS if _has_ev(sim, cid)]
    for charger_id in chargers:
        plug(sim, charger_id)
        plugged.append(charger_id)
        plugged_at = sim.clock.now()
        reached = math.inf
        while sim.clock.now() - plugged_at < wait_s:
            await asyncio.sleep(poll_s)
            if at_fair_share(sim, plugged):
                reached = sim.clock.now() - plugged_at
                break
        run.fair_share_s.append(reached)
    for charger_id in plugged:
        sent = setpoints_to(sim, charger_id)
        first_on = next((i for i, p in enumerate(sent) if p > 0.0), None)
        if first_on is not None and 0.0 in sent[first_on:]:
            run.switched_off.add(charger_id)
    record = sim.overloads[GRID]
    run.peak_a = record.peak_a
    run.overload_ampere_seconds = record.ampere_seconds
    run.overload_s = record.seconds
    return run


def _has_ev(sim: MicrogridSimulator, charger_id: int) -> bool:
    charger = sim.model.component(charger_id).ev_charger
    return charger is not None and charger.session is not None
