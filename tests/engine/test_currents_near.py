"""`currents_near`: a charger's kept currents at the fuse meter's sample time."""

from __future__ import annotations

import math

from custom_components.frequenz_microgrid.engine.control.inputs import currents_near
from custom_components.frequenz_microgrid.engine.distribution.ev_fuse import (
    TimedCurrents,
)
from custom_components.frequenz_microgrid.engine.pools import CURRENT_PHASES
from custom_components.frequenz_microgrid.engine.telemetry import TelemetryStore
from custom_components.frequenz_microgrid.engine.telemetry_message import (
    MetricReading,
    TelemetryMessage,
)

CHARGER = 8


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _store_with_samples(*sampled: float) -> tuple[TelemetryStore, _Clock]:
    """A store keeping the charger's currents, one message per sample time."""
    clock = _Clock()
    store = TelemetryStore(clock=clock)
    store.keep_history([CHARGER], CURRENT_PHASES)
    for at in sampled:
        readings: list[MetricReading] = [
            (metric, at + phase, ()) for phase, metric in enumerate(CURRENT_PHASES)
        ]
        store.ingest_message(TelemetryMessage(CHARGER, readings, sampled_at=at))
    return store, clock


def _at(at: float) -> TimedCurrents:
    return TimedCurrents((at, at + 1.0, at + 2.0), at, at)


def test_the_reading_of_the_very_sample_time() -> None:
    store, _ = _store_with_samples(100.0, 101.0, 102.0)
    assert currents_near(store, CHARGER, 101.0, 90.0) == _at(101.0)
    assert currents_near(store, CHARGER, 102.0, 90.0) == _at(102.0)


def test_else_the_nearest_before_it_else_the_oldest_after_it() -> None:
    store, _ = _store_with_samples(100.0, 102.0, 104.0)
    assert currents_near(store, CHARGER, 103.0, 90.0) == _at(102.0)
    assert currents_near(store, CHARGER, 99.0, 90.0) == _at(100.0)
    assert currents_near(store, CHARGER, 110.0, 90.0) == _at(104.0)


def test_nothing_kept_before_since_counts() -> None:
    store, _ = _store_with_samples(100.0, 102.0, 104.0)
    # 100.0 is kept but older than `since`: the oldest one since then serves.
    assert currents_near(store, CHARGER, 100.0, 101.0) == _at(102.0)
    assert currents_near(store, CHARGER, 104.0, 105.0) is None


def test_a_stale_or_unknown_component_has_none() -> None:
    store, clock = _store_with_samples(100.0)
    assert currents_near(store, 99, 100.0, 90.0) is None
    clock.now += store.freshness_s + 1.0
    assert currents_near(store, CHARGER, 100.0, 90.0) is None


def test_a_missing_phase_is_nan() -> None:
    store, _ = _store_with_samples()
    store.ingest_message(
        TelemetryMessage(CHARGER, [(CURRENT_PHASES[0], 5.0, ())], sampled_at=100.0)
    )
    found = currents_near(store, CHARGER, 100.0, 90.0)
    assert found is not None
    assert found.currents_a[0] == 5.0
    assert math.isnan(found.currents_a[1])
    assert math.isnan(found.currents_a[2])
