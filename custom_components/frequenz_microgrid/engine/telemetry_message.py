"""One telemetry message of a component, in the compact form the store ingests.

A 1,000-component microgrid sends about a thousand messages a second, and the
client library's conversion (`component_data_samples_from_proto`) builds a
`MetricSample` with a datetime, a `Bounds` list and an enum looked up through
`frequenz.core`'s deprecation-aware metaclass for every single value — most of the
integration's CPU time. The store needs much less: per metric the value (the
average of an aggregated one), the raw bounds ranges, and the latest state
snapshot. `telemetry_from_proto` reads exactly that straight from the protobuf
message, with enum members looked up in plain dicts built once.

The semantics are the client's: a sample without a value is left out (bounds
included), invalid bounds ranges (lower above upper) are dropped, unknown metric,
state and error numbers stay plain `int`s, and the latest state snapshot wins
(the first one on a tie). `telemetry_from_samples` gives the same message from the
client's own objects, so there is a single ingest path for both.

Beyond the client: an infinite value is read as NaN. It is no more a measurement
than NaN is, and everything downstream already treats NaN as "no value"; an
infinite power or capacity would otherwise reach sensors (which Home Assistant
refuses to write) and the power distribution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import logging
import math

from frequenz.api.common.v1alpha8.metrics import bounds_pb2
from frequenz.api.common.v1alpha8.microgrid.electrical_components import (
    electrical_components_pb2 as components_pb2,
)
from frequenz.client.microgrid.component import (
    ComponentDataSamples,
    ComponentErrorCode,
    ComponentStateCode,
)
from frequenz.client.microgrid.metrics import Metric
from google.protobuf.timestamp_pb2 import Timestamp

_LOGGER = logging.getLogger(__name__)

type Range = tuple[float | None, float | None]
"""One allowed range of a metric, `None` on an unbounded side."""

type MetricReading = tuple[Metric | int, float, tuple[Range, ...]]
"""A metric's value and its bounds ranges (a plain tuple: one is built per value)."""

_METRICS: dict[int, Metric] = {member.value: member for member in Metric}
_STATES: dict[int, ComponentStateCode] = {
    member.value: member for member in ComponentStateCode
}
_ERRORS: dict[int, ComponentErrorCode] = {
    member.value: member for member in ComponentErrorCode
}
_NO_DIAGNOSTICS: frozenset[ComponentErrorCode | int] = frozenset()
_TIMESTAMP_SECONDS_MIN = -62_135_596_800
_TIMESTAMP_SECONDS_MAX = 253_402_300_799
"""What protobuf's `Timestamp` accepts (years 1 to 9999)."""


@dataclass(frozen=True, slots=True)
class ComponentStates:
    """The states, warnings and errors of one state snapshot."""

    states: frozenset[ComponentStateCode | int]
    warnings: frozenset[ComponentErrorCode | int]
    errors: frozenset[ComponentErrorCode | int]


NO_STATES = ComponentStates(frozenset(), _NO_DIAGNOSTICS, _NO_DIAGNOSTICS)
"""No states known (yet, or any more)."""

_PLAIN_STATES: dict[tuple[int, ...], ComponentStates] = {}
"""Snapshots without warnings or errors, by their state codes in message order.

A component sends the same few states second after second: decoding hands out
one object per combination, and the store finds it unchanged by identity."""
_PLAIN_STATES_KEPT = 1024


@dataclass(frozen=True, slots=True)
class TelemetryMessage:
    """What the store keeps of one message: values with bounds, latest states."""

    component_id: int
    readings: list[MetricReading]
    """Samples that carry a value, in message order (a later one wins)."""
    states: ComponentStates | None = None
    """The message's latest state snapshot, `None` if it had none."""
    sampled_at: float | None = None
    """When the message's values were sampled (POSIX seconds; `None`: unknown).

    Taken from the first metric sample: a telemetry message is one sampling of
    the component. Readings of different components belong together when they
    were sampled at the same time, whenever they arrive (spec §4).
    """


def telemetry_from_proto(
    message: components_pb2.ElectricalComponentTelemetry,
) -> TelemetryMessage:
    """Read a telemetry message straight from its protobuf form."""
    metrics = _METRICS
    readings: list[MetricReading] = []
    for sample in message.metric_samples:
        variant = sample.value
        # Nearly every value is a simple one: read it first, and ask which kind
        # it is only when it reads 0.0 (an unset variant reads 0.0 as well).
        value = variant.simple_metric.value
        if value == 0.0:
            kind = variant.WhichOneof("metric_value_variant")
            if kind == "aggregated_metric":
                value = variant.aggregated_metric.avg_value
            elif kind != "simple_metric":  # no value: the client leaves it `None`
                continue
        if value - value != 0.0:  # ±inf (or NaN): no measurement
            value = math.nan
        number = sample.metric
        bounds = sample.bounds
        readings.append(
            (
                metrics.get(number, number),
                value,
                _ranges_from_proto(number, bounds) if bounds else (),
            )
        )
    snapshots = message.state_snapshots
    samples = message.metric_samples
    return TelemetryMessage(
        component_id=message.electrical_component_id,
        readings=readings,
        states=_latest_states_from_proto(snapshots) if snapshots else None,
        sampled_at=_sample_time(samples[0].sample_time) if samples else None,
    )


