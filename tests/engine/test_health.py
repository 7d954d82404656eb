"""Component health (spec §3): telemetry checks, back-off, the tracker."""

from __future__ import annotations

from datetime import UTC, datetime
import math

from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid.component import (
    ComponentDataSamples,
    ComponentErrorCode as Err,
    ComponentStateCode as State,
    ComponentStateSample,
)
from frequenz.client.microgrid.metrics import Metric, MetricSample
import pytest

from custom_components.frequenz_microgrid.engine.health import (
    NO_EV_CONNECTED,
    BlockingStatus,
    ComponentHealth,
    ComponentKind,
    ComponentStatus,
    HealthTracker,
    Reading,
    battery_problem,
    ev_charger_problem,
    pv_inverter_problem,
)
from custom_components.frequenz_microgrid.engine.results import (
    Error,
    PartialFailure,
    Request,
    Success,
)

GOOD_BATTERY = Reading(at=0.0, states=frozenset({State.READY, State.RELAY_CLOSED}))
GOOD_INVERTER = Reading(at=0.0, states=frozenset({State.STANDBY}))
EV_PLUGGED = frozenset(
    {
        State.READY,
        State.EV_CHARGING_CABLE_LOCKED_AT_EV,
        State.EV_CHARGING_CABLE_PLUGGED_AT_STATION,
    }
)
WORKING, UNCERTAIN, NOT_WORKING = (
    ComponentHealth.WORKING,
    ComponentHealth.UNCERTAIN,
    ComponentHealth.NOT_WORKING,
)


class TestBlockingStatus:
    def test_back_off_doubles_up_to_thirty_seconds(self) -> None:
        block = BlockingStatus()
        now = 0.0
        durations = []
        for _ in range(8):
            durations.append(block.block(now))
            now = block.blocked_until or now  # Fail again just as the block ends.
        assert durations == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]

    def test_failures_while_blocked_do_not_extend_the_block(self) -> None:
        block = BlockingStatus()
        assert block.block(10.0) == 1.0
        assert block.block(10.5) == 0.0
        assert block.blocked_until == 11.0
        assert block.is_blocked(10.999)
        assert not block.is_blocked(11.0)
        assert block.block(11.0) == 2.0

    def test_success_unblocks_and_resets(self) -> None:
        block = BlockingStatus()
        block.block(0.0)
        block.block(1.0)
        assert block.block(3.0) == 4.0
        block.unblock()
        assert not block.is_blocked(3.5)
        assert block.block(3.5) == 1.0

    def test_minimum_above_maximum_is_refused(self) -> None:
        with pytest.raises(ValueError, match="min_duration"):
            BlockingStatus(min_duration=5.0, max_duration=1.0)


class TestBatteryChecks:
    def test_ready_battery_with_closed_relay_and_standby_inverter_works(self) -> None:
        assert battery_problem(GOOD_BATTERY, 10_000.0, GOOD_INVERTER, 5.0) is None

    def test_warnings_are_fine_errors_are_not(self) -> None:
        warned = Reading(
            at=0.0,
            states=GOOD_BATTERY.states,
            warnings=frozenset({Err.OVERTEMPERATURE}),
        )
        assert battery_problem(warned, 1.0, GOOD_INVERTER, 0.0) is None
        failed = Reading(
            at=0.0, states=GOOD_BATTERY.states, errors=frozenset({Err.OVERTEMPERATURE})
        )
        assert battery_problem(failed, 1.0, GOOD_INVERTER, 0.0) == (
            "battery errors: OVERTEMPERATURE"
        )

    def test_open_relay_or_wrong_state_is_not_working(self) -> None:
        no_relay = Reading(at=0.0, states=frozenset({State.CHARGING}))
        assert battery_problem(no_relay, 1.0, GOOD_INVERTER, 0.0) == (
            "battery relay is not closed"
        )
        standby = Reading(at=0.0, states=frozenset({State.STANDBY, State.RELAY_CLOSED}))
        assert "battery state" in str(battery_problem(standby, 1.0, GOOD_INVERTER, 0.0))

    def test_unknown_capacity_is_not_working(self) -> None:
        for capacity in (None, math.nan, math.inf, -math.inf):
            assert battery_problem(GOOD_BATTERY, capacity, GOOD_INVERTER, 0.0) == (
                "battery capacity is unknown"
            )

    def test_data_is_fresh_for_ten_seconds(self) -> None:
        assert battery_problem(GOOD_BATTERY, 1.0, GOOD_INVERTER, 10.0) is None
        assert battery_problem(GOOD_BATTERY, 1.0, GOOD_INVERTER, 10.5) == (
            "battery data is 10 s old"
        )
        fresh_battery = Reading(at=20.0, states=GOOD_BATTERY.states)
        assert battery_problem(fresh_battery, 1.0, GOOD_INVERTER, 20.0) == (
            "inverter data is 20 s old"
        )

    def test_the_inverter_must_work_too(self) -> None:
        assert battery_problem(GOOD_BATTERY, 1.0, None, 0.0) == (
            "no data from the inverter"
        )
        off = Reading(at=0.0, states=frozenset({State.OFF}))
        assert battery_problem(GOOD_BATTERY, 1.0, off, 0.0) == "inverter state is OFF"
        broken = Reading(
            at=0.0, states=frozenset({State.READY}), errors=frozenset({Err.INTERNAL})
        )
        assert battery_problem(GOOD_BATTERY, 1.0, broken, 0.0) == (
            "inverter errors: INTERNAL"
        )


