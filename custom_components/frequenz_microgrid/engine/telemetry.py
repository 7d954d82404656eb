"""The latest telemetry per component and metric, and how old it is.

Ingest is the hot path (a 1,000-component microgrid sends thousands of samples a
second), so `TelemetryStore.ingest_message` only overwrites the latest value per
(component, metric) in place and stamps its arrival, and turns bounds ranges into
`PowerBounds` only when they changed; everything derived (freshness, pools,
formulas) is computed once per tick from here.

Most components repeat themselves: an idle battery or charger sends the same
values second after second. A component's `revision` therefore moves only when
something it sent *changed* (a value, bounds, states, or a value fresh again after
it went stale), and its `ComponentSnapshot` is built anew only then or when one of
its values may have turned stale: otherwise the tick hands out the very same
object, and whatever was derived from it (an entity's state, a battery pair) is
known to be unchanged without looking inside.

Freshness is measured by *arrival* time on a monotonic clock, not by the sample's own
timestamp: a component whose clock is off must not look stale (or fresh), and a
jump of the wall clock must not expire everything at once. The sample time is kept
beside each value all the same (`FreshView.sampled_at`): whether readings of two
components belong together depends on when they were taken, not on when they
arrived (spec §4, readings that belong together).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
import math
from operator import attrgetter
import time

from frequenz.client.microgrid.component import (
    ComponentDataSamples,
)
from frequenz.client.microgrid.metrics import Metric

from .bounds import PowerBounds
from .snapshot import ComponentSnapshot
from .telemetry_message import (
    NO_STATES,
    ComponentStates,
    MetricReading,
    Range,
    TelemetryMessage,
    telemetry_from_samples,
)

_ARRIVED = attrgetter("arrived")

DEFAULT_FRESHNESS_S = 10.0
"""Data older than this is stale (spec §3: "data older than 10 s → not working")."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Reading:
    """The latest value of one metric; updated in place (no garbage per sample)."""

    value: float
    arrived: float
    """Monotonic arrival time."""
    sampled: float
    """Sample time (POSIX seconds, the component's clock); the arrival's wall
    time for a value that came without one."""


@dataclass(slots=True)
class _Bounds:
    """The latest bounds of one metric, and the raw ranges they were built from."""

    ranges: tuple[Range, ...]
    reported: PowerBounds
    """The bounds the component sent."""
    bounds: PowerBounds
    """What holds: the reported bounds within any set on it (`request_bounds`)."""


@dataclass(frozen=True, slots=True)
class _RequestedBounds:
    """Power bounds set on a component, in force until `until` (store clock)."""

    lower: float
    upper: float
    until: float


@dataclass(slots=True)
class _ComponentTelemetry:
    readings: dict[Metric | int, _Reading] = field(default_factory=dict)
    shown: dict[Metric, float] = field(default_factory=dict)
    """The latest non-NaN value per known metric, kept up to date on ingest.

    While every reading is fresh this *is* the snapshot's metrics, and copying a
    dict reuses its keys' hashes: a `Metric`'s hash is a Python-level call, and a
    snapshot would otherwise make ~10,000 of them per tick on 1,000 components.
    """
    bounds: dict[Metric | int, _Bounds] = field(default_factory=dict)
    diagnostics: ComponentStates = NO_STATES
    """The latest state snapshot, as the message brought it."""
    state_arrived: float | None = None
    first_arrived: float = 0.0
    """When its first message arrived (monotonic)."""
    last_arrived: float = 0.0
    all_arrived: float | None = None
    """When every reading last arrived in one message (`None`: not all at once)."""
    last_seen: datetime | None = None
    revision: int = 0
    """The store's change count at this entry's last change (`FreshView.revision`)."""
    snapshot: ComponentSnapshot | None = None
    """The last snapshot built of this entry, if it may be handed out again."""
    snapshot_revision: int = 0
    """The revision `snapshot` was built at."""
    snapshot_fresh_until: float = -math.inf
    """Until when every value of `snapshot` stays fresh without new data."""
    last_built: ComponentSnapshot | None = None
    """The last snapshot built of this entry, reusable or not."""
    bounds_changed: bool = True
    """Whether any bounds changed since `last_built` was built."""
    requested: dict[Metric | int, list[_RequestedBounds]] = field(default_factory=dict)
    """Bounds set on the component and still in force, per metric."""


