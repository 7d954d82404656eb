"""Invariants of the power manager, checked with hypothesis."""

from __future__ import annotations

import random

from hypothesis import given, settings, strategies as st

from custom_components.frequenz_microgrid.engine.bounds import Bounds, PowerBounds
from custom_components.frequenz_microgrid.engine.power_manager import (
    DefaultPower,
    Matryoshka,
    PowerManager,
    Proposal,
    ShiftingMatryoshka,
)

IDS = frozenset({1, 2})
watts = st.floats(min_value=-20_000, max_value=20_000, allow_nan=False)
optional_watts = st.none() | watts
algorithms = st.sampled_from([Matryoshka(), ShiftingMatryoshka()])


@st.composite
def realistic_system_bounds(draw: st.DrawFn) -> PowerBounds:
    """Bounds a real pool reports: 0 W inside, exclusion zone inside inclusion."""
    lower = draw(st.floats(min_value=-10_000, max_value=0))
    upper = draw(st.floats(min_value=0, max_value=10_000))
    if draw(st.booleans()):
        return PowerBounds(lower, upper)
    exclusion_lower = draw(st.floats(min_value=lower, max_value=0))
    exclusion_upper = draw(st.floats(min_value=0, max_value=upper))
    return PowerBounds(lower, upper, exclusion_lower, exclusion_upper)


@st.composite
def proposals(draw: st.DrawFn, now: float = 0.0) -> Proposal:
    return Proposal(
        source_id=draw(st.sampled_from("abcd")),
        priority=draw(st.integers(0, 3)),
        power=draw(optional_watts),
        bounds=Bounds(draw(optional_watts), draw(optional_watts)),
        component_ids=IDS,
        creation_time=now,
    )


def new_manager(
    algorithm: Matryoshka | ShiftingMatryoshka, system: PowerBounds
) -> PowerManager:
    """A power manager of the component set `IDS` with the given system bounds."""
    manager = PowerManager(algorithm, DefaultPower.ZERO)
    manager.set_system_bounds(IDS, system)
    return manager


def run(
    algorithm: Matryoshka | ShiftingMatryoshka,
    system: PowerBounds,
    sequence: list[Proposal],
) -> PowerManager:
    manager = new_manager(algorithm, system)
    for proposal in sequence:
        manager.propose(proposal)
    return manager


def state(manager: PowerManager) -> tuple[object, ...]:
    reports = tuple(manager.report(IDS, p) for p in range(-1, 5))
    return (manager.target_power(IDS), reports)


@settings(max_examples=200, deadline=None)
@given(algorithms, realistic_system_bounds(), st.lists(proposals(), max_size=8))
def test_every_target_is_a_safe_setpoint(
    algorithm: Matryoshka | ShiftingMatryoshka,
    system: PowerBounds,
    sequence: list[Proposal],
) -> None:
    """Inside the inclusion bounds and never strictly inside the exclusion zone."""
    manager = new_manager(algorithm, system)
    for proposal in sequence:
        target = manager.propose(proposal)
        if target is not None:
            assert system.allows(target), (target, system)


@settings(max_examples=200, deadline=None)
@given(
    algorithms,
    realistic_system_bounds(),
    st.lists(proposals(), max_size=8, unique_by=lambda p: p.key),
    st.randoms(use_true_random=False),
)
def test_submission_order_does_not_matter(
    algorithm: Matryoshka | ShiftingMatryoshka,
    system: PowerBounds,
    sequence: list[Proposal],
    rng: random.Random,
) -> None:
    """Processing order is by (priority, source id), never by arrival."""
    shuffled = list(sequence)
    rng.shuffle(shuffled)
    assert state(run(algorithm, system, sequence)) == state(
        run(algorithm, system, shuffled)
    )


