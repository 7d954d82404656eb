"""Worked examples for the power manager (spec §1)."""

from __future__ import annotations

import math

import pytest

from custom_components.frequenz_microgrid.engine.bounds import Bounds, PowerBounds
from custom_components.frequenz_microgrid.engine.power_manager import (
    DefaultPower,
    Matryoshka,
    PowerManager,
    Proposal,
    ProposalRefusedError,
    RefusalReason,
    ShiftingMatryoshka,
)
from custom_components.frequenz_microgrid.engine.results import (
    PartialFailure,
    Request,
    Success,
)

EVS = frozenset({10, 11})
BATTERIES = frozenset({20, 21})
EV_SYSTEM = PowerBounds(0.0, 22_000.0)
BATTERY_SYSTEM = PowerBounds(-5_000.0, 5_000.0)


def proposal(
    source: str,
    priority: int,
    power: float | None,
    lower: float | None = None,
    upper: float | None = None,
    *,
    ids: frozenset[int] = EVS,
    at: float = 0.0,
    keep_alive: bool = False,
) -> Proposal:
    return Proposal(
        source_id=source,
        priority=priority,
        power=power,
        bounds=Bounds(lower, upper),
        component_ids=ids,
        creation_time=at,
        keep_alive=keep_alive,
    )


def ev_manager() -> PowerManager:
    manager = PowerManager.for_ev_chargers()
    assert manager.set_system_bounds(EVS, EV_SYSTEM) is None
    return manager


def battery_manager(system: PowerBounds = BATTERY_SYSTEM) -> PowerManager:
    manager = PowerManager.for_batteries()
    manager.set_system_bounds(BATTERIES, system)
    return manager


