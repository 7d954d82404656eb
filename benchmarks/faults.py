"""Fault matrix: the integration in a real Home Assistant, faults at the simulator.

Home Assistant's core runs in this process (`benchmarks._ha_harness`) with the
integration set up through its config flow on the `home` scenario (`--scenario
depot`: three battery inverters, two PV inverters and 22 EV chargers with cars;
`depot_tight_fuse`: the same behind a fuse smaller than the cars ask; `LAYOUTS`);
the simulator runs in the same event loop, so the benchmark can switch its faults
directly and read its safety counters. For each fault, one after another and then
several overlapping, the entry is set up afresh and three actors make their
proposals (tariff: batteries 1 kW at priority 10; peak guard: batteries bounds ±3 kW
at priority 50; curtailer: PV −1.5 kW). The fault is injected, the tariff actor
changes its mind during it (so commands are sent into the fault), the fault is held
and cleared, and the entry is finally unloaded. One line per fault:

    faults fault=<name> recovered_s=<x> unsafe_setpoints=0 exceptions=0
        lost_proposals=0 lingering_tasks=0

and a summary line (`faults summary ...`). The counters:

- **recovered_s**: real seconds from the moment the fault is cleared until the
  site is back: every entity that was available before the fault is available
  again, no reauth prompt is left open, each pool's target is the one its
  proposals ask for (they were changed during the fault: `MIND_CHANGES`), the
  pool's last distribution succeeded, and every component of the pool runs (a
  live setpoint, running and healthy) with setpoints that add up to that target.
  `timeout` if that does not happen within `RECOVERY_TIMEOUT_S`.
- **unsafe_setpoints**: setpoints the simulator counted as unsafe (outside the
  component's bounds or in its exclusion zone; a battery's SoC limits are part of
  its bounds), plus overloads the simulator recorded (a fuse exceeded), during the
  whole case.
- **exceptions**: log records at ERROR or above from the integration's loggers
  (not the simulator's), and any record whose traceback passes through the
  integration's code (e.g. "Task exception was never retrieved"), during the case;
  plus action calls that raised anything but the translated error the fault calls
  for.
- **lost_proposals**: the actors' proposals that no longer act after recovery:
  missing from the controller's status, or their pool's target is not what they
  asked for.
- **lingering_tasks**: asyncio tasks started during the case that are still alive
  a moment after the entry is unloaded, other than the simulator's own.

    scripts/python -m benchmarks.faults [--hold S] [--only NAME ...]
        [--scenario home|depot|depot_tight_fuse]

Goal: recovered_s ≤ 5 for every fault, every other counter 0.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
import dataclasses
from dataclasses import dataclass, field
import logging
import math
import operator
from pathlib import Path
import time
import traceback
from typing import Any

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntry, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er

from benchmarks._ha_harness import async_add_microgrid, running_home_assistant
from custom_components.frequenz_microgrid.const import (
    CONF_DEFAULT_PRIORITY,
    CONF_FRESHNESS_S,
    CONF_REAPPLY_SETPOINTS,
    DOMAIN,
    MIN_FRESHNESS_S,
)
from custom_components.frequenz_microgrid.engine.control import Pool
from custom_components.frequenz_microgrid.simulator import (
    Fault,
    MicrogridSimulator,
    load_scenario,
)
from custom_components.frequenz_microgrid.simulator.scenario import (
    ComponentSpec,
    Kind,
    Scenario,
)


@dataclass(frozen=True)
class Layout:
    """Where a scenario's faults strike, and what its steered pools set.

    The faults hit one component of each kind (`battery_inverter` and its
    `battery`, one `pv_inverter`, the `grid_meter`); recovery is checked on
    every component of each steered pool, whose setpoints must add up to the
    pool's target.
    """

    scenario: str
    """The shipped scenario (`load_scenario`)."""
    grid_meter: int
    battery_inverter: int
    battery: int
    pv_inverter: int
    steered: dict[Pool, tuple[int, ...]]
    prepare: Callable[[Scenario], Scenario] = lambda scenario: scenario
    """The scenario as the matrix runs it."""


def cars_plugged_in_early(scenario: Scenario) -> Scenario:
    """`scenario` with its listed cars arriving in its first seconds, for as long.

    The benchmark runs at 1× for a few minutes; the depot's cars would come
    hours later. With the building they ask ~190 A a phase.
    """
    arrivals = tuple(
        dataclasses.replace(
            arrival,
            arrive_at_s=1.0 + 0.5 * index,
            depart_at_s=None
            if arrival.depart_at_s is None
            else 1.0 + 0.5 * index + arrival.depart_at_s - arrival.arrive_at_s,
        )
        for index, arrival in enumerate(scenario.ev_arrivals)
    )
    return dataclasses.replace(scenario, ev_arrivals=arrivals)


TIGHT_FUSE_A = 160
"""The grid fuse of `depot_tight_fuse`: less than the depot's cars and building draw."""


