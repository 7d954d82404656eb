"""Property-based tests of the EV allocator's safety and fairness invariants."""

from __future__ import annotations

from dataclasses import dataclass, replace
import math

from hypothesis import given, settings, strategies as st

from custom_components.frequenz_microgrid.engine.distribution.ev_chargers import (
    EvAllocation,
    EvAllocationReason as Reason,
    EvAllocatorConfig,
    EvChargerAllocator,
    EvChargerInput,
)

SLACK = 1e-6
"""Absolute slack for float comparisons (A and W)."""


@st.composite
def chargers(draw: st.DrawFn) -> list[EvChargerInput]:
    count = draw(st.integers(min_value=0, max_value=7))
    result = []
    for component_id in range(1, count + 1):
        single_phase = draw(st.booleans())
        phases = (draw(st.sampled_from([1, 2, 3])),) if single_phase else (1, 2, 3)
        min_current = draw(st.sampled_from([6.0, 6.0, 8.0]))
        max_current = draw(st.floats(min_value=4.0, max_value=32.0))
        measured = draw(
            st.tuples(*[st.floats(min_value=0.0, max_value=40.0)] * 3)
            | st.just((math.nan, math.nan, math.nan))
        )
        result.append(
            EvChargerInput(
                component_id=component_id,
                ev_connected=draw(st.booleans() | st.just(True)),
                working=draw(st.booleans() | st.just(True) | st.just(True)),
                phases=phases,
                measured_currents_a=measured,
                measured_power_w=draw(st.floats(min_value=0.0, max_value=22000.0)),
                min_current_a=min_current,
                max_current_a=max_current,
                voltage_v=draw(st.none() | st.floats(min_value=200.0, max_value=250.0)),
            )
        )
    return result


configs = st.builds(
    EvAllocatorConfig,
    phase_limit_a=st.none() | st.floats(min_value=0.0, max_value=100.0),
    fuse_tolerance_a=st.floats(min_value=0.0, max_value=3.0),
    hysteresis_a=st.floats(min_value=0.0, max_value=2.0),
    min_dwell_s=st.floats(min_value=0.0, max_value=120.0),
    give_back_after_s=st.floats(min_value=0.0, max_value=10.0),
    priorities=st.dictionaries(st.integers(1, 7), st.integers(-2, 2), max_size=3),
)
targets = st.floats(min_value=-1000.0, max_value=150_000.0) | st.just(math.nan)
other_currents = st.none() | st.tuples(
    *[st.floats(min_value=0.0, max_value=40.0) | st.just(math.nan)] * 3
)


def voltage(charger: EvChargerInput, config: EvAllocatorConfig) -> float:
    return charger.voltage_v or config.nominal_voltage_v


def phase_capacity(
    config: EvAllocatorConfig, others: tuple[float, float, float] | None
) -> list[float]:
    """The independent statement of what the fuse leaves for the EVs."""
    if config.phase_limit_a is None:
        return [math.inf] * 3
    return [
        0.0 if math.isnan(o) else config.phase_limit_a - config.fuse_tolerance_a - o
        for o in (others or (0.0, 0.0, 0.0))
    ]


def assert_safe(
    allocation: EvAllocation,
    inputs: list[EvChargerInput],
    config: EvAllocatorConfig,
    target: float,
    others: tuple[float, float, float] | None,
) -> None:
    """Every invariant that must hold in every round, hysteresis or not."""
    assert set(allocation.setpoints) == {c.component_id for c in inputs}
    capacity = phase_capacity(config, others)
    phase_sums = [0.0, 0.0, 0.0]
    for charger in inputs:
        setpoint = allocation.setpoints[charger.component_id]
        power = setpoint.power_w
        assert power >= 0.0
        if not charger.ev_connected or not charger.working:
            assert power == 0.0
        if power == 0.0:
            continue
        per_amp = len(charger.phases) * voltage(charger, config)
        assert charger.min_current_a * per_amp - SLACK <= power
        assert power <= charger.max_current_a * per_amp + SLACK
        assert setpoint.current_a * per_amp == power
        for phase in charger.phases:
            phase_sums[phase - 1] += setpoint.current_a
    for used, available in zip(phase_sums, capacity, strict=True):
        assert used <= max(available, 0.0) + SLACK
    allowed = target if target > 0 else 0.0
    assert allocation.total_power_w <= allowed + SLACK


@settings(max_examples=300, deadline=None)
@given(chargers(), configs, targets, other_currents)
def test_single_round_is_safe_fair_and_work_conserving(
    inputs: list[EvChargerInput],
    config: EvAllocatorConfig,
    target: float,
    others: tuple[float, float, float] | None,
) -> None:
    allocation = EvChargerAllocator(config).allocate(
        target, inputs, 0.0, other_currents_a=others
    )
    assert_safe(allocation, inputs, config, target, others)

    capacity = [max(c, 0.0) for c in phase_capacity(config, others)]
    used = allocation.phase_currents_a
    full_phases = {p for p in (1, 2, 3) if used[p - 1] >= capacity[p - 1] - SLACK}
    target_full = allocation.total_power_w >= max(target, 0.0) - SLACK
    charging = [c for c in inputs if allocation.setpoints[c.component_id].power_w > 0.0]
    current = {
        c.component_id: allocation.setpoints[c.component_id].current_a for c in inputs
    }

    def held(charger: EvChargerInput) -> bool:
        """Whether something other than fairness keeps this EV where it is."""
        at_max = current[charger.component_id] >= charger.max_current_a - SLACK
        on_full_phase = bool(full_phases & set(charger.phases))
        return at_max or on_full_phase or target_full

    # Work-conserving: an EV below its charger maximum is held by a full
    # constraint (a fresh allocator has no give-back caps and no hysteresis).
    for charger in charging:
        assert held(charger)
    # Fair: an EV gets more than another only if the other is held or the first
    # is raised to its own minimum.
    for richer in charging:
        for poorer in charging:
            if current[richer.component_id] > current[poorer.component_id] + SLACK:
                raised_to_min = (
                    current[richer.component_id] <= richer.min_current_a + SLACK
                )
                assert raised_to_min or held(poorer)
    # Nobody waits who would fit next to the admitted EVs at their minimum.
    left = list(capacity)
    power_left = max(target, 0.0) if not math.isnan(target) else 0.0
    for charger in charging:
        for phase in charger.phases:
            left[phase - 1] -= charger.min_current_a
        power_left -= (
            charger.min_current_a * len(charger.phases) * voltage(charger, config)
        )
    for charger in inputs:
        if allocation.setpoints[charger.component_id].reason is Reason.WAITING:
            need_power = (
                charger.min_current_a * len(charger.phases) * voltage(charger, config)
            )
            fits = need_power <= power_left - SLACK and all(
                charger.min_current_a <= left[p - 1] - SLACK for p in charger.phases
            )
            assert not fits


