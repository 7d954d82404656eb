"""The whole simulated microgrid: components wired as a tree, stepped on one clock.

The model is pure state plus `advance_to(sim_time)`; it knows nothing about gRPC.
The server validates requests with `setpoint_bounds` and applies them with the
`set_*` methods; telemetry reads the per-component state back out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
import enum
import itertools
import math

from ...engine.bounds import PowerBounds, intersect_pair, sum_bounds
from ..scenario import ComponentSpec, Kind, Scenario
from ..traffic import EvArrival
from .ac import PhasePowers
from .battery import BatteryState
from .energy import EnergyCounter
from .ev_charger import (
    CHANGEOVER_S,
    EvChargerState,
    EvSession,
    EvSpec,
    SessionRecord,
)
from .inverter import pv_output_w, share_among_batteries
from .overload import OverloadRecord

LOAD_POWER_FACTOR = 0.95
"""Power factor of the loads behind a meter (households, offices: inductive)."""
LOAD_REACTIVE_RATIO = math.tan(math.acos(LOAD_POWER_FACTOR))
"""Reactive per active power of a load (≈ 0.33 var per W)."""

CONTROLLABLE_KINDS = frozenset(
    {Kind.BATTERY_INVERTER, Kind.PV_INVERTER, Kind.EV_CHARGER}
)
"""Kinds that accept power setpoints (a battery is steered through its inverter)."""

AC_KINDS = frozenset(
    {Kind.GRID, Kind.METER, Kind.BATTERY_INVERTER, Kind.PV_INVERTER, Kind.EV_CHARGER}
)
"""Kinds that measure AC power (all but batteries, which report DC power)."""

SESSION_HISTORY = 10_000
"""Finished EV sessions kept for inspection (the newest): a simulator runs for days."""


type Piece = tuple[float, PhasePowers]
"""Until when (simulated seconds) a component carried these phase powers."""


class Operation(enum.Enum):
    """What the start / standby / stop RPCs switch between."""

    RUNNING = "running"
    STANDBY = "standby"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class Expiring[T]:
    """A value (setpoint, bounds) that holds until `expires_at_s` (simulated)."""

    value: T
    expires_at_s: float


@dataclass(slots=True)
class ComponentRuntime:
    """Everything that changes about one component while the simulation runs."""

    spec: ComponentSpec
    operation: Operation = Operation.RUNNING
    in_error: bool = False
    active_setpoint: Expiring[float] | None = None
    reactive_setpoint: Expiring[float] | None = None
    augmentations: list[Expiring[PowerBounds]] = field(default_factory=list)
    phases: PhasePowers = field(default_factory=PhasePowers)
    reactive_power_w: float = 0.0
    energy: EnergyCounter = field(default_factory=EnergyCounter)
    battery: BatteryState | None = None
    ev_charger: EvChargerState | None = None

    @property
    def active_power_w(self) -> float:
        """AC active power (DC power for a battery), passive sign convention."""
        if self.battery is not None:
            return self.battery.dc_power_w
        return self.phases.total

    @property
    def producing_power(self) -> bool:
        """Whether the component may carry power now (running and healthy)."""
        return self.operation is Operation.RUNNING and not self.in_error


class MicrogridModel:
    """The physics of a scenario, advanced in steps of simulated time."""

    def __init__(self, scenario: Scenario) -> None:
        """Build every component in its initial state at simulated time 0."""
        self.scenario = scenario
        self.now_s = 0.0
        self.components: dict[int, ComponentRuntime] = {
            spec.id: _new_runtime(spec) for spec in scenario.components
        }
        self._children: dict[int, list[int]] = {}
        self._bottom_up: list[int] = []
        self._steered_with: dict[int, list[ComponentRuntime]] = {}
        """Per component, the runtimes an event of its step may concern."""
        self._steered_batteries: set[int] = set()
        self._index()
        self._upcoming = scenario.arrivals()
        """Listed and generated EV arrivals not yet due, earliest first."""
        self._next_arrival: EvArrival | None = next(self._upcoming, None)
        self._pending_arrivals: dict[int, deque[EvArrival]] = {}
        """Per charger, the EVs due within the current advance or waiting."""
        self.finished_sessions: deque[SessionRecord] = deque(maxlen=SESSION_HISTORY)
        """The newest finished EV sessions, oldest first."""
        self.overloads: dict[int, OverloadRecord] = {}
        """Per rated meter (and the grid connection point): what it carried."""
        self._add_overload_records()
        self.bounds_at_last_advance: dict[int, PowerBounds] = {}
        """Each battery inverter's setpoint bounds when the last advance began."""
        self._take_arrivals_until(0.0)
        for runtime in self.components.values():
            self._apply_due_events(runtime, 0.0)
        self._run(0.0, 0.0)

    def follow_scenario(self, scenario: Scenario) -> None:
        """Take components added to or removed from the scenario, live.

        A component that stays keeps its state (SoC, EV session, energy
        counters); a new one starts in its initial state at the current
        simulated time; a removed one is forgotten, with the EVs due at it.
        """
        self.scenario = scenario
        old = self.components
        self.components = {
            spec.id: runtime
            if (runtime := old.get(spec.id)) is not None and runtime.spec == spec
            else _new_runtime(spec)
            for spec in scenario.components
        }
        for gone in old.keys() - self.components.keys():
            self._pending_arrivals.pop(gone, None)
            self.overloads.pop(gone, None)
            self.bounds_at_last_advance.pop(gone, None)
        self._index()
        self._add_overload_records()
        for component_id, runtime in self.components.items():
            if component_id not in old:
                self._apply_due_events(runtime, self.now_s)
        self._run(self.now_s, self.now_s)

    def _index(self) -> None:
        """Work out the wiring the steps follow (at start and after a change)."""
        scenario = self.scenario
        self._children = {
            c.id: [k.id for k in scenario.children(c.id)] for c in scenario.components
        }
        self._bottom_up = list(reversed(list(self._top_down())))
        self._steered_with = {
            cid: [runtime, *self._batteries_under(runtime)]
            for cid, runtime in self.components.items()
        }
        self._steered_batteries = {
            member.spec.id
            for members in self._steered_with.values()
            for member in members[1:]
        }

    def _add_overload_records(self) -> None:
        """Count overloads of every rated meter and grid connection point."""
        for spec in self.scenario.components:
            if spec.kind in (Kind.GRID, Kind.METER) and spec.fuse_current_a > 0:
                self.overloads.setdefault(
                    spec.id, OverloadRecord(float(spec.fuse_current_a))
                )

    # --- queries -------------------------------------------------------------

    def component(self, component_id: int) -> ComponentRuntime:
        """The runtime state of one component (KeyError if unknown)."""
        return self.components[component_id]

    def children(self, component_id: int) -> list[int]:
        """Ids of the components directly behind `component_id`."""
        return self._children[component_id]

    def _batteries_under(self, runtime: ComponentRuntime) -> list[ComponentRuntime]:
        if runtime.spec.kind is not Kind.BATTERY_INVERTER:
            return []
        return [
            child
            for cid in self._children[runtime.spec.id]
            if (child := self.components[cid]).battery is not None
        ]

    def batteries_of(self, inverter_id: int) -> list[BatteryState]:
        """The batteries behind a battery inverter."""
        return [
            battery
            for member in self._steered_with[inverter_id][1:]
            if (battery := member.battery) is not None
        ]

    def time_of_day_s(self, at_s: float | None = None) -> float:
        """Seconds since midnight at simulated time `at_s` (default: now).

        Drives the PV daylight curve.
        """
        at = self.now_s if at_s is None else at_s
        return (self.scenario.start_time_of_day_s + at) % 86400.0

    def reported_bounds(self, component_id: int) -> PowerBounds | None:
        """The power bounds a component reports itself, narrowed by augmentations.

        Inverters and EV chargers report AC active-power bounds, batteries DC-power
        bounds; meters and the grid have none (`None`).
        """
        runtime = self.components[component_id]
        spec = runtime.spec
        own: PowerBounds
        match spec.kind:
            case Kind.BATTERY_INVERTER if spec.inverter is not None:
                own = spec.inverter.rated_bounds()
            case Kind.PV_INVERTER if spec.inverter is not None:
                own = PowerBounds(-spec.inverter.rated_power_w, 0.0)
            case Kind.BATTERY if runtime.battery is not None:
                own = runtime.battery.power_bounds()
            case Kind.EV_CHARGER if runtime.ev_charger is not None:
                own = runtime.ev_charger.params.power_bounds()
            case _:
                return None
        for augmentation in runtime.augmentations:
            own = intersect_pair(own, augmentation.value)
        return own

    def setpoint_bounds(self, component_id: int) -> PowerBounds | None:
        """The bounds a setpoint for this component must respect (`None`: not settable).

        For a battery inverter, the inverter's own bounds intersected with the sum
        of its batteries' bounds: a client sees both and must respect both.
        """
        kind = self.components[component_id].spec.kind
        if kind not in CONTROLLABLE_KINDS:
            return None
        own = self.reported_bounds(component_id)
        assert own is not None
        if kind is not Kind.BATTERY_INVERTER:
            return own
        batteries = [
            bounds
            for cid in self._children[component_id]
            if (bounds := self.reported_bounds(cid)) is not None
        ]
        return intersect_pair(sum_bounds(batteries), own)

    # --- commands --------------------------------------------------------------

    def set_active_power(
        self,
        component_id: int,
        power_w: float,
        lifetime_s: float,
        at_s: float | None = None,
    ) -> None:
        """Hold `power_w` from now on until `lifetime_s` after `at_s` (default: now).

        When the lifetime lapses the component falls back to its default (0 W,
        or unlimited production for a PV inverter). A component in standby wakes up.
        """
        runtime = self.components[component_id]
        start = self.now_s if at_s is None else at_s
        runtime.active_setpoint = Expiring(power_w, start + lifetime_s)
        if runtime.operation is Operation.STANDBY:
            runtime.operation = Operation.RUNNING

    def set_reactive_power(
        self,
        component_id: int,
        power_var: float,
        lifetime_s: float,
        at_s: float | None = None,
    ) -> None:
        """Hold a reactive power (var) until the lifetime lapses."""
        runtime = self.components[component_id]
        start = self.now_s if at_s is None else at_s
        runtime.reactive_setpoint = Expiring(power_var, start + lifetime_s)

    def augment_bounds(
        self,
        component_id: int,
        bounds: PowerBounds,
        lifetime_s: float,
        at_s: float | None = None,
    ) -> None:
        """Narrow a component's bounds to `bounds` for `lifetime_s` seconds."""
        start = self.now_s if at_s is None else at_s
        self.components[component_id].augmentations.append(
            Expiring(bounds, start + lifetime_s)
        )

    def set_operation(self, component_id: int, operation: Operation) -> None:
        """Start, put in standby or stop a component (standby and off carry 0 W)."""
        runtime = self.components[component_id]
        runtime.operation = operation
        if operation is not Operation.RUNNING:
            runtime.active_setpoint = None
            runtime.reactive_setpoint = None

    def set_error(self, component_id: int, in_error: bool) -> None:
        """Put a component into (or out of) its ERROR state; in error it carries 0 W."""
        self.components[component_id].in_error = in_error

    def plug_ev(
        self,
        charger_id: int,
        ev: EvSpec | None = None,
        departs_at_s: float | None = None,
    ) -> None:
        """Connect an EV to a charger now (it locks `LOCK_DELAY_S` later)."""
        charger = self._charger(charger_id)
        self._end_session(charger_id, charger, self.now_s)
        charger.session = EvSession(ev or EvSpec(), self.now_s, departs_at_s)

    def unplug_ev(self, charger_id: int) -> None:
        """Disconnect the EV at a charger (no-op if none is connected)."""
        self._end_session(charger_id, self._charger(charger_id), self.now_s)

    def _charger(self, charger_id: int) -> EvChargerState:
        charger = self.components[charger_id].ev_charger
        if charger is None:
            raise ValueError(f"component {charger_id} is not an EV charger")
        return charger

    def _end_session(
        self, charger_id: int, charger: EvChargerState, at_s: float
    ) -> None:
        """The EV at a charger leaves at `at_s`: record its session."""
        session = charger.session
        if session is None:
            return
        self.finished_sessions.append(
            SessionRecord(
                charger_id=charger_id,
                plugged_at_s=session.plugged_at_s,
                unplugged_at_s=at_s,
                charged_wh=session.charged_wh,
                soc_at_arrival_pct=session.ev.soc_pct,
                soc_at_departure_pct=session.soc_pct,
                capacity_wh=session.ev.capacity_wh,
            )
        )
        charger.session = None
        charger.current_a = 0.0
        charger.unplugged_at_s = at_s

    def _take_arrivals_until(self, end_s: float) -> None:
        """Queue the EVs arriving by `end_s` at their chargers."""
        while (arrival := self._next_arrival) is not None and (
            arrival.arrive_at_s <= end_s
        ):
            if arrival.charger_id in self.components:  # not a charger removed live
                self._pending_arrivals.setdefault(arrival.charger_id, deque()).append(
                    arrival
                )
            self._next_arrival = next(self._upcoming, None)

    # --- time ------------------------------------------------------------------

    def advance_to(self, sim_time_s: float) -> None:
        """Run the physics up to `sim_time_s`, stopping exactly at every event.

        Events (a setpoint or bounds lapsing, an EV arriving, locking its cable or
        leaving) split the step, so the result does not depend on how often the
        server ticks. They split only the step of the component they concern (a
        battery inverter together with its batteries): components are independent
        but for the meters, which add up what their children carried piece by
        piece. An advance therefore costs one step per component plus one per
        event — 100 setpoints lapsing within one tick do not step the whole
        microgrid 100 times.
        """
        if sim_time_s > self.now_s:
            self._run(self.now_s, sim_time_s)
            self.now_s = sim_time_s

    def _run(self, start_s: float, end_s: float) -> None:
        """Step every component from `start_s` to `end_s`, leaves first."""
        self._take_arrivals_until(end_s)
        pieces: dict[int, list[Piece]] = {}
        for component_id in self._bottom_up:
            runtime = self.components[component_id]
            kind = runtime.spec.kind
            if kind is Kind.BATTERY:
                pass  # carried by its inverter
            elif kind is Kind.METER or kind is Kind.GRID:
                pieces[component_id] = self._sum_children(
                    runtime, start_s, end_s, pieces
                )
                if (record := self.overloads.get(component_id)) is not None:
                    _account(record, start_s, pieces[component_id])
            else:
                pieces[component_id] = self._run_steered(runtime, start_s, end_s)
            runtime.reactive_power_w = self._reactive_power(runtime, end_s)
            if component_id not in self._steered_batteries:
                self._apply_due_events(runtime, end_s)

    def _run_steered(
        self, runtime: ComponentRuntime, start_s: float, end_s: float
    ) -> list[Piece]:
        """Step an inverter or EV charger, split at its own events; its pieces.

        The first piece of a battery inverter records the setpoint bounds it
        started from (`bounds_at_last_advance`): what clients last saw.
        """
        pieces: list[Piece] = []
        at_s = start_s
        while True:
            until_s = self._next_event_s(runtime, at_s, end_s)
            dt_s = until_s - at_s
            match runtime.spec.kind:
                case Kind.BATTERY_INVERTER:
                    bounds = self._step_battery_inverter(runtime, dt_s)
                    if at_s == start_s:
                        self.bounds_at_last_advance[runtime.spec.id] = bounds
                case Kind.PV_INVERTER:
                    self._step_pv_inverter(runtime, at_s)
                case Kind.EV_CHARGER:
                    self._step_ev_charger(runtime, at_s, dt_s)
            runtime.energy.add(runtime.phases.total, dt_s)
            pieces.append((until_s, runtime.phases))
            if until_s >= end_s:
                return pieces
            at_s = until_s
            self._apply_due_events(runtime, at_s)

    def _sum_children(
        self,
        runtime: ComponentRuntime,
        start_s: float,
        end_s: float,
        pieces: dict[int, list[Piece]],
    ) -> list[Piece]:
        """A meter's power: its base load plus its children's, piece by piece."""
        spec = runtime.spec
        base = PhasePowers.split(spec.base_load_w, spec.base_load_split)
        children = [
            pieces.get(child) or [(end_s, self.components[child].phases)]
            for child in self._children[spec.id]
        ]
        final = base
        for child_pieces in children:
            final = final + child_pieces[-1][1]
        own: list[Piece] = []
        at_s = start_s
        split = [child_pieces for child_pieces in children if len(child_pieces) > 1]
        if split:
            changes = sorted(
                (
                    (earlier[0], later[1] - earlier[1])
                    for child_pieces in split
                    for earlier, later in itertools.pairwise(child_pieces)
                ),
                key=lambda change: change[0],
            )
            current = base
            for child_pieces in children:
                current = current + child_pieces[0][1]
            for change_s, delta in changes:
                if change_s > at_s:
                    own.append((change_s, current))
                    runtime.energy.add(current.total, change_s - at_s)
                    at_s = change_s
                current = current + delta
        own.append((end_s, final))
        runtime.energy.add(final.total, end_s - at_s)
        runtime.phases = final
        return own

    def _reactive_power(self, runtime: ComponentRuntime, end_s: float) -> float:
        """Reactive power at the end of a step: the setpoint, or the children's sum.

        A meter without children measures a load: its reactive power follows the
        load's power factor (inductive, as motors and power supplies are).
        """
        setpoint = runtime.reactive_setpoint
        if (
            setpoint is not None
            and setpoint.expires_at_s >= end_s
            and runtime.producing_power
        ):
            return setpoint.value
        if runtime.spec.kind not in (Kind.METER, Kind.GRID):
            return 0.0
        children = self._children[runtime.spec.id]
        if not children and runtime.spec.kind is Kind.METER:  # a load's own meter
            return runtime.active_power_w * LOAD_REACTIVE_RATIO
        return sum(self.components[c].reactive_power_w for c in children)

    def _next_event_s(
        self, runtime: ComponentRuntime, after_s: float, before_s: float
    ) -> float:
        """The first time after `after_s` something changes what a component carries.

        A setpoint or bounds (its own or its batteries') lapsing, its EV locking
        the cable or leaving, the next EV arriving; `before_s` if none comes first.
        """
        until_s = before_s
        for member in self._steered_with[runtime.spec.id]:
            setpoint = member.active_setpoint
            if setpoint is not None and after_s < setpoint.expires_at_s < until_s:
                until_s = setpoint.expires_at_s
            for augmentation in member.augmentations:
                if after_s < augmentation.expires_at_s < until_s:
                    until_s = augmentation.expires_at_s
        charger = runtime.ev_charger
        if charger is None:
            return until_s
        times: list[float] = []
        if (session := charger.session) is not None:
            times.append(session.locks_at_s)
            if session.departs_at_s is not None:
                times.append(session.departs_at_s)
        elif arrivals := self._pending_arrivals.get(runtime.spec.id):
            times.append(_plugs_in_at(arrivals[0], charger))
        return min([until_s, *(t for t in times if after_s < t)])

    def _apply_due_events(self, runtime: ComponentRuntime, now_s: float) -> None:
        """Apply what is due at `now_s` to a component (and its batteries)."""
        for member in self._steered_with[runtime.spec.id]:
            active = member.active_setpoint
            if active is not None and active.expires_at_s <= now_s:
                member.active_setpoint = None
            reactive = member.reactive_setpoint
            if reactive is not None and reactive.expires_at_s <= now_s:
                member.reactive_setpoint = None
            if member.augmentations:
                member.augmentations = [
                    a for a in member.augmentations if a.expires_at_s > now_s
                ]
        charger = runtime.ev_charger
        if charger is None:
            return
        session = charger.session
        if (
            session is not None
            and session.departs_at_s is not None
            and session.departs_at_s <= now_s
        ):
            self._end_session(runtime.spec.id, charger, session.departs_at_s)
        arrivals = self._pending_arrivals.get(runtime.spec.id)
        # An EV arriving while another is plugged in waits for it to leave (a
        # queue); it plugs in `CHANGEOVER_S` after, and gives up at its own
        # departure.
        while arrivals and charger.session is None:
            arrival = arrivals[0]
            plugs_at = _plugs_in_at(arrival, charger)
            if arrival.depart_at_s is not None and arrival.depart_at_s <= plugs_at:
                arrivals.popleft()
                continue
            if plugs_at > now_s:
                break
            arrivals.popleft()
            charger.session = EvSession(arrival.ev, plugs_at, arrival.depart_at_s)

    def _step_battery_inverter(
        self, runtime: ComponentRuntime, dt_s: float
    ) -> PowerBounds:
        """Carry the setpoint (clamped to the bounds) for `dt_s`; return the bounds."""
        batteries = self.batteries_of(runtime.spec.id)
        target = 0.0
        if runtime.producing_power and runtime.active_setpoint is not None:
            target = runtime.active_setpoint.value
        bounds = self.setpoint_bounds(runtime.spec.id)
        assert bounds is not None
        power = (
            bounds.clamp(target)
            if bounds.inclusion_lower <= bounds.inclusion_upper
            else 0.0
        )
        for battery, share in zip(
            batteries, share_among_batteries(power, batteries), strict=True
        ):
            battery.carry(share, dt_s)
        runtime.phases = _inverter_phases(runtime, power)
        return bounds

    def _step_pv_inverter(self, runtime: ComponentRuntime, at_s: float) -> None:
        if not runtime.producing_power:
            runtime.phases = PhasePowers()
            return
        limit = runtime.active_setpoint.value if runtime.active_setpoint else None
        power = pv_output_w(runtime.spec.pv_peak_w, self.time_of_day_s(at_s), limit)
        runtime.phases = _inverter_phases(runtime, power)

    def _step_ev_charger(
        self, runtime: ComponentRuntime, at_s: float, dt_s: float
    ) -> None:
        charger = runtime.ev_charger
        assert charger is not None
        setpoint = 0.0
        if runtime.producing_power and runtime.active_setpoint is not None:
            setpoint = runtime.active_setpoint.value
        charger.charge(setpoint, at_s, dt_s)
        runtime.phases = charger.phase_powers()

    def _top_down(self) -> Iterator[int]:
        roots = [c.id for c in self.scenario.components if c.parent is None]
        queue = list(roots)
        while queue:
            component_id = queue.pop(0)
            yield component_id
            queue.extend(self._children[component_id])


