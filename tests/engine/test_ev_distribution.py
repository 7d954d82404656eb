"""Worked examples for the EV charger allocator (spec §4)."""

from __future__ import annotations

import math

import pytest

from custom_components.frequenz_microgrid.engine.distribution.ev_chargers import (
    EvAllocation,
    EvAllocationReason as Reason,
    EvAllocatorConfig,
    EvChargerAllocator,
    EvChargerInput,
)
from custom_components.frequenz_microgrid.engine.distribution.ev_fuse import (
    uncontrolled_currents,
)

V = 230.0
THREE_PHASE_W_PER_A = 3 * V
BIG_TARGET = 1e9


def ev(
    component_id: int,
    *,
    connected: bool = True,
    phases: tuple[int, ...] = (1, 2, 3),
    drawing_a: float | None = None,
    max_current_a: float = 32.0,
    working: bool = True,
) -> EvChargerInput:
    """A charger whose EV draws `drawing_a` on each of its phases."""
    drawn = 0.0 if drawing_a is None else drawing_a
    currents = tuple(drawn if p in phases else 0.0 for p in (1, 2, 3))
    return EvChargerInput(
        component_id=component_id,
        ev_connected=connected,
        working=working,
        phases=phases,
        measured_currents_a=(currents[0], currents[1], currents[2]),
        max_current_a=max_current_a,
    )


def currents(allocation: EvAllocation) -> dict[int, float]:
    return {cid: s.current_a for cid, s in allocation.setpoints.items()}


def reasons(allocation: EvAllocation) -> dict[int, Reason]:
    return {cid: s.reason for cid, s in allocation.setpoints.items()}


def test_two_evs_share_a_32_a_fuse_equally() -> None:
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=32.0))
    allocation = allocator.allocate(BIG_TARGET, [ev(1), ev(2)], now=0.0)
    assert currents(allocation) == pytest.approx({1: 16.0, 2: 16.0})
    assert allocation.powers() == pytest.approx(
        {1: 16.0 * THREE_PHASE_W_PER_A, 2: 16.0 * THREE_PHASE_W_PER_A}
    )
    assert allocation.phase_currents_a == pytest.approx((32.0, 32.0, 32.0))
    assert set(reasons(allocation).values()) == {Reason.PHASE_LIMIT}


def test_charger_without_ev_gets_zero_and_not_working_too() -> None:
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=32.0))
    allocation = allocator.allocate(
        BIG_TARGET, [ev(1), ev(2, connected=False), ev(3, working=False)], now=0.0
    )
    assert allocation.powers() == pytest.approx({1: 32.0 * 690.0, 2: 0.0, 3: 0.0})
    assert reasons(allocation) == {
        1: Reason.CHARGER_MAX,
        2: Reason.NO_EV,
        3: Reason.NOT_WORKING,
    }


def test_one_phase_ev_only_counts_on_its_phase() -> None:
    # 40 A fuse: the 3-phase EV and the 1-phase EV on L2 share L2 equally (20 A
    # each); L1 and L3 carry only the 3-phase EV, which is held by L2.
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=40.0))
    allocation = allocator.allocate(BIG_TARGET, [ev(1), ev(2, phases=(2,))], now=0.0)
    assert currents(allocation) == pytest.approx({1: 20.0, 2: 20.0})
    assert allocation.powers() == pytest.approx({1: 20.0 * 690.0, 2: 20.0 * V})
    assert allocation.phase_currents_a == pytest.approx((20.0, 40.0, 20.0))
    assert allocation.setpoints[2].phase_currents_a == (0.0, 20.0, 0.0)


def test_one_phase_evs_on_different_phases_do_not_compete() -> None:
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=16.0))
    allocation = allocator.allocate(
        BIG_TARGET, [ev(1, phases=(1,)), ev(2, phases=(3,))], now=0.0
    )
    assert currents(allocation) == pytest.approx({1: 16.0, 2: 16.0})


def test_other_loads_reduce_the_phase_capacity() -> None:
    allocator = EvChargerAllocator(
        EvAllocatorConfig(phase_limit_a=32.0, fuse_tolerance_a=2.0)
    )
    allocation = allocator.allocate(
        BIG_TARGET, [ev(1), ev(2)], now=0.0, other_currents_a=(4.0, 10.0, 0.0)
    )
    # L2 has 32 - 2 - 10 = 20 A left for two EVs.
    assert currents(allocation) == pytest.approx({1: 10.0, 2: 10.0})
    assert allocation.phase_capacity_a == pytest.approx((26.0, 20.0, 30.0))


def test_unknown_other_load_blocks_the_phase() -> None:
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=32.0))
    allocation = allocator.allocate(
        BIG_TARGET,
        [ev(1), ev(2, phases=(1,))],
        now=0.0,
        other_currents_a=(0.0, 0.0, math.nan),
    )
    assert currents(allocation) == pytest.approx({1: 0.0, 2: 32.0})
    assert reasons(allocation)[1] is Reason.WAITING


