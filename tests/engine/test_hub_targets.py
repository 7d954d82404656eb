"""Deadline targets (issue 16 §1): validation, LLF, forecast, guarantee."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
import itertools
import math

from hypothesis import assume, example, given, settings, strategies as st
import pytest

from custom_components.frequenz_microgrid.engine.distribution.ev_chargers import (
    PHASES,
    CircuitCapacity,
    EvAllocationReason,
    EvAllocatorConfig,
    EvChargerAllocator,
    EvChargerInput,
)
from custom_components.frequenz_microgrid.engine.hub.circuits import (
    Circuit,
    CircuitTree,
)
from custom_components.frequenz_microgrid.engine.hub.envelope import (
    LimitEnvelope,
    LimitStep,
)
from custom_components.frequenz_microgrid.engine.hub.limits import CircuitLimits
from custom_components.frequenz_microgrid.engine.hub.modes import (
    ChargerMode,
    ChargerModes,
)
from custom_components.frequenz_microgrid.engine.hub.reservations import (
    ReservationBook,
    charger_capacities,
)
from custom_components.frequenz_microgrid.engine.hub.target_forecast import (
    CircuitBudget,
    ForecastCar,
    circuit_budgets,
    forecast,
    laxity_s,
)
from custom_components.frequenz_microgrid.engine.hub.targets import (
    DEADLINE_FALLBACK_LAXITY_S,
    ENERGY_DRIFT_WH,
    FORECAST_MAX_AGE_S,
    OTHERS_CHANGE_W,
    ChargingTarget,
    ChargingTargets,
    InvalidTargetError,
    TargetGuarantee,
    TargetProblem,
    validate_target,
)

SLACK = 1e-6
VOLTAGE = 230.0
W_PER_A = 3 * VOLTAGE
NOW = 1_800_000_000.0
NOW_DT = datetime.fromtimestamp(NOW, UTC)
HOUR = 3600.0


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ev(cid: int, laxity: float | None = None, **kwargs: object) -> EvChargerInput:
    fields: dict[str, object] = {"ev_connected": True, "voltage_v": VOLTAGE}
    fields.update(kwargs)
    return EvChargerInput(component_id=cid, laxity_s=laxity, **fields)  # type: ignore[arg-type]


def target(
    charger: int = 1, kwh: float | None = 10.0, hours: float = 2.0, **kwargs: object
) -> ChargingTarget:
    return ChargingTarget(
        charger_id=charger,
        energy_wh=None if kwh is None else kwh * 1000.0,
        departure=NOW_DT + timedelta(hours=hours),
        **kwargs,  # type: ignore[arg-type]
    )


# -- validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "problem", "extra"),
    [
        (target(charger=9), TargetProblem.UNKNOWN_CHARGER, {}),
        (target(kwh=None), TargetProblem.NO_AMOUNT, {}),
        (target(soc_pct=80.0), TargetProblem.BOTH_AMOUNTS, {}),
        (target(kwh=math.nan), TargetProblem.NOT_FINITE, {}),
        (target(kwh=math.inf), TargetProblem.NOT_FINITE, {}),
        (target(kwh=0.0), TargetProblem.ENERGY_NOT_POSITIVE, {}),
        (target(kwh=-3.0), TargetProblem.ENERGY_NOT_POSITIVE, {}),
        (target(kwh=80.0), TargetProblem.ABOVE_CAPACITY, {"capacity_wh": 60_000.0}),
        (target(kwh=None, soc_pct=120.0), TargetProblem.SOC_OUT_OF_RANGE, {}),
        (target(kwh=None, soc_pct=0.0), TargetProblem.SOC_OUT_OF_RANGE, {}),
        (target(kwh=None, soc_pct=80.0), TargetProblem.SOC_NOT_REPORTED, {}),
        (target(hours=-1.0), TargetProblem.DEPARTURE_IN_PAST, {}),
        (target(hours=0.0), TargetProblem.DEPARTURE_IN_PAST, {}),
        (target(hours=24 * 8), TargetProblem.DEPARTURE_TOO_FAR, {}),
        (
            ChargingTarget(
                charger_id=1, energy_wh=1000.0, departure=datetime(2027, 1, 1, 12)
            ),
            TargetProblem.DEPARTURE_NOT_AWARE,
            {},
        ),
    ],
)
def test_bad_targets_are_refused_naming_the_problem(
    bad: ChargingTarget, problem: TargetProblem, extra: dict[str, float]
) -> None:
    with pytest.raises(InvalidTargetError) as caught:
        validate_target(
            bad, now=NOW_DT, charger_ids={1, 2}, capacity_wh=extra.get("capacity_wh")
        )
    assert caught.value.problem is problem


def test_a_valid_target_passes_and_round_trips() -> None:
    good = target(kwh=20.0, booking_id="r1")
    assert validate_target(good, now=NOW_DT, charger_ids={1}) is good
    assert ChargingTarget.from_dict(good.as_dict()) == good
    soc = target(kwh=None, soc_pct=80.0)
    assert validate_target(soc, now=NOW_DT, charger_ids={1}, soc_reported=True) is soc


def test_laxity_is_slack_before_departure() -> None:
    # 11 kWh at 11 kW take an hour; two hours left: an hour of slack.
    assert laxity_s(11_000.0, NOW + 2 * HOUR, NOW, 11_000.0) == pytest.approx(HOUR)
    assert laxity_s(0.0, NOW + HOUR, NOW, 11_000.0) == math.inf
    assert laxity_s(1.0, NOW + HOUR, NOW, 0.0) == -math.inf
    assert laxity_s(33_000.0, NOW + HOUR, NOW, 11_000.0) < 0.0


# -- the allocator's stage ----------------------------------------------------------


def test_with_scarce_power_the_least_laxity_car_is_served_first() -> None:
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=32.0))
    allocation = allocator.allocate(
        1e9, [ev(1, laxity=4 * HOUR), ev(2, laxity=600.0), ev(3)], now=0.0
    )
    currents = {cid: s.current_a for cid, s in allocation.setpoints.items()}
    # Forced minimums (6 A each), then the urgent car takes the rest.
    assert currents == pytest.approx({1: 6.0, 2: 20.0, 3: 6.0})
    assert max(allocation.phase_currents_a) <= 32.0 + SLACK


def test_the_next_laxity_gets_what_the_first_leaves() -> None:
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=50.0))
    allocation = allocator.allocate(
        1e9,
        [ev(1, laxity=4 * HOUR), ev(2, laxity=600.0, max_current_a=16.0), ev(3)],
        now=0.0,
    )
    currents = {cid: s.current_a for cid, s in allocation.setpoints.items()}
    assert currents == pytest.approx({1: 28.0, 2: 16.0, 3: 6.0})


def test_equal_laxity_shares_equally_and_without_targets_nothing_changes() -> None:
    config = EvAllocatorConfig(phase_limit_a=40.0)
    equal = EvChargerAllocator(config).allocate(
        1e9, [ev(1, laxity=HOUR), ev(2, laxity=HOUR + 60.0), ev(3)], now=0.0
    )
    assert equal.setpoints[1].current_a == pytest.approx(17.0)
    assert equal.setpoints[2].current_a == pytest.approx(17.0)
    plain = EvChargerAllocator(config).allocate(1e9, [ev(1), ev(2), ev(3)], now=0.0)
    assert [s.current_a for s in plain.setpoints.values()] == pytest.approx(
        [40 / 3] * 3
    )


def test_boost_comes_before_a_target_and_priority_after() -> None:
    config = EvAllocatorConfig(phase_limit_a=50.0, priorities={3: 2})
    allocation = EvChargerAllocator(config).allocate(
        1e9,
        [ev(1, laxity=60.0), ev(2, boost=True), ev(3), ev(4)],
        now=0.0,
    )
    currents = {cid: s.current_a for cid, s in allocation.setpoints.items()}
    assert currents == pytest.approx({1: 6.0, 2: 32.0, 3: 6.0, 4: 6.0})
    roomier = EvChargerAllocator(config).allocate(
        1e9, [ev(1, laxity=60.0), ev(3), ev(4)], now=0.0
    )
    currents = {cid: s.current_a for cid, s in roomier.setpoints.items()}
    assert currents == pytest.approx({1: 32.0, 3: 12.0, 4: 6.0})


def test_a_feeder_limit_wins_over_a_deadline() -> None:
    feeder = CircuitCapacity("garage", frozenset({1, 2}), (20.0, 20.0, 20.0))
    allocation = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=63.0)).allocate(
        1e9,
        [ev(1, laxity=-HOUR), ev(2, laxity=5 * HOUR), ev(3)],
        now=0.0,
        circuits=[feeder],
    )
    currents = {cid: s.current_a for cid, s in allocation.setpoints.items()}
    assert currents == pytest.approx({1: 14.0, 2: 6.0, 3: 32.0})
    assert allocation.setpoints[1].reason is EvAllocationReason.PHASE_LIMIT


@st.composite
def llf_sites(
    draw: st.DrawFn,
) -> tuple[list[EvChargerInput], list[CircuitCapacity], float | None]:
    """Chargers with random laxities, boosts and phases, behind random feeders."""
    count = draw(st.integers(min_value=1, max_value=8))
    chargers = [
        EvChargerInput(
            component_id=cid,
            ev_connected=True,
            phases=draw(st.sampled_from([(1, 2, 3), (1, 2, 3), (1,), (2,), (3,)])),
            max_current_a=draw(st.sampled_from([16.0, 32.0, 10.0])),
            voltage_v=VOLTAGE,
            boost=draw(st.sampled_from([False, False, False, True])),
            laxity_s=draw(
                st.none()
                | st.floats(min_value=-2 * HOUR, max_value=10 * HOUR)
                | st.just(-math.inf)
            ),
        )
        for cid in range(1, count + 1)
    ]
    ids = list(range(1, count + 1))
    circuits = []
    for index in range(draw(st.integers(min_value=0, max_value=3))):
        members = draw(st.sets(st.sampled_from(ids), min_size=1))
        fuse = draw(st.floats(min_value=0.0, max_value=80.0))
        power = draw(st.just(math.inf) | st.floats(min_value=0.0, max_value=60_000.0))
        circuits.append(
            CircuitCapacity(f"c{index}", frozenset(members), (fuse, fuse, fuse), power)
        )
    root = draw(st.none() | st.floats(min_value=0.0, max_value=120.0))
    return chargers, circuits, root


@settings(max_examples=300, deadline=None)
@given(llf_sites(), st.floats(min_value=0.0, max_value=200_000.0))
def test_llf_never_exceeds_any_circuit_on_any_phase(
    site: tuple[list[EvChargerInput], list[CircuitCapacity], float | None],
    pool_target: float,
) -> None:
    chargers, circuits, root = site
    allocation = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=root)).allocate(
        pool_target, chargers, 0.0, circuits=circuits
    )
    for circuit in circuits:
        held = circuit.sanitized()
        currents = allocation.currents_of(circuit.charger_ids)
        for phase in PHASES:
            assert currents[phase - 1] <= held.phase_capacity_a[phase - 1] + SLACK
        assert allocation.power_of(circuit.charger_ids) <= held.power_capacity_w + 1e-3
    if root is not None:
        assert max(allocation.phase_currents_a) <= root + SLACK
    assert allocation.total_power_w <= pool_target + 1e-3
    by_id = {c.component_id: c for c in chargers}
    for cid, setpoint in allocation.setpoints.items():
        assert setpoint.current_a == 0.0 or (
            by_id[cid].min_current_a - SLACK
            <= setpoint.current_a
            <= by_id[cid].max_current_a + SLACK
        )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.none() | st.floats(min_value=-HOUR, max_value=10 * HOUR),
        min_size=2,
        max_size=6,
    ),
    st.floats(min_value=12.0, max_value=200.0),
)
@example(laxities=[300.0, -4.65e-240], fuse=13.0)  # on the tolerance's edge
def test_least_laxity_is_filled_first_and_equal_laxity_shares(
    laxities: list[float | None], fuse: float
) -> None:
    """One shared three-phase fuse: served in laxity order, ties share."""
    chargers = [ev(cid, laxity=lax) for cid, lax in enumerate(laxities, start=1)]
    config = EvAllocatorConfig(phase_limit_a=fuse, laxity_tolerance_s=300.0)
    allocation = EvChargerAllocator(config).allocate(1e9, chargers, 0.0)
    current = {cid: s.current_a for cid, s in allocation.setpoints.items()}
    charging = [c for c in chargers if current[c.component_id] > 0.0]
    for first, second in itertools.permutations(charging, 2):
        a, b = first.laxity_s, second.laxity_s
        # As the allocator groups: more than the tolerance apart (b − a, in
        # floats: a < b − 300 differs where a tiny a vanishes in b − a).
        urgent = a is not None and (b is None or b - a > 300.0)
        if urgent:
            # The less urgent car gets more than its minimum only once the
            # more urgent one is at its maximum.
            assert (
                current[second.component_id] <= second.min_current_a + SLACK
                or current[first.component_id] >= first.max_current_a - SLACK
            )
    # Equal laxity → equal split (same limits, same stage).
    for first, second in itertools.combinations(charging, 2):
        if first.laxity_s == second.laxity_s:
            assert current[first.component_id] == pytest.approx(
                current[second.component_id]
            )


def _run_targets(
    needs_kwh: list[float],
    hours: list[float],
    fuse: float,
    step_s: float = 60.0,
    *,
    llf: bool = True,
) -> tuple[list[float], list[float]]:
    """Drive the allocator minute by minute with live laxities; energy per car (kWh).

    Each EV draws what it was given (so give-back never caps it).
    """
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=fuse))
    drawn = [0.0] * len(needs_kwh)
    delivered = [0.0] * len(needs_kwh)
    by_departure = [0.0] * len(needs_kwh)
    now = 0.0
    end = max(hours) * HOUR
    while now < end:
        inputs = []
        for index, (need, leave) in enumerate(zip(needs_kwh, hours, strict=True)):
            remaining = need * 1000.0 - delivered[index] * 1000.0
            inputs.append(
                ev(
                    index + 1,
                    laxity=None
                    if remaining <= 0.0 or not llf
                    else laxity_s(remaining, leave * HOUR, now, 32.0 * W_PER_A),
                    ev_connected=now < leave * HOUR,
                    measured_currents_a=(drawn[index],) * 3,
                )
            )
        allocation = allocator.allocate(1e9, inputs, now)
        for index in range(len(needs_kwh)):
            drawn[index] = allocation.setpoints[index + 1].current_a
            power = allocation.setpoints[index + 1].power_w
            delivered[index] += power * step_s / 3.6e6
            if now + step_s <= hours[index] * HOUR:
                by_departure[index] = delivered[index]
        now += step_s
    return delivered, by_departure


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=1.0, max_value=40.0),
            st.floats(min_value=1.0, max_value=8.0),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_with_enough_power_every_target_is_met(
    cars: list[tuple[float, float]],
) -> None:
    """A fuse that carries every car at full power: each feasible target is met."""
    needs = [need for need, _ in cars]
    hours = [leave for _, leave in cars]
    assume(all(need <= 32.0 * W_PER_A / 1000 * leave * 0.95 for need, leave in cars))
    _, by_departure = _run_targets(needs, hours, fuse=32.0 * len(cars))
    for need, got in zip(needs, by_departure, strict=True):
        assert got >= need - 0.25  # one minute's grain at 22 kW


def test_two_cars_one_fuse_llf_meets_both_where_a_fair_split_misses() -> None:
    """32 A for two: 30 kWh by 2 h and 10 kWh by 4 h fit only urgent-first."""
    _, by_departure = _run_targets([30.0, 10.0], [2.0, 4.0], fuse=32.0)
    assert by_departure[0] >= 30.0 - 0.25
    assert by_departure[1] >= 10.0 - 0.25
    # The fair split (the same cars without targets) misses the first one.
    _, fair = _run_targets([30.0, 10.0], [2.0, 4.0], fuse=32.0, llf=False)
    assert fair[0] < 30.0 - 5.0


# -- the forecast -----------------------------------------------------------------


def budget(charger_ids: set[int], watts: float | None = None) -> CircuitBudget:
    return CircuitBudget(
        frozenset(charger_ids), lambda _at: math.inf if watts is None else watts
    )


def test_forecast_with_room_completes_before_departure() -> None:
    outlook = forecast(
        [ForecastCar(charger_id=1, remaining_wh=11_000.0, departure_s=NOW + 2 * HOUR)],
        [budget({1})],
        NOW,
    )[1]
    assert outlook.unmet_wh == 0.0
    assert not outlook.at_risk
    assert outlook.completion_s == pytest.approx(NOW + 11_000.0 / 11_040.0 * HOUR)


def test_forecast_under_a_stepped_envelope_says_what_is_missing() -> None:
    # 7 kW for the first hour, then nothing: 20 kWh by 3 h cannot happen.
    stepped = CircuitBudget(
        frozenset({1}), lambda at: 7_000.0 if at < NOW + HOUR else 0.0
    )
    outlook = forecast(
        [ForecastCar(charger_id=1, remaining_wh=20_000.0, departure_s=NOW + 3 * HOUR)],
        [stepped],
        NOW,
    )[1]
    assert outlook.delivered_wh == pytest.approx(7_000.0)
    assert outlook.unmet_wh == pytest.approx(13_000.0)
    assert outlook.at_risk
    assert outlook.completion_s is None


def test_forecast_serves_the_least_laxity_first_and_keeps_others_minimum() -> None:
    cars = [
        ForecastCar(charger_id=1, remaining_wh=10_000.0, departure_s=NOW + HOUR),
        ForecastCar(charger_id=2, remaining_wh=10_000.0, departure_s=NOW + 8 * HOUR),
        ForecastCar(charger_id=3, remaining_wh=0.0, has_target=False),
    ]
    outlooks = forecast(cars, [budget({1, 2, 3}, 16_000.0)], NOW)
    assert not outlooks[1].at_risk  # 11 kW for an hour minus the others' minimum
    assert not outlooks[2].at_risk
    assert outlooks[1].completion_s is not None
    assert outlooks[2].completion_s is not None
    assert outlooks[1].completion_s < outlooks[2].completion_s


# -- the table ----------------------------------------------------------------------


def table(clock: Clock | None = None) -> ChargingTargets:
    return ChargingTargets(
        frozenset({1, 2}),
        clock=clock or Clock(),
        budgets=lambda: [budget({1, 2}, 11_040.0)],
    )


def test_a_target_waits_for_the_car_binds_to_its_session_and_ends_with_it() -> None:
    targets = table()
    changes: list[int] = []
    targets.listen(lambda: changes.append(1))
    state = targets.set(target(kwh=5.0))
    assert state.target.session_id is None
    assert not state.at_risk
    assert state.laxity_s is None
    assert targets.observe_session(1, "1-100", 0.0)  # a car came
    assert not targets.observe_session(1, "1-100", 1.0)
    bound = targets.get(1)
    assert bound is not None
    assert bound.session_id == "1-100"
    targets.observe_session(1, "1-100", 2_000.0)
    progress = targets.state(1)
    assert progress is not None
    assert progress.remaining_wh == pytest.approx(3_000.0)
    targets.observe_session(1, None, 0.0)
    assert targets.get(1) is None
    assert len(changes) == 3  # set, bound, ended


def test_a_target_ends_when_its_charger_leaves_the_microgrid() -> None:
    """Found by a probe: the plan went on reserving 11 kW for a removed charger."""
    targets = table()
    changes: list[int] = []
    targets.set(target(kwh=5.0))
    targets.observe_session(1, "1-100", 0.0)
    targets.listen(lambda: changes.append(1))
    targets.charger_ids = frozenset({1, 2})  # unchanged: nothing ends
    assert targets.get(1) is not None
    assert changes == []
    targets.charger_ids = frozenset({2})
    assert targets.get(1) is None
    assert targets.state(1) is None
    assert 1 not in targets.targets()
    assert changes == [1]


def test_a_waiting_target_whose_departure_passed_is_dropped() -> None:
    clock = Clock()
    targets = table(clock)
    targets.set(target(kwh=5.0, hours=1.0))
    clock.now += 2 * HOUR
    targets.observe_session(1, None, 0.0)
    assert targets.get(1) is None


def test_at_risk_is_raised_when_the_plugged_car_cannot_make_it() -> None:
    targets = table()
    targets.observe_session(1, "1-1", 0.0)
    state = targets.set(target(kwh=40.0, hours=2.0))  # 22 kWh at most in 2 h
    assert state.at_risk
    assert state.outlook is not None
    assert state.outlook.unmet_wh == pytest.approx(40_000.0 - 2 * 11_040.0, rel=0.01)
    assert targets.unmet_wh == pytest.approx(state.outlook.unmet_wh)
    assert targets.set(target(kwh=10.0, hours=2.0)).at_risk is False


def test_apply_gives_laxity_and_modes_keep_their_meaning() -> None:
    clock = Clock()
    targets = table(clock)
    modes = ChargerModes(frozenset({1, 2}), clock=lambda: 0.0)
    for cid in (1, 2):
        targets.observe_session(cid, f"{cid}-1", 0.0)
    targets.set(target(1, kwh=11.04, hours=2.0))
    targets.set(target(2, kwh=11.04, hours=2.0))
    unshaped = {1: ev(1, max_current_a=16.0), 2: ev(2, max_current_a=16.0)}
    shaped = modes.apply(unshaped, 0.0)
    applied = targets.apply(unshaped, shaped)
    assert applied[1].laxity_s == pytest.approx(HOUR)
    # Off stays off: held at 0 W, and its target counts as undeliverable.
    modes.set_mode(2, ChargerMode.OFF)
    applied = targets.apply(unshaped, modes.apply(unshaped, 0.0))
    assert applied[2].held_off is EvAllocationReason.MODE_OFF
    targets.refresh()
    off_state = targets.state(2)
    assert off_state is not None
    assert off_state.at_risk


def test_solar_with_a_target_falls_back_to_the_grid_when_laxity_runs_out() -> None:
    clock = Clock()
    targets = table(clock)
    modes = ChargerModes(frozenset({1}), clock=lambda: 0.0)
    modes.set_mode(1, ChargerMode.SOLAR)
    targets.observe_session(1, "1-1", 0.0)
    targets.set(target(1, kwh=11.04, hours=3.0))  # two hours of slack
    unshaped = {1: ev(1, max_current_a=16.0)}
    shaped = modes.apply(unshaped, 0.0)  # no site data: no surplus
    assert shaped[1].held_off is EvAllocationReason.NO_SOLAR_SURPLUS

    def solar(_cid: int) -> bool:
        return True

    early = targets.apply(unshaped, shaped, waits=solar)
    assert early[1].held_off is EvAllocationReason.NO_SOLAR_SURPLUS
    clock.now += 2 * HOUR + 60.0  # slack now below the fallback
    late = targets.apply(unshaped, shaped, waits=solar)
    assert late[1].held_off is None
    assert late[1].laxity_s is not None
    assert late[1].laxity_s < DEADLINE_FALLBACK_LAXITY_S


# -- when the forecast runs -----------------------------------------------------------


ROOT = Circuit(
    circuit_id="grid",
    name="Grid",
    charger_ids=frozenset({1, 2}),
    phase_limit_a=32.0,
    root=True,
)


def live_table(clock: Clock) -> tuple[ChargingTargets, CircuitLimits]:
    """A table forecasting over real circuit limits, both chargers plugged in."""
    limits = CircuitLimits(CircuitTree((ROOT,)))
    targets = ChargingTargets(
        frozenset({1, 2}), clock=clock, budgets=lambda: circuit_budgets(limits)
    )
    for cid in (1, 2):
        targets.observe_session(cid, f"{cid}-1", 0.0)
    targets.set(target(1, kwh=20.0, hours=4.0))
    assert not targets.forecast_stale()
    return targets, limits


def others(limits: CircuitLimits, watts: float) -> None:
    """The root's other loads as the EV steering records them each tick."""
    limits.observe(
        ROOT,
        NOW,
        measured_power_w=watts,
        headroom_a=(0.0, 0.0, 0.0),
        uncontrollable_w=watts,
    )