class TestMatryoshka:
    def test_single_proposal_is_the_target(self) -> None:
        assert ev_manager().propose(proposal("app", 1, 5_000.0)) == 5_000.0

    def test_power_outside_system_bounds_is_clamped_not_rejected(self) -> None:
        manager = ev_manager()
        assert manager.propose(proposal("app", 1, 30_000.0)) == 22_000.0
        assert manager.propose(proposal("app", 1, -1_000.0)) == 0.0

    def test_higher_priority_bounds_clamp_lower_priority_power(self) -> None:
        manager = ev_manager()
        assert manager.propose(proposal("peak", 10, None, 0.0, 3_000.0)) is None
        assert manager.propose(proposal("app", 1, 5_000.0)) == 3_000.0

    def test_lowest_priority_power_within_bounds_wins(self) -> None:
        manager = ev_manager()
        manager.propose(proposal("peak", 10, 2_000.0, 0.0, 4_000.0))
        assert manager.propose(proposal("app", 1, 3_500.0)) == 3_500.0
        assert manager.target_power(EVS) == 3_500.0

    def test_equal_priorities_run_by_source_id_descending(self) -> None:
        manager = ev_manager()
        manager.propose(proposal("b", 5, 2_000.0))
        # "a" comes after "b", so its power is the last one reached and wins.
        assert manager.propose(proposal("a", 5, 1_000.0)) == 1_000.0
        assert [p.source_id for p in manager.proposals(EVS)] == ["b", "a"]

    def test_replacement_keeps_one_proposal_per_source_and_priority(self) -> None:
        manager = ev_manager()
        manager.propose(proposal("app", 1, 1_000.0))
        assert manager.propose(proposal("app", 1, 4_000.0)) == 4_000.0
        manager.propose(proposal("app", 2, 2_000.0))
        assert [(p.priority, p.power) for p in manager.proposals(EVS)] == [
            (2, 2_000.0),
            (1, 4_000.0),
        ]

    def test_withdrawing_the_last_proposal_sends_the_default_once(self) -> None:
        manager = ev_manager()
        manager.propose(proposal("app", 1, 5_000.0))
        assert manager.propose(proposal("app", 1, None)) == 22_000.0  # MAX
        assert manager.target_power(EVS) is None
        assert manager.proposals(EVS) == []
        assert manager.propose(proposal("app", 1, None)) is None

    def test_pv_default_is_full_production(self) -> None:
        pv = frozenset({30})
        manager = PowerManager.for_pv_inverters()
        manager.set_system_bounds(pv, PowerBounds(-8_000.0, 0.0))
        assert manager.propose(proposal("limit", 1, -3_000.0, ids=pv)) == -3_000.0
        assert manager.withdraw("limit") == {pv: -8_000.0}

    def test_bounds_only_proposals_give_no_target(self) -> None:
        manager = ev_manager()
        assert manager.propose(proposal("fuse", 9, None, 0.0, 11_000.0)) is None
        assert manager.target_power(EVS) is None

    def test_bounds_only_proposals_steer_the_default_within_them(self) -> None:
        """No power asked: the pool's default, as far as the bounds allow.

        The SDK's target stays `None`; the steering takes full charging (EVs)
        or full production (PV) inside what every proposal leaves.
        """
        manager = ev_manager()
        assert manager.steering_target(EVS) is None  # nobody proposed anything
        manager.propose(proposal("evening", 9, None, None, 7_000.0))
        assert manager.steering_target(EVS) == 7_000.0
        manager.propose(proposal("fuse", 20, None, None, 5_000.0))
        assert manager.steering_target(EVS) == 5_000.0  # the tighter bound
        manager.propose(proposal("app", 1, 3_000.0))
        assert manager.steering_target(EVS) == 3_000.0  # a power wins, as before
        manager.withdraw("app")
        manager.withdraw("fuse")
        manager.withdraw("evening")
        assert manager.steering_target(EVS) is None

        pv = frozenset({30})
        pv_manager = PowerManager.for_pv_inverters()
        pv_manager.set_system_bounds(pv, PowerBounds(-8_000.0, 0.0))
        pv_manager.propose(proposal("cap", 1, None, -2_000.0, None, ids=pv))
        assert pv_manager.target_power(pv) is None
        assert pv_manager.steering_target(pv) == -2_000.0

    def test_a_bound_inside_the_exclusion_zone_steers_to_zero(self) -> None:
        """An EV cap below the smallest charging power leaves only 0 W.

        Also when both bounds lie inside the zone, which the SDK skips (the
        EVs charged at full power under "between 1 and 3 kW").
        """
        manager = PowerManager.for_ev_chargers()
        manager.set_system_bounds(EVS, PowerBounds(0.0, 22_000.0, 0.0, 4_140.0))
        manager.propose(proposal("cap", 1, None, None, 3_000.0))
        assert manager.steering_target(EVS) == 0.0
        manager.propose(proposal("cap", 1, None, 1_000.0, 3_000.0))
        assert manager.steering_target(EVS) == 0.0
        assert manager.report(EVS, 0).bounds == PowerBounds(
            0.0, 22_000.0, 0.0, 4_140.0
        )  # what lower priorities are granted stays the SDK's
        # A lower priority's power does not get past them either.
        manager.propose(proposal("app", 0, 10_000.0))
        assert manager.target_power(EVS) == 10_000.0  # the SDK's
        assert manager.steering_target(EVS) == 0.0
        # Above them, a power is not bound by them.
        manager.propose(proposal("boss", 20, 8_000.0))
        manager.withdraw("app")
        assert manager.steering_target(EVS) == 8_000.0

    def test_bounds_inside_the_zone_never_override_higher_bounds(self) -> None:
        """0 W only as far as the priorities above allow it; missed bounds skip."""
        manager = PowerManager.for_ev_chargers()
        manager.set_system_bounds(EVS, PowerBounds(0.0, 22_000.0, 0.0, 4_140.0))
        manager.propose(proposal("boss", 10, None, 5_000.0, 11_000.0))
        manager.propose(proposal("cap", 5, None, 1_000.0, 3_000.0))
        manager.propose(proposal("app", 1, 10_000.0))
        # The cap misses what the boss leaves (5–11 kW): skipped, as the SDK.
        assert manager.steering_target(EVS) == 10_000.0
        manager.withdraw("app")
        assert manager.steering_target(EVS) == 11_000.0  # the default, bounded
        manager.propose(proposal("boss", 10, None, 0.0, 11_000.0))
        manager.propose(proposal("app", 1, 10_000.0))
        assert manager.steering_target(EVS) == 0.0  # the cap binds now

    def test_exclusion_zone_snaps_to_the_nearer_edge_and_keeps_zero(self) -> None:
        manager = PowerManager(Matryoshka(), DefaultPower.ZERO)
        manager.set_system_bounds(
            BATTERIES, PowerBounds(-5_000.0, 5_000.0, -100.0, 300.0)
        )
        assert manager.propose(proposal("a", 1, 50.0, ids=BATTERIES)) == -100.0
        assert manager.propose(proposal("a", 1, 150.0, ids=BATTERIES)) == 300.0
        # Midway goes to the lower edge, as in the SDK.
        assert manager.propose(proposal("a", 1, 100.0, ids=BATTERIES)) == -100.0
        assert manager.propose(proposal("a", 1, 0.0, ids=BATTERIES)) == 0.0

    def test_reports_show_the_bounds_left_for_each_priority(self) -> None:
        manager = ev_manager()
        manager.propose(proposal("peak", 10, None, 1_000.0, 8_000.0))
        manager.propose(proposal("solar", 5, 4_000.0, 2_000.0, 6_000.0))
        assert manager.report(EVS, 10).bounds == EV_SYSTEM
        assert manager.report(EVS, 7).bounds == PowerBounds(1_000.0, 8_000.0)
        low = manager.report(EVS, 1)
        assert low.bounds == PowerBounds(2_000.0, 6_000.0)
        assert low.target_power == 4_000.0
        assert low.last_result is None

    def test_higher_priority_bounds_inside_the_exclusion_zone_are_ignored(
        self,
    ) -> None:
        system = PowerBounds(-5_000.0, 5_000.0, -500.0, 500.0)
        manager = PowerManager(Matryoshka(), DefaultPower.ZERO)
        manager.set_system_bounds(BATTERIES, system)
        manager.propose(proposal("odd", 10, None, -100.0, 100.0, ids=BATTERIES))
        assert manager.propose(proposal("a", 1, 2_000.0, ids=BATTERIES)) == 2_000.0
        assert manager.report(BATTERIES, 1).bounds == system


