"""Pool metrics: from topology and latest telemetry to one `MicrogridSnapshot`.

Pure functions, called once per tick by the monitor (and directly by tests and
benchmarks). Every value is `None` when it cannot be known — a stale or silent
component drops out of its aggregate, and an aggregate with nobody left has no
value (spec §5), never a made-up 0.

Which battery counts for the battery pool (SoC, capacity, bounds): a battery that is
*fresh* (sent data within the freshness window), has a SoC and a capacity, and is not
in the ERROR state nor reports errors (warnings are fine). This is deliberately
looser than the working status used to *steer* power (spec §3, relay and inverter
states): a battery in standby still holds its energy, so it still counts for SoC and
capacity. Pool power bounds additionally need the battery's inverter fresh, error-free
and sending bounds, since without it no power can flow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
import math
import operator
import re

from frequenz.client.microgrid.metrics import Metric

from . import members
from .bounds import (
    PowerBounds,
    aggregate_batteries_behind_inverter,
    intersect_pair,
    sum_bounds,
)
from .formula import Formula, compile_formula
from .graph import Topology
from .snapshot import (
    BatteryPoolSnapshot,
    ComponentSnapshot,
    EnergySnapshot,
    MicrogridSnapshot,
    PhaseValues,
)
from .telemetry import TelemetryStore

CURRENT_PHASES = (
    Metric.AC_CURRENT_PHASE_1,
    Metric.AC_CURRENT_PHASE_2,
    Metric.AC_CURRENT_PHASE_3,
)


_PLAIN_SUM = re.compile(r"^\s*#\d+(\s*\+\s*#\d+)*\s*$")


@dataclass(frozen=True, slots=True)
class CompiledFormulas:
    """The topology's pool formulas, compiled once (see `formula.py`)."""

    battery: Formula | None
    ev_charger: Formula | None
    pv: Formula | None
    grid: Formula | None
    consumer: Formula | None
    producer: Formula | None

    @classmethod
    def from_topology(cls, topology: Topology) -> CompiledFormulas:
        """Compile every formula the topology has."""
        texts = topology.formulas

        def compiled(text: str | None) -> Formula | None:
            return None if text is None else compile_formula(text)

        return cls(
            battery=compiled(texts.battery),
            ev_charger=compiled(texts.ev_charger),
            pv=compiled(texts.pv),
            grid=compiled(texts.grid),
            consumer=compiled(texts.consumer),
            producer=compiled(texts.producer),
        )


def metric_values(
    components: Mapping[int, ComponentSnapshot], metric: Metric
) -> dict[int, float]:
    """Return each component's fresh value of `metric` (a formula's input)."""
    values: dict[int, float] = {}
    for component_id, snapshot in components.items():
        value = snapshot.metrics.get(metric)
        if value is not None:
            values[component_id] = value
    return values


def _evaluate(formula: Formula | None, values: Mapping[int, float]) -> float | None:
    return None if formula is None else formula.evaluate(values)


def _per_phase(
    formula: Formula | None, components: Mapping[int, ComponentSnapshot]
) -> PhaseValues:
    if formula is None:
        return (None, None, None)
    # Only the formula's members: a pool's formula names a few of 1,000 components.
    members = {
        component_id: components[component_id].metrics
        for component_id in formula.component_ids
        if component_id in components
    }
    l1, l2, l3 = (
        formula.evaluate(
            {
                component_id: value
                for component_id, metrics in members.items()
                if (value := metrics.get(metric)) is not None
            }
        )
        for metric in CURRENT_PHASES
    )
    return (l1, l2, l3)


def _is_healthy(snapshot: ComponentSnapshot | None) -> bool:
    """Fresh, not in ERROR and no errors reported (warnings are fine)."""
    return (
        snapshot is not None
        and snapshot.fresh
        and not snapshot.errors
        and members.ERROR_STATE not in snapshot.states
    )


