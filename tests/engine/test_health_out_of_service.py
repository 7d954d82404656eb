"""Components outside their operational lifetime: left out of steering, not broken."""

from __future__ import annotations

from frequenz.client.microgrid.component import ComponentStateCode as State

from custom_components.frequenz_microgrid.engine.health import (
    OUT_OF_SERVICE,
    ComponentHealth,
    HealthTracker,
    Reading,
)

GOOD_BATTERY = Reading(at=0.0, states=frozenset({State.READY, State.RELAY_CLOSED}))
GOOD_INVERTER = Reading(at=0.0, states=frozenset({State.STANDBY}))


def _tracker() -> HealthTracker:
    """Two healthy battery pairs (inverters 10, 20; batteries 11, 21)."""
    tracker = HealthTracker()
    for inverter, battery in ((10, 11), (20, 21)):
        tracker.add_battery(battery, inverter)
        tracker.observe(inverter, GOOD_INVERTER)
        tracker.observe(battery, GOOD_BATTERY, capacity=10_000.0)
    return tracker


def test_out_of_service_components_never_count_as_working() -> None:
    tracker = _tracker()
    assert tracker.working([11, 21], 1.0) == {11, 21}  # judged fine (and cached)

    assert tracker.set_out_of_service([21])
    assert tracker.working([11, 21], 1.0) == {11}, "the cached judgement is dropped"
    status = tracker.status(21, 1.0)
    assert status.health is ComponentHealth.NOT_WORKING
    assert status.problem == OUT_OF_SERVICE
    assert status.out_of_service
    assert status.excluded, "left out of control …"
    assert tracker.is_out_of_service(21)
    assert not tracker.status(11, 1.0).out_of_service


def test_only_out_of_service_components_means_nothing_works() -> None:
    """Unlike a blocked component, it is not used as a last resort either."""
    tracker = _tracker()
    tracker.set_out_of_service([11, 21])
    assert tracker.working([11, 21], 1.0) == frozenset()


def test_back_in_service_and_unchanged_sets() -> None:
    tracker = _tracker()
    assert tracker.set_out_of_service([21])
    assert not tracker.set_out_of_service({21}), "same set: no change reported"
    assert tracker.set_out_of_service([])
    assert tracker.working([11, 21], 1.0) == {11, 21}
    assert not tracker.status(21, 1.0).out_of_service


def test_a_battery_behind_a_retired_inverter_is_out_of_service_too() -> None:
    """Its power would go through the inverter, which must get nothing."""
    tracker = _tracker()
    assert tracker.working([11, 21], 1.0) == {11, 21}
    assert tracker.set_out_of_service([20])
    assert tracker.working([11, 21], 1.0) == {11}
    assert tracker.status(21, 1.0).problem == OUT_OF_SERVICE
    assert tracker.set_out_of_service([])
    assert tracker.working([11, 21], 1.0) == {11, 21}