class TestShiftingMatryoshka:
    def test_powers_add_up_across_priorities(self) -> None:
        manager = battery_manager()
        manager.propose(proposal("peak", 10, 2_000.0, ids=BATTERIES))
        assert manager.propose(proposal("opt", 5, 1_000.0, ids=BATTERIES)) == 3_000.0
        # Lower priorities see the range shifted by what the higher ones took.
        assert manager.report(BATTERIES, 5).bounds == PowerBounds(-7_000.0, 3_000.0)

    def test_a_lower_priority_only_gets_what_is_left(self) -> None:
        manager = battery_manager()
        manager.propose(proposal("peak", 10, 4_000.0, ids=BATTERIES))
        assert manager.propose(proposal("opt", 5, 2_000.0, ids=BATTERIES)) == 5_000.0

    def test_higher_priority_bounds_limit_the_sum(self) -> None:
        manager = battery_manager()
        manager.propose(proposal("fuse", 10, None, -1_000.0, 1_000.0, ids=BATTERIES))
        manager.propose(proposal("a", 5, 800.0, ids=BATTERIES))
        assert manager.propose(proposal("b", 4, 800.0, ids=BATTERIES)) == 1_000.0

    def test_an_inverted_proposal_is_ignored_entirely(self) -> None:
        manager = battery_manager()
        manager.propose(proposal("a", 5, 1_000.0, ids=BATTERIES))
        target = manager.propose(
            proposal("bad", 9, 3_000.0, 2_000.0, -2_000.0, ids=BATTERIES)
        )
        assert target == 1_000.0

    def test_sum_snaps_out_of_the_exclusion_zone(self) -> None:
        manager = battery_manager(PowerBounds(-5_000.0, 5_000.0, -500.0, 500.0))
        assert manager.propose(proposal("a", 1, 200.0, ids=BATTERIES)) == 500.0

    def test_snapping_never_reverses_the_direction(self) -> None:
        manager = battery_manager(PowerBounds(-5_000.0, 5_000.0, -150.0, 600.0))
        assert manager.propose(proposal("a", 1, 100.0, ids=BATTERIES)) == 0.0

    def test_bounds_only_proposal_still_gives_a_number(self) -> None:
        manager = battery_manager()
        assert manager.propose(proposal("a", 1, None, 0.0, 10.0, ids=BATTERIES)) == 0.0

    def test_withdrawal_falls_back_to_zero(self) -> None:
        manager = battery_manager()
        manager.propose(proposal("a", 1, -3_000.0, ids=BATTERIES))
        assert manager.propose(proposal("a", 1, None, ids=BATTERIES)) == 0.0
        assert manager.target_power(BATTERIES) is None