def with_tight_fuse(scenario: Scenario) -> Scenario:
    """`cars_plugged_in_early`, behind a grid fuse of `TIGHT_FUSE_A`.

    The EV allocation then holds the fuse through every fault, while the
    actors' proposals move the batteries and PV below the same fuse.
    """
    components = tuple(
        dataclasses.replace(c, fuse_current_a=TIGHT_FUSE_A)
        if c.kind is Kind.GRID
        else c
        for c in scenario.components
    )
    return cars_plugged_in_early(dataclasses.replace(scenario, components=components))


DEPOT = Layout(
    scenario="depot",
    grid_meter=2,
    battery_inverter=11,
    battery=12,
    pv_inverter=21,
    steered={Pool.BATTERIES: (11, 13, 15), Pool.PV: (21, 22)},
    prepare=cars_plugged_in_early,
)
LAYOUTS = {
    "home": Layout(
        scenario="home",
        grid_meter=2,
        battery_inverter=3,
        battery=4,
        pv_inverter=5,
        steered={Pool.BATTERIES: (3,), Pool.PV: (5,)},
    ),
    # Three battery inverters (one with an exclusion zone, one with two
    # batteries), two PV inverters, 22 EV chargers behind two feeders, the
    # listed cars plugged in from the start.
    "depot": DEPOT,
    "depot_tight_fuse": dataclasses.replace(DEPOT, prepare=with_tight_fuse),
}
"""The scenarios the matrix runs on (`--scenario`)."""
HOLD_S = 4.0
"""How long a fault is held by default: longer than the freshness window (2 s)."""
RECOVERY_TIMEOUT_S = 30.0
LOOP_BLOCK_S = 2.0
CLOCK_JUMP_S = 3600.0
POLL_S = 0.05
INTEGRATION_DIR = str(Path(__file__).resolve().parents[1] / "custom_components")
SIMULATOR_DIR = str(Path(INTEGRATION_DIR) / "frequenz_microgrid" / "simulator")


@dataclass(frozen=True)
class Proposal:
    """One actor's standing proposal, as `propose_power` data."""

    actor: str
    pool: Pool
    data: dict[str, Any]


PROPOSALS = (
    Proposal("tariff", Pool.BATTERIES, {"power": 1000, "priority": 10}),
    Proposal(
        "peak_guard", Pool.BATTERIES, {"lower": -3000, "upper": 3000, "priority": 50}
    ),
    Proposal("curtailer", Pool.PV, {"power": -1500, "priority": 0}),
)
EXPECTED_TARGETS: dict[Pool, float | None] = {Pool.BATTERIES: 1000.0, Pool.PV: -1500.0}
"""What the proposals ask for: the tariff's 1 kW is within the peak guard's ±3 kW
(battery powers add up across priorities), the curtailer's −1.5 kW for PV."""
MIND_CHANGES = (
    Proposal("tariff", Pool.BATTERIES, {"power": 1200, "priority": 10}),
    Proposal("curtailer", Pool.PV, {"power": -1200, "priority": 0}),
)
"""New proposals made while a fault is on."""
TARGETS_AFTER: dict[Pool, float | None] = {Pool.BATTERIES: 1200.0, Pool.PV: -1200.0}
"""What the proposals ask for after `MIND_CHANGES`."""