def test_the_forecast_runs_once_before_anything_and_then_only_when_due() -> None:
    clock = Clock()
    targets = ChargingTargets(frozenset({1}), clock=clock)
    assert targets.forecast_stale()  # never ran (restored targets: none yet)
    targets.refresh()
    assert not targets.forecast_stale()
    clock.now += FORECAST_MAX_AGE_S - 1.0
    assert not targets.forecast_stale()
    clock.now += 1.0
    assert targets.forecast_stale()  # the expected completion ages: at least this


@pytest.mark.parametrize(
    "change",
    [
        "plug_in",
        "unplug",
        "target_cleared",
        "envelope_set",
        "envelope_cleared",
        "fixed_limit",
        "others_moved",
        "charger_range",
        "mode_off",
    ],
)
def test_each_input_of_the_forecast_makes_it_due(change: str) -> None:
    clock = Clock()
    targets, limits = live_table(clock)
    envelope = LimitEnvelope.of([LimitStep(NOW + HOUR, 0.0, 5_000.0)])
    if change == "envelope_cleared":
        limits.set("grid", envelope)
        targets.refresh()
        assert not targets.forecast_stale()
    inputs = {1: ev(1, max_current_a=16.0), 2: ev(2, max_current_a=16.0)}
    targets.apply(inputs, inputs)
    targets.refresh()
    assert not targets.forecast_stale()
    clock.now += 1.0
    match change:
        case "plug_in":
            targets.charger_ids = frozenset({1, 2, 3})
            targets.observe_session(3, "3-1", 0.0)
        case "unplug":
            targets.observe_session(2, None, 0.0)
        case "target_cleared":
            assert targets.clear(1)
        case "envelope_set":
            limits.set("grid", envelope)
        case "envelope_cleared":
            assert limits.clear("grid")
        case "fixed_limit":
            limits.tree = CircuitTree((replace(ROOT, power_limit_w=9_000.0),))
        case "others_moved":
            others(limits, OTHERS_CHANGE_W + 1.0)
        case "charger_range":
            slower = {**inputs, 2: ev(2, max_current_a=10.0)}
            targets.apply(slower, slower)
        case "mode_off":
            held = {**inputs, 2: ev(2, held_off=EvAllocationReason.MODE_OFF)}
            targets.apply(inputs, held)
    assert targets.forecast_stale(), change