class SampleHistory:
    """The last few sampled values of some metrics of one component, by sample time.

    Kept only for the components a caller asked for (`TelemetryStore.keep_history`):
    pairing readings of different components by their sample time needs the
    rounds before the latest, as a round's messages arrive spread out.
    """

    __slots__ = ("_depth", "_metrics", "_samples", "_watched")

    def __init__(self, metrics: frozenset[Metric | int], depth: int) -> None:
        """Keep `metrics` of the newest `depth` samples."""
        self._metrics = metrics
        self._watched = tuple(metrics)
        """The same metrics, for `in` by identity: a `Metric`'s hash is a
        Python-level call, and every reading of every message is checked."""
        self._depth = depth
        self._samples: dict[float, dict[Metric | int, float]] = {}

    def widen(self, metrics: frozenset[Metric | int], depth: int) -> None:
        """Keep these metrics too, and at least `depth` samples (several users)."""
        self._metrics |= metrics
        self._watched = tuple(self._metrics)
        self._depth = max(self._depth, depth)

    def record(self, sampled: float, readings: Iterable[MetricReading]) -> None:
        """Keep one message's values of the watched metrics (bounds are ignored)."""
        watched = self._watched
        values: dict[Metric | int, float] | None = None
        for metric, value, _ in readings:
            if metric in watched:
                if values is None:
                    values = self._values_at(sampled)
                    if values is None:  # older than all the newest `depth`
                        return
                values[metric] = value

    def _values_at(self, sampled: float) -> dict[Metric | int, float] | None:
        """The values kept for `sampled`, made room for; `None`: too old to keep.

        When full, the oldest sample's dict is emptied and reused: a new one per
        message would live for `depth` seconds, and that many objects surviving
        the youngest garbage collection make collections run more often.
        """
        samples = self._samples
        values = samples.get(sampled)
        if values is not None:
            return values
        if len(samples) < self._depth:
            values = samples[sampled] = {}
            return values
        oldest = min(samples)
        if sampled < oldest:
            return None
        values = samples.pop(oldest)
        values.clear()
        samples[sampled] = values
        return values

    def at(self, sampled: float) -> dict[Metric | int, float] | None:
        """The values sampled at exactly `sampled`, or `None`."""
        return self._samples.get(sampled)

    def times(self) -> list[float]:
        """The sample times kept, newest first."""
        return sorted(self._samples, reverse=True)

    def is_empty(self) -> bool:
        """Whether no sample was kept (yet)."""
        return not self._samples


class FreshView:
    """The store's fresh values as of one instant.

    Steering reads several metrics of every battery in one synchronous step:
    judging them all against one clock reading is cheaper, and consistent (no
    value turns stale halfway through a distribution).
    """

    __slots__ = ("_components", "_freshness_s", "_now")

    def __init__(
        self,
        components: dict[int, _ComponentTelemetry],
        now: float,
        freshness_s: float,
    ) -> None:
        """View `components` as of `now` (the store's monotonic clock)."""
        self._components = components
        self._now = now
        self._freshness_s = freshness_s

    def value(self, component_id: int, metric: Metric | int) -> float | None:
        """Return the latest fresh, non-NaN value of a metric, or `None`."""
        return _fresh_value(
            self._components, self._now, self._freshness_s, component_id, metric
        )

    def bounds(self, component_id: int, metric: Metric | int) -> PowerBounds | None:
        """Return the latest bounds sent with a fresh value of `metric`, or `None`."""
        return _fresh_bounds(
            self._components, self._now, self._freshness_s, component_id, metric
        )

    def revision(self, component_id: int) -> int:
        """A number that changes whenever the component's telemetry changes.

        A value, bounds or states that differ from the last ones, a new metric, or
        a value fresh again after it had gone stale; a message repeating the last
        values leaves it alone. Unique across the store (0: nothing arrived yet),
        so something derived from a component's values stays right while its
        revision is the same — until one of the values it read turns stale
        (`oldest_fresh_arrival`).
        """
        entry = self._components.get(component_id)
        return 0 if entry is None else entry.revision

    def oldest_fresh_arrival(
        self, component_id: int, metrics: Iterable[Metric | int]
    ) -> float:
        """When the oldest of these metrics' fresh values arrived (`math.inf`: none).

        That value is the first of them to turn stale (`arrived_fresh` says
        until when); values already stale stay stale until new data arrives,
        which changes the revision.
        """
        oldest = math.inf
        entry = self._components.get(component_id)
        if entry is None:
            return oldest
        readings = entry.readings
        for metric in metrics:
            reading = readings.get(metric)
            if reading is not None and self.arrived_fresh(reading.arrived):
                oldest = min(oldest, reading.arrived)
        return oldest

    def sampled_at(self, component_id: int, metric: Metric | int) -> float | None:
        """When the latest fresh value of a metric was sampled (POSIX seconds)."""
        reading = _fresh_reading(
            self._components, self._now, self._freshness_s, component_id, metric
        )
        return None if reading is None else reading.sampled

    def sampled_value(
        self, component_id: int, metric: Metric | int
    ) -> tuple[float, float] | None:
        """The latest fresh value of a metric and when it was sampled, or `None`.

        `value` and `sampled_at` in one lookup: the EV steering reads both for
        three currents of every charger, every tick.
        """
        reading = _fresh_reading(
            self._components, self._now, self._freshness_s, component_id, metric
        )
        return None if reading is None else (reading.value, reading.sampled)

    def arrived_fresh(self, arrived: float) -> bool:
        """Whether a value that arrived at `arrived` is fresh at this view's instant."""
        return self._now - arrived <= self._freshness_s