def test_target_in_watts_is_shared_equally() -> None:
    allocator = EvChargerAllocator()
    target = 2 * 10.0 * THREE_PHASE_W_PER_A
    allocation = allocator.allocate(target, [ev(1), ev(2)], now=0.0)
    assert currents(allocation) == pytest.approx({1: 10.0, 2: 10.0})
    assert allocation.total_power_w == pytest.approx(target)
    assert set(reasons(allocation).values()) == {Reason.TARGET}


def test_charger_maximum_passes_the_rest_to_the_others() -> None:
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=40.0))
    allocation = allocator.allocate(
        BIG_TARGET, [ev(1, max_current_a=10.0), ev(2)], now=0.0
    )
    assert currents(allocation) == pytest.approx({1: 10.0, 2: 30.0})
    assert reasons(allocation) == {1: Reason.CHARGER_MAX, 2: Reason.PHASE_LIMIT}


def test_too_little_for_everyone_admits_in_plug_in_order() -> None:
    # 15 A fits two EVs at 6 A but not three; the one plugged in last waits.
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=15.0))
    allocator.allocate(BIG_TARGET, [ev(1)], now=0.0)
    allocator.allocate(BIG_TARGET, [ev(1), ev(2)], now=1.0)
    allocation = allocator.allocate(BIG_TARGET, [ev(1), ev(2), ev(3)], now=2.0)
    assert currents(allocation) == pytest.approx({1: 7.5, 2: 7.5, 3: 0.0})
    assert reasons(allocation)[3] is Reason.WAITING


def test_priority_goes_before_plug_in_order() -> None:
    allocator = EvChargerAllocator(
        EvAllocatorConfig(phase_limit_a=10.0, priorities={2: 5})
    )
    allocation = allocator.allocate(BIG_TARGET, [ev(1), ev(2)], now=0.0)
    assert currents(allocation) == pytest.approx({1: 0.0, 2: 10.0})


def test_below_minimum_target_gives_zero_not_an_unsafe_setpoint() -> None:
    allocator = EvChargerAllocator()
    allocation = allocator.allocate(5.9 * THREE_PHASE_W_PER_A, [ev(1)], now=0.0)
    assert allocation.powers() == {1: 0.0}
    assert allocation.excess_power_w == pytest.approx(5.9 * THREE_PHASE_W_PER_A)


def test_negative_or_nan_target_is_zero() -> None:
    allocator = EvChargerAllocator()
    assert allocator.allocate(-5000.0, [ev(1)], now=0.0).powers() == {1: 0.0}
    assert allocator.allocate(math.nan, [ev(1)], now=1.0).powers() == {1: 0.0}


def test_invalid_charger_limits_give_zero() -> None:
    allocator = EvChargerAllocator()
    allocation = allocator.allocate(
        BIG_TARGET, [ev(1, max_current_a=4.0), ev(2, phases=(4,))], now=0.0
    )
    assert allocation.powers() == {1: 0.0, 2: 0.0}
    assert set(reasons(allocation).values()) == {Reason.INVALID_LIMITS}


def test_measured_voltage_converts_current_to_watts() -> None:
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=16.0))
    charger = EvChargerInput(component_id=1, ev_connected=True, voltage_v=240.0)
    allocation = allocator.allocate(BIG_TARGET, [charger], now=0.0)
    assert allocation.powers() == pytest.approx({1: 16.0 * 3 * 240.0})


@pytest.mark.parametrize(
    "changes",
    [
        {"phase_limit_a": -1.0},
        {"nominal_voltage_v": 0.0},
        {"hysteresis_a": -0.5},
        {"give_back_headroom_a": 4.0, "give_back_margin_a": 3.0},
    ],
)
def test_config_rejects_unsafe_settings(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        EvAllocatorConfig(**changes)  # type: ignore[arg-type]


def test_non_finite_charger_values_are_not_trusted() -> None:
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=16.0))
    unbounded = EvChargerInput(
        component_id=1, ev_connected=True, max_current_a=math.inf
    )
    odd_voltage = EvChargerInput(component_id=2, ev_connected=True, voltage_v=math.inf)
    allocation = allocator.allocate(math.inf, [unbounded, odd_voltage], now=0.0)
    assert reasons(allocation)[1] is Reason.INVALID_LIMITS
    assert allocation.powers() == pytest.approx({1: 0.0, 2: 16.0 * 690.0})


def test_uncontrolled_currents_subtract_the_chargers_from_the_fuse_meter() -> None:
    chargers = [(10.0, 10.0, 10.0), (0.0, 6.0, 0.0)]
    assert uncontrolled_currents((12.0, 20.0, 10.5), chargers) == pytest.approx(
        (2.0, 4.0, 0.5)
    )
    unknown = (0.0, math.nan, 0.0)
    others = uncontrolled_currents((12.0, 20.0, 10.5), [*chargers, unknown])
    assert math.isnan(others[1])
    evs = [ev(1, drawing_a=10.0), ev(2, phases=(2,), drawing_a=6.0)]
    allocation = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=32.0)).allocate(
        BIG_TARGET, evs, now=0.0, other_currents_a=others
    )
    assert allocation.phase_currents_a[1] == 0.0