@dataclass
class Site:
    """What a fault acts on: Home Assistant, the entry and the (current) simulator."""

    hass: HomeAssistant
    entry: ConfigEntry
    sim: MicrogridSimulator
    hold_s: float
    layout: Layout
    unexpected_errors: int = 0
    retired: list[MicrogridSimulator] = field(default_factory=list)
    """Simulators replaced by a topology change (their counters still count)."""

    def unsafe(self) -> tuple[int, dict[tuple[int, int], float]]:
        """Unsafe setpoints so far, and each fuse's overload (A·s), per simulator."""
        sims = (*self.retired, self.sim)
        overloads = {
            (id(sim), meter): record.ampere_seconds
            for sim in sims
            for meter, record in sim.overloads.items()
        }
        return sum(sim.unsafe_setpoint_count for sim in sims), overloads


def unsafe_since(before: tuple[int, dict[tuple[int, int], float]], site: Site) -> int:
    """Unsafe setpoints since `before`, plus the fuses overloaded since then."""
    setpoints_before, overloads_before = before
    setpoints, overloads = site.unsafe()
    overloaded = sum(
        1
        for key, ampere_seconds in overloads.items()
        if ampere_seconds > overloads_before.get(key, 0.0)
    )
    return setpoints - setpoints_before + overloaded


FaultStep = Callable[[Site], Awaitable[None]]


@dataclass(frozen=True)
class FaultCase:
    """A fault: how to inject it, and how to clear it after the hold."""

    name: str
    inject: FaultStep
    clear: FaultStep
    during: FaultStep | None = None
    """Run once, mid-hold (e.g. a call that must be refused cleanly)."""


def component_fault(
    fault: Fault, *components: Callable[[Layout], int]
) -> tuple[FaultStep, FaultStep]:
    """Inject/clear a simulator `Fault` on `components` (picked from the layout)."""

    async def inject(site: Site) -> None:
        for component in components:
            site.sim.inject_fault(component(site.layout), fault)

    async def clear(site: Site) -> None:
        for component in components:
            site.sim.clear_fault(component(site.layout), fault)

    return inject, clear


async def _restart_down(site: Site) -> None:
    await site.sim.stop()


async def _restart_up(site: Site) -> None:
    await site.sim.start(port=site.sim.port)


_dropping: dict[int, asyncio.Task[None]] = {}


async def _drop_streams(site: Site) -> None:
    async def drop_forever() -> None:
        while True:
            await site.sim.end_all_streams()
            await asyncio.sleep(0.5)

    _dropping[id(site)] = asyncio.create_task(drop_forever(), name="drop streams")


async def _stop_dropping(site: Site) -> None:
    task = _dropping.pop(id(site))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _reject_credentials(site: Site) -> None:
    await site.sim.reject_credentials(True)


async def _accept_credentials(site: Site) -> None:
    await site.sim.reject_credentials(False)


def with_heat_pump(scenario: Scenario, grid_meter: int) -> Scenario:
    """`scenario` with one more meter (a 1.5 kW heat pump) below the grid meter."""
    heat_pump = ComponentSpec(
        id=max(c.id for c in scenario.components) + 1,
        kind=Kind.METER,
        name="Heat pump",
        parent=grid_meter,
        base_load_w=1500.0,
    )
    return dataclasses.replace(scenario, components=(*scenario.components, heat_pump))


async def _change_topology(site: Site) -> None:
    """The microgrid is restarted with one more component, on the same port."""
    port = site.sim.port
    await site.sim.stop()
    site.retired.append(site.sim)
    site.sim = MicrogridSimulator(
        with_heat_pump(site.sim.scenario, site.layout.grid_meter)
    )
    await site.sim.start(port=port)


async def _nothing(_site: Site) -> None:
    return None


async def _jump_clock(site: Site) -> None:
    site.sim.clock_offset_s = CLOCK_JUMP_S


async def _jump_clock_back(site: Site) -> None:
    site.sim.clock_offset_s = -CLOCK_JUMP_S


async def _fix_clock(site: Site) -> None:
    site.sim.clock_offset_s = 0.0


async def _block_loop(_site: Site) -> None:
    time.sleep(LOOP_BLOCK_S)  # noqa: ASYNC251 - the fault is exactly this


async def _refused_bounds(site: Site) -> None:
    """A bounds request the microgrid refuses is a translated error, nothing else."""
    try:
        await _set_bounds(site)
    except HomeAssistantError as err:
        if err.translation_key is None:
            site.unexpected_errors += 1
    except Exception:
        site.unexpected_errors += 1
    else:
        site.unexpected_errors += 1  # refused at the simulator, yet "succeeded"