def test_what_the_forecast_does_not_model_leaves_it_as_it_is() -> None:
    """Other loads flickering, the same inputs again, a car charging as expected."""
    clock = Clock()
    targets, limits = live_table(clock)
    others(limits, OTHERS_CHANGE_W - 1.0)
    inputs = {1: ev(1, max_current_a=16.0), 2: ev(2, max_current_a=16.0)}
    targets.apply(inputs, inputs)
    targets.refresh()
    state = targets.state(1)
    assert state is not None
    assert state.outlook is not None
    power_w = state.outlook.power_w
    assert power_w > 0.0
    others(limits, 0.0)  # back, within the grain
    targets.apply(inputs, inputs)
    for _ in range(50):  # 50 s of charging at the expected power
        clock.now += 1.0
        delivered = power_w * (clock.now - NOW) / HOUR
        targets.observe_session(1, "1-1", delivered)
        assert not targets.forecast_stale()


def test_a_car_that_strays_from_the_expected_energy_is_forecast_again() -> None:
    """A car that stalls (or draws less than planned) drifts from the run's path."""
    clock = Clock()
    targets, _ = live_table(clock)
    state = targets.state(1)
    assert state is not None
    assert state.outlook is not None
    power_w = state.outlook.power_w
    stall_s = ENERGY_DRIFT_WH / power_w * HOUR  # the drift is one grain by then
    clock.now += stall_s - 1.0
    assert not targets.forecast_stale()
    clock.now += 2.0
    assert targets.forecast_stale()
    targets.refresh()
    assert not targets.forecast_stale()


