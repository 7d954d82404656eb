"""From the latest telemetry to the inputs of health tracking and the distributions.

Every function reads the `TelemetryStore` (fresh values only) and returns the plain
numbers the pure algorithms take. Unknown values become NaN where the algorithm
knows how to treat NaN (it then skips the component), so a silent component is
never given power on old data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
import math

from frequenz.client.microgrid.component import (
    GridConnectionPoint,
)
from frequenz.client.microgrid.metrics import Metric

from .. import members
from ..bounds import PowerBounds, sum_bounds, sum_switchable_bounds
from ..distribution.battery import BatteryState, InverterBatteries
from ..distribution.ev_chargers import ALL_PHASES, EvChargerInput
from ..distribution.ev_fuse import TimedCurrents
from ..distribution.pv import PvInverterInput
from ..formula import compile_formula
from ..graph import Topology
from ..health import HealthTracker, Reading, ev_cable_connected
from ..pools import CURRENT_PHASES
from ..telemetry import FreshView, TelemetryStore

_NAN_BOUNDS = PowerBounds(math.nan, math.nan, math.nan, math.nan)
"""Unknown bounds: the battery distribution skips (or fills) a NaN side."""

DRAWING_THRESHOLD_A = 1.0
"""A phase carrying more than this is one the EV charges on."""

CHARGER_PHASES = 3
"""Phases a charger converts a power setpoint over (the SDK's assumption: a
charger turns watts into a per-phase current limit as ``W / (3 × V)``)."""

DEFAULT_MIN_CURRENT_A = 6.0
"""Minimum charging current (IEC 61851) when a charger's bounds do not say."""


def register_components(health: HealthTracker, topology: Topology) -> None:
    """Track every steerable component of the topology in `health`."""
    for battery_id in sorted(topology.battery_ids):
        inverters = topology.inverters_of_battery(battery_id)
        if inverters:
            health.add_battery(battery_id, inverters[0])
    for charger_id in sorted(topology.ev_charger_ids):
        health.add_ev_charger(charger_id)
    for inverter_id in sorted(topology.pv_inverter_ids):
        health.add_pv_inverter(inverter_id)


def health_input_ids(topology: Topology) -> list[int]:
    """Every component whose telemetry the health tracker reads, sorted.

    The steerable components, and the inverter in front of each battery (a
    battery's health depends on its inverter's state too; the tracker reads the
    first one, as the setpoints go to it).
    """
    ids: set[int] = set(topology.ev_charger_ids) | set(topology.pv_inverter_ids)
    for battery_id in topology.battery_ids:
        ids.add(battery_id)
        ids.update(topology.inverters_of_battery(battery_id)[:1])
    return sorted(ids)


def feed_health(
    health: HealthTracker,
    topology: Topology,
    store: TelemetryStore,
    now: float,
    component_ids: Iterable[int] | None = None,
) -> None:
    """Give the tracker the components' latest states, aged by arrival.

    `component_ids` defaults to `health_input_ids(topology)`; a caller that wants
    to spread the work over several event-loop turns passes slices of it. The
    store measures freshness by arrival on its own clock; the reading is dated
    ``now − age`` on the controller's clock, so both agree on how old it is. A
    component that never sent anything gets no reading (it stays not working).
    """
    ids = health_input_ids(topology) if component_ids is None else component_ids
    for component_id in ids:
        age = store.age_s(component_id)
        states = store.states(component_id)
        if age is None or states is None:
            continue
        capacity: float | None = None
        missing: str | None = None
        if component_id in topology.battery_ids:
            # Unknown now (NaN or not sent) is unknown: not the last good value.
            capacity = store.value(component_id, members.CAPACITY)
            capacity = math.nan if capacity is None else capacity
            missing = _battery_missing(store, component_id)
        reading = Reading(
            at=now - age,
            states=states.states,
            errors=states.errors,
            warnings=states.warnings,
            missing=missing,
        )
        health.observe(component_id, reading, capacity=capacity)


def _battery_missing(store: TelemetryStore, battery_id: int) -> str | None:
    """What a battery's fresh data lacks that its distribution needs, if anything."""
    if store.value(battery_id, members.SOC) is None:
        return "battery SoC is unknown"
    window = store.bounds(battery_id, members.SOC)
    if window is None or any(
        math.isnan(edge) for edge in (window.inclusion_lower, window.inclusion_upper)
    ):
        return "battery SoC limits are unknown"
    return None


