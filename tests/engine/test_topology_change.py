"""What a re-read topology changed, and how steering's bookkeeping follows it."""

from __future__ import annotations

from dataclasses import replace

from frequenz.client.microgrid.component import (
    AcEvCharger,
)
from hypothesis import given, strategies as st

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.graph import build_topology
from custom_components.frequenz_microgrid.engine.health import (
    ComponentHealth,
    HealthTracker,
)
from custom_components.frequenz_microgrid.engine.power_manager import (
    PowerManager,
    Proposal,
)
from custom_components.frequenz_microgrid.engine.topology_change import (
    TopologyChange,
    topology_change,
    unchanged,
)

from .topologies import (
    BATTERY_A,
    BATTERY_B,
    EV_CHARGER,
    HOME_WIRING,
    INVERTER_A,
    INVERTER_B,
    MAIN_METER,
    component,
    connections,
    home_components,
    home_topology,
    info,
)

NEW_CHARGER = 50


def test_the_same_topology_read_again_is_no_change() -> None:
    old, new = home_topology(), home_topology()
    assert not topology_change(old, new)
    assert topology_change(old, new) == TopologyChange()
    assert unchanged(old, home_components(), connections(HOME_WIRING))


def test_added_removed_and_renamed_components_are_told_apart() -> None:
    old = home_topology()
    kept = [c for c in home_components() if int(c.id) not in {INVERTER_B, BATTERY_B}]
    renamed = [
        replace(c, name="Garage") if int(c.id) == EV_CHARGER else c for c in kept
    ]
    wiring = [(a, b) for a, b in HOME_WIRING if a != INVERTER_B and b != INVERTER_B] + [
        (MAIN_METER, NEW_CHARGER)
    ]
    components = [*renamed, component(AcEvCharger, NEW_CHARGER)]
    new = build_topology(info(), components, connections(wiring))

    change = topology_change(old, new)

    assert change.added == {NEW_CHARGER}
    assert change.removed == {INVERTER_B, BATTERY_B}
    assert change.updated == {EV_CHARGER}
    assert change.rewired
    assert not unchanged(old, components, connections(wiring))
    # A component fewer, or a connection moved, is a change too.
    assert not unchanged(old, home_components()[:-1], connections(HOME_WIRING))
    assert not unchanged(old, home_components(), connections(HOME_WIRING[:-1]))


def _proposal(ids: frozenset[int], source: str, power: float, at: float) -> Proposal:
    return Proposal(
        source_id=source,
        priority=1,
        power=power,
        component_ids=ids,
        creation_time=at,
    )


def test_the_whole_pool_proposal_follows_the_pool() -> None:
    manager = PowerManager.for_batteries()
    pool = frozenset({1, 2})
    manager.set_system_bounds(pool, PowerBounds(-10_000.0, 10_000.0))
    manager.propose(_proposal(pool, "a", 3000.0, 0.0))

    renamed = manager.follow_components(pool, frozenset({1, 2, 3}), frozenset())

    new_pool = frozenset({1, 2, 3})
    assert renamed == {pool: new_pool}
    assert [p.component_ids for p in manager.proposals(new_pool)] == [new_pool]
    assert manager.proposals(pool) == []
    # Its target follows once the pool's system bounds are known again.
    assert manager.target_power(new_pool) is None
    manager.set_system_bounds(new_pool, PowerBounds(-15_000.0, 15_000.0))
    assert manager.target_power(new_pool) == 3000.0


def test_a_subset_loses_what_left_and_an_empty_one_is_dropped() -> None:
    manager = PowerManager.for_batteries()
    pool = frozenset({1, 2, 3, 4})
    manager.propose(_proposal(frozenset({1, 2}), "a", 1000.0, 0.0))
    manager.propose(_proposal(frozenset({3}), "b", 500.0, 0.0))

    renamed = manager.follow_components(pool, frozenset({1, 4}), frozenset({2, 3}))

    assert renamed == {frozenset({1, 2}): frozenset({1}), frozenset({3}): frozenset()}
    assert [p.source_id for p in manager.proposals(frozenset({1}))] == ["a"]
    assert manager.component_sets() == [frozenset({1})]


def test_sets_that_become_equal_are_merged_newest_first() -> None:
    manager = PowerManager.for_batteries()
    pool = frozenset({1, 2, 3})
    manager.propose(_proposal(frozenset({1, 2}), "a", 1000.0, 0.0))
    manager.propose(_proposal(frozenset({3}), "b", 800.0, 1.0))

    manager.follow_components(pool, frozenset({1, 2}), frozenset({3}))
    # {1, 2} stays; {3} is gone: nothing merges into a set that lost everything.
    assert [p.source_id for p in manager.proposals(frozenset({1, 2}))] == ["a"]

    manager = PowerManager.for_batteries()
    manager.propose(_proposal(frozenset({1, 2}), "a", 1000.0, 0.0))
    manager.propose(_proposal(frozenset({3, 4}), "a", 700.0, 2.0))
    manager.follow_components(
        frozenset({1, 2, 3, 4}), frozenset({1, 4}), frozenset({2, 3})
    )
    assert [p.power for p in manager.proposals(frozenset({1}))] == [1000.0]
    assert [p.power for p in manager.proposals(frozenset({4}))] == [700.0]


def test_a_forgotten_component_is_no_longer_tracked() -> None:
    health = HealthTracker()
    health.add_battery(BATTERY_A, INVERTER_A)
    health.add_battery(BATTERY_B, INVERTER_B)
    health.add_ev_charger(EV_CHARGER)

    health.forget([INVERTER_B, BATTERY_B, EV_CHARGER])

    assert [s.component_id for s in health.statuses(0.0)] == [BATTERY_A]
    assert health.health(EV_CHARGER, 0.0) is ComponentHealth.NOT_WORKING
    assert health.problem(BATTERY_B, 0.0) == "not a controllable component"


@given(
    sets=st.lists(
        st.frozensets(st.integers(0, 11), min_size=1, max_size=4), max_size=4
    ),
    gone=st.frozensets(st.integers(0, 11)),
    added=st.frozensets(st.integers(12, 15)),
)
def test_re_keyed_proposal_sets_stay_disjoint_and_lose_only_what_left(
    sets: list[frozenset[int]], gone: frozenset[int], added: frozenset[int]
) -> None:
    manager = PowerManager.for_batteries()
    pool = frozenset(range(12))
    kept: list[frozenset[int]] = []
    for index, ids in enumerate(sets):
        if all(ids.isdisjoint(other) for other in kept):
            manager.propose(_proposal(ids, f"actor{index}", 100.0 * index, index))
            kept.append(ids)

    manager.follow_components(pool, (pool - gone) | added, gone)

    books = [ids for ids in manager.component_sets() if manager.proposals(ids)]
    assert all(not ids & gone for ids in books)
    assert all(a.isdisjoint(b) for a in books for b in books if a is not b)
    assert sorted(books, key=sorted) == sorted(
        {ids - gone for ids in kept if ids - gone}, key=sorted
    )
    for ids in books:
        assert all(p.component_ids == ids for p in manager.proposals(ids))
