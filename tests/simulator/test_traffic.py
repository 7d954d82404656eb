"""EV traffic: seeded arrivals, queues, departures, full batteries, session records."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
import dataclasses
import itertools
import json
from pathlib import Path
import random

from frequenz.client.microgrid import MicrogridApiClient
from frequenz.client.microgrid.metrics import Bounds, Metric
from hypothesis import given, settings, strategies as st
import pytest

from custom_components.frequenz_microgrid.engine.graph import load_topology
from custom_components.frequenz_microgrid.engine.hub.circuits import discover_circuits
from custom_components.frequenz_microgrid.simulator import (
    Distribution,
    EvArrival,
    EvSpec,
    EvTraffic,
    charging_hub_scenario,
    load_scenario,
    running_simulator,
)
from custom_components.frequenz_microgrid.simulator.cli import (
    apply_command,
    build_parser,
    traffic_from_args,
)
from custom_components.frequenz_microgrid.simulator.physics.ev_charger import (
    CHANGEOVER_S,
    EvSession,
)
from custom_components.frequenz_microgrid.simulator.physics.model import (
    MicrogridModel,
)
from custom_components.frequenz_microgrid.simulator.scenario import scenario_from_dict

from .conftest import EV_CHARGER_1, EV_CHARGER_2

DAY_S = 86_400.0


def assert_no_overlap(arrivals: Iterable[EvArrival]) -> None:
    """At each charger, every EV leaves a changeover before the next arrives."""
    by_charger: dict[int, list[EvArrival]] = defaultdict(list)
    for arrival in arrivals:
        by_charger[arrival.charger_id].append(arrival)
    for sessions in by_charger.values():
        sessions.sort(key=lambda a: a.arrive_at_s)
        for earlier, later in itertools.pairwise(sessions):
            assert earlier.depart_at_s is not None
            assert earlier.depart_at_s + CHANGEOVER_S <= later.arrive_at_s


def test_the_same_seed_gives_the_same_day_and_another_seed_another() -> None:
    first = charging_hub_scenario(chargers=20, sessions=60, seed=3).arrivals_until(
        DAY_S
    )
    again = charging_hub_scenario(chargers=20, sessions=60, seed=3).arrivals_until(
        DAY_S
    )
    other = charging_hub_scenario(chargers=20, sessions=60, seed=4).arrivals_until(
        DAY_S
    )
    assert first == again
    assert first != other
    assert len(first) == 60
    assert [a.arrive_at_s for a in first] == sorted(a.arrive_at_s for a in first)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    chargers=st.integers(1, 6),
    sessions=st.integers(0, 40),
)
def test_generated_sessions_never_overlap_at_a_charger(
    seed: int, chargers: int, sessions: int
) -> None:
    scenario = charging_hub_scenario(
        chargers=chargers, circuits=1, sessions=sessions, seed=seed
    )
    plan = scenario.traffic_plan()
    assert plan is not None
    arrivals = list(plan)
    assert_no_overlap(arrivals)
    # Every EV drawn either plugs in or drives on because all chargers are taken.
    assert len(arrivals) + plan.turned_away == sessions


def test_chargers_see_repeated_sessions_over_a_day() -> None:
    arrivals = charging_hub_scenario(chargers=10, sessions=40, seed=1).arrivals_until(
        DAY_S
    )
    per_charger: defaultdict[int, int] = defaultdict(int)
    for arrival in arrivals:
        per_charger[arrival.charger_id] += 1
    assert max(per_charger.values()) >= 3
    for arrival in arrivals:
        assert arrival.depart_at_s is not None
        assert 1800.0 <= arrival.depart_at_s - arrival.arrive_at_s <= 8 * 3600.0
        assert arrival.ev.phases in (1, 3)


def test_per_charger_traffic_follows_the_hours_and_goes_on_day_after_day() -> None:
    rates = [0.0] * 24
    rates[18] = 2.0  # arrivals only between 18:00 and 19:00
    traffic = EvTraffic(
        seed=5,
        arrivals_per_hour=tuple(rates),
        per_charger=True,
        stay_s=Distribution.constant(1800.0),
    )
    scenario = dataclasses.replace(load_scenario("home"), ev_traffic=traffic)
    listed = set(scenario.ev_arrivals)
    generated = [a for a in scenario.arrivals_until(7 * DAY_S) if a not in listed]
    days = {
        int((scenario.start_time_of_day_s + a.arrive_at_s) // DAY_S) for a in generated
    }
    assert len(days) >= 5  # repeated over the week, not just once
    for arrival in generated:
        time_of_day = (scenario.start_time_of_day_s + arrival.arrive_at_s) % DAY_S
        assert 18 * 3600 <= time_of_day < 19 * 3600
    assert_no_overlap(scenario.arrivals_until(7 * DAY_S))


def test_site_wide_traffic_turns_evs_away_when_every_charger_is_taken() -> None:
    traffic = EvTraffic(
        seed=2,
        arrivals_per_hour=(10.0,),
        sessions=20,
        end_s=3600.0,
        stay_s=Distribution.constant(4 * 3600.0),
    )
    scenario = dataclasses.replace(load_scenario("home"), ev_traffic=traffic)
    plan = scenario.traffic_plan()
    assert plan is not None
    generated = list(plan)
    # The listed EVs hold both chargers for a while; two chargers, 4 h stays.
    assert len(generated) <= 2
    assert plan.turned_away == 20 - len(generated)
    assert_no_overlap([*scenario.ev_arrivals, *generated])


def test_an_ev_arriving_at_a_taken_charger_waits_for_it() -> None:
    """Listed EVs queue: the next plugs in a changeover after the first left."""
    first = EvArrival(EV_CHARGER_1, 10.0, EvSpec(), depart_at_s=100.0)
    waits = EvArrival(EV_CHARGER_1, 50.0, EvSpec(soc_pct=77.0), depart_at_s=1000.0)
    gives_up = EvArrival(EV_CHARGER_2, 5.0, EvSpec(), depart_at_s=None)
    too_late = EvArrival(EV_CHARGER_2, 6.0, EvSpec(), depart_at_s=300.0)
    scenario = dataclasses.replace(
        load_scenario("home"), ev_arrivals=(first, waits, gives_up, too_late)
    )
    model = MicrogridModel(scenario)
    charger = model.component(EV_CHARGER_1).ev_charger
    assert charger is not None

    def session_at(time_s: float) -> EvSession | None:
        model.advance_to(time_s)
        return charger.session

    assert session_at(100.0 + CHANGEOVER_S - 1.0) is None  # the first left at 100 s
    waiting = session_at(100.0 + CHANGEOVER_S)
    assert waiting is not None
    assert waiting.ev.soc_pct == 77.0
    assert waiting.plugged_at_s == 100.0 + CHANGEOVER_S
    assert session_at(2000.0) is None
    records = [r for r in model.finished_sessions if r.charger_id == EV_CHARGER_1]
    assert [(r.plugged_at_s, r.unplugged_at_s) for r in records] == [
        (10.0, 100.0),
        (160.0, 1000.0),
    ]
    # The EV at the driveway never leaves: the one behind it gives up.
    driveway = model.component(EV_CHARGER_2).ev_charger
    assert driveway is not None
    assert driveway.session is not None
    assert driveway.session.plugged_at_s == 5.0


def test_an_ev_tapers_and_stops_charging_when_full() -> None:
    model = MicrogridModel(load_scenario("home"))
    model.plug_ev(
        EV_CHARGER_1, EvSpec(capacity_wh=20_000, soc_pct=95.0, max_current_a=32)
    )
    model.set_active_power(EV_CHARGER_1, 32 * 230 * 3, lifetime_s=900)
    charger = model.component(EV_CHARGER_1).ev_charger
    assert charger is not None
    model.advance_to(5.0)
    assert 1.0 <= charger.current_a < 32.0 * 0.25 + 1e-9  # 95 %: a quarter at most
    for minute in range(1, 4 * 60):  # the charger renews its setpoint every minute
        model.set_active_power(EV_CHARGER_1, 32 * 230 * 3, lifetime_s=900)
        model.advance_to(minute * 60.0)
    assert charger.session is not None
    assert charger.session.full
    assert charger.session.soc_pct == 100.0
    assert charger.current_a == 0.0
    assert model.component(EV_CHARGER_1).active_power_w == 0.0


def test_a_session_record_matches_the_chargers_energy_counter() -> None:
    model = MicrogridModel(load_scenario("home"))
    runtime = model.component(EV_CHARGER_2)
    before = runtime.energy.consumed_wh
    model.plug_ev(EV_CHARGER_2, EvSpec(phases=1, soc_pct=20.0), departs_at_s=600.0)
    model.set_active_power(EV_CHARGER_2, 16 * 230 * 3, lifetime_s=900)
    model.advance_to(700.0)
    record = model.finished_sessions[-1]
    assert record.charger_id == EV_CHARGER_2
    assert record.unplugged_at_s == 600.0
    # 16 A on one phase from the lock (2 s) to the departure.
    assert record.charged_wh == pytest.approx(16 * 230 * 598 / 3600)
    assert runtime.energy.consumed_wh - before == pytest.approx(record.charged_wh)
    assert record.soc_at_departure_pct > record.soc_at_arrival_pct


def test_the_home_demo_shows_a_session_within_minutes() -> None:
    scenario = load_scenario("home")
    first = scenario.arrivals_until(DAY_S)[0]
    assert first.arrive_at_s <= 180.0
    model = MicrogridModel(scenario)
    model.set_active_power(first.charger_id, 11_040.0, lifetime_s=900)
    model.advance_to(first.arrive_at_s + 600.0)
    charger = model.component(first.charger_id).ev_charger
    assert charger is not None
    assert charger.session is not None
    assert charger.current_a > 0.0
    # It leaves and comes back the same afternoon, and again on later days.
    day = [
        a for a in scenario.arrivals_until(DAY_S) if a.charger_id == first.charger_id
    ]
    assert len(day) >= 2
    assert len(scenario.arrivals_until(7 * DAY_S)) > len(scenario.arrivals_until(DAY_S))


def test_the_depot_garage_has_its_own_traffic() -> None:
    scenario = load_scenario("depot")
    garage = {c.id for c in scenario.children(50)}
    generated = [
        a for a in scenario.arrivals_until(DAY_S) if a not in set(scenario.ev_arrivals)
    ]
    assert generated
    assert {a.charger_id for a in generated} <= garage
    assert min(a.arrive_at_s for a in generated) >= 1800.0
    assert_no_overlap(scenario.arrivals_until(DAY_S))


def test_a_scenario_file_describes_its_traffic(tmp_path: Path) -> None:
    data = json.loads(
        (
            Path(load_scenario.__code__.co_filename).parent / "scenarios" / "home.json"
        ).read_text(encoding="utf-8")
    )
    data["ev_traffic"] = {
        "seed": 9,
        "arrivals_per_hour": 3,
        "sessions": 4,
        "end_s": 7200,
        "chargers": [7],
        "capacity_wh": 50000,
        "soc_pct": {"uniform": [20, 30]},
        "stay_s": {"normal": [600, 60], "min": 300, "max": 900},
        "phases": [1],
        "max_current_a": [16],
    }
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.ev_traffic is not None
    assert scenario.ev_traffic.seed == 9
    generated = [a for a in scenario.arrivals_until(DAY_S) if a.charger_id == 7]
    generated = [a for a in generated if a not in scenario.ev_arrivals]
    assert generated
    for arrival in generated:
        assert arrival.ev.capacity_wh == 50_000.0
        assert 20.0 <= arrival.ev.soc_pct <= 30.0
        assert arrival.ev.phases == 1
        assert arrival.depart_at_s is not None
        assert 300.0 <= arrival.depart_at_s - arrival.arrive_at_s <= 900.0


@pytest.mark.parametrize(
    ("traffic", "message"),
    [
        ({"arrivals_per_hour": [1.0] * 23}, "1 or 24"),
        ({"arrivals_per_hour": -1}, "≥ 0"),
        ({"sessions": 5}, "sessions needs end_s"),
        ({"chargers": [1]}, "not EV chargers"),
        ({"soc_pct": {"uniform": [1, 2], "normal": [1, 2]}}, "cannot read|exactly one"),
        ({"stay_s": "long"}, "cannot read"),
    ],
)
def test_bad_traffic_is_refused_when_the_scenario_loads(
    traffic: dict[str, object], message: str
) -> None:
    data = {
        "name": "bad",
        "topology": [
            {"id": 1, "kind": "grid", "fuse_current_a": 40},
            {"id": 2, "kind": "meter", "parent": 1},
            {"id": 3, "kind": "ev_charger", "parent": 2},
        ],
        "ev_traffic": traffic,
    }
    with pytest.raises(ValueError, match=message):
        scenario_from_dict(data)


def test_a_distribution_draws_within_its_clip() -> None:
    rng = random.Random(1)
    normal = Distribution(normal=(0.0, 100.0), low=-1.0, high=1.0)
    assert all(-1.0 <= normal.draw(rng) <= 1.0 for _ in range(200))
    assert Distribution.constant(3.0).draw(rng) == 3.0
    with pytest.raises(ValueError, match="exactly one"):
        Distribution()


def test_command_line_sets_the_traffic() -> None:
    home = load_scenario("home")
    args = build_parser().parse_args(["--ev-rate", "6", "--ev-seed", "42"])
    traffic = traffic_from_args(home, args).ev_traffic
    assert traffic is not None
    assert traffic.arrivals_per_hour == (6.0,)
    assert traffic.seed == 42
    assert not traffic.per_charger
    off = traffic_from_args(home, build_parser().parse_args(["--ev-rate", "0"]))
    assert off.ev_traffic is None
    reseeded = traffic_from_args(home, build_parser().parse_args(["--ev-seed", "3"]))
    assert reseeded.ev_traffic is not None
    assert reseeded.ev_traffic.seed == 3
    assert reseeded.ev_traffic.per_charger  # the scenario's own model, reseeded


async def test_command_line_plugs_an_ev_and_lists_sessions() -> None:
    async with running_simulator(
        load_scenario("home"), speed=1.0, sample_period_s=0.5
    ) as sim:
        await apply_command(sim, "plug 7 35 600")
        session = sim.model.component(7).ev_charger.session  # type: ignore[union-attr]
        assert session is not None
        assert session.ev.soc_pct == 35.0
        assert session.departs_at_s == pytest.approx(sim.model.now_s + 600.0, abs=1.0)
        listing = await apply_command(sim, "evs")
        assert "charger 7: plugged" in listing
        assert "soc=35.0%" in listing
        await apply_command(sim, "unplug 7")
        assert "1 sessions finished" in await apply_command(sim, "evs")


async def test_a_feeder_meter_reports_its_fuse_as_rated_current() -> None:
    async with running_simulator(load_scenario("depot"), speed=1.0) as sim:
        client = MicrogridApiClient(sim.url)
        try:
            components = {int(c.id): c for c in await client.list_components()}
        finally:
            await client.disconnect()
    garage = components[50]
    for metric in (
        Metric.AC_CURRENT_PHASE_1,
        Metric.AC_CURRENT_PHASE_2,
        Metric.AC_CURRENT_PHASE_3,
    ):
        assert garage.rated_bounds[metric] == Bounds(lower=-80.0, upper=80.0)
    assert Metric.AC_CURRENT_PHASE_1 not in components[2].rated_bounds  # no rating


def test_sessions_start_and_end_on_time_however_the_model_is_advanced() -> None:
    """Arrivals, queue changeovers and departures split steps exactly."""
    scenario = charging_hub_scenario(chargers=3, circuits=1, sessions=15, seed=8)

    def sessions(hop_s: float) -> list[tuple[int, float, float]]:
        model = MicrogridModel(scenario)
        now = 0.0
        while now < DAY_S:
            now = min(DAY_S, now + hop_s)
            model.advance_to(now)
        return sorted(
            (r.charger_id, r.plugged_at_s, r.unplugged_at_s)
            for r in model.finished_sessions
        )

    in_one_go = sessions(DAY_S)
    assert len(in_one_go) >= 10
    assert sessions(37.0) == in_one_go
    planned = [
        (a.charger_id, a.arrive_at_s, a.depart_at_s)
        for a in scenario.arrivals_until(DAY_S)
        if a.depart_at_s is not None and a.depart_at_s <= DAY_S
    ]
    assert in_one_go == sorted(planned)


async def test_the_engine_discovers_the_depot_garage_as_a_circuit() -> None:
    async with running_simulator(load_scenario("depot"), speed=1.0) as sim:
        client = MicrogridApiClient(sim.url)
        try:
            topology = await load_topology(client)
        finally:
            await client.disconnect()
    [garage] = discover_circuits(topology)
    assert garage.meter_id == 50
    assert garage.phase_limit_a == 80.0
    assert garage.charger_ids == frozenset(range(51, 61))