@settings(max_examples=100, deadline=None)
@given(chargers(), configs, targets, other_currents)
def test_result_does_not_depend_on_input_order(
    inputs: list[EvChargerInput],
    config: EvAllocatorConfig,
    target: float,
    others: tuple[float, float, float] | None,
) -> None:
    forward = EvChargerAllocator(config).allocate(
        target, inputs, 0.0, other_currents_a=others
    )
    backward = EvChargerAllocator(config).allocate(
        target, inputs[::-1], 0.0, other_currents_a=others
    )
    for component_id, setpoint in forward.setpoints.items():
        assert math.isclose(
            setpoint.power_w, backward.setpoints[component_id].power_w, abs_tol=1e-6
        )


@dataclass(frozen=True)
class Round:
    """What changes between two rounds."""

    seconds_later: float
    target_wobble: float | None
    """Relative change of the session's base target; None = a random target."""
    random_target: float
    others: tuple[float, float, float] | None
    connected: tuple[bool, ...]
    measured: tuple[float | None, ...]
    """Per charger, the current its EV draws; None = what it was allocated."""


rounds = st.lists(
    st.builds(
        Round,
        seconds_later=st.sampled_from([0.5, 1.0, 1.0, 3.0, 10.0, 61.0]),
        target_wobble=st.none() | st.floats(-0.05, 0.05) | st.floats(-0.05, 0.05),
        random_target=targets,
        others=other_currents,
        connected=st.lists(st.booleans() | st.just(True), min_size=7, max_size=7).map(
            tuple
        ),
        measured=st.lists(
            st.none() | st.none() | st.floats(0.0, 40.0), min_size=7, max_size=7
        ).map(tuple),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(chargers(), configs, st.floats(0.0, 100_000.0), rounds)
def test_every_round_of_a_session_is_safe(
    inputs: list[EvChargerInput],
    config: EvAllocatorConfig,
    base_target: float,
    steps: list[Round],
) -> None:
    """Hysteresis, dwell and give-back never break a fuse, the target or a bound.

    Targets mostly wobble by a few percent around a base, the case where
    hysteresis is tempted to keep a setpoint that no longer fits.
    """
    allocator = EvChargerAllocator(config)
    now = 0.0
    drawn = {charger.component_id: 0.0 for charger in inputs}
    for step in steps:
        now += step.seconds_later
        target = (
            step.random_target
            if step.target_wobble is None
            else base_target * (1.0 + step.target_wobble)
        )
        current_inputs = [
            replace(
                charger,
                ev_connected=step.connected[i],
                measured_currents_a=(
                    _or(step.measured[i], drawn[charger.component_id]),
                )
                * 3,
            )
            for i, charger in enumerate(inputs)
        ]
        allocation = allocator.allocate(
            target, current_inputs, now, other_currents_a=step.others
        )
        assert_safe(allocation, current_inputs, config, target, step.others)
        drawn = {cid: s.current_a for cid, s in allocation.setpoints.items()}


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from([1, 2, 3]), st.floats(6.0, 32.0)),
        min_size=1,
        max_size=4,
    ),
    st.floats(0.5, 3.0),
    st.none() | st.floats(6.0, 64.0),
    st.floats(0.0, 60_000.0),
    st.lists(st.tuples(st.floats(-0.05, 0.05), st.floats(0.0, 2.0)), max_size=20),
)
def test_hysteresis_never_keeps_an_unsafe_setpoint(
    specs: list[tuple[bool, int, float]],
    hysteresis: float,
    phase_limit: float | None,
    base_target: float,
    wobbles: list[tuple[float, float]],
) -> None:
    """EVs that follow their setpoints while target and fuse headroom wobble."""
    config = EvAllocatorConfig(hysteresis_a=hysteresis, phase_limit_a=phase_limit)
    inputs = [
        EvChargerInput(
            component_id=i,
            ev_connected=True,
            phases=(phase,) if single else (1, 2, 3),
            max_current_a=max_current,
        )
        for i, (single, phase, max_current) in enumerate(specs)
    ]
    allocator = EvChargerAllocator(config)
    for now, (wobble, other) in enumerate(wobbles):
        target = base_target * (1.0 + wobble)
        others = (other, other / 2, 0.0)
        allocation = allocator.allocate(target, inputs, now, other_currents_a=others)
        assert_safe(allocation, inputs, config, target, others)
        inputs = [
            replace(c, measured_currents_a=allocation.setpoints[i].phase_currents_a)
            for i, c in enumerate(inputs)
        ]