async def _bounds_accepted_again(site: Site) -> None:
    site.sim.clear_fault(site.layout.battery_inverter, Fault.REJECT_BOUNDS)
    try:
        await _set_bounds(site)
    except Exception:
        site.unexpected_errors += 1


async def _set_bounds(site: Site) -> None:
    await site.hass.services.async_call(
        DOMAIN,
        "set_component_bounds",
        {
            "config_entry_id": site.entry.entry_id,
            "component": site.layout.battery_inverter,
            "lower": -4000,
            "upper": 4000,
            "validity": 5,
        },
        blocking=True,
        return_response=True,
    )


def _combine(*steps: FaultStep) -> FaultStep:
    async def all_of(site: Site) -> None:
        for step in steps:
            await step(site)

    return all_of


def fault_cases() -> list[FaultCase]:
    """Every single fault, then overlapping ones."""
    meter = operator.attrgetter("grid_meter")
    inverter = operator.attrgetter("battery_inverter")
    battery = operator.attrgetter("battery")
    pv = operator.attrgetter("pv_inverter")
    silent = component_fault(Fault.STOP_DATA, inverter)
    nan = component_fault(Fault.SEND_NAN, meter, battery, inverter)
    inf = component_fault(Fault.SEND_INF, meter, battery, inverter)
    error = component_fault(Fault.ERROR_STATE, inverter)
    rejected = component_fault(Fault.REPLY_REJECTED, inverter, pv)
    failed = component_fault(Fault.REPLY_FAILED, inverter, pv)
    timeout = component_fault(Fault.TIMEOUT_SET_POWER, inverter, pv)
    single = [
        FaultCase("server_restart", _restart_down, _restart_up),
        FaultCase("dropped_streams", _drop_streams, _stop_dropping),
        FaultCase("component_silent", *silent),
        FaultCase("nan_values", *nan),
        FaultCase("inf_values", *inf),
        FaultCase("error_state", *error),
        FaultCase("set_power_rejected", *rejected),
        FaultCase("set_power_failed", *failed),
        FaultCase("set_power_timeout", *timeout),
        FaultCase(
            "bounds_refused",
            component_fault(Fault.REJECT_BOUNDS, inverter)[0],
            _bounds_accepted_again,
            during=_refused_bounds,
        ),
        FaultCase("auth_failure", _reject_credentials, _accept_credentials),
        FaultCase("topology_change", _change_topology, _nothing),
        FaultCase("clock_jumps", _jump_clock, _fix_clock, during=_jump_clock_back),
        # The block is the clear step: recovery counts from when the loop is free.
        FaultCase("loop_blocked", _nothing, _block_loop),
    ]
    overlapping = [
        FaultCase(
            "overlap_data",
            _combine(silent[0], nan[0], _drop_streams, _jump_clock),
            _combine(silent[1], nan[1], _stop_dropping, _fix_clock),
            during=_block_loop,
        ),
        FaultCase(
            "overlap_commands",
            _combine(error[0], timeout[0], _reject_credentials),
            _combine(_accept_credentials, timeout[1], error[1]),
            during=_combine(_restart_down, _restart_up),
        ),
        FaultCase(
            "overlap_everything",
            _combine(inf[0], failed[0], _drop_streams, _jump_clock),
            _combine(_stop_dropping, failed[1], inf[1], _fix_clock),
            during=_combine(_block_loop, _restart_down, _restart_up),
        ),
    ]
    return single + overlapping


# --- measuring -------------------------------------------------------------------