# -- reservations -------------------------------------------------------------------


def test_the_guarantee_counts_the_other_bookings_targets_under_the_envelope() -> None:
    powers = {1: 11_040.0, 2: 11_040.0, 3: 11_040.0}
    guarantee = TargetGuarantee(lambda: [budget({1, 2, 3}, 20_000.0)], powers)
    counter = itertools.count(1)
    book = ReservationBook(
        charger_capacities(powers),
        clock=Clock(),
        guarantee=guarantee,
        new_id=lambda: f"r{next(counter)}",
    )
    guarantee.bookings = book.reservations
    # Alone: 20 kW less two walk-ins at their minimum (4.14 kW each).
    alone = book.reserve(1, NOW + HOUR, NOW + 3 * HOUR, energy_kwh=20.0)
    assert alone.guaranteed_kwh == pytest.approx(2 * 11_040.0 / 1000, rel=0.01)
    # The second booking gets what is left after the first one's 20 kWh and the
    # third charger's minimum: 20 − 11.04 − 4.14 kW while the first charges
    # (1.81 h), then 11.04 kW for the last 0.19 h.
    second = book.reserve(2, NOW + HOUR, NOW + 3 * HOUR, energy_kwh=15.0)
    expected = (20.0 - 11.04 - 4.14) * 1.8116 + 11.04 * 0.1884
    assert second.guaranteed_kwh == pytest.approx(expected, rel=0.01)
    assert not second.energy_guaranteed