def counting_batteries(
    topology: Topology, components: Mapping[int, ComponentSnapshot]
) -> list[int]:
    """Return the batteries that count for the pool's SoC and capacity (see module)."""
    counted: list[int] = []
    for battery_id in sorted(topology.battery_ids):
        snapshot = components.get(battery_id)
        if (
            snapshot is not None
            and _is_healthy(snapshot)
            and snapshot.value(members.SOC) is not None
            and snapshot.value(members.CAPACITY) is not None
        ):
            counted.append(battery_id)
    return counted


def _soc_window(snapshot: ComponentSnapshot) -> tuple[float, float]:
    """Return the battery's SoC bounds (%), sent as bounds of its SoC metric."""
    bounds = snapshot.bounds.get(members.SOC)
    if bounds is None:
        return (0.0, 100.0)
    lower = bounds.inclusion_lower if math.isfinite(bounds.inclusion_lower) else 0.0
    upper = bounds.inclusion_upper if math.isfinite(bounds.inclusion_upper) else 100.0
    return (lower, upper)


def pool_soc_and_capacity(
    snapshots: Iterable[ComponentSnapshot],
) -> tuple[float | None, float | None]:
    """Return the pool SoC (%) and usable capacity (Wh) as the SDK computes them.

    SoC = Σ cap·(hi−lo)·clamp((soc−lo)/(hi−lo)·100, 0, 100) / Σ cap·(hi−lo): each
    battery's SoC rescaled to its SoC window, weighted by its usable capacity.
    Capacity = Σ cap·(hi−lo)/100. `(None, None)` when no battery counts.
    """
    weighted_soc = 0.0
    total_x100 = 0.0
    counted = 0
    for snapshot in snapshots:
        soc = snapshot.value(members.SOC)
        capacity = snapshot.value(members.CAPACITY)
        if soc is None or capacity is None:
            continue
        lower, upper = _soc_window(snapshot)
        usable_x100 = capacity * (upper - lower)
        if math.isclose(upper, lower):
            scaled = 0.0 if soc < lower else 100.0
        else:
            scaled = (soc - lower) / (upper - lower) * 100.0
        weighted_soc += usable_x100 * min(max(scaled, 0.0), 100.0)
        total_x100 += usable_x100
        counted += 1
    if counted == 0:
        return (None, None)
    if math.isclose(total_x100, 0.0, abs_tol=1e-9):
        return (0.0, 0.0)
    soc_pct = weighted_soc / total_x100
    if math.isclose(soc_pct, 100.0):
        soc_pct = 100.0
    return (soc_pct, total_x100 / 100.0)


type _PoolFigures = tuple[float | None, float | None, PowerBounds | None]
"""The battery pool's SoC, usable capacity and power bounds."""