class ErrorCounter(logging.Handler):
    """Counts ERROR records from the integration, or with tracebacks through it."""

    def __init__(self) -> None:
        """Count from zero."""
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record if it is the integration's (not the simulator's)."""
        ours = record.name.startswith("custom_components.frequenz_microgrid")
        if record.name.startswith("custom_components.frequenz_microgrid.simulator"):
            ours = False
        if record.exc_info and record.exc_info[2] is not None:
            files = [
                frame.filename for frame in traceback.extract_tb(record.exc_info[2])
            ]
            ours = ours or any(
                f.startswith(INTEGRATION_DIR) and not f.startswith(SIMULATOR_DIR)
                for f in files
            )
        if ours:
            self.records.append(record)


@contextmanager
def counting_errors() -> Iterator[ErrorCounter]:
    """Attach an `ErrorCounter` to the root logger for the block."""
    counter = ErrorCounter()
    root = logging.getLogger()
    root.addHandler(counter)
    try:
        yield counter
    finally:
        root.removeHandler(counter)


_GRPC_SERVER_COROUTINES = (
    "AioServer.",
    "_handle_",
    "_schedule_rpc_coro",
    "_finish_handler",
)
"""Qualified names of grpc.aio's server-side coroutines (Cython: no file name)."""


def is_simulator_task(task: asyncio.Task[Any]) -> bool:
    """Whether a task belongs to the simulator or its gRPC server (same loop here)."""
    coro = task.get_coro()
    qualname = str(getattr(coro, "__qualname__", ""))
    if qualname.startswith(_GRPC_SERVER_COROUTINES):
        return True
    code = getattr(coro, "cr_code", None) or getattr(coro, "ag_code", None)
    return code is not None and str(code.co_filename).startswith(SIMULATOR_DIR)


def _coroutine_name(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return str(getattr(coro, "__qualname__", coro))


async def _call(hass: HomeAssistant, service: str, data: dict[str, Any]) -> Any:
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )


async def propose_all(site: Site) -> None:
    """Make every actor's proposal."""
    for proposal in PROPOSALS:
        await _call(
            site.hass,
            "propose_power",
            {
                "config_entry_id": site.entry.entry_id,
                "pool": proposal.pool.value,
                "actor": proposal.actor,
                **proposal.data,
            },
        )


async def change_mind(site: Site) -> None:
    """Two actors change their proposals while the fault is on.

    So commands are sent into the fault, and recovery means delivering the new
    targets (`TARGETS_AFTER`), not merely finding the old ones still in force.
    """
    for proposal in MIND_CHANGES:
        try:
            await _call(
                site.hass,
                "propose_power",
                {
                    "config_entry_id": site.entry.entry_id,
                    "pool": proposal.pool.value,
                    "actor": proposal.actor,
                    **proposal.data,
                },
            )
        except HomeAssistantError as err:
            # Nothing could be steered (e.g. every component excluded): a
            # translated error is the documented answer.
            if err.translation_key is None:
                site.unexpected_errors += 1
        except Exception:
            site.unexpected_errors += 1


def _available_entities(site: Site) -> set[str]:
    registry = er.async_get(site.hass)
    return {
        e.entity_id
        for e in er.async_entries_for_config_entry(registry, site.entry.entry_id)
        if (state := site.hass.states.get(e.entity_id)) is not None
        and state.state != STATE_UNAVAILABLE
    }


def _reauth_flows(site: Site) -> int:
    return sum(1 for _ in site.entry.async_get_active_flows(site.hass, {SOURCE_REAUTH}))


def recovered(
    site: Site, entities: set[str], expected: dict[Pool, float | None]
) -> bool:
    """Whether the site is back: entities live, targets and simulator as before."""
    if site.entry.state is not ConfigEntryState.LOADED:
        return False
    if not entities <= _available_entities(site):
        return False
    if _reauth_flows(site):
        return False
    status = site.entry.runtime_data.engine.controller.status()
    now = site.sim.model.now_s
    for pool, components in site.layout.steered.items():
        component_set = next(iter(status.pools[pool].component_sets))
        result = component_set.last_result
        if component_set.target_power != expected[pool]:
            return False
        if result is None or result.get("kind") != "success":
            return False
        total = 0.0
        for component in components:
            runtime = site.sim.model.component(component)
            setpoint = runtime.active_setpoint
            if (
                setpoint is None
                or setpoint.expires_at_s <= now
                or not runtime.producing_power
            ):
                return False
            total += setpoint.value
        if not math.isclose(total, expected[pool] or 0.0, abs_tol=len(components)):
            return False
    return True