class TestEvChargerAndPvChecks:
    def test_connected_ready_charger_works(self) -> None:
        assert ev_charger_problem(Reading(at=0.0, states=EV_PLUGGED), 1.0) is None

    def test_the_cable_must_be_in_at_both_ends(self) -> None:
        at_station_only = Reading(
            at=0.0,
            states=frozenset({State.READY, State.EV_CHARGING_CABLE_PLUGGED_AT_STATION}),
        )
        assert ev_charger_problem(at_station_only, 0.0) == "no EV connected"
        unplugged = Reading(
            at=0.0, states=frozenset({State.READY, State.EV_CHARGING_CABLE_UNPLUGGED})
        )
        assert ev_charger_problem(unplugged, 0.0) == "no EV connected"

    def test_error_and_unauthorized_are_not_working(self) -> None:
        errored = Reading(at=0.0, states=EV_PLUGGED | {State.ERROR})
        assert "errors" in str(ev_charger_problem(errored, 0.0))
        unauthorized = Reading(
            at=0.0, states=EV_PLUGGED, warnings=frozenset({Err.UNAUTHORIZED})
        )
        assert ev_charger_problem(unauthorized, 0.0) == "EV charger is not authorized"

    def test_charger_must_be_ready_charging_or_discharging(self) -> None:
        standby = Reading(at=0.0, states=(EV_PLUGGED - {State.READY}) | {State.STANDBY})
        assert "state is" in str(ev_charger_problem(standby, 0.0))
        charging = Reading(
            at=0.0, states=(EV_PLUGGED - {State.READY}) | {State.CHARGING}
        )
        assert ev_charger_problem(charging, 0.0) is None

    def test_pv_inverter_in_standby_works_off_does_not(self) -> None:
        assert (
            pv_inverter_problem(Reading(at=0.0, states=frozenset({State.STANDBY})), 0.0)
            is None
        )
        off = Reading(at=0.0, states=frozenset({State.OFF}))
        assert pv_inverter_problem(off, 0.0) == "PV inverter state is OFF"
        assert pv_inverter_problem(None, 0.0) == "no data from the PV inverter"
        assert "old" in str(pv_inverter_problem(GOOD_INVERTER, 11.0))


UNPLUGGED = frozenset({State.READY, State.EV_CHARGING_CABLE_UNPLUGGED})
INTERNAL = frozenset({Err.INTERNAL})
UNAUTHORIZED = frozenset({Err.UNAUTHORIZED})


class TestExcluded:
    """One rule for "left out as broken": the binary sensors and repairs use it."""

    @pytest.mark.parametrize(
        ("reading", "idle"),
        [
            (Reading(at=0.0, states=UNPLUGGED), True),
            (Reading(at=0.0, states=UNPLUGGED - {State.READY}), True),
            (Reading(at=0.0, states=EV_PLUGGED), False),
            # A fault hides whether a vehicle is there: broken, not idle.
            (Reading(at=0.0, states=UNPLUGGED | {State.ERROR}), False),
            (Reading(at=0.0, states=UNPLUGGED, errors=INTERNAL), False),
            (Reading(at=0.0, states=UNPLUGGED, warnings=UNAUTHORIZED), False),
            (Reading(at=-11.0, states=UNPLUGGED), False),  # old data
            (None, False),
        ],
    )  # fmt: skip
    def test_only_a_fine_charger_without_a_vehicle_is_idle(
        self, reading: Reading | None, idle: bool
    ) -> None:
        assert (ev_charger_problem(reading, 0.0) == NO_EV_CONNECTED) is idle
        tracker = HealthTracker()
        tracker.add_ev_charger(5)
        if reading is not None:
            tracker.observe(5, reading)
        status = tracker.status(5, 0.0)
        assert status.idle is idle
        assert status.excluded is (status.health is not WORKING and not idle)

    def test_an_idle_charger_is_not_working_but_not_excluded(self) -> None:
        tracker = HealthTracker()
        tracker.add_ev_charger(5)
        tracker.observe(5, Reading(at=0.0, states=UNPLUGGED))
        status = tracker.status(5, 0.0)
        assert (status.health, status.excluded) == (NOT_WORKING, False)
        tracker.observe(5, Reading(at=1.0, states=EV_PLUGGED | {State.ERROR}))
        assert tracker.status(5, 1.0).excluded

    @pytest.mark.parametrize(
        ("health", "excluded"),
        [(WORKING, False), (UNCERTAIN, True), (NOT_WORKING, True)],
    )
    def test_batteries_and_pv_are_excluded_unless_working(
        self, health: ComponentHealth, excluded: bool
    ) -> None:
        for kind in (ComponentKind.BATTERY, ComponentKind.PV_INVERTER):
            status = ComponentStatus(1, kind, health, None, None)
            assert status.excluded is excluded
            assert not status.idle

    def test_a_battery_is_never_idle(self) -> None:
        tracker = tracker_with_two_batteries()
        tracker.observe(1, Reading(at=0.0, states=UNPLUGGED))
        assert tracker.status(1, 0.0).excluded
        assert not tracker.status(1, 0.0).idle