@settings(max_examples=200, deadline=None)
@given(
    algorithms,
    realistic_system_bounds(),
    st.lists(proposals(), max_size=6),
    proposals(),
    proposals(),
)
def test_a_replaced_or_withdrawn_proposal_leaves_no_trace(
    algorithm: Matryoshka | ShiftingMatryoshka,
    system: PowerBounds,
    sequence: list[Proposal],
    first: Proposal,
    second: Proposal,
) -> None:
    """Only the latest proposal per (priority, source) counts."""
    others = [p for p in sequence if p.key != first.key]
    replacement = Proposal(
        source_id=first.source_id,
        priority=first.priority,
        power=second.power,
        bounds=second.bounds,
        component_ids=IDS,
        creation_time=1.0,
    )
    replaced = run(algorithm, system, [first, *others, replacement])
    assert state(replaced) == state(run(algorithm, system, [*others, replacement]))
    withdrawal = Proposal(
        source_id=first.source_id,
        priority=first.priority,
        power=None,
        component_ids=IDS,
        creation_time=1.0,
    )
    withdrawn = run(algorithm, system, [*others, first, withdrawal])
    assert state(withdrawn) == state(run(algorithm, system, others))


@settings(max_examples=200, deadline=None)
@given(
    algorithms,
    st.floats(min_value=-10_000, max_value=0),
    st.floats(min_value=0, max_value=10_000),
    st.lists(proposals(), max_size=8),
)
def test_lower_priorities_never_get_a_wider_range(
    algorithm: Matryoshka | ShiftingMatryoshka,
    lower: float,
    upper: float,
    sequence: list[Proposal],
) -> None:
    """Without an exclusion zone: lower priorities see a sub-range (matryoshka).

    For shifting, the range also moves, so only its width can shrink.
    """
    manager = run(algorithm, PowerBounds(lower, upper), sequence)
    previous = (lower, upper)
    for priority in range(4, -2, -1):
        bounds = manager.report(IDS, priority).bounds
        assert bounds is not None
        current = (bounds.inclusion_lower, bounds.inclusion_upper)
        if current[0] > current[1]:
            break  # Nothing left: the SDK reports the empty range as it is.
        if isinstance(algorithm, Matryoshka):
            assert previous[0] <= current[0] <= current[1] <= previous[1]
        else:
            width = current[1] - current[0]
            assert width <= previous[1] - previous[0] + 1e-6
        previous = current


@settings(max_examples=200, deadline=None)
@given(
    algorithms,
    st.floats(min_value=-10_000, max_value=0),
    st.floats(min_value=0, max_value=10_000),
    watts,
)
def test_a_lone_proposal_gets_its_power_clamped_into_the_system_bounds(
    algorithm: Matryoshka | ShiftingMatryoshka,
    lower: float,
    upper: float,
    power: float,
) -> None:
    manager = PowerManager(algorithm, DefaultPower.ZERO)
    manager.set_system_bounds(IDS, PowerBounds(lower, upper))
    lone = Proposal(
        source_id="a", priority=1, power=power, component_ids=IDS, creation_time=0
    )
    assert manager.propose(lone) == min(max(power, lower), upper)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=200), st.booleans(), st.sampled_from("ab")
        ),
        max_size=10,
    ),
    st.floats(min_value=0, max_value=300),
)
def test_expiry_keeps_exactly_the_young_and_the_kept_alive(
    entries: list[tuple[float, bool, str]], now: float
) -> None:
    manager = PowerManager.for_batteries()
    manager.set_system_bounds(IDS, PowerBounds(-1_000, 1_000))
    for priority, (created, keep_alive, source) in enumerate(entries):
        manager.propose(
            Proposal(
                source_id=source,
                priority=priority,
                power=1.0,
                component_ids=IDS,
                creation_time=created,
                keep_alive=keep_alive,
            )
        )
    manager.drop_expired(now)
    expected = sorted(
        priority
        for priority, (created, keep_alive, _) in enumerate(entries)
        if keep_alive or now - created <= 60.0
    )
    assert sorted(p.priority for p in manager.proposals(IDS)) == expected