def _value(
    store: TelemetryStore | FreshView, component_id: int, metric: Metric
) -> float:
    value = store.value(component_id, metric)
    return math.nan if value is None else value


BATTERY_STATE_METRICS = (members.SOC, members.CAPACITY, members.DC_POWER)
"""The metrics `battery_state` reads (values and bounds)."""


def battery_state(store: TelemetryStore | FreshView, battery_id: int) -> BatteryState:
    """One battery's distribution input; NaN where the telemetry is missing.

    The SoC window rides on the SoC metric as its bounds, the power bounds on DC
    power. Without a known SoC window the battery is skipped (NaN), rather than
    assuming 0–100 % and running it past its limits.
    """
    soc_window = store.bounds(battery_id, members.SOC)
    return BatteryState(
        component_id=battery_id,
        capacity_wh=_value(store, battery_id, members.CAPACITY),
        soc_pct=_value(store, battery_id, members.SOC),
        soc_lower_pct=math.nan if soc_window is None else soc_window.inclusion_lower,
        soc_upper_pct=math.nan if soc_window is None else soc_window.inclusion_upper,
        bounds=store.bounds(battery_id, members.DC_POWER) or _NAN_BOUNDS,
    )


def battery_inverters(topology: Topology, battery_ids: Iterable[int]) -> list[int]:
    """The inverters in front of `battery_ids`, sorted (setpoints go to these)."""
    inverters: set[int] = set()
    for battery_id in battery_ids:
        inverters.update(topology.inverters_of_battery(battery_id)[:1])
    return sorted(inverters)


@dataclass(frozen=True, slots=True)
class _BuiltPair:
    """A pair as built from its components' telemetry at certain revisions."""

    revisions: tuple[int, ...]
    """The store revision of the inverter, then of each battery behind it."""
    oldest_arrival: float
    """Arrival of the oldest fresh value it was built from (the first to go stale)."""
    pair: InverterBatteries | None


class BatteryPairs:
    """The usable inverter–battery pairs of a request, each rebuilt only on change.

    A pair is a pure function of its inverter's and batteries' fresh telemetry,
    which changes only when one of them sends data (the store's revision) or
    when one of the values it used turns stale. Until then the pair built last
    time is the very pair a rebuild would give, so steering several times within
    a telemetry period (proposals, the tick) rebuilds only the pairs whose
    components reported meanwhile, not all of them.
    """

    def __init__(self, topology: Topology, store: TelemetryStore) -> None:
        """Build pairs of `topology`'s batteries from `store`."""
        self._topology = topology
        self._store = store
        self._built: dict[int, _BuiltPair] = {}

    def usable(
        self, requested: frozenset[int], working: frozenset[int]
    ) -> tuple[list[InverterBatteries], float]:
        """The usable pairs of a request, and the unreachable power.

        An inverter is usable when every battery behind it is requested and
        working (its setpoint flows through all of them) and their data is
        complete. The measured power of every other requested inverter is
        unreachable: it is already flowing and is subtracted from the request
        (spec §2).
        """
        topology = self._topology
        pairs: list[InverterBatteries] = []
        unreachable = 0.0
        view = self._store.fresh_view()
        for inverter_id in battery_inverters(topology, requested):
            batteries = topology.batteries_of_inverter(inverter_id)
            pair = None
            if all(b in requested and b in working for b in batteries):
                pair = self._pair(view, inverter_id, batteries)
            if pair is not None:
                pairs.append(pair)
            else:
                unreachable += view.value(inverter_id, members.AC_POWER) or 0.0
        return pairs, unreachable

    def pair(self, inverter_id: int) -> InverterBatteries | None:
        """The inverter's pair from the latest fresh telemetry (`None`: unusable)."""
        batteries = self._topology.batteries_of_inverter(inverter_id)
        return self._pair(self._store.fresh_view(), inverter_id, batteries)

    def _pair(
        self, view: FreshView, inverter_id: int, batteries: tuple[int, ...]
    ) -> InverterBatteries | None:
        """The inverter's pair now: the last one built if its inputs are the same."""
        revisions = (view.revision(inverter_id), *map(view.revision, batteries))
        built = self._built.get(inverter_id)
        if (
            built is not None
            and built.revisions == revisions
            and view.arrived_fresh(built.oldest_arrival)
        ):
            return built.pair
        inverter_bounds = view.bounds(inverter_id, members.AC_POWER) or _NAN_BOUNDS
        pair = InverterBatteries.aggregate(
            inverter_id, inverter_bounds, [battery_state(view, b) for b in batteries]
        )
        oldest_arrival = min(
            [
                view.oldest_fresh_arrival(inverter_id, (members.AC_POWER,)),
                *(
                    view.oldest_fresh_arrival(b, BATTERY_STATE_METRICS)
                    for b in batteries
                ),
            ]
        )
        self._built[inverter_id] = _BuiltPair(revisions, oldest_arrival, pair)
        return pair