class PairBoundsCache:
    """Each inverter's pair bounds with the component snapshots they came from.

    The store hands out the same `ComponentSnapshot` object while a component's
    telemetry is unchanged, so a pair whose inverter and batteries are the very
    objects of last time has the very bounds of last time: aggregating them again
    every tick (hundreds of pairs on a large site) is skipped. So is the whole
    pool's SoC, capacity and bounds while every battery and inverter of the
    topology is the very object of last time (idle batteries repeat themselves).
    """

    __slots__ = ("_pairs", "_pool", "_pool_ids")

    def __init__(self) -> None:
        """Start empty."""
        self._pairs: dict[
            int, tuple[tuple[ComponentSnapshot, ...], PowerBounds | None]
        ] = {}
        self._pool_ids: tuple[Topology, tuple[int, ...]] | None = None
        """The topology last asked about, and its batteries and their inverters."""
        self._pool: tuple[tuple[ComponentSnapshot | None, ...], _PoolFigures] | None = (
            None
        )
        """The pool's figures, with the snapshots (`pool_inputs`) they came from."""

    def pool_inputs(
        self, topology: Topology, components: Mapping[int, ComponentSnapshot]
    ) -> tuple[ComponentSnapshot | None, ...]:
        """Everything the battery pool is computed from, in a fixed order.

        Each battery's snapshot and its (first) inverter's (`None`: none).
        """
        known = self._pool_ids
        if known is None or known[0] is not topology:
            ids: list[int] = []
            for battery_id in sorted(topology.battery_ids):
                ids.append(battery_id)
                ids.extend(topology.inverters_of_battery(battery_id)[:1])
            known = self._pool_ids = (topology, tuple(ids))
            self._pool = None  # another topology: nothing computed holds
        return tuple(map(components.get, known[1]))

    def pool(self, inputs: tuple[ComponentSnapshot | None, ...]) -> _PoolFigures | None:
        """The pool's figures computed from these very snapshots, or `None`."""
        cached = self._pool
        if (
            cached is None
            or len(cached[0]) != len(inputs)
            or not all(map(operator.is_, cached[0], inputs, strict=True))
        ):
            return None
        return cached[1]

    def put_pool(
        self, inputs: tuple[ComponentSnapshot | None, ...], figures: _PoolFigures
    ) -> None:
        """Remember the pool's figures computed from `inputs`."""
        self._pool = (inputs, figures)

    def get(
        self, inverter_id: int, inputs: tuple[ComponentSnapshot, ...]
    ) -> tuple[PowerBounds | None] | None:
        """The bounds computed from these very snapshots (in a 1-tuple), or `None`."""
        cached = self._pairs.get(inverter_id)
        if cached is None or len(cached[0]) != len(inputs):
            return None
        if all(map(operator.is_, cached[0], inputs, strict=True)):
            return (cached[1],)
        return None

    def put(
        self,
        inverter_id: int,
        inputs: tuple[ComponentSnapshot, ...],
        bounds: PowerBounds | None,
    ) -> None:
        """Remember the bounds computed from `inputs`."""
        self._pairs[inverter_id] = (inputs, bounds)


def pool_power_bounds(
    topology: Topology,
    components: Mapping[int, ComponentSnapshot],
    batteries: Iterable[int],
    cache: PairBoundsCache | None = None,
) -> PowerBounds | None:
    """Return the battery pool's inclusion and exclusion bounds (spec §5).

    Per inverter: its counting batteries' DC power bounds aggregated, intersected
    with the inverter's AC active power bounds (inclusion lower = max, upper = min;
    exclusion lower = min, upper = max); then summed over inverters. An inverter
    without fresh bounds, or whose batteries send none, is left out (as the SDK
    does). `None` when nothing is left.
    """
    batteries_by_inverter: dict[int, list[ComponentSnapshot]] = {}
    for battery_id in batteries:
        battery = components[battery_id]
        inverters = topology.inverters_of_battery(battery_id)
        if members.DC_POWER not in battery.bounds or not inverters:
            continue
        batteries_by_inverter.setdefault(inverters[0], []).append(battery)
    pairs: list[PowerBounds] = []
    for inverter_id, battery_snapshots in sorted(batteries_by_inverter.items()):
        inverter = components.get(inverter_id)
        if inverter is None:
            continue
        inputs = (inverter, *battery_snapshots)
        cached = None if cache is None else cache.get(inverter_id, inputs)
        if cached is not None:
            (pair,) = cached
        else:
            pair = _pair_bounds(inverter, battery_snapshots)
            if cache is not None:
                cache.put(inverter_id, inputs, pair)
        if pair is not None:
            pairs.append(pair)
    return sum_bounds(pairs) if pairs else None


def _pair_bounds(
    inverter: ComponentSnapshot, batteries: list[ComponentSnapshot]
) -> PowerBounds | None:
    """One pair's bounds; `None` if the inverter is unhealthy or sends none."""
    if not _is_healthy(inverter):
        return None
    inverter_bounds = inverter.bounds.get(members.AC_POWER)
    if inverter_bounds is None:
        return None
    battery_bounds = aggregate_batteries_behind_inverter(
        [battery.bounds[members.DC_POWER] for battery in batteries]
    )
    return intersect_pair(battery_bounds, inverter_bounds)