class TestLifecycle:
    def test_proposals_expire_after_sixty_seconds(self) -> None:
        manager = ev_manager()
        manager.propose(proposal("old", 5, 3_000.0, at=0.0))
        manager.propose(proposal("new", 1, 1_000.0, at=30.0))
        assert manager.drop_expired(60.0) == {}
        assert manager.drop_expired(60.5) == {EVS: 1_000.0}
        assert manager.drop_expired(90.5) == {EVS: 22_000.0}
        assert manager.proposals(EVS) == []

    def test_kept_alive_proposals_never_expire(self) -> None:
        manager = ev_manager()
        manager.propose(proposal("ha", 5, 3_000.0, keep_alive=True))
        assert manager.drop_expired(10_000.0) == {}
        assert manager.target_power(EVS) == 3_000.0

    def test_refresh_restarts_the_age(self) -> None:
        manager = ev_manager()
        manager.propose(proposal("ha", 5, 3_000.0, at=0.0))
        manager.refresh("ha", 50.0)
        assert manager.drop_expired(100.0) == {}
        assert manager.drop_expired(110.5) == {EVS: 22_000.0}

    def test_withdraw_by_source_across_component_sets(self) -> None:
        manager = ev_manager()
        other = frozenset({12})
        manager.set_system_bounds(other, PowerBounds(0.0, 7_000.0))
        manager.propose(proposal("ha", 5, 3_000.0))
        manager.propose(proposal("ha", 5, 2_000.0, ids=other))
        manager.propose(proposal("app", 1, 1_000.0, ids=other))
        assert manager.withdraw("ha") == {EVS: 22_000.0, other: 1_000.0}
        assert manager.withdraw("ha") == {}

    def test_proposal_waits_for_the_system_bounds(self) -> None:
        manager = PowerManager.for_batteries()
        assert manager.propose(proposal("a", 1, 9_000.0, ids=BATTERIES)) is None
        assert manager.report(BATTERIES, 1).bounds is None
        assert manager.set_system_bounds(BATTERIES, BATTERY_SYSTEM) == 5_000.0
        assert manager.set_system_bounds(BATTERIES, BATTERY_SYSTEM) is None
        shrunk = PowerBounds(-2_000.0, 2_000.0)
        assert manager.set_system_bounds(BATTERIES, shrunk) == 2_000.0

    def test_overlapping_component_sets_are_refused(self) -> None:
        manager = ev_manager()
        manager.propose(proposal("a", 1, 1_000.0))
        with pytest.raises(ProposalRefusedError, match="overlap") as refused:
            manager.propose(proposal("a", 1, 1_000.0, ids=frozenset({11, 12})))
        assert refused.value.reason is RefusalReason.OVERLAPPING_SET

    def test_nan_is_refused(self) -> None:
        with pytest.raises(ValueError, match="NaN"):
            proposal("a", 1, math.nan)
        with pytest.raises(ValueError, match="NaN"):
            proposal("a", 1, None, math.nan)

    def test_partial_failure_resends_the_target_once(self) -> None:
        manager = battery_manager()
        manager.propose(proposal("a", 1, 2_000.0, ids=BATTERIES))
        request = Request(power=2_000.0, component_ids=BATTERIES)
        failure = PartialFailure(
            request=request,
            succeeded_power=1_000.0,
            succeeded_components={20},
            excess_power=0.0,
            failed_power=1_000.0,
            failed_components={21},
        )
        assert manager.record_result(failure) == 2_000.0
        assert manager.record_result(failure) is None
        assert manager.report(BATTERIES, 0).last_result is failure
        success = Success(
            request=request,
            succeeded_power=2_000.0,
            succeeded_components=BATTERIES,
            excess_power=0.0,
        )
        assert manager.record_result(success) is None
        assert manager.report(BATTERIES, 0).last_result is success
        assert manager.record_result(failure) == 2_000.0

    def test_a_result_can_be_filed_under_the_proposals_component_set(self) -> None:
        manager = battery_manager()
        manager.propose(proposal("a", 1, 2_000.0, ids=BATTERIES))
        subset = Request(power=2_000.0, component_ids=frozenset({20}))
        result = Success(
            request=subset,
            succeeded_power=2_000.0,
            succeeded_components={20},
            excess_power=0.0,
        )
        manager.record_result(result, BATTERIES)
        assert manager.report(BATTERIES, 0).last_result is result


def test_algorithms_are_selected_per_pool_kind() -> None:
    assert isinstance(PowerManager.for_batteries().algorithm, ShiftingMatryoshka)
    assert PowerManager.for_batteries().default_power is DefaultPower.ZERO
    assert isinstance(PowerManager.for_ev_chargers().algorithm, Matryoshka)
    assert PowerManager.for_ev_chargers().default_power is DefaultPower.MAX
    assert PowerManager.for_pv_inverters().default_power is DefaultPower.MIN
