"""Component health (spec §3): which components may receive power right now.

Two things decide it, as in the SDK's component status trackers:

- **Telemetry**: the component's latest state sample (state codes, errors,
  warnings), its age, and for batteries the capacity and the inverter in front of
  them. Bad or old telemetry makes a component `NOT_WORKING`.
- **Set-power results**: a failed command blocks the component for a while (1 s,
  doubling up to 30 s while it keeps failing); a blocked component with good
  telemetry is `UNCERTAIN`. A success unblocks it.

Time is injected: every method takes ``now`` (float seconds) and readings carry
``at`` on the same clock, so the tracker is deterministic and testable without
sleeping. Wall-clock POSIX seconds (``time.time()``) let a caller pass sample
timestamps straight in; that is what `HealthTracker.observe_data` does.

Deliberate differences from the SDK (1.0.0rc2214), all from the spec: a success
unblocks EV chargers and PV inverters too (the SDK only lets their block run out),
and an EV charger with errors in its error list is not working.
"""

from __future__ import annotations

from collections.abc import Iterable, Set as AbstractSet
from dataclasses import dataclass
import enum
import math
from typing import Final

from frequenz.client.microgrid.component import (
    ComponentDataSamples,
    ComponentErrorCode,
    ComponentStateCode,
    ComponentStateSample,
)
from frequenz.client.microgrid.metrics import AggregatedMetricValue, Metric

from . import members
from .results import PartialFailure, Result, Success

MAX_DATA_AGE = 10.0
"""Seconds after which a component's data is too old to act on."""
MIN_BLOCK = 1.0
"""Seconds a component is blocked after its first failed command."""
MAX_BLOCK = 30.0
"""Longest block: repeated failures double the block up to this."""
OUT_OF_SERVICE: Final = "outside its operational lifetime"
"""Why a component the inventory lists as not (or no longer) in operation gets
nothing: it is never steered, whatever its telemetry says."""
NO_EV_CONNECTED: Final = "no EV connected"
"""Why an otherwise fine EV charger gets no power: it is idle, not broken."""

StateCode = ComponentStateCode | int
"""A state code as the client gives it (an `int` when the client does not know it)."""
ErrorCode = ComponentErrorCode | int
"""An error or warning code as the client gives it."""


class ComponentHealth(enum.Enum):
    """Whether a component may receive power."""

    WORKING = "working"
    """Good, fresh telemetry and no recent failed command."""
    UNCERTAIN = "uncertain"
    """Good telemetry, but a recent command failed: use only if nothing works."""
    NOT_WORKING = "not_working"
    """Bad, missing or old telemetry: never send power."""