def ac_bounds(
    store: TelemetryStore, component_ids: Iterable[int]
) -> dict[int, PowerBounds]:
    """The fresh AC active-power bounds of each component that sends them."""
    found: dict[int, PowerBounds] = {}
    view = store.fresh_view()
    for component_id in sorted(component_ids):
        bounds = view.bounds(component_id, members.AC_POWER)
        if bounds is not None:
            found[component_id] = bounds
    return found


PV_SETTLE_S = 2.0
"""A PV inverter's production is judged against its limit only in readings
sampled this long after the limit was sent (an inverter ramps to a new limit)."""


def pv_inputs(
    store: TelemetryStore,
    working: frozenset[int],
    limits: Mapping[int, tuple[float, float]] | None = None,
) -> list[PvInverterInput]:
    """The working PV inverters with their bounds (others get no setpoint).

    `limits`: per inverter, the production limit in force (W, ≥ 0) and since
    when (wall-clock seconds); its latest reading sampled `PV_SETTLE_S` after
    that tells what it produces under the limit (`PvInverterInput.produced_w`).
    """
    view = store.fresh_view()
    inputs: list[PvInverterInput] = []
    for cid, bounds in ac_bounds(store, working).items():
        in_force = None if limits is None else limits.get(cid)
        reading = (
            None if in_force is None else view.sampled_value(cid, members.AC_POWER)
        )
        if (
            in_force is None
            or reading is None
            or reading[1] < in_force[1] + PV_SETTLE_S
        ):
            inputs.append(PvInverterInput(component_id=cid, bounds=bounds))
            continue
        inputs.append(
            PvInverterInput(
                component_id=cid,
                bounds=bounds,
                produced_w=-reading[0],
                limit_w=in_force[0],
            )
        )
    return inputs


def summed_ac_bounds(store: TelemetryStore, working: frozenset[int]) -> PowerBounds:
    """System bounds of a pool of AC components: the working members' bounds added."""
    return sum_bounds(list(ac_bounds(store, working).values()))


def ev_pool_bounds(store: TelemetryStore, working: frozenset[int]) -> PowerBounds:
    """System bounds of EV chargers: ranges added, the narrowest exclusion zone.

    See `sum_switchable_bounds`: the allocator switches chargers on one by one.
    """
    return sum_switchable_bounds(list(ac_bounds(store, working).values()))


def ev_connected(store: TelemetryStore, charger_id: int) -> bool:
    """Whether the cable is plugged (or locked) at both the EV and the station."""
    states = store.states(charger_id)
    return states is not None and ev_cable_connected(states.states)


def can_take_setpoint(store: TelemetryStore, component_id: int) -> bool:
    """Whether a command may go to the component at all: fresh and not in error.

    A charger without an EV is not *working*, yet it gets 0 W (spec §4); a silent
    or failed one gets nothing.
    """
    states = store.states(component_id)
    return (
        states is not None
        and store.is_fresh(component_id)
        and not states.errors
        and members.ERROR_STATE not in states.states
    )


