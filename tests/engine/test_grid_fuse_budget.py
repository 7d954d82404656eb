"""How a pool's room below the grid fuse is handed out to its sets (`FuseBudget`).

The room itself is measured against the simulator in `test_control_grid_fuse.py`;
here the rules of handing it out: only towards 0 W, import and export apart, and
each set held at its own inverters while the grid is blind.
"""

from __future__ import annotations

from custom_components.frequenz_microgrid.engine.control.grid_fuse import (
    GRID_CURRENTS_UNKNOWN,
    GRID_FUSE,
    FuseBudget,
    FuseRoom,
)

SET_A = (10,)
SET_B = (20,)


def test_the_room_is_shared_by_the_sets_of_a_round() -> None:
    budget = FuseBudget(FuseRoom(lowest_w=-5_000.0, highest_w=8_000.0), (1_000.0,))
    assert budget.bound_explained(5_000.0, SET_A)[0] == 5_000.0
    assert (
        budget.bound_explained(5_000.0, SET_B)[0] == 2_000.0
    )  # 1 kW unsteered + 5 kW taken
    assert (
        budget.bound_explained(-20_000.0, SET_A)[0] == -5_000.0
    )  # the export room, untouched


def test_a_discharge_lends_no_room_to_a_charge() -> None:
    """The room is per line: feeding in on L2 frees nothing on L1.

    An unsteered inverter discharging 5 kW, or a set discharging earlier in the
    round, leaves a charge the 460 W of import room there is, not 5.46 kW.
    """
    room = FuseRoom(lowest_w=-50_000.0, highest_w=460.0)
    assert FuseBudget(room, (-5_000.0,)).bound_explained(5_000.0, SET_A)[0] == 460.0
    budget = FuseBudget(room)
    assert budget.bound_explained(-8_000.0, SET_A)[0] == -8_000.0
    assert budget.bound_explained(10_000.0, SET_B)[0] == 460.0
    exporting = FuseRoom(lowest_w=-460.0, highest_w=50_000.0)
    assert (
        FuseBudget(exporting, (5_000.0,)).bound_explained(-5_000.0, SET_A)[0] == -460.0
    )


def test_the_fuse_only_moves_a_battery_towards_zero() -> None:
    """Others alone above the fuse: a charge is cut to 0 W, nothing is raised."""
    overloaded = FuseRoom(lowest_w=-50_000.0, highest_w=-3_000.0)
    assert FuseBudget(overloaded).bound_explained(10_000.0, SET_A)[0] == 0.0
    assert FuseBudget(overloaded).bound_explained(-1_000.0, SET_A)[0] == -1_000.0
    exporting = FuseRoom(lowest_w=2_000.0, highest_w=40_000.0)
    assert FuseBudget(exporting).bound_explained(-10_000.0, SET_A)[0] == 0.0
    assert FuseBudget(exporting).bound_explained(1_000.0, SET_A)[0] == 1_000.0


def test_a_production_limit_moves_either_way_within_the_room() -> None:
    """Curtailing less is what the fuse needs when the site imports at it."""
    importing = FuseRoom(lowest_w=-50_000.0, highest_w=-3_000.0)
    limits = FuseBudget(importing, production_limits=True)
    assert limits.bound_explained(-1_000.0, SET_A)[0] == -3_000.0
    assert (
        limits.bound_explained(-1_000.0, SET_B)[0] == -1_000.0
    )  # SET_A's production counts
    exporting = FuseRoom(lowest_w=-8_000.0, highest_w=40_000.0)
    limits = FuseBudget(exporting, production_limits=True)
    assert limits.bound_explained(-20_000.0, SET_A)[0] == -8_000.0
    assert (
        FuseBudget(exporting, production_limits=True).bound_explained(-5_000.0, SET_A)[
            0
        ]
        == -5_000.0
    )


def test_without_a_room_nothing_is_bounded() -> None:
    assert FuseBudget(None).bound_explained(1e9, SET_A)[0] == 1e9
    assert FuseBudget(None).bound_explained(1e9, SET_A) == (1e9, None)


def test_the_reason_says_which_bound_reduced_the_target() -> None:
    room = FuseRoom(lowest_w=-1_000.0, highest_w=1_000.0)
    assert FuseBudget(room).bound_explained(5_000.0, SET_A) == (1_000.0, GRID_FUSE)
    assert FuseBudget(room).bound_explained(500.0, SET_A) == (500.0, None)


def test_a_blind_grid_holds_each_set_where_its_own_inverters_stand() -> None:
    """Per set: one standing at +10 kW lends nothing to another standing at 0 W.

    Held together, the idle set could feed in 10 kW nobody sees, and a charging
    and a discharging set would cancel out and both be stopped.
    """
    held = FuseRoom(
        lowest_w=0.0, highest_w=0.0, held_w={10: (0.0, 10_000.0), 20: (0.0, 0.0)}
    )
    budget = FuseBudget(held)
    assert budget.bound_explained(-10_000.0, SET_B) == (0.0, GRID_CURRENTS_UNKNOWN)
    assert budget.bound_explained(60_000.0, SET_A) == (
        10_000.0,
        GRID_CURRENTS_UNKNOWN,
    )
    assert FuseBudget(held).bound_explained(5_000.0, SET_A) == (5_000.0, None)
    assert FuseBudget(held).bound_explained(-5_000.0, SET_A) == (
        0.0,
        GRID_CURRENTS_UNKNOWN,
    )
    both_ways = FuseRoom(
        lowest_w=0.0, highest_w=0.0, held_w={10: (0.0, 10_000.0), 20: (-10_000.0, 0.0)}
    )
    budget = FuseBudget(both_ways)
    assert budget.bound_explained(10_000.0, SET_A)[0] == 10_000.0
    assert budget.bound_explained(-10_000.0, SET_B)[0] == -10_000.0


def test_a_blind_grid_holds_a_production_limit_at_what_it_produces() -> None:
    held = FuseRoom(lowest_w=0.0, highest_w=0.0, held_w={10: (-7_000.0, 0.0)})
    limits = FuseBudget(held, production_limits=True)
    assert limits.bound_explained(-50_000.0, SET_A) == (-7_000.0, GRID_CURRENTS_UNKNOWN)
    assert limits.bound_explained(-2_000.0, SET_A) == (-2_000.0, None)


def test_inverters_of_unknown_lines_cost_room_only_when_given_power() -> None:
    """The room if they take nothing more, unless the split gives them power.

    Inverter 30 never carried power (its lines are unknown): counted as if all
    of its power could be on any one line, the pool has 1 kW; if the split
    leaves it out, the known inverters have the 3 kW their lines leave.
    """
    room = FuseRoom(
        lowest_w=-1_000.0,
        highest_w=1_000.0,
        unknown=frozenset({30}),
        hopeful_w=(-3_000.0, 3_000.0),
    )
    budget = FuseBudget(room)
    assert budget.allowance(2_000.0, SET_A, hopeful=True) == (2_000.0, None)
    assert budget.allowance(2_000.0, SET_A) == (1_000.0, GRID_FUSE)
    assert not budget.uses_unknown({10: 2_000.0, 30: 0.0})
    assert budget.uses_unknown({10: 1_000.0, 30: 1_000.0})
    budget.take(2_000.0)
    assert budget.allowance(2_000.0, SET_B, hopeful=True) == (1_000.0, GRID_FUSE)
    assert not FuseBudget(None).uses_unknown({30: 1_000.0})