def test_the_guarantee_follows_an_envelope_step() -> None:
    """A limit of 0 W for the second hour halves what two hours can promise."""
    stepped = CircuitBudget(
        frozenset({1}), lambda at: math.inf if at < NOW + 2 * HOUR else 0.0
    )
    guarantee = TargetGuarantee(lambda: [stepped], {1: 11_040.0})
    capacity = charger_capacities({1: 11_040.0})[1]
    assert guarantee(capacity, NOW + HOUR, NOW + 3 * HOUR) == pytest.approx(
        11_040.0 / 2, rel=0.01
    )


def test_smart_with_a_target_falls_back_when_the_plan_leaves_too_little() -> None:
    clock = Clock()
    targets = table(clock)
    modes = ChargerModes(
        frozenset({1}), clock=lambda: 0.0, planned_power_w=lambda _cid: 0.0
    )
    modes.set_mode(1, ChargerMode.SMART)
    targets.observe_session(1, "1-1", 0.0)
    targets.set(target(1, kwh=11.04, hours=3.0))  # two hours of slack
    unshaped = {1: ev(1, max_current_a=16.0)}
    shaped = modes.apply(unshaped, 0.0)  # the plan holds it off now
    assert shaped[1].held_off is EvAllocationReason.NOT_IN_PLAN

    def smart(_cid: int) -> bool:
        return True

    early = targets.apply(unshaped, shaped, waits=smart)
    assert early[1].held_off is EvAllocationReason.NOT_IN_PLAN
    clock.now += 2 * HOUR + 60.0  # slack now below the fallback
    late = targets.apply(unshaped, shaped, waits=smart)
    assert late[1].held_off is None
    assert late[1].max_current_a == 16.0