def _new_runtime(spec: ComponentSpec) -> ComponentRuntime:
    """A component in its initial state (a battery's SoC, an idle charger)."""
    runtime = ComponentRuntime(spec)
    if spec.kind is Kind.BATTERY and spec.battery is not None:
        runtime.battery = BatteryState(spec.battery, soc_pct=spec.soc_pct)
    if spec.kind is Kind.EV_CHARGER and spec.ev_charger is not None:
        runtime.ev_charger = EvChargerState(spec.ev_charger)
    return runtime


def _plugs_in_at(arrival: EvArrival, charger: EvChargerState) -> float:
    """When a scheduled EV plugs in: on arrival, or a changeover after the last left."""
    return max(arrival.arrive_at_s, charger.unplugged_at_s + CHANGEOVER_S)


def _account(record: OverloadRecord, start_s: float, pieces: list[Piece]) -> None:
    """Feed a meter's pieces of one step to its overload record."""
    at_s = start_s
    for until_s, phases in pieces:
        record.carry(phases, until_s - at_s)
        at_s = until_s


def _inverter_phases(runtime: ComponentRuntime, power_w: float) -> PhasePowers:
    """An inverter's power over L1–L3 (three-phase unless its spec says a line)."""
    inverter = runtime.spec.inverter
    return (
        PhasePowers.balanced(power_w)
        if inverter is None
        else inverter.phase_powers(power_w)
    )