def lost_proposals(site: Site, expected: dict[Pool, float | None]) -> int:
    """Proposals missing from the controller, or whose pool is off target."""
    status = site.entry.runtime_data.engine.controller.status()
    lost = 0
    for proposal in PROPOSALS:
        component_set = next(iter(status.pools[proposal.pool].component_sets))
        present = any(
            p.source_id == f"action:{proposal.actor}" for p in component_set.proposals
        )
        on_target = component_set.target_power == expected[proposal.pool]
        lost += not (present and on_target)
    return lost


async def wait_until(predicate: Callable[[], bool], timeout_s: float) -> float | None:
    """Seconds until `predicate` holds (polled), or None on timeout."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if predicate():
            return time.perf_counter() - started
        await asyncio.sleep(POLL_S)
    return None


@dataclass
class CaseResult:
    """One line of the fault matrix."""

    name: str
    recovered_s: float | None
    unsafe_setpoints: int
    exceptions: int
    lost_proposals: int
    lingering_tasks: int
    details: list[str] = field(default_factory=list)

    def line(self) -> str:
        """`faults fault=<name> recovered_s=<x> ...`."""
        recovered = "timeout" if self.recovered_s is None else f"{self.recovered_s:.2f}"
        return (
            f"faults fault={self.name} recovered_s={recovered} "
            f"unsafe_setpoints={self.unsafe_setpoints} exceptions={self.exceptions} "
            f"lost_proposals={self.lost_proposals} "
            f"lingering_tasks={self.lingering_tasks}"
        )

    @property
    def ok(self) -> bool:
        """Whether the case met the goal."""
        return (
            self.recovered_s is not None
            and self.recovered_s <= 5.0
            and not (
                self.unsafe_setpoints
                or self.exceptions
                or self.lost_proposals
                or self.lingering_tasks
            )
        )


async def run_case(
    hass: HomeAssistant,
    entry: ConfigEntry,
    sim: MicrogridSimulator,
    case: FaultCase,
    hold_s: float,
    layout: Layout,
) -> tuple[CaseResult, Site]:
    """Set the entry up, run one fault case, unload; return its result and site."""
    tasks_before = asyncio.all_tasks()
    site = Site(hass, entry, sim, hold_s, layout)
    with counting_errors() as errors:
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        unsafe_before = site.unsafe()
        # Steady state: every entity that will come up is up and steering works.
        await propose_all(site)
        expected = EXPECTED_TARGETS
        settled = await wait_until(
            lambda: recovered(site, _available_entities(site), expected), 20.0
        )
        if settled is None:
            raise RuntimeError(
                f"{case.name}: the site never settled before the fault: "
                + _why_not_recovered(site, _available_entities(site), expected)
            )
        await asyncio.sleep(1.0)
        entities = _available_entities(site)

        await case.inject(site)
        await change_mind(site)
        await asyncio.sleep(hold_s / 2)
        if case.during is not None:
            await case.during(site)
        await asyncio.sleep(hold_s / 2)
        await case.clear(site)
        expected = TARGETS_AFTER
        recovered_s = await wait_until(
            lambda: recovered(site, entities, expected), RECOVERY_TIMEOUT_S
        )
        lost = (
            lost_proposals(site, expected)
            if entry.state is ConfigEntryState.LOADED
            else len(PROPOSALS)
        )
        details: list[str] = []
        if recovered_s is None:
            details.append(_why_not_recovered(site, entities, expected))
        unsafe = unsafe_since(unsafe_before, site)

        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
        await asyncio.sleep(0.5)
        lingering = [
            t
            for t in asyncio.all_tasks() - tasks_before
            if not t.done() and not is_simulator_task(t)
        ]
        details.extend(
            f"lingering task {t.get_name()}: {_coroutine_name(t)}" for t in lingering
        )
        details.extend(
            f"error: {r.name}: {r.getMessage()[:200]}" for r in errors.records
        )
    return (
        CaseResult(
            case.name,
            recovered_s,
            unsafe,
            len(errors.records) + site.unexpected_errors,
            lost,
            len(lingering),
            details,
        ),
        site,
    )


def _why_not_recovered(
    site: Site, entities: set[str], expected: dict[Pool, float | None]
) -> str:
    if site.entry.state is not ConfigEntryState.LOADED:
        return f"entry {site.entry.state}"
    missing = sorted(entities - _available_entities(site))
    status = site.entry.runtime_data.engine.controller.status()
    parts = [
        f"unavailable={missing[:5]}{'…' if len(missing) > 5 else ''}",
        f"reauth_flows={_reauth_flows(site)}",
    ]
    for pool, components in site.layout.steered.items():
        component_set = next(iter(status.pools[pool].component_sets))
        runtimes = {c: site.sim.model.component(c) for c in components}
        parts.append(
            f"{pool.value}: target={component_set.target_power} "
            f"expected={expected[pool]} result="
            f"{(component_set.last_result or {}).get('kind')} sim_setpoints="
            + ", ".join(
                f"{c}: {r.active_setpoint} in_error={r.in_error}"
                for c, r in runtimes.items()
            )
        )
    return "; ".join(parts)


async def run(
    hold_s: float = HOLD_S, only: list[str] | None = None, scenario: str = "home"
) -> list[CaseResult]:
    """Run the fault matrix on `scenario`; print one line per fault and a summary."""
    cases = [c for c in fault_cases() if not only or c.name in only]
    results: list[CaseResult] = []
    layout = LAYOUTS[scenario]
    sim = MicrogridSimulator(layout.prepare(load_scenario(layout.scenario)))
    sims = [sim]
    await sim.start()
    try:
        async with running_home_assistant() as hass:
            entry = await async_add_microgrid(hass, sim.url)
            await shortest_freshness(hass, entry)
            await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()
            for case in cases:
                result, site = await run_case(hass, entry, sim, case, hold_s, layout)
                sim = site.sim
                sims.extend(s for s in (*site.retired, sim) if s not in sims)
                results.append(result)
                print(result.line(), flush=True)
                for detail in result.details:
                    print(f"  {detail}", flush=True)
            await hass.config_entries.async_remove(entry.entry_id)
    finally:
        await sim.stop()
    print(fuse_peaks(sims), flush=True)
    print(summary(results), flush=True)
    return results


def fuse_peaks(sims: list[MicrogridSimulator]) -> str:
    """Each fuse's highest per-phase current over the run, against its rating.

    Shows whether the allocation had to hold a fuse at all (the `depot`'s cars
    ask more than its fuse carries); exceeding one counts as unsafe per case.
    """
    peaks: dict[int, tuple[float, float, float, float]] = {}
    for sim in sims:
        for meter, record in sim.overloads.items():
            peak, _, over_s, over_as = peaks.get(meter, (0.0, 0.0, 0.0, 0.0))
            peaks[meter] = (
                max(peak, record.peak_a),
                record.rating_a,
                over_s + record.seconds,
                over_as + record.ampere_seconds,
            )
    return "faults fuses " + " ".join(
        f"component={meter} peak_a={peak:.1f} rating_a={rating:g} "
        f"overloaded_s={over_s:.1f} overload_as={over_as:.1f}"
        for meter, (peak, rating, over_s, over_as) in sorted(peaks.items())
    )


async def shortest_freshness(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Set the freshness window to its minimum (2 s), so faults show quickly.

    The entry reloads with the new option.
    """
    hass.config_entries.async_update_entry(
        entry,
        options={
            CONF_FRESHNESS_S: MIN_FRESHNESS_S,
            CONF_DEFAULT_PRIORITY: 0,
            CONF_REAPPLY_SETPOINTS: False,
        },
    )
    await hass.async_block_till_done()


def summary(results: list[CaseResult]) -> str:
    """The summary line over every case."""
    times = [r.recovered_s for r in results if r.recovered_s is not None]
    slowest = "timeout" if len(times) < len(results) else f"{max(times, default=0):.2f}"
    return (
        f"faults summary cases={len(results)} ok={sum(r.ok for r in results)} "
        f"recovered_s_max={slowest} "
        f"unsafe_setpoints={sum(r.unsafe_setpoints for r in results)} "
        f"exceptions={sum(r.exceptions for r in results)} "
        f"lost_proposals={sum(r.lost_proposals for r in results)} "
        f"lingering_tasks={sum(r.lingering_tasks for r in results)}"
    )


def main() -> None:
    """Command line: `--hold` seconds per fault, `--only` some faults."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hold", type=float, default=HOLD_S)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--scenario", choices=sorted(LAYOUTS), default="home")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args.hold, args.only, args.scenario))


if __name__ == "__main__":
    main()