def test_a_car_that_follows_a_plan_is_at_risk_as_the_plan_says() -> None:
    targets = table()
    targets.observe_session(1, "1-100", 0.0)
    targets.set(target(kwh=5.0))
    targets.refresh()
    live = targets.state(1)
    assert live is not None
    assert live.outlook is not None
    assert not live.at_risk  # the live forecast: 11 kW for 5 kWh, easily
    assert live.unmet_wh == live.outlook.unmet_wh

    planned: dict[int, float | None] = {1: 2_500.0}
    targets.planned_unmet_wh = lambda t: planned[t.charger_id]
    short = targets.state(1)
    assert short is not None
    assert short.at_risk
    assert short.unmet_wh == 2_500.0
    assert short.as_dict()["unmet_wh"] == 2_500.0
    assert targets.unmet_wh == 2_500.0  # the hub's sum takes the same answer

    planned[1] = 0.0
    met = targets.state(1)
    assert met is not None
    assert not met.at_risk
    planned[1] = None  # no plan for it: the live forecast decides again
    fallback = targets.state(1)
    assert fallback is not None
    assert fallback.unmet_wh == live.unmet_wh

    # No car plugged in: never at risk, whatever a plan says.
    targets.observe_session(1, None, 0.0)
    targets.set(target(kwh=5.0))
    planned[1] = 5_000.0
    waiting = targets.state(1)
    assert waiting is not None
    assert waiting.unmet_wh is None
    assert not waiting.at_risk


