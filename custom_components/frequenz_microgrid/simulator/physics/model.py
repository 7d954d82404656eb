"""The whole simulated microgrid: components wired as a tree, stepped on one clock.

The model is pure state plus `advance_to(sim_time)`; it knows nothing about gRPC.
The server validates requests with `setpoint_bounds` and applies them with the
`set_*` methods; telemetry reads the per-component state back out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
import enum

from ...engine.bounds import PowerBounds, intersect_pair, sum_bounds
from ..scenario import ComponentSpec, EvArrival, Kind, Scenario
from .ac import PhasePowers
from .battery import BatteryState
from .energy import EnergyCounter
from .ev_charger import LOCK_DELAY_S, EvChargerState, EvSession, EvSpec
from .inverter import pv_output_w, share_among_batteries

CONTROLLABLE_KINDS = frozenset(
    {Kind.BATTERY_INVERTER, Kind.PV_INVERTER, Kind.EV_CHARGER}
)
"""Kinds that accept power setpoints (a battery is steered through its inverter)."""

AC_KINDS = frozenset(
    {Kind.GRID, Kind.METER, Kind.BATTERY_INVERTER, Kind.PV_INVERTER, Kind.EV_CHARGER}
)
"""Kinds that measure AC power (all but batteries, which report DC power)."""


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
        self.components: dict[int, ComponentRuntime] = {}
        for spec in scenario.components:
            runtime = ComponentRuntime(spec)
            if spec.kind is Kind.BATTERY and spec.battery is not None:
                runtime.battery = BatteryState(spec.battery, soc_pct=spec.soc_pct)
            if spec.kind is Kind.EV_CHARGER and spec.ev_charger is not None:
                runtime.ev_charger = EvChargerState(spec.ev_charger)
            self.components[spec.id] = runtime
        self._children = {
            c.id: [k.id for k in scenario.children(c.id)] for c in scenario.components
        }
        self._bottom_up = list(reversed(list(self._top_down())))
        self._pending_arrivals: list[EvArrival] = sorted(
            scenario.ev_arrivals, key=lambda a: a.arrive_at_s
        )
        self._apply_due_events()
        self._step(0.0)

    # --- queries -------------------------------------------------------------

    def component(self, component_id: int) -> ComponentRuntime:
        """The runtime state of one component (KeyError if unknown)."""
        return self.components[component_id]

    def children(self, component_id: int) -> list[int]:
        """Ids of the components directly behind `component_id`."""
        return self._children[component_id]

    def batteries_of(self, inverter_id: int) -> list[BatteryState]:
        """The batteries behind a battery inverter."""
        return [
            b
            for cid in self._children[inverter_id]
            if (b := self.components[cid].battery) is not None
        ]

    def time_of_day_s(self) -> float:
        """Simulated seconds since midnight (drives the PV daylight curve)."""
        return (self.scenario.start_time_of_day_s + self.now_s) % 86400.0

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
        charger = self.components[charger_id].ev_charger
        if charger is None:
            raise ValueError(f"component {charger_id} is not an EV charger")
        charger.session = EvSession(ev or EvSpec(), self.now_s, departs_at_s)

    def unplug_ev(self, charger_id: int) -> None:
        """Disconnect the EV at a charger (no-op if none is connected)."""
        charger = self.components[charger_id].ev_charger
        if charger is None:
            raise ValueError(f"component {charger_id} is not an EV charger")
        charger.session = None
        charger.current_a = 0.0

    # --- time ------------------------------------------------------------------

    def advance_to(self, sim_time_s: float) -> None:
        """Run the physics up to `sim_time_s`, stopping exactly at every event.

        Events (a setpoint lapsing, an EV arriving or locking its cable) split the
        step, so the result does not depend on how often the server ticks.
        """
        while self.now_s < sim_time_s:
            upcoming = [t for t in self._event_times() if self.now_s < t < sim_time_s]
            until = min(upcoming, default=sim_time_s)
            self._step(until - self.now_s)
            self.now_s = until
            self._apply_due_events()

    def _event_times(self) -> Iterator[float]:
        for runtime in self.components.values():
            if runtime.active_setpoint is not None:
                yield runtime.active_setpoint.expires_at_s
            if runtime.reactive_setpoint is not None:
                yield runtime.reactive_setpoint.expires_at_s
            for augmentation in runtime.augmentations:
                yield augmentation.expires_at_s
            if (
                runtime.ev_charger is not None
                and runtime.ev_charger.session is not None
            ):
                session = runtime.ev_charger.session
                yield session.plugged_at_s + LOCK_DELAY_S
                if session.departs_at_s is not None:
                    yield session.departs_at_s
        if self._pending_arrivals:
            yield self._pending_arrivals[0].arrive_at_s

    def _apply_due_events(self) -> None:
        now = self.now_s
        for runtime in self.components.values():
            if runtime.active_setpoint and runtime.active_setpoint.expires_at_s <= now:
                runtime.active_setpoint = None
            if (
                runtime.reactive_setpoint
                and runtime.reactive_setpoint.expires_at_s <= now
            ):
                runtime.reactive_setpoint = None
            if runtime.augmentations:
                runtime.augmentations = [
                    a for a in runtime.augmentations if a.expires_at_s > now
                ]
            charger = runtime.ev_charger
            if (
                charger is not None
                and charger.session is not None
                and charger.session.departs_at_s is not None
                and charger.session.departs_at_s <= now
            ):
                self.unplug_ev(runtime.spec.id)
        while self._pending_arrivals and self._pending_arrivals[0].arrive_at_s <= now:
            arrival = self._pending_arrivals.pop(0)
            charger = self.components[arrival.charger_id].ev_charger
            if charger is not None and charger.session is None:
                self.plug_ev(arrival.charger_id, arrival.ev, arrival.depart_at_s)

    def _step(self, dt_s: float) -> None:
        """Hold every component's power for `dt_s` seconds, leaves first."""
        for component_id in self._bottom_up:
            runtime = self.components[component_id]
            match runtime.spec.kind:
                case Kind.BATTERY_INVERTER:
                    self._step_battery_inverter(runtime, dt_s)
                case Kind.PV_INVERTER:
                    self._step_pv_inverter(runtime)
                case Kind.EV_CHARGER:
                    self._step_ev_charger(runtime, dt_s)
                case Kind.METER | Kind.GRID:
                    self._step_meter(runtime)
                case Kind.BATTERY:
                    pass  # carried by its inverter
            runtime.reactive_power_w = (
                runtime.reactive_setpoint.value
                if runtime.reactive_setpoint is not None and runtime.producing_power
                else self._children_reactive(runtime)
            )
            if runtime.spec.kind in AC_KINDS:
                runtime.energy.add(runtime.phases.total, dt_s)

    def _children_reactive(self, runtime: ComponentRuntime) -> float:
        if runtime.spec.kind not in (Kind.METER, Kind.GRID):
            return 0.0
        return sum(
            self.components[c].reactive_power_w for c in self._children[runtime.spec.id]
        )

    def _step_battery_inverter(self, runtime: ComponentRuntime, dt_s: float) -> None:
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
        runtime.phases = PhasePowers.balanced(power)

    def _step_pv_inverter(self, runtime: ComponentRuntime) -> None:
        if not runtime.producing_power:
            runtime.phases = PhasePowers()
            return
        limit = runtime.active_setpoint.value if runtime.active_setpoint else None
        power = pv_output_w(runtime.spec.pv_peak_w, self.time_of_day_s(), limit)
        runtime.phases = PhasePowers.balanced(power)

    def _step_ev_charger(self, runtime: ComponentRuntime, dt_s: float) -> None:
        charger = runtime.ev_charger
        assert charger is not None
        setpoint = 0.0
        if runtime.producing_power and runtime.active_setpoint is not None:
            setpoint = runtime.active_setpoint.value
        charger.charge(setpoint, self.now_s, dt_s)
        runtime.phases = charger.phase_powers()

    def _step_meter(self, runtime: ComponentRuntime) -> None:
        spec = runtime.spec
        total = PhasePowers.split(spec.base_load_w, spec.base_load_split)
        for child in self._children[spec.id]:
            total = total + self.components[child].phases
        runtime.phases = total

    def _top_down(self) -> Iterator[int]:
        roots = [c.id for c in self.scenario.components if c.parent is None]
        queue = list(roots)
        while queue:
            component_id = queue.pop(0)
            yield component_id
            queue.extend(self._children[component_id])