def _fresh_reading(
    components: dict[int, _ComponentTelemetry],
    now: float,
    freshness_s: float,
    component_id: int,
    metric: Metric | int,
) -> _Reading | None:
    """The metric's latest reading if it is fresh and not NaN, else `None`."""
    entry = components.get(component_id)
    if entry is None:
        return None
    reading = entry.readings.get(metric)
    if reading is None or reading.value != reading.value:  # missing or NaN
        return None
    if now - reading.arrived > freshness_s:  # the rule `FreshView.arrived_fresh` uses
        return None
    return reading


def _fresh_value(
    components: dict[int, _ComponentTelemetry],
    now: float,
    freshness_s: float,
    component_id: int,
    metric: Metric | int,
) -> float | None:
    reading = _fresh_reading(components, now, freshness_s, component_id, metric)
    return None if reading is None else reading.value


def _narrowed(
    reported: PowerBounds,
    requested: dict[Metric | int, list[_RequestedBounds]],
    metric: Metric | int,
    now: float,
) -> PowerBounds:
    """The reported bounds within the requested ones still in force at `now`.

    Requests that ended are dropped (of every metric: one the component sends
    no bounds for would stay otherwise). An empty intersection allows 0 W only.
    """
    _drop_ended(requested, now)
    in_force = requested.get(metric)
    if not in_force:
        return reported
    lower = max(reported.inclusion_lower, *(r.lower for r in in_force))
    upper = min(reported.inclusion_upper, *(r.upper for r in in_force))
    if lower > upper:
        return PowerBounds.zero()
    return PowerBounds(lower, upper, reported.exclusion_lower, reported.exclusion_upper)


def _drop_ended(
    requested: dict[Metric | int, list[_RequestedBounds]], now: float
) -> None:
    """Drop the requests whose validity ended, and metrics left with none."""
    for metric, requests in list(requested.items()):
        in_force = [r for r in requests if r.until > now]
        if in_force:
            requested[metric] = in_force
        else:
            del requested[metric]


def _add_request(
    requested: dict[Metric | int, list[_RequestedBounds]],
    metric: Metric | int,
    request: _RequestedBounds,
    now: float,
) -> None:
    """Add a request; the same bounds set again only move their end.

    An automation re-setting the same bounds every few seconds must not pile
    up requests that every sample then scans.
    """
    _drop_ended(requested, now)
    requests = requested.setdefault(metric, [])
    for index, known in enumerate(requests):
        if (known.lower, known.upper) == (request.lower, request.upper):
            requests[index] = max(known, request, key=lambda r: r.until)
            return
    requests.append(request)


def _fresh_bounds(
    components: dict[int, _ComponentTelemetry],
    now: float,
    freshness_s: float,
    component_id: int,
    metric: Metric | int,
) -> PowerBounds | None:
    if _fresh_value(components, now, freshness_s, component_id, metric) is None:
        return None
    known = components[component_id].bounds.get(metric)
    return None if known is None else known.bounds