def battery_pool(
    topology: Topology,
    components: Mapping[int, ComponentSnapshot],
    power_w: float | None,
    pair_cache: PairBoundsCache | None = None,
) -> BatteryPoolSnapshot:
    """Return the battery pool's SoC, usable capacity, power and bounds.

    `pair_cache`: kept from one call to the next, the figures of last time are
    reused while the batteries and inverters are the very same snapshots.
    """
    if not topology.battery_ids:
        return BatteryPoolSnapshot()
    inputs = None
    figures = None
    if pair_cache is not None:
        inputs = pair_cache.pool_inputs(topology, components)
        figures = pair_cache.pool(inputs)
    if figures is None:
        counted = counting_batteries(topology, components)
        soc_pct, capacity_wh = pool_soc_and_capacity(components[b] for b in counted)
        bounds = pool_power_bounds(topology, components, counted, pair_cache)
        figures = (soc_pct, capacity_wh, bounds)
        if pair_cache is not None and inputs is not None:
            pair_cache.put_pool(inputs, figures)
    soc_pct, capacity_wh, bounds = figures
    return BatteryPoolSnapshot(
        soc_pct=soc_pct,
        usable_capacity_wh=capacity_wh,
        power_w=power_w,
        bounds=bounds,
    )


def _counter_sum(
    component_ids: Iterable[int],
    components: Mapping[int, ComponentSnapshot],
    metric: Metric,
) -> float | None:
    """Sum a counter over components; `None` unless every one sends it fresh.

    A partial sum would make a `total_increasing` counter drop (and Home Assistant
    would count a reset), so a missing member makes the whole counter unknown; the
    total then bridges the gap from the pool's power (`EnergyTotal`).
    """
    total = 0.0
    ids = list(component_ids)
    if not ids:
        return None
    for component_id in ids:
        snapshot = components.get(component_id)
        value = None if snapshot is None else snapshot.value(metric)
        if value is None:
            return None
        total += value
    return total


def energy_counters(
    topology: Topology,
    formulas: CompiledFormulas,
    components: Mapping[int, ComponentSnapshot],
) -> EnergySnapshot:
    """Return the energy counters the components send (passive sign convention).

    Consumed energy flows into a component (grid import, battery charge, EV
    charging); delivered energy flows out of it (grid export, battery discharge,
    PV production). Pools count at their inverters and chargers, summing each
    member's own counters: every battery charged is energy stored (one battery
    charging another counts as charged and discharged, as it is), every PV
    inverter only produces and every charger only consumes.

    The grid counts at its meter only when the grid formula is that one meter.
    Import and export are what flows at the grid connection, the net of the
    formula's meters at each instant: with two feeder meters, one importing 1 kW
    and one exporting 4 kW, the site exports 3 kW and imports nothing, yet their
    counters would add 1 kW of import and 4 kW of export. Such a grid has no
    counter here; its totals integrate the net grid power.
    """
    consumed, delivered = members.ENERGY_CONSUMED, members.ENERGY_DELIVERED
    grid_ids: frozenset[int] = frozenset()
    if (
        formulas.grid is not None
        and len(formulas.grid.component_ids) == 1
        and _PLAIN_SUM.match(formulas.grid.text)
    ):
        grid_ids = formulas.grid.component_ids
    return EnergySnapshot(
        grid_import_wh=_counter_sum(grid_ids, components, consumed),
        grid_export_wh=_counter_sum(grid_ids, components, delivered),
        battery_charge_wh=_counter_sum(
            topology.battery_inverter_ids, components, consumed
        ),
        battery_discharge_wh=_counter_sum(
            topology.battery_inverter_ids, components, delivered
        ),
        pv_production_wh=_counter_sum(topology.pv_inverter_ids, components, delivered),
        ev_charging_wh=_counter_sum(topology.ev_charger_ids, components, consumed),
        grid_meters=grid_ids,
        battery_meters=topology.battery_inverter_ids,
        pv_meters=topology.pv_inverter_ids,
        ev_meters=topology.ev_charger_ids,
    )