def ev_charger_input(
    store: TelemetryStore,
    charger_id: int,
    *,
    working: bool,
    nominal_voltage_v: float,
    confirmed_limit_a: float | None = math.inf,
    view: FreshView | None = None,
    currents: TimedCurrents | None = None,
) -> EvChargerInput:
    """One charger's allocator input from its cable state, currents and bounds.

    Phases: those carrying current (a single-phase EV on a three-phase charger
    shows up on one phase); all three while the EV draws nothing. The charger
    converts watts over its three phases, so a one-phase EV is described with
    ``3 × V`` per ampere (`voltage_v`): the watts sent stay those the charger
    needs for that current, while the fuse is charged on the one phase only
    and the pool target at what it draws there (`phase_voltage_v`).
    Minimum and maximum current come from the charger's bounds (exclusion upper
    edge and inclusion upper bound); without bounds the charger is not used.

    A caller that reads many chargers at once passes its `view` of the store
    and each charger's `currents` it read in that view (`charger_currents`),
    so they are not looked up again.
    """
    if view is None:
        view = store.fresh_view()
    if currents is not None:
        l1, l2, l3 = currents.currents_a
    else:
        l1, l2, l3 = (_value(view, charger_id, metric) for metric in CURRENT_PHASES)
    drawing = tuple(
        phase
        for phase, current in zip(ALL_PHASES, (l1, l2, l3), strict=True)
        if current > DRAWING_THRESHOLD_A
    )
    phases = drawing or ALL_PHASES
    watts_per_amp = CHARGER_PHASES * nominal_voltage_v
    bounds = view.bounds(charger_id, members.AC_POWER)
    usable = bounds is not None and math.isfinite(bounds.inclusion_upper)
    min_current_a = max_current_a = 0.0
    if bounds is not None and usable:
        max_current_a = bounds.inclusion_upper / watts_per_amp
        min_current_a = (
            bounds.exclusion_upper / watts_per_amp
            if bounds.exclusion_upper > 0.0
            else DEFAULT_MIN_CURRENT_A
        )
    return EvChargerInput(
        component_id=charger_id,
        ev_connected=ev_connected(store, charger_id),
        working=working and usable,
        phases=phases,
        measured_currents_a=(l1, l2, l3),
        measured_power_w=_value(view, charger_id, members.AC_POWER),
        min_current_a=min_current_a,
        max_current_a=max_current_a,
        voltage_v=watts_per_amp / len(phases),
        phase_voltage_v=nominal_voltage_v,
        confirmed_limit_a=confirmed_limit_a,
    )


def grid_fuse_a(topology: Topology) -> float | None:
    """The rated fuse current at the grid connection point (`None`: unknown)."""
    if topology.grid_id is None:
        return None
    grid = topology.components.get(topology.grid_id)
    if not isinstance(grid, GridConnectionPoint) or grid.rated_fuse_current <= 0:
        return None
    return float(grid.rated_fuse_current)