class TelemetryStore:
    """Latest sample per (component, metric), with arrival times.

    Values are `None` when unknown, stale (older than `freshness_s`) or NaN. The
    clocks are injectable so tests can age data without sleeping.
    """

    def __init__(
        self,
        *,
        freshness_s: float = DEFAULT_FRESHNESS_S,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """Create an empty store."""
        self.freshness_s = freshness_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._components: dict[int, _ComponentTelemetry] = {}
        self._last_arrival: float | None = None
        self._changes = 0
        self._histories: dict[int, SampleHistory] = {}
        self._unheard_requests: dict[
            int, dict[Metric | int, list[_RequestedBounds]]
        ] = {}
        """Bounds set on components not heard from yet (`request_bounds`)."""

    def now(self) -> float:
        """Return the store's monotonic time (the injected clock)."""
        return self._clock()

    def wall_time_s(self) -> float:
        """Return the wall-clock time (POSIX seconds), the clock of sample times."""
        return self._wall_clock().timestamp()

    def ingest_message(self, message: TelemetryMessage) -> None:
        """Record one message of a component's telemetry stream."""
        now = self._clock()
        entry, changed = self._entry(message.component_id, now)
        sampled = message.sampled_at
        if sampled is None:  # no sample time: count it as taken on arrival
            sampled = self._arrival_wall_time(entry)
        stale_before = now - self.freshness_s
        readings = entry.readings
        stamped = 0  # readings this message stamped first (one sent twice: once)
        for metric, value, ranges in message.readings:
            reading = readings.get(metric)
            if reading is None:
                readings[metric] = _Reading(value, now, sampled)
                stamped += 1
                value_changed = True
            else:  # in place: no new object per sample
                if reading.arrived != now:
                    stamped += 1
                # NaN always counts as changed; a value that repeats a stale one
                # too: it is fresh again.
                value_changed = reading.value != value or reading.arrived < stale_before
                reading.value = value
                reading.arrived = now
                reading.sampled = sampled
            if value_changed:
                changed = True
                self._show(entry, metric, value)
            if ranges and self._record_ranges(entry, metric, ranges, now):
                changed = True
        # Usually a message brings every metric the component ever sent: then the
        # oldest of its readings arrived now (`component_snapshot` needs it).
        entry.all_arrived = now if stamped == len(readings) else None
        history = self._histories.get(message.component_id)
        if history is not None:
            history.record(sampled, message.readings)
        states = message.states
        if states is not None:
            arrived = entry.state_arrived
            if arrived is None or arrived < stale_before or states != entry.diagnostics:
                changed = True
            entry.diagnostics = states
            entry.state_arrived = now
        if changed:
            self._changes += 1
            entry.revision = self._changes

    def ingest(self, samples: ComponentDataSamples) -> None:
        """Record one message in the client library's form."""
        self.ingest_message(telemetry_from_samples(samples))

    def _entry(self, component_id: int, now: float) -> tuple[_ComponentTelemetry, bool]:
        """The component's entry, stamped with this arrival; whether it is new."""
        entry = self._components.get(component_id)
        new = entry is None
        if entry is None:
            entry = self._components[component_id] = _ComponentTelemetry(
                first_arrived=now,
                requested=self._unheard_requests.pop(component_id, {}),
            )
        entry.last_arrived = now
        entry.last_seen = self._wall_clock()
        self._last_arrival = now
        return entry, new

    @staticmethod
    def _arrival_wall_time(entry: _ComponentTelemetry) -> float:
        """The wall time of the entry's latest arrival (set by `_entry`)."""
        assert entry.last_seen is not None
        return entry.last_seen.timestamp()

    @staticmethod
    def _show(entry: _ComponentTelemetry, metric: Metric | int, value: float) -> None:
        """Keep a new or changed value where snapshots copy it from (NaN: none)."""
        if not isinstance(metric, Metric):  # an unknown metric: kept, never shown
            return
        if value == value:  # not NaN
            entry.shown[metric] = value
        else:
            entry.shown.pop(metric, None)

    @staticmethod
    def _record_ranges(
        entry: _ComponentTelemetry,
        metric: Metric | int,
        ranges: tuple[Range, ...],
        now: float,
    ) -> bool:
        """Keep the bounds of `metric`, rebuilt only when they changed; or not.

        Bounds set on the component narrow what it reports while they are in
        force (`request_bounds`).
        """
        known = entry.bounds.get(metric)
        changed = True
        if known is None:
            reported = PowerBounds.from_ranges(ranges)
            known = entry.bounds[metric] = _Bounds(ranges, reported, reported)
        elif known.ranges != ranges:
            known.ranges = ranges
            known.reported = known.bounds = PowerBounds.from_ranges(ranges)
        elif not entry.requested:
            return False
        else:
            changed = False
        if entry.requested:
            narrowed = _narrowed(known.reported, entry.requested, metric, now)
            changed = changed or narrowed != known.bounds
            known.bounds = narrowed
        if changed:
            entry.bounds_changed = True
        return changed

    def request_bounds(
        self,
        component_id: int,
        metric: Metric | int,
        lower: float,
        upper: float,
        validity_s: float,
    ) -> None:
        """Narrow a component's bounds at once to what was just set on it.

        The microgrid applies bounds set on a component (`add_component_bounds`)
        at once, within every other bound in force, but reports them only with
        the component's next sample: meanwhile steering would still see the
        wider bounds and send setpoints outside them. Until `validity_s` has
        passed the component's bounds are therefore the reported ones within
        these (and any others set and still in force).
        """
        now = self._clock()
        request = _RequestedBounds(lower, upper, now + validity_s)
        entry = self._components.get(component_id)
        if entry is None:  # nothing heard yet: its first bounds will be narrowed
            unheard = self._unheard_requests.setdefault(component_id, {})
            _add_request(unheard, metric, request, now)
            return
        _add_request(entry.requested, metric, request, now)
        known = entry.bounds.get(metric)
        if known is None:
            return
        known.bounds = _narrowed(known.reported, entry.requested, metric, now)
        entry.bounds_changed = True
        self._changes += 1
        entry.revision = self._changes

    def keep_history(
        self,
        component_ids: Iterable[int],
        metrics: Iterable[Metric | int],
        depth: int = 16,
    ) -> None:
        """Keep the newest `depth` samples of `metrics` of these components.

        Several users may ask for the same component: it keeps what all asked for.
        """
        watched = frozenset(metrics)
        for component_id in component_ids:
            history = self._histories.get(component_id)
            if history is None:
                self._histories[component_id] = SampleHistory(watched, depth)
            else:
                history.widen(watched, depth)

    def forget(self, component_ids: Iterable[int]) -> None:
        """Drop everything known about these components (they left the microgrid)."""
        for component_id in component_ids:
            self._components.pop(component_id, None)
            self._histories.pop(component_id, None)
            self._unheard_requests.pop(component_id, None)

    def history(self, component_id: int) -> SampleHistory | None:
        """The kept samples of a component (`None`: not kept)."""
        return self._histories.get(component_id)

    # --- Reading -----------------------------------------------------------------

    @property
    def component_ids(self) -> frozenset[int]:
        """Return the ids of every component that has sent anything."""
        return frozenset(self._components)

    def last_arrival_age_s(self) -> float | None:
        """Return seconds since anything arrived from any component (`None`: never)."""
        if self._last_arrival is None:
            return None
        return self._clock() - self._last_arrival

    def age_s(self, component_id: int) -> float | None:
        """Return seconds since the component last sent anything (`None`: never)."""
        entry = self._components.get(component_id)
        if entry is None:
            return None
        return self._clock() - entry.last_arrived

    def last_seen(self, component_id: int) -> datetime | None:
        """When the component last sent anything (wall clock; `None`: never)."""
        entry = self._components.get(component_id)
        return None if entry is None else entry.last_seen

    def sends(self, component_id: int, metric: Metric | int) -> bool | None:
        """Whether `metric` is part of what the component sends (`None`: not yet known).

        `True` once it sent it, however old or NaN; `False` once it has been
        sending for longer than the freshness window without it (a metric may
        come in a message of its own); `None` before that.
        """
        entry = self._components.get(component_id)
        if entry is None:
            return None
        if metric in entry.readings:
            return True
        if self._clock() - entry.first_arrived <= self.freshness_s:
            return None
        return False

    def is_fresh(self, component_id: int) -> bool:
        """Return whether the component sent anything within the freshness window."""
        age = self.age_s(component_id)
        return age is not None and age <= self.freshness_s

    def value(self, component_id: int, metric: Metric | int) -> float | None:
        """Return the latest fresh, non-NaN value of a metric, or `None`."""
        return _fresh_value(
            self._components, self._clock(), self.freshness_s, component_id, metric
        )

    def bounds(self, component_id: int, metric: Metric | int) -> PowerBounds | None:
        """Return the latest bounds sent with a fresh value of `metric`, or `None`."""
        return _fresh_bounds(
            self._components, self._clock(), self.freshness_s, component_id, metric
        )

    def last_known_bounds(
        self, component_id: int, metric: Metric | int
    ) -> PowerBounds | None:
        """Return the latest bounds of a metric however old, or `None`.

        What a silent component may do at most (never for steering it).
        """
        entry = self._components.get(component_id)
        known = None if entry is None else entry.bounds.get(metric)
        return None if known is None else known.bounds

    def fresh_view(self) -> FreshView:
        """Return a view that judges freshness as of now, for many lookups."""
        return FreshView(self._components, self._clock(), self.freshness_s)

    def fresh_values(
        self, metric: Metric | int, component_ids: Iterable[int] | None = None
    ) -> dict[int, float]:
        """Return the fresh values of `metric` (formula input).

        Of every component, or only of `component_ids` (a formula's operands: no
        need to walk a thousand components for a handful).
        """
        oldest = self._clock() - self.freshness_s
        values: dict[int, float] = {}
        entries = (
            self._components.items()
            if component_ids is None
            else (
                (cid, entry)
                for cid in component_ids
                if (entry := self._components.get(cid)) is not None
            )
        )
        for component_id, entry in entries:
            reading = entry.readings.get(metric)
            if (
                reading is not None
                and reading.arrived >= oldest
                and reading.value == reading.value  # not NaN
            ):
                values[component_id] = reading.value
        return values

    def states(self, component_id: int) -> ComponentStates | None:
        """Return the component's latest fresh state snapshot, or `None`.

        `None` when it never sent anything; empty once stale, as in
        `component_snapshot`. This is the cheap way to read only the states (the
        controller's health check runs per component on every tick).
        """
        entry = self._components.get(component_id)
        if entry is None:
            return None
        if entry.state_arrived is None or (
            entry.state_arrived < self._clock() - self.freshness_s
        ):
            return NO_STATES
        return entry.diagnostics

    def component_snapshot(self, component_id: int) -> ComponentSnapshot | None:
        """Return the component's fresh telemetry, or `None` if it never sent any.

        Stale values and NaN are left out; states of a stale component are
        cleared (an old READY must not make a silent component look working).

        The same object as last time while nothing changed (same revision) and
        all its values are still fresh: the tick reads every component, and most
        repeat themselves.
        """
        entry = self._components.get(component_id)
        if entry is None:
            return None
        now = self._clock()
        if (
            entry.snapshot is not None
            and entry.snapshot_revision == entry.revision
            and now <= entry.snapshot_fresh_until
        ):
            return entry.snapshot
        oldest = now - self.freshness_s
        readings = entry.readings
        oldest_arrival = entry.all_arrived
        if oldest_arrival is None:
            oldest_arrival = min(
                map(_ARRIVED, readings.values()), default=entry.last_arrived
            )
        all_fresh = oldest_arrival >= oldest
        if all_fresh:
            metrics = entry.shown.copy()  # the usual case
        else:
            metrics = {
                metric: reading.value
                for metric, reading in readings.items()
                if isinstance(metric, Metric)
                and reading.arrived >= oldest
                and metric in entry.shown  # not NaN
            }
        last = entry.last_built
        if (
            last is not None
            and not entry.bounds_changed
            and metrics.keys() == last.metrics.keys()
        ):  # the same bounds: share the dict (one object less per change)
            bounds = last.bounds
        else:
            bounds = {
                metric: known.bounds
                for metric, known in entry.bounds.items()
                if isinstance(metric, Metric) and metric in metrics
            }
            entry.bounds_changed = False
        fresh = now - entry.last_arrived <= self.freshness_s
        state_arrived = entry.state_arrived
        states_fresh = state_arrived is not None and state_arrived >= oldest
        diagnostics = entry.diagnostics if states_fresh else NO_STATES
        snapshot = ComponentSnapshot(
            component_id=component_id,
            metrics=metrics,
            bounds=bounds,
            states=diagnostics.states,
            warnings=diagnostics.warnings,
            errors=diagnostics.errors,
            fresh=fresh,
        )
        entry.last_built = snapshot
        if all_fresh and fresh and (state_arrived is None or states_fresh):
            # Nothing in it can go stale before its oldest part does.
            if state_arrived is not None:
                oldest_arrival = min(oldest_arrival, state_arrived)
            entry.snapshot = snapshot
            entry.snapshot_revision = entry.revision
            entry.snapshot_fresh_until = oldest_arrival + self.freshness_s
        else:  # something is stale: what is fresh changes with time alone
            entry.snapshot = None
        return snapshot