_BATTERY_READY = frozenset(
    {
        ComponentStateCode.READY,
        ComponentStateCode.CHARGING,
        ComponentStateCode.DISCHARGING,
    }
)
_INVERTER_READY = _BATTERY_READY | {ComponentStateCode.STANDBY}
_EV_CHARGER_READY = _BATTERY_READY
_PV_INVERTER_READY = _INVERTER_READY
_EV_PLUGGED_AT_EV = frozenset(
    {
        ComponentStateCode.EV_CHARGING_CABLE_PLUGGED_AT_EV,
        ComponentStateCode.EV_CHARGING_CABLE_LOCKED_AT_EV,
    }
)
_EV_PLUGGED_AT_STATION = frozenset(
    {
        ComponentStateCode.EV_CHARGING_CABLE_PLUGGED_AT_STATION,
        ComponentStateCode.EV_CHARGING_CABLE_LOCKED_AT_STATION,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """The latest telemetry of one component that its health depends on."""

    at: float
    """When the data was sampled, on the tracker's clock."""
    states: frozenset[StateCode] = frozenset()
    errors: frozenset[ErrorCode] = frozenset()
    warnings: frozenset[ErrorCode] = frozenset()
    missing: str | None = None
    """What the component's fresh data lacks that steering needs (e.g. a
    battery's SoC sent as NaN); `None`: nothing."""

    @classmethod
    def from_sample(
        cls, sample: ComponentStateSample, *, at: float | None = None
    ) -> Reading:
        """Build a reading from the client's state sample (at its POSIX time)."""
        return cls(
            at=sample.sampled_at.timestamp() if at is None else at,
            states=sample.states,
            errors=sample.errors,
            warnings=sample.warnings,
        )


def _names(codes: Iterable[StateCode | ErrorCode]) -> str:
    return ", ".join(
        sorted(c.name if isinstance(c, enum.Enum) else str(c) for c in codes)
    )


def _age_problem(
    what: str, reading: Reading | None, now: float, max_age: float
) -> str | None:
    if reading is None:
        return f"no data from the {what}"
    if now - reading.at > max_age:
        return f"{what} data is {now - reading.at:.0f} s old"
    return None


def battery_problem(
    battery: Reading | None,
    capacity: float | None,
    inverter: Reading | None,
    now: float,
    max_age: float = MAX_DATA_AGE,
) -> str | None:
    """Return why a battery (with its inverter) must not get power, or `None`.

    Working: fresh data from both; the battery READY/CHARGING/DISCHARGING with its
    relay closed, no errors (warnings are fine) and a known capacity; the inverter
    STANDBY/READY/CHARGING/DISCHARGING with no errors (the SDK's checks). Beyond
    the SDK, a battery whose SoC or SoC limits are unknown (`Reading.missing`)
    is not working either: the distribution cannot use it, and a user should
    see it excluded, with the reason, rather than a working battery that never
    gets power.
    """
    if problem := _age_problem("battery", battery, now, max_age):
        return problem
    assert battery is not None
    if not battery.states & _BATTERY_READY:
        return f"battery state is {_names(battery.states)}"
    if members.RELAY_CLOSED not in battery.states:
        return "battery relay is not closed"
    if battery.errors:
        return f"battery errors: {_names(battery.errors)}"
    if capacity is None or not math.isfinite(capacity):
        return "battery capacity is unknown"
    if battery.missing is not None:
        return battery.missing
    if problem := _age_problem("inverter", inverter, now, max_age):
        return problem
    assert inverter is not None
    if not inverter.states & _INVERTER_READY:
        return f"inverter state is {_names(inverter.states)}"
    if inverter.errors:
        return f"inverter errors: {_names(inverter.errors)}"
    return None


def ev_charger_problem(
    charger: Reading | None, now: float, max_age: float = MAX_DATA_AGE
) -> str | None:
    """Return why an EV charger must not get power, or `None`.

    Working: fresh data, an EV connected (cable plugged or locked at both the EV
    and the station, no error, not unauthorized) and READY/CHARGING/DISCHARGING.
    """
    if problem := _age_problem("EV charger", charger, now, max_age):
        return problem
    assert charger is not None
    if members.ERROR_STATE in charger.states or charger.errors:
        return f"EV charger errors: {_names(charger.errors) or 'ERROR state'}"
    if members.UNAUTHORIZED in charger.warnings:
        return "EV charger is not authorized"
    if not ev_cable_connected(charger.states):
        return NO_EV_CONNECTED
    if not charger.states & _EV_CHARGER_READY:
        return f"EV charger state is {_names(charger.states)}"
    return None


def ev_cable_connected(states: AbstractSet[ComponentStateCode | int]) -> bool:
    """Return whether the cable is plugged (or locked) at both the EV and station."""
    return bool(states & _EV_PLUGGED_AT_EV and states & _EV_PLUGGED_AT_STATION)


def pv_inverter_problem(
    inverter: Reading | None, now: float, max_age: float = MAX_DATA_AGE
) -> str | None:
    """Return why a PV inverter must not get power, or `None`.

    Working: fresh data and READY/STANDBY/CHARGING/DISCHARGING (the SDK's checks).
    """
    if problem := _age_problem("PV inverter", inverter, now, max_age):
        return problem
    assert inverter is not None
    if not inverter.states & _PV_INVERTER_READY:
        return f"PV inverter state is {_names(inverter.states)}"
    return None


@dataclass(slots=True, kw_only=True)
class BlockingStatus:
    """Back-off after failed commands: 1, 2, 4, 8, 16, 30, 30 … s.

    The block only doubles for a failure that happens after the previous block
    ran out (failures while blocked change nothing, so one burst of timeouts
    counts once); a success unblocks and the next failure starts again at the
    minimum. Same as the SDK's ``BlockingStatus``, on an injected clock.
    """

    min_duration: float = MIN_BLOCK
    max_duration: float = MAX_BLOCK
    blocked_until: float | None = None
    last_duration: float = 0.0
    """Length of the current (or last) block."""

    def __post_init__(self) -> None:
        """Refuse a minimum above the maximum."""
        if self.min_duration > self.max_duration:
            raise ValueError(
                f"min_duration {self.min_duration} > max_duration {self.max_duration}"
            )

    def block(self, now: float) -> float:
        """Record a failure; return the new block's length (0 if still blocked)."""
        if self.blocked_until is None:
            self.last_duration = self.min_duration
        elif self.blocked_until > now:
            return 0.0
        else:
            self.last_duration = min(2 * self.last_duration, self.max_duration)
        self.blocked_until = now + self.last_duration
        return self.last_duration

    def unblock(self) -> None:
        """Record a success: no block, and the next failure starts from the minimum."""
        self.blocked_until = None

    def is_blocked(self, now: float) -> bool:
        """Return whether the block is still running at `now`."""
        return self.blocked_until is not None and self.blocked_until > now


class ComponentKind(enum.Enum):
    """Which checks apply to a component."""

    BATTERY = "battery"
    EV_CHARGER = "ev_charger"
    PV_INVERTER = "pv_inverter"


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """One component's health with its reasons, for status views and repairs."""

    component_id: int
    kind: ComponentKind
    health: ComponentHealth
    problem: str | None
    """Why the telemetry says it is not working (`None` when it is fine)."""
    blocked_until: float | None
    """When the current block after a failed command ends (`None`: not blocked).

    On the controller's monotonic clock: `MicrogridController.to_wall_time`
    turns it into a UTC time for people.
    """
    idle: bool = False
    """Not working only for lack of anything to do (an EV charger without an EV)."""
    out_of_service: bool = False
    """Outside its operational lifetime (the Assets API): left out, not broken."""

    @property
    def excluded(self) -> bool:
        """Whether the controller leaves the component out because it is broken.

        Not working or blocked after failed commands counts; an idle component
        (an EV charger waiting for a vehicle) does not.
        """
        return self.health is not ComponentHealth.WORKING and not self.idle


class HealthTracker:
    """Health of every controllable component, from telemetry and command results.

    Register the components first (`add_battery`, `add_ev_charger`,
    `add_pv_inverter`), then feed it telemetry (`observe`, `observe_data`) and
    distribution results (`record_result`). Unregistered components are
    `NOT_WORKING`, like every component before its first good reading.
    """

    def __init__(
        self,
        *,
        max_data_age: float = MAX_DATA_AGE,
        min_block: float = MIN_BLOCK,
        max_block: float = MAX_BLOCK,
    ) -> None:
        """Create a tracker with the spec's freshness window and back-off."""
        if min_block > max_block:
            raise ValueError(f"min_block {min_block} > max_block {max_block}")
        self.max_data_age = max_data_age
        self._min_block = min_block
        self._max_block = max_block
        self._kinds: dict[int, ComponentKind] = {}
        self._inverter_of: dict[int, int] = {}
        self._batteries_behind: dict[int, set[int]] = {}
        self._affected: dict[int, tuple[int, ...]] = {}
        """`_affected_by`, per component asked about; emptied whenever a
        component is registered or forgotten (every reading asks it)."""
        self._readings: dict[int, Reading] = {}
        self._capacities: dict[int, float] = {}
        self._blocks: dict[int, BlockingStatus] = {}
        self._out_of_service: frozenset[int] = frozenset()
        self._judged: dict[int, tuple[str | None, float]] = {}
        """Per component, its last telemetry judgement (`problem`) and the sample
        time of the oldest reading it used (`math.inf`: it used none).

        Made while every reading it used was fresh, the judgement depends on
        their contents alone, so it holds without re-running the checks while
        that oldest reading is not too old and the inputs keep their contents
        (a reading that repeats the last one's contents keeps it; any other
        input change drops it). Every component's health is asked for several
        times per tick (the working sets, the statuses, the EV inputs).
        """
        self._last_status: dict[int, ComponentStatus] = {}
        """Each component's last status: handed out again while it is the same
        (every component's status is asked for on every tick, and most stay)."""

    # -- registration ---------------------------------------------------------

    def add_battery(self, battery_id: int, inverter_id: int) -> None:
        """Track a battery and the inverter that feeds it."""
        self._inverter_of[battery_id] = inverter_id
        self._batteries_behind.setdefault(inverter_id, set()).add(battery_id)
        self._register(battery_id, ComponentKind.BATTERY)

    def add_ev_charger(self, charger_id: int) -> None:
        """Track an EV charger."""
        self._register(charger_id, ComponentKind.EV_CHARGER)

    def add_pv_inverter(self, inverter_id: int) -> None:
        """Track a PV inverter."""
        self._register(inverter_id, ComponentKind.PV_INVERTER)

    def _register(self, component_id: int, kind: ComponentKind) -> None:
        self._kinds[component_id] = kind
        self._affected.clear()
        self._blocks.setdefault(component_id, self._new_block())
        self._forget_judgements((component_id,))  # judged as another kind

    def forget(self, component_ids: Iterable[int]) -> None:
        """Stop tracking components that left the microgrid (`NOT_WORKING` now).

        A battery left behind by its inverter has no inverter data any more, so
        it is not working either (its link stays until it is registered anew).
        """
        for component_id in component_ids:
            self._kinds.pop(component_id, None)
            self._readings.pop(component_id, None)
            self._capacities.pop(component_id, None)
            self._blocks.pop(component_id, None)
            self._judged.pop(component_id, None)
            self._last_status.pop(component_id, None)
            inverter_id = self._inverter_of.pop(component_id, None)
            if inverter_id is not None:
                self._batteries_behind.get(inverter_id, set()).discard(component_id)
        self._affected.clear()

    def set_out_of_service(self, component_ids: Iterable[int]) -> bool:
        """Take these components out of steering (all others back in).

        For components outside their operational lifetime: `problem` names the
        reason, so no pool ever gives them power. Returns whether the set changed.
        """
        out = frozenset(component_ids)
        if out == self._out_of_service:
            return False
        self._forget_judgements(out ^ self._out_of_service)
        self._out_of_service = out
        return True

    def is_out_of_service(self, component_id: int) -> bool:
        """Whether the component is outside its operational lifetime (never steered)."""
        return component_id in self._out_of_service

    def _new_block(self) -> BlockingStatus:
        return BlockingStatus(
            min_duration=self._min_block, max_duration=self._max_block
        )

    # -- inputs ---------------------------------------------------------------

    def observe(
        self, component_id: int, reading: Reading, *, capacity: float | None = None
    ) -> None:
        """Take a component's latest telemetry (and a battery's capacity).

        A component whose telemetry turns good again after being bad or old gets a
        fresh start: its block is lifted (as the SDK does), so it is tried again.
        """
        affected = self._affected_by(component_id)
        # Only a block can be lifted: skip the telemetry checks for the others
        # (nearly all of them, on every tick).
        blocked = [c for c in affected if self._blocks[c].blocked_until is not None]
        was_ok = {cid: self.problem(cid, reading.at) is None for cid in blocked}
        repeats = self._repeats(component_id, reading, capacity)
        self._readings[component_id] = reading
        if capacity is not None:
            self._capacities[component_id] = capacity
        if not repeats:  # a newer reading of the same contents judges the same
            self._forget_judgements(affected)
        for cid in blocked:
            if not was_ok[cid] and self.problem(cid, reading.at) is None:
                self._blocks[cid].unblock()

    def observe_data(
        self, samples: ComponentDataSamples, *, at: float | None = None
    ) -> None:
        """Take one message of the client's telemetry stream.

        Uses its newest state sample and, if present, the battery capacity metric.
        Without `at`, the sample timestamps are used as POSIX seconds.
        """
        component_id = int(samples.component_id)
        capacity = _capacity(samples)
        if samples.states:
            newest = max(samples.states, key=lambda s: s.sampled_at)
            self.observe(
                component_id, Reading.from_sample(newest, at=at), capacity=capacity
            )
        elif capacity is not None:
            self._capacities[component_id] = capacity
            self._forget_judgements(self._affected_by(component_id))

    def record_result(self, result: Result, now: float) -> None:
        """Block the components whose command failed; unblock those that succeeded."""
        match result:
            case Success():
                self.record_success(result.succeeded_components)
            case PartialFailure():
                self.record_success(result.succeeded_components)
                self.record_failure(result.failed_components, now)
            case _:
                pass  # Nothing was sent: no component proved good or bad.

    def record_success(self, component_ids: Iterable[int]) -> None:
        """Unblock components that accepted a command."""
        for component_id in self._expand(component_ids):
            self._blocks[component_id].unblock()

    def record_failure(self, component_ids: Iterable[int], now: float) -> None:
        """Block components whose command failed (timeout, API error, rejection).

        Components that are not working anyway are left alone, so that the block
        does not outlive the outage (the SDK does the same).
        """
        for component_id in self._expand(component_ids):
            if self.problem(component_id, now) is None:
                self._blocks[component_id].block(now)

    # -- views ----------------------------------------------------------------

    def problem(self, component_id: int, now: float) -> str | None:
        """Return why the telemetry says the component is not working, or `None`.

        A battery behind an inverter outside its operational lifetime is out of
        service too: its power would go through that inverter.
        """
        if (
            component_id in self._out_of_service
            or self._inverter_of.get(component_id) in self._out_of_service
        ):
            return OUT_OF_SERVICE
        age = self.max_data_age
        judged = self._judged.get(component_id)
        if judged is not None and now - judged[1] <= age:
            return judged[0]  # the very checks below, on the same inputs, said so
        kind = self._kinds.get(component_id)
        reading = self._readings.get(component_id)
        oldest = math.inf if reading is None else reading.at
        match kind:
            case ComponentKind.BATTERY:
                inverter = self._readings.get(self._inverter_of[component_id])
                capacity = self._capacities.get(component_id)
                problem = battery_problem(reading, capacity, inverter, now, age)
                if inverter is not None:
                    oldest = min(oldest, inverter.at)
            case ComponentKind.EV_CHARGER:
                problem = ev_charger_problem(reading, now, age)
            case ComponentKind.PV_INVERTER:
                problem = pv_inverter_problem(reading, now, age)
            case None:
                return "not a controllable component"
        if now - oldest <= age:
            # Every reading used was fresh: the verdict follows from their
            # contents alone (not so a verdict of age, whose text names it).
            self._judged[component_id] = (problem, oldest)
        return problem

    def health(self, component_id: int, now: float) -> ComponentHealth:
        """Return the component's health at `now`."""
        if self.problem(component_id, now) is not None:
            return ComponentHealth.NOT_WORKING
        if self._blocks[component_id].is_blocked(now):
            return ComponentHealth.UNCERTAIN
        return ComponentHealth.WORKING

    def working(self, component_ids: Iterable[int], now: float) -> frozenset[int]:
        """Return the components a request may use (spec §3).

        The working ones; when none works, the uncertain ones (a blocked component
        is better than none); else nothing.
        """
        # Lists, not a dict by `ComponentHealth`: an enum's hash is a Python call.
        working: list[int] = []
        uncertain: list[int] = []
        for component_id in component_ids:
            health = self.health(component_id, now)
            if health is ComponentHealth.WORKING:
                working.append(component_id)
            elif health is ComponentHealth.UNCERTAIN:
                uncertain.append(component_id)
        return frozenset(working or uncertain)

    def status(self, component_id: int, now: float) -> ComponentStatus:
        """Return a component's health with its reason and block expiry."""
        kind = self._kinds.get(component_id)
        if kind is None:
            raise KeyError(f"Component {component_id} is not tracked")
        # Runs for every component on every tick: judge the telemetry once.
        problem = self.problem(component_id, now)
        blocked = self._blocks[component_id].is_blocked(now)
        if problem is not None:
            health = ComponentHealth.NOT_WORKING
        elif blocked:
            health = ComponentHealth.UNCERTAIN
        else:
            health = ComponentHealth.WORKING
        blocked_until = self._blocks[component_id].blocked_until if blocked else None
        last = self._last_status.get(component_id)
        if (
            last is not None
            and last.kind is kind
            and last.health is health
            and last.problem == problem
            and last.blocked_until == blocked_until
        ):  # `idle` and `out_of_service` follow from kind and problem
            return last
        status = self._last_status[component_id] = ComponentStatus(
            component_id=component_id,
            kind=kind,
            health=health,
            problem=problem,
            blocked_until=blocked_until,
            # Only a healthy charger reports NO_EV_CONNECTED (`ev_charger_problem`).
            idle=kind is ComponentKind.EV_CHARGER and problem == NO_EV_CONNECTED,
            out_of_service=problem == OUT_OF_SERVICE,
        )
        return status

    def statuses(self, now: float) -> list[ComponentStatus]:
        """Return every tracked component's status, by component id."""
        return [self.status(cid, now) for cid in sorted(self._kinds)]

    # -- internals ------------------------------------------------------------

    def _forget_judgements(self, component_ids: Iterable[int]) -> None:
        """Forget the judgements that relied on these components' old inputs."""
        for component_id in component_ids:
            self._judged.pop(component_id, None)

    def _repeats(
        self, component_id: int, reading: Reading, capacity: float | None
    ) -> bool:
        """Whether `reading` only repeats the component's last one, sampled later.

        The same states, errors, warnings (and capacity): every judgement made
        from the last one is what this one gives too, for as long as it holds.
        Telemetry repeats itself nearly always, and the health of every
        component is fed on every tick.
        """
        last = self._readings.get(component_id)
        return (
            last is not None
            and reading.at >= last.at
            and (
                capacity is None
                or _same_value(capacity, self._capacities.get(component_id))
            )
            and reading.missing == last.missing
            and reading.states == last.states
            and reading.errors == last.errors
            and reading.warnings == last.warnings
        )

    def _affected_by(self, component_id: int) -> tuple[int, ...]:
        """Tracked components whose health depends on this component's telemetry."""
        known = self._affected.get(component_id)
        if known is not None:
            return known
        affected = sorted(self._batteries_behind.get(component_id, ()))
        if component_id in self._kinds and component_id not in affected:
            affected.append(component_id)
        known = self._affected[component_id] = tuple(affected)
        return known

    def _expand(self, component_ids: Iterable[int]) -> set[int]:
        """Map ids from a result to tracked components (an inverter → its batteries)."""
        tracked: set[int] = set()
        for component_id in component_ids:
            if component_id in self._kinds:
                tracked.add(component_id)
            tracked.update(self._batteries_behind.get(component_id, ()))
        return tracked


def _same_value(value: float, other: float | None) -> bool:
    """Equal, NaN being the same as NaN (an unknown capacity that stays so)."""
    if other is None:
        return False
    return value == other or (math.isnan(value) and math.isnan(other))


def _capacity(samples: ComponentDataSamples) -> float | None:
    """Return the newest battery capacity in a telemetry message, if any."""
    newest: tuple[float, float] | None = None
    for sample in samples.metric_samples:
        if sample.metric is not Metric.BATTERY_CAPACITY or sample.value is None:
            continue
        value = (
            sample.value.avg
            if isinstance(sample.value, AggregatedMetricValue)
            else sample.value
        )
        at = sample.sampled_at.timestamp()
        if newest is None or at >= newest[0]:
            newest = (at, value)
    return None if newest is None else newest[1]