class FormulaCurrents:
    """Per-phase current a formula of meters measures (one meter: ``#id``).

    Also as it was at earlier sample times: the formula's meters keep a short
    history (`TelemetryStore.keep_history`), so the reading can be paired with
    other components' readings of the same instant.
    """

    def __init__(self, text: str | None, store: TelemetryStore) -> None:
        """Compile the formula once; keep its meters' history."""
        self._formula = None if text is None else compile_formula(text)
        self._members = () if self._formula is None else self._formula.component_ids
        store.keep_history(self._members, CURRENT_PHASES)

    def may_measure(self, store: TelemetryStore) -> bool:
        """Whether the formula's meters measure the currents, known now or not.

        Not when there is no formula, or when a meter's phase currents are not
        part of what it sends (`TelemetryStore.sends`). A meter that sent
        nothing yet (silent since it was subscribed) may.
        """
        if self._formula is None:
            return False
        return all(
            store.sends(member, metric) is not False
            for member in self._members
            for metric in CURRENT_PHASES
        )

    def power(self, store: TelemetryStore) -> float:
        """The latest active power the formula measures (W; NaN: unknown)."""
        if self._formula is None:
            return math.nan
        values = store.fresh_values(members.AC_POWER, self._members)
        return _or_nan(self._formula.evaluate(values))

    def sample_times(self, store: TelemetryStore, since: float) -> list[float]:
        """The sample times of the meters' kept readings since `since`, newest first."""
        times: set[float] = set()
        for member in self._members:
            if (history := store.history(member)) is not None:
                times.update(at for at in history.times() if at >= since)
        return sorted(times, reverse=True)

    def at(self, store: TelemetryStore, sampled: float) -> TimedCurrents | None:
        """L1–L3 from the meters' readings sampled at `sampled` (`None`: unknown)."""
        if self._formula is None:
            return None
        values: dict[int, dict[Metric | int, float]] = {}
        for member in self._members:
            history = store.history(member)
            found = None if history is None else history.at(sampled)
            if found is not None:
                values[member] = found
        currents = [
            self._formula.evaluate(
                {cid: v[metric] for cid, v in values.items() if metric in v}
            )
            for metric in CURRENT_PHASES
        ]
        if any(current is None or math.isnan(current) for current in currents):
            return None
        l1, l2, l3 = (float(current or 0.0) for current in currents)
        return TimedCurrents((l1, l2, l3), sampled, sampled)

    def newest_paired(
        self, store: TelemetryStore, component_ids: Sequence[int], since: float
    ) -> tuple[int, TimedCurrents] | None:
        """The kept reading most of `component_ids` have one of the same instant.

        Of the readings sampled since `since`, the newest one that every fresh
        component has a kept reading of the same sample time for; failing that,
        the one with the fewest without (their count is returned with it).
        `None` without any kept reading.
        """
        kept = [
            store.history(cid) if store.is_fresh(cid) else None for cid in component_ids
        ]
        best: tuple[int, TimedCurrents] | None = None
        for sampled in self.sample_times(store, since):
            unpaired = sum(
                1 for history in kept if history is None or history.at(sampled) is None
            )
            if best is not None and unpaired >= best[0]:
                continue
            reading = self.at(store, sampled)
            if reading is not None:
                best = (unpaired, reading)
                if unpaired == 0:
                    break
        return best

    def measure(self, store: TelemetryStore) -> TimedCurrents:
        """Return the latest L1–L3 in amperes and when they were sampled.

        NaN where unknown (the allocator then backs off). A formula over several
        meters spans their sample times.
        """
        if self._formula is None:
            return _UNKNOWN_CURRENTS
        view = store.fresh_view()
        sampled: list[float] = []
        currents: list[float] = []
        for metric in CURRENT_PHASES:
            values = store.fresh_values(metric, self._members)
            currents.append(_or_nan(self._formula.evaluate(values)))
            sampled.extend(
                at for cid in values if (at := view.sampled_at(cid, metric)) is not None
            )
        if not sampled:
            return _UNKNOWN_CURRENTS
        l1, l2, l3 = currents
        return TimedCurrents((l1, l2, l3), min(sampled), max(sampled))


_UNKNOWN_CURRENTS = TimedCurrents((math.nan, math.nan, math.nan), math.nan, math.nan)


class GridCurrents(FormulaCurrents):
    """Per-phase current through the grid connection point, from the grid formula."""

    def __init__(self, topology: Topology, store: TelemetryStore) -> None:
        """Compile the topology's grid formula once; keep its meters' history."""
        super().__init__(topology.formulas.grid, store)


def charger_currents(view: FreshView, charger_id: int) -> TimedCurrents | None:
    """A charger's latest per-phase currents and their sample time (`None`: none).

    All three come in one message; the oldest of their sample times is kept in
    the unlikely case they came in different ones.
    """
    readings = [view.sampled_value(charger_id, metric) for metric in CURRENT_PHASES]
    known = [reading[1] for reading in readings if reading is not None]
    if not known:
        return None
    l1, l2, l3 = (math.nan if r is None else r[0] for r in readings)
    return TimedCurrents((l1, l2, l3), min(known), max(known))


def currents_near(
    store: TelemetryStore, component_id: int, sampled: float, since: float
) -> TimedCurrents | None:
    """A fresh component's kept currents sampled at `sampled`, or nearest before it.

    Without a kept reading at or before `sampled` (since `since`), the oldest
    one after it. `None` for a component that is not fresh or kept nothing.
    """
    history = store.history(component_id)
    if history is None or not store.is_fresh(component_id):
        return None
    found = history.at(sampled) if sampled >= since else None
    if found is not None:  # the usual case: no need to sort what is kept
        l1, l2, l3 = (found.get(metric, math.nan) for metric in CURRENT_PHASES)
        return TimedCurrents((l1, l2, l3), sampled, sampled)
    times = [at for at in history.times() if at >= since]  # newest first
    if not times:
        return None
    chosen = next((at for at in times if at <= sampled), times[-1])
    values = history.at(chosen) or {}
    l1, l2, l3 = (values.get(metric, math.nan) for metric in CURRENT_PHASES)
    return TimedCurrents((l1, l2, l3), chosen, chosen)


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value
