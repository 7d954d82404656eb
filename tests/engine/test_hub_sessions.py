"""Charging sessions, occupancy and the energy-source split (engine.hub)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from frequenz.client.microgrid.component import ComponentStateCode
from hypothesis import given, settings, strategies as st
import pytest

from custom_components.frequenz_microgrid.engine.hub.attribution import (
    ev_source_shares,
)
from custom_components.frequenz_microgrid.engine.hub.occupancy import (
    actual_occupation,
    utilisation,
)
from custom_components.frequenz_microgrid.engine.hub.sessions import (
    ChargingSession,
    SessionChangeKind,
    SessionTracker,
)
from custom_components.frequenz_microgrid.engine.members import (
    AC_POWER,
    ENERGY_CONSUMED,
)
from custom_components.frequenz_microgrid.engine.snapshot import (
    BatteryPoolSnapshot,
    ComponentSnapshot,
    MicrogridSnapshot,
)

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
PLUGGED = frozenset(
    {
        ComponentStateCode.EV_CHARGING_CABLE_LOCKED_AT_EV,
        ComponentStateCode.EV_CHARGING_CABLE_LOCKED_AT_STATION,
    }
)
UNPLUGGED = frozenset({ComponentStateCode.EV_CHARGING_CABLE_UNPLUGGED})


def charger(
    cid: int,
    states: frozenset[ComponentStateCode] = PLUGGED,
    power_w: float | None = 0.0,
    counter_wh: float | None = None,
    *,
    fresh: bool = True,
) -> ComponentSnapshot:
    metrics = {}
    if power_w is not None:
        metrics[AC_POWER] = power_w
    if counter_wh is not None:
        metrics[ENERGY_CONSUMED] = counter_wh
    return ComponentSnapshot(
        component_id=cid,
        metrics=metrics if fresh else {},
        states=states if fresh else frozenset(),
        fresh=fresh,
    )


def snap(
    seconds: float,
    *chargers: ComponentSnapshot,
    grid_w: float | None = 0.0,
    pv_w: float | None = None,
    battery_w: float | None = None,
    reachable: bool = True,
) -> MicrogridSnapshot:
    return MicrogridSnapshot(
        taken_at=T0 + timedelta(seconds=seconds),
        reachable=reachable,
        grid_power_w=grid_w,
        pv_power_w=pv_w,
        battery=BatteryPoolSnapshot(power_w=battery_w),
        components={c.component_id: c for c in chargers},
    )


# --- attribution -------------------------------------------------------------


def test_pv_surplus_over_the_load_goes_to_the_evs_first() -> None:
    # Load = 2000 + 5000 - 0 - 4000 = 3000 W; surplus 2000 W of the EVs' 4000 W.
    shares = ev_source_shares(ev_demand_w=4000, grid_w=2000, pv_w=-5000, battery_w=0)
    assert shares.solar == pytest.approx(0.5)
    assert shares.battery == 0.0
    assert shares.grid == pytest.approx(0.5)


def test_battery_discharge_beyond_the_load_comes_next() -> None:
    # Load 3000 W all from PV (5000 W): surplus 2000 W, battery's 1500 W spare.
    shares = ev_source_shares(ev_demand_w=4000, grid_w=500, pv_w=-5000, battery_w=-1500)
    assert shares.solar == pytest.approx(2000 / 4000)
    assert shares.battery == pytest.approx(1500 / 4000)
    assert shares.grid == pytest.approx(500 / 4000)  # what the grid meter imports


def test_the_load_takes_pv_and_battery_before_the_evs() -> None:
    # Load = 4000 + 1000 + 1000 - 3000 = 3000 W > PV 1000 W + battery 1000 W.
    shares = ev_source_shares(
        ev_demand_w=3000, grid_w=4000, pv_w=-1000, battery_w=-1000
    )
    assert (shares.solar, shares.battery, shares.grid) == (0.0, 0.0, 1.0)


def test_an_unknown_grid_power_claims_no_green_energy() -> None:
    shares = ev_source_shares(ev_demand_w=3000, grid_w=None, pv_w=-9000, battery_w=0)
    assert (shares.solar, shares.battery, shares.grid) == (0.0, 0.0, 1.0)


finite_w = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(
    demand=st.floats(min_value=0, max_value=1e6),
    grid=finite_w,
    pv=st.floats(min_value=-1e6, max_value=0),
    battery=finite_w,
)
def test_shares_are_never_negative_and_add_up_to_one(
    demand: float, grid: float, pv: float, battery: float
) -> None:
    shares = ev_source_shares(
        ev_demand_w=demand, grid_w=grid, pv_w=pv, battery_w=battery
    )
    assert min(shares.solar, shares.battery, shares.grid) >= 0.0
    assert shares.solar + shares.battery + shares.grid == pytest.approx(1.0)


# --- sessions ----------------------------------------------------------------


def test_a_session_ends_when_its_charger_leaves_the_microgrid() -> None:
    """Found by a probe: it stayed open for good, and no `session_ended` fired."""
    tracker = SessionTracker([6, 7])
    tracker.update(snap(0, charger(6, power_w=0, counter_wh=1000)))
    tracker.update(snap(9, charger(6, power_w=4000, counter_wh=1010)))
    tracker.charger_ids = (7,)  # charger 6 was removed (topology refresh)
    ended = tracker.update(snap(10, charger(7, UNPLUGGED)))
    assert [(c.kind, c.session.charger_id) for c in ended] == [
        (SessionChangeKind.ENDED, 6)
    ]
    session = ended[0].session
    assert session.ended_at == T0 + timedelta(seconds=9)  # last seen plugged in
    assert session.energy_wh == pytest.approx(10.0)
    assert tracker.open == {}
    assert tracker.update(snap(11, charger(7, UNPLUGGED))) == []


def test_a_session_takes_its_energy_from_the_chargers_counter() -> None:
    tracker = SessionTracker([6, 7])
    # Plugged in, not charging yet; 5 kW PV, no other load: 5 kW exported.
    started = tracker.update(
        snap(
            0,
            charger(6, power_w=0, counter_wh=1000),
            charger(7, UNPLUGGED),
            grid_w=-5000,
            pv_w=-5000,
        )
    )
    assert [(c.kind, c.session.charger_id) for c in started] == [
        (SessionChangeKind.STARTED, 6)
    ]
    # 9 s later: 10 Wh taken (4 kW), still 5 kW PV and no other load: all solar.
    tracker.update(
        snap(9, charger(6, power_w=4000, counter_wh=1010), grid_w=-1000, pv_w=-5000)
    )
    # 9 s later: 15 Wh taken (6 kW over the interval), PV down to 1 kW, 600 W of
    # household load. Interval means: load 300 W, PV 3 kW, so a 2.7 kW surplus of
    # the 6 kW: 45 % solar (6.75 Wh), the rest grid (8.25 Wh).
    tracker.update(
        snap(18, charger(6, power_w=6000, counter_wh=1025), grid_w=5600, pv_w=-1000)
    )
    ended = tracker.update(
        snap(19, charger(6, UNPLUGGED, power_w=0, counter_wh=1025), grid_w=600)
    )
    assert [c.kind for c in ended] == [SessionChangeKind.ENDED]
    session = ended[0].session
    assert session.energy_wh == pytest.approx(25.0)
    assert session.solar_wh == pytest.approx(16.75)
    assert session.grid_wh == pytest.approx(8.25)
    assert session.battery_wh == 0.0
    assert session.peak_power_w == 6000
    assert session.started_at == T0
    assert session.ended_at == T0 + timedelta(seconds=19)
    assert session.energy_source == "meter"
    assert tracker.open == {}
    assert tracker.current_or_last(6) is session
    assert tracker.current_or_last(7) is None


def test_the_demand_of_an_interval_stays_within_the_measured_ev_power() -> None:
    """A starting EV counts at full power; a fast clock cannot inflate the demand."""
    tracker = SessionTracker([6])
    tracker.update(
        snap(0, charger(6, power_w=0, counter_wh=0), grid_w=-6000, pv_w=-6000)
    )
    # 30 Wh in 1 s would be 108 kW; the EV never drew more than 11 kW, and 6 kW of
    # PV surplus (no other load) covers 6/11 of that.
    tracker.update(
        snap(1, charger(6, power_w=11000, counter_wh=30), grid_w=5000, pv_w=-6000)
    )
    session = tracker.open[6]
    assert session.solar_wh == pytest.approx(30 * 6 / 11)
    assert session.grid_wh == pytest.approx(30 * 5 / 11)


def test_without_a_counter_the_power_is_integrated() -> None:
    tracker = SessionTracker([6])
    tracker.update(snap(0, charger(6, power_w=0)))
    tracker.update(snap(1, charger(6, power_w=3600)))  # trapezoid: 0.5 Wh
    tracker.update(snap(2, charger(6, power_w=3600)))  # 1 Wh
    tracker.update(
        snap(4, charger(6, UNPLUGGED, power_w=0))
    )  # 2 s from 3600 to 0: 1 Wh
    session = tracker.current_or_last(6)
    assert session is not None
    assert not session.is_open
    assert session.energy_wh == pytest.approx(2.5)
    assert session.energy_source == "integrated"


def test_a_silent_charger_is_not_an_unplug() -> None:
    tracker = SessionTracker([6])
    tracker.update(snap(0, charger(6, counter_wh=0)))
    tracker.update(snap(1, charger(6, counter_wh=5)))
    for second in range(2, 120):
        assert tracker.update(snap(second, charger(6, fresh=False))) == []
        assert tracker.update(snap(second, reachable=False)) == []
    assert actual_occupation(tracker).occupied == 1
    # Heard again, still plugged: the same session, the counter's increase counted.
    assert tracker.update(snap(120, charger(6, counter_wh=30))) == []
    session = tracker.open[6]
    assert session.started_at == T0
    assert session.energy_wh == pytest.approx(30.0)
    # Silent again, then heard unplugged: ends when it was last seen plugged in.
    tracker.update(snap(121, charger(6, fresh=False)))
    ended = tracker.update(snap(300, charger(6, UNPLUGGED, counter_wh=30)))
    assert ended[0].session.ended_at == T0 + timedelta(seconds=120)


def test_a_stored_session_keeps_the_energy_of_its_last_interval() -> None:
    tracker = SessionTracker([6])
    tracker.update(snap(0, charger(6, counter_wh=0)))
    tracker.update(snap(1, charger(6, counter_wh=3)))
    tracker.update(snap(2, charger(6, UNPLUGGED, counter_wh=5)))
    restored = SessionTracker([6])
    restored.restore(tracker.as_stored())
    assert [s.energy_wh for s in restored.ended] == [pytest.approx(5.0)]
    assert sum(row[1] for row in tracker.as_stored()["ended"][0]["profile"]) == (
        pytest.approx(5.0)
    )


def test_an_open_session_survives_a_restart_and_continues() -> None:
    before = SessionTracker([6, 7])
    before.update(snap(0, charger(6, counter_wh=100), charger(7, counter_wh=50)))
    before.update(snap(1, charger(6, counter_wh=110), charger(7, counter_wh=60)))
    before.update(
        snap(2, charger(6, UNPLUGGED, counter_wh=110), charger(7, counter_wh=70))
    )
    stored = before.as_stored()

    after = SessionTracker([6, 7])
    assert after.restore(stored) == []
    assert list(after.open) == [7]
    assert [s.energy_wh for s in after.ended] == [pytest.approx(10.0)]
    # Still plugged after the restart: continued (no new start), counter followed.
    assert (
        after.update(snap(60, charger(6, UNPLUGGED), charger(7, counter_wh=90))) == []
    )
    assert after.open[7].energy_wh == pytest.approx(40.0)
    assert after.open[7].started_at == T0


def test_a_session_whose_car_left_during_a_restart_ends_at_the_last_sighting() -> None:
    before = SessionTracker([7])
    before.update(snap(0, charger(7, counter_wh=0)))
    before.update(snap(5, charger(7, counter_wh=20)))
    after = SessionTracker([7])
    after.restore(before.as_stored())
    ended = after.update(snap(600, charger(7, UNPLUGGED, counter_wh=20)))
    assert [c.kind for c in ended] == [SessionChangeKind.ENDED]
    assert ended[0].session.ended_at == T0 + timedelta(seconds=5)
    assert ended[0].session.energy_wh == pytest.approx(20.0)


def test_malformed_stored_sessions_are_skipped_not_fatal() -> None:
    tracker = SessionTracker([6])
    problems = tracker.restore(
        {"ended": [{"charger_id": 6}, {"charger_id": 6, "started_at": "x"}], "open": []}
    )
    assert len(problems) == 2
    assert not tracker.ended


def test_only_the_last_sessions_are_kept() -> None:
    tracker = SessionTracker([6], kept=3)
    for n in range(5):
        tracker.update(snap(10 * n, charger(6)))
        tracker.update(snap(10 * n + 1, charger(6, UNPLUGGED)))
    assert [s.started_at for s in tracker.ended] == [
        T0 + timedelta(seconds=s) for s in (20, 30, 40)
    ]


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=22000),  # charger 6 power
            st.floats(min_value=0, max_value=22000),  # charger 7 power
            st.floats(min_value=-20000, max_value=0),  # PV
            st.floats(min_value=-10000, max_value=10000),  # battery
            st.floats(min_value=-5000, max_value=30000),  # grid
            st.booleans(),  # charger 7 silent
        ),
        min_size=1,
        max_size=40,
    )
)
def test_the_split_adds_up_to_the_session_energy(
    steps: list[tuple[float, float, float, float, float, bool]],
) -> None:
    tracker = SessionTracker([6, 7])
    counters = {6: 0.0, 7: 0.0}
    for second, (p6, p7, pv, battery, grid, silent) in enumerate(steps):
        counters[6] += p6 / 3600
        counters[7] += p7 / 3600
        tracker.update(
            snap(
                second,
                charger(6, power_w=p6, counter_wh=counters[6]),
                charger(7, power_w=p7, fresh=not silent),
                grid_w=grid,
                pv_w=pv,
                battery_w=battery,
            )
        )
    for session in tracker.sessions():
        parts = (session.solar_wh, session.battery_wh, session.grid_wh)
        assert min(parts) >= 0.0
        assert sum(parts) == pytest.approx(session.energy_wh)
        assert sum(s.energy_wh for s in session.profile.values()) == pytest.approx(
            session.energy_wh
        )
    assert tracker.open[6].energy_wh == pytest.approx(counters[6] - steps[0][0] / 3600)


# --- occupancy ---------------------------------------------------------------


def test_utilisation_is_the_share_of_charger_time_occupied() -> None:
    midnight = T0.replace(hour=0)
    sessions = [
        ChargingSession(
            charger_id=6,
            started_at=midnight - timedelta(hours=1),  # counts from midnight
            last_seen_connected=midnight + timedelta(hours=2),
            ended_at=midnight + timedelta(hours=2),
        ),
        ChargingSession(  # still open at `now`
            charger_id=7,
            started_at=midnight + timedelta(hours=3),
            last_seen_connected=midnight + timedelta(hours=4),
        ),
    ]
    now = midnight + timedelta(hours=4)
    # (2 h + 1 h) of 2 chargers × 4 h.
    assert utilisation(sessions, 2, midnight, now) == pytest.approx(3 / 8)
    assert utilisation(sessions, 0, midnight, now) is None
    assert utilisation(sessions, 2, now, now) is None


def test_occupancy_counts_chargers_with_an_ev_plugged_in() -> None:
    tracker = SessionTracker([6, 7, 8])
    tracker.update(snap(0, charger(6), charger(7, UNPLUGGED), charger(8)))
    occupancy = actual_occupation(tracker)
    assert (occupancy.occupied, occupancy.free, occupancy.total) == (2, 1, 3)


STORED = {
    "charger_id": 6,
    "started_at": "2026-12-04T08:00:00+00:00",
    "ended_at": "2026-12-04T09:00:00+00:00",
    "solar_wh": 0.0,
    "battery_wh": 0.0,
    "grid_wh": 6000.0,
    "peak_power_w": 7360.0,
    "counter": {"total_wh": 6000.0, "last_reading_wh": 91000.0},
}


@pytest.mark.parametrize(
    ("damaged", "field"),
    [
        ({"counter": "x"}, "counter"),
        ({"counter": [1]}, "counter"),
        ({"target_energy_wh": "abc"}, "target_energy_wh"),
        ({"target_energy_wh": -1}, "target_energy_wh"),
        ({"target_time": 5}, "target_time"),
        ({"target_time": "soon"}, "target_time"),
        ({"booking_id": ["b1"]}, "booking_id"),
        ({"booking_id": 1.5}, "booking_id"),
    ],
)
def test_a_damaged_optional_field_costs_only_itself(
    damaged: dict[str, object], field: str
) -> None:
    tracker = SessionTracker([6])
    repaired: list[str] = []
    assert tracker.restore({"ended": [{**STORED, **damaged}]}, repaired=repaired) == []
    [session] = tracker.ended
    assert session.energy_wh == pytest.approx(6000.0)
    record = session.record(T0)  # what events and reports show: no exception
    assert record["target_energy_kwh"] is None
    assert record["target_time"] is None
    assert record["booking_id"] is None
    [note] = repaired
    assert note.startswith(f"6-{int(T0.timestamp())}: {field} ")


def test_stored_fields_that_read_are_kept() -> None:
    """A booking id stored as a number is its digits; the rest as written."""
    tracker = SessionTracker([6])
    stored = {
        **STORED,
        "target_energy_wh": 5000,
        "target_time": "2026-12-04T10:00:00",
        "booking_id": 42,
    }
    repaired: list[str] = []
    assert tracker.restore({"ended": [stored]}, repaired=repaired) == []
    [session] = tracker.ended
    assert (session.target_energy_wh, session.booking_id) == (5000.0, "42")
    assert session.target_time == T0 + timedelta(hours=2)
    assert session.counter.last_reading_wh == 91000.0
    assert repaired == []


@pytest.mark.parametrize(
    "data",
    [["x"], "oops", {"open": None, "ended": 5}, {"ended": 5}],
)
def test_stored_sessions_of_the_wrong_shape_are_skipped_not_fatal(
    data: object,
) -> None:
    tracker = SessionTracker([6])
    problems = tracker.restore(data)
    assert problems
    assert not tracker.ended
    assert not tracker.open


def test_one_damaged_session_costs_only_itself() -> None:
    tracker = SessionTracker([6])
    damaged = [{**STORED, "grid_wh": "x"}, 5, {**STORED, "counter": "x"}]
    problems = tracker.restore({"ended": [*damaged, STORED]})
    assert len(problems) == 2
    assert [s.energy_wh for s in tracker.ended] == [pytest.approx(6000.0)] * 2