def tracker_with_two_batteries() -> HealthTracker:
    """Batteries 1 and 2 behind inverters 11 and 12, all good at t=0."""
    tracker = HealthTracker()
    tracker.add_battery(1, 11)
    tracker.add_battery(2, 12)
    for battery, inverter in ((1, 11), (2, 12)):
        tracker.observe(battery, GOOD_BATTERY, capacity=10_000.0)
        tracker.observe(inverter, GOOD_INVERTER)
    return tracker


def _request(ids: set[int]) -> Request:
    return Request(power=1_000.0, component_ids=frozenset(ids))


class TestHealthTracker:
    def test_everything_starts_not_working(self) -> None:
        tracker = HealthTracker()
        tracker.add_ev_charger(5)
        assert tracker.health(5, 0.0) is NOT_WORKING
        assert tracker.health(99, 0.0) is NOT_WORKING
        assert tracker.working({5, 99}, 0.0) == frozenset()

    def test_failed_command_makes_a_component_uncertain_until_the_block_ends(
        self,
    ) -> None:
        tracker = tracker_with_two_batteries()
        tracker.record_failure({1}, now=1.0)
        assert tracker.health(1, 1.5) is UNCERTAIN
        assert tracker.working({1, 2}, 1.5) == {2}
        assert tracker.health(1, 2.0) is WORKING

    def test_uncertain_components_are_used_when_none_works(self) -> None:
        tracker = tracker_with_two_batteries()
        tracker.record_failure({1, 2}, now=1.0)
        assert tracker.working({1, 2}, 1.5) == {1, 2}
        assert tracker.working({1}, 1.5) == {1}

    def test_results_block_failed_and_unblock_succeeded_components(self) -> None:
        tracker = tracker_with_two_batteries()
        tracker.record_failure({2}, now=0.0)
        failure = PartialFailure(
            request=_request({1, 2}),
            succeeded_power=500.0,
            succeeded_components={2},
            excess_power=0.0,
            failed_power=500.0,
            failed_components={1},
        )
        tracker.record_result(failure, now=0.5)
        assert tracker.health(1, 0.6) is UNCERTAIN
        assert tracker.health(2, 0.6) is WORKING
        success = Success(
            request=_request({1}),
            succeeded_power=500.0,
            succeeded_components={1},
            excess_power=0.0,
        )
        tracker.record_result(success, now=0.7)
        assert tracker.health(1, 0.7) is WORKING
        tracker.record_result(Error(request=_request({1, 2}), msg="x"), now=0.8)
        assert tracker.working({1, 2}, 0.8) == {1, 2}

    def test_a_failing_inverter_blocks_the_batteries_behind_it(self) -> None:
        tracker = tracker_with_two_batteries()
        tracker.record_failure({11}, now=0.0)
        assert tracker.health(1, 0.5) is UNCERTAIN
        assert tracker.health(2, 0.5) is WORKING

    def test_not_working_components_are_not_blocked(self) -> None:
        tracker = tracker_with_two_batteries()
        tracker.record_failure({1}, now=20.0)  # Data is 20 s old by then.
        assert tracker.status(1, 20.5).blocked_until is None
        tracker.observe(1, Reading(at=20.0, states=GOOD_BATTERY.states))
        tracker.observe(11, Reading(at=20.0, states=GOOD_INVERTER.states))
        assert tracker.health(1, 20.0) is WORKING

    def test_telemetry_recovery_lifts_the_block(self) -> None:
        tracker = tracker_with_two_batteries()
        tracker.record_failure({1}, now=0.0)
        tracker.observe(1, Reading(at=0.2, states=frozenset({State.ERROR})))
        assert tracker.health(1, 0.3) is NOT_WORKING
        tracker.observe(1, Reading(at=0.4, states=GOOD_BATTERY.states))
        assert tracker.health(1, 0.5) is WORKING

    @pytest.mark.parametrize("failed", [1, 11], ids=["battery", "inverter"])
    def test_good_telemetry_during_a_block_does_not_lift_it(self, failed: int) -> None:
        """Only a recovery lifts a block: telemetry that was good all along does not.

        Components stream several messages a second; if each good one lifted the
        block, a failed command would never keep a component out of the next tick.
        """
        tracker = tracker_with_two_batteries()
        tracker.record_failure({failed}, now=0.0)
        for at in (0.2, 0.4, 0.6, 0.8):
            tracker.observe(1, Reading(at=at, states=GOOD_BATTERY.states))
            tracker.observe(11, Reading(at=at, states=GOOD_INVERTER.states))
            assert tracker.health(1, at) is UNCERTAIN
            assert tracker.status(1, at).blocked_until == 1.0
        assert tracker.health(1, 1.0) is WORKING

    def test_stale_inverter_data_stops_the_battery(self) -> None:
        tracker = tracker_with_two_batteries()
        tracker.observe(1, Reading(at=15.0, states=GOOD_BATTERY.states))
        assert tracker.health(1, 15.0) is NOT_WORKING
        assert tracker.problem(1, 15.0) == "inverter data is 15 s old"
        tracker.observe(11, Reading(at=15.0, states=GOOD_INVERTER.states))
        assert tracker.health(1, 15.0) is WORKING

    def test_statuses_list_health_reason_and_block_expiry(self) -> None:
        tracker = tracker_with_two_batteries()
        tracker.add_pv_inverter(30)
        tracker.record_failure({2}, now=1.0)
        statuses = {s.component_id: s for s in tracker.statuses(1.5)}
        assert sorted(statuses) == [1, 2, 30]
        assert statuses[1].health is WORKING
        assert statuses[1].blocked_until is None
        assert statuses[2].health is UNCERTAIN
        assert statuses[2].blocked_until == 2.0
        assert statuses[30].kind is ComponentKind.PV_INVERTER
        assert statuses[30].problem == "no data from the PV inverter"
        with pytest.raises(KeyError):
            tracker.status(99, 0.0)

    def test_client_telemetry_messages_feed_straight_in(self) -> None:
        tracker = HealthTracker()
        tracker.add_battery(1, 11)
        t0 = datetime(2025, 1, 1, tzinfo=UTC)
        now = t0.timestamp()

        def message(cid: int, states: set[State], capacity: float | None) -> None:
            metrics = (
                []
                if capacity is None
                else [
                    MetricSample(
                        sampled_at=t0,
                        metric=Metric.BATTERY_CAPACITY,
                        value=capacity,
                        bounds=[],
                    )
                ]
            )
            tracker.observe_data(
                ComponentDataSamples(
                    component_id=ComponentId(cid),
                    metric_samples=metrics,
                    states=[
                        ComponentStateSample(
                            sampled_at=t0,
                            states=frozenset(states),
                            warnings=frozenset(),
                            errors=frozenset(),
                        )
                    ],
                )
            )

        message(1, {State.READY, State.RELAY_CLOSED}, None)
        message(11, {State.READY}, None)
        assert tracker.problem(1, now) == "battery capacity is unknown"
        message(1, {State.READY, State.RELAY_CLOSED}, 20_000.0)
        assert tracker.health(1, now + 10.0) is WORKING
        assert tracker.health(1, now + 10.5) is NOT_WORKING


def test_a_battery_registered_later_follows_its_inverter_seen_before() -> None:
    """Who depends on whose telemetry is kept; a new registration renews it."""
    tracker = HealthTracker()
    tracker.observe(2, GOOD_INVERTER)  # nobody depends on inverter 2 yet
    tracker.add_battery(3, 2)
    tracker.observe(3, GOOD_BATTERY, capacity=10_000.0)
    tracker.observe(2, Reading(at=0.5, states=GOOD_INVERTER.states))
    assert tracker.health(3, 1.0) is WORKING
    tracker.observe(2, Reading(at=1.5, states=frozenset({State.ERROR})))
    assert tracker.health(3, 2.0) is NOT_WORKING
    tracker.forget([3])
    tracker.add_battery(4, 2)
    tracker.observe(4, GOOD_BATTERY, capacity=10_000.0)
    assert tracker.health(4, 2.0) is NOT_WORKING  # inverter 2 is in ERROR
    tracker.observe(2, Reading(at=2.5, states=GOOD_INVERTER.states))
    assert tracker.health(4, 3.0) is WORKING