def test_the_plans_unmet_energy_is_never_more_than_what_is_left() -> None:
    """The plan's figure is from when it was made: charging since counts."""
    targets = table()
    targets.observe_session(1, "1-100", 0.0)
    targets.set(target(kwh=5.0))
    targets.planned_unmet_wh = lambda _t: 4_000.0  # the plan placed 1 kWh
    targets.refresh()
    planned = targets.state(1)
    assert planned is not None
    assert planned.unmet_wh == 4_000.0
    assert planned.at_risk

    targets.observe_session(1, "1-100", 4_200.0)  # charged freely meanwhile
    nearly = targets.state(1)
    assert nearly is not None
    assert nearly.remaining_wh == pytest.approx(800.0)
    assert nearly.unmet_wh == pytest.approx(800.0)
    assert targets.unmet_wh == pytest.approx(800.0)

    targets.observe_session(1, "1-100", 5_100.0)  # met before the next re-plan
    met = targets.state(1)
    assert met is not None
    assert met.unmet_wh == 0.0
    assert not met.at_risk


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        ({"energy_wh": None}, TargetProblem.NO_AMOUNT),
        ({"energy_wh": "nan"}, TargetProblem.NOT_FINITE),
        ({"energy_wh": -5}, TargetProblem.ENERGY_NOT_POSITIVE),
        ({"soc_pct": 50}, TargetProblem.BOTH_AMOUNTS),
        ({"energy_wh": None, "soc_pct": 80}, TargetProblem.SOC_NOT_REPORTED),
    ],
)
def test_a_stored_target_without_one_valid_amount_is_refused(
    stored: dict[str, object], problem: TargetProblem
) -> None:
    """What `validate_target` refuses (bar the time) never comes back from a file."""
    targets = ChargingTargets(frozenset({1}), clock=Clock())
    record = {**target(kwh=10.0).as_dict(), **stored}
    with pytest.raises(InvalidTargetError) as refused:
        targets.restore(ChargingTarget.from_dict(record))
    assert refused.value.problem is problem
    assert targets.targets() == {}
    # A past departure is no damage: the table ends such a target itself.
    targets.restore(target(hours=-1.0))
    assert targets.get(1) is not None
