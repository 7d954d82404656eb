"""What the controller feeds the health tracker from the telemetry store.

Beyond states and errors, a battery's values count: a capacity sent as NaN is
unknown now (not the last good one), and a battery whose SoC or SoC limits are
unknown is excluded with that reason, as the distribution cannot use it.
"""

from __future__ import annotations

import math

from frequenz.client.microgrid.component import ComponentStateCode as State

from custom_components.frequenz_microgrid.engine import members
from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.control.inputs import feed_health
from custom_components.frequenz_microgrid.engine.health import (
    ComponentHealth,
    HealthTracker,
)
from custom_components.frequenz_microgrid.engine.telemetry import TelemetryStore
from tests.engine.topologies import BATTERY_A, INVERTER_A, home_topology
from tests.observations import ManualClock, record, record_state

SOC_WINDOW = PowerBounds(10.0, 90.0)


def good_battery(store: TelemetryStore, *, soc: float = 50.0) -> None:
    record_state(store, BATTERY_A, {State.READY, State.RELAY_CLOSED})
    record_state(store, INVERTER_A, {State.READY})
    record(store, BATTERY_A, members.CAPACITY, 10_000.0)
    record(store, BATTERY_A, members.SOC, soc, SOC_WINDOW)


def judged(store: TelemetryStore, tracker: HealthTracker, now: float) -> str | None:
    topology = home_topology()
    for battery_id in topology.battery_ids:
        tracker.add_battery(battery_id, topology.inverters_of_battery(battery_id)[0])
    feed_health(tracker, topology, store, now, [BATTERY_A, INVERTER_A])
    return tracker.problem(BATTERY_A, now)


def test_a_battery_with_good_data_works() -> None:
    clock = ManualClock()
    store = TelemetryStore(clock=clock)
    tracker = HealthTracker()
    good_battery(store)
    assert judged(store, tracker, clock.now) is None
    assert tracker.health(BATTERY_A, clock.now) is ComponentHealth.WORKING


def test_a_capacity_turned_nan_is_unknown_not_the_last_good_one() -> None:
    clock = ManualClock()
    store = TelemetryStore(clock=clock)
    tracker = HealthTracker()
    good_battery(store)
    assert judged(store, tracker, clock.now) is None
    record(store, BATTERY_A, members.CAPACITY, math.nan)
    assert judged(store, tracker, clock.now) == "battery capacity is unknown"
    record(store, BATTERY_A, members.CAPACITY, 10_000.0)
    assert judged(store, tracker, clock.now) is None


def test_a_battery_without_a_soc_is_excluded_with_the_reason() -> None:
    clock = ManualClock()
    store = TelemetryStore(clock=clock)
    tracker = HealthTracker()
    good_battery(store)
    assert judged(store, tracker, clock.now) is None
    record(store, BATTERY_A, members.SOC, math.nan, SOC_WINDOW)
    assert judged(store, tracker, clock.now) == "battery SoC is unknown"
    assert tracker.health(BATTERY_A, clock.now) is ComponentHealth.NOT_WORKING
    record(store, BATTERY_A, members.SOC, 55.0, PowerBounds(math.nan, 90.0))
    assert judged(store, tracker, clock.now) == "battery SoC limits are unknown"
    record(store, BATTERY_A, members.SOC, 55.0, SOC_WINDOW)
    assert judged(store, tracker, clock.now) is None


def test_an_unbounded_soc_window_is_known() -> None:
    """No SoC limit sent (±inf) is a window the distribution can use."""
    clock = ManualClock()
    store = TelemetryStore(clock=clock)
    tracker = HealthTracker()
    good_battery(store)
    record(store, BATTERY_A, members.SOC, 50.0, PowerBounds(-math.inf, math.inf))
    assert judged(store, tracker, clock.now) is None