def _sample_time(timestamp: Timestamp) -> float | None:
    """A sample time in POSIX seconds, at microseconds as the client's datetimes.

    `Timestamp.ToMicroseconds() / 1e6`, without its Python-level call; an
    invalid timestamp raises `ValueError` as there (the message is dropped).
    """
    seconds, nanos = timestamp.seconds, timestamp.nanos
    if not (
        _TIMESTAMP_SECONDS_MIN <= seconds <= _TIMESTAMP_SECONDS_MAX
        and 0 <= nanos < 1_000_000_000
    ):
        raise ValueError(f"Invalid timestamp: {seconds} s, {nanos} ns")
    return _known_time((seconds * 1_000_000 + nanos // 1000) / 1e6)


def _known_time(posix_s: float) -> float | None:
    """A sample time, or `None` for an unset one (the epoch)."""
    return posix_s if posix_s > 0.0 else None


def _ranges_from_proto(
    metric: int, messages: Sequence[bounds_pb2.Bounds]
) -> tuple[Range, ...]:
    ranges: list[Range] = []
    for bounds in messages:
        lower = bounds.lower if bounds.HasField("lower") else None
        upper = bounds.upper if bounds.HasField("upper") else None
        if lower is not None and upper is not None and lower > upper:
            _LOGGER.debug(
                "Ignoring invalid bounds [%s, %s] of %s", lower, upper, metric
            )
            continue
        ranges.append((lower, upper))
    return tuple(ranges)


def _latest_states_from_proto(
    snapshots: Sequence[components_pb2.ElectricalComponentStateSnapshot],
) -> ComponentStates:
    latest = snapshots[0]
    if len(snapshots) > 1:  # compared at microseconds, as the client's datetimes
        latest = max(
            snapshots,
            key=lambda s: (s.origin_time.seconds, s.origin_time.nanos // 1000),
        )
    codes = latest.states
    warnings, errors = latest.warnings, latest.errors
    if not warnings and not errors:  # the usual case: one object per set of codes
        key = tuple(codes)
        known = _PLAIN_STATES.get(key)
        if known is None:
            if len(_PLAIN_STATES) >= _PLAIN_STATES_KEPT:
                _PLAIN_STATES.clear()
            known = _PLAIN_STATES[key] = ComponentStates(
                _state_codes(codes), _NO_DIAGNOSTICS, _NO_DIAGNOSTICS
            )
        return known
    return ComponentStates(
        states=_state_codes(codes),
        warnings=_diagnostics(warnings),
        errors=_diagnostics(errors),
    )


def _state_codes(codes: Sequence[int]) -> frozenset[ComponentStateCode | int]:
    """The state codes as the client's enum members (unknown: the number)."""
    return frozenset(map(_STATES.get, codes, codes, strict=True))


def _diagnostics(
    messages: Sequence[components_pb2.ElectricalComponentDiagnostic],
) -> frozenset[ComponentErrorCode | int]:
    if not messages:  # the usual case
        return _NO_DIAGNOSTICS
    codes = [message.diagnostic_code for message in messages]
    return frozenset(map(_ERRORS.get, codes, codes, strict=True))


def telemetry_from_samples(samples: ComponentDataSamples) -> TelemetryMessage:
    """Give the client's converted samples the same compact form."""
    readings: list[MetricReading] = []
    for sample in samples.metric_samples:
        value = sample.as_single_value()
        if value is None:
            continue
        if value - value != 0.0:  # ±inf (or NaN): no measurement
            value = math.nan
        ranges = tuple((bound.lower, bound.upper) for bound in sample.bounds)
        readings.append((sample.metric, value, ranges))
    states: ComponentStates | None = None
    if samples.states:
        latest = max(samples.states, key=lambda state: state.sampled_at)
        states = ComponentStates(latest.states, latest.warnings, latest.errors)
    sampled_at = (
        _known_time(samples.metric_samples[0].sampled_at.timestamp())
        if samples.metric_samples
        else None
    )
    return TelemetryMessage(int(samples.component_id), readings, states, sampled_at)