class PairedFormula:
    """A formula evaluated over its members' readings of one and the same instant.

    A formula that subtracts meters (the consumer formula: grid meter minus the
    battery, PV and EV meters) mixes readings of different moments when it takes
    whatever arrived last: a round of telemetry arrives spread out, and a change
    of the batteries shows up at the grid meter a fraction of a second before it
    shows at the battery meter, as a spike of "consumption" that never happened.
    Its members keep a short history (`TelemetryStore.keep_history`), and the
    value is taken at the newest sample time every member that reports has a
    reading of; `None` when there is none (then the latest values serve).
    """

    def __init__(
        self, formula: Formula | None, store: TelemetryStore, metric: Metric
    ) -> None:
        """Keep the history `formula`'s members need in `store`."""
        self._formula = formula
        self._metric = metric
        if formula is not None:
            store.keep_history(formula.component_ids, (metric,))

    def evaluate(self, store: TelemetryStore) -> float | None:
        """The formula at the newest instant its fresh members share, or `None`."""
        formula = self._formula
        if formula is None:
            return None
        since = store.wall_time_s() - store.freshness_s
        metric = self._metric
        histories = [
            (cid, history)
            for cid in formula.component_ids
            if (history := store.history(cid)) is not None and not history.is_empty()
        ]
        if not histories:
            return None
        # An instant every member shares is one of any member's own: the first
        # member's times, newest first, are the only candidates (most often the
        # newest or the one before it is complete).
        for sampled in histories[0][1].times():
            if sampled < since:
                break
            values: dict[int, float] = {}
            for cid, history in histories:
                found = history.at(sampled)
                # One look-up (a `Metric`'s hash is a Python-level call), not two.
                value = None if found is None else found.get(metric)
                if value is None:
                    break
                values[cid] = value
            else:
                return formula.evaluate(values)
        return None


def component_snapshots(
    store: TelemetryStore, component_ids: Iterable[int]
) -> dict[int, ComponentSnapshot]:
    """Return the snapshots of the components that have sent anything.

    The per-component half of `compute_snapshot`; the monitor builds it a slice at
    a time, so a large microgrid does not hold the event loop in one piece.
    """
    components: dict[int, ComponentSnapshot] = {}
    for component_id in component_ids:
        snapshot = store.component_snapshot(component_id)
        if snapshot is not None:
            components[component_id] = snapshot
    return components


def snapshot_from_components(
    topology: Topology,
    formulas: CompiledFormulas,
    components: dict[int, ComponentSnapshot],
    *,
    reachable: bool,
    taken_at: datetime | None = None,
    pair_cache: PairBoundsCache | None = None,
) -> MicrogridSnapshot:
    """Compute the pools from the components' snapshots (see `compute_snapshot`).

    `pair_cache`: kept from one snapshot to the next, battery pairs whose
    components did not change are not aggregated again.
    """
    power = metric_values(components, members.AC_POWER)
    battery_power = _evaluate(formulas.battery, power)
    return MicrogridSnapshot(
        taken_at=taken_at or datetime.now(UTC),
        reachable=reachable,
        grid_power_w=_evaluate(formulas.grid, power),
        grid_current_a=_per_phase(formulas.grid, components),
        consumer_power_w=_evaluate(formulas.consumer, power),
        producer_power_w=_evaluate(formulas.producer, power),
        pv_power_w=_evaluate(formulas.pv, power),
        ev_power_w=_evaluate(formulas.ev_charger, power),
        ev_current_a=_per_phase(formulas.ev_charger, components),
        battery=battery_pool(topology, components, battery_power, pair_cache),
        energy=energy_counters(topology, formulas, components),
        components=components,
    )


def compute_snapshot(
    topology: Topology,
    formulas: CompiledFormulas,
    store: TelemetryStore,
    *,
    reachable: bool,
    taken_at: datetime | None = None,
) -> MicrogridSnapshot:
    """Compute everything the Home Assistant layer shows, from the latest telemetry."""
    return snapshot_from_components(
        topology,
        formulas,
        component_snapshots(store, store.component_ids),
        reachable=reachable,
        taken_at=taken_at,
    )
