"""A one-phase EV behind a three-phase charger against the pool target (spec §4).

The steering describes such an EV on its one phase at ``3 × V`` per ampere
(`ev_charger_input`): the charger turns the setpoint's watts into a current per
phase over its three phases and the EV draws that current on one phase only, a
third of the watts. The pool target is the pool's power, so the EV counts at
what it draws: what it leaves of its setpoint's watts goes to the others
(found on ``home``: 12 kW asked, both chargers at 6 kW, the pool drew 8 kW).
The per-phase fuse still counts its own phase only.
"""

from __future__ import annotations

import math

import pytest

from custom_components.frequenz_microgrid.engine.distribution.ev_chargers import (
    EvAllocationReason as Reason,
    EvAllocatorConfig,
    EvChargerAllocator,
    EvChargerInput,
)

V = 230.0
CHARGER_W_PER_A = 3 * V
"""Watts per ampere a three-phase charger converts its setpoint with."""
ONE_PHASE, THREE_PHASE = 6, 7
TARGET_W = 12_000.0


def one_phase_ev(
    drawing_a: float, *, power_w: float = math.nan, known: bool = True
) -> EvChargerInput:
    """The one-phase EV on L1, as `ev_charger_input` describes it."""
    return EvChargerInput(
        component_id=ONE_PHASE,
        ev_connected=True,
        phases=(1,),
        measured_currents_a=(drawing_a if known else math.nan, 0.0, 0.0),
        measured_power_w=power_w,
        voltage_v=CHARGER_W_PER_A,
        phase_voltage_v=V,
    )


def three_phase_ev(drawing_a: float) -> EvChargerInput:
    return EvChargerInput(
        component_id=THREE_PHASE,
        ev_connected=True,
        phases=(1, 2, 3),
        measured_currents_a=(drawing_a, drawing_a, drawing_a),
        voltage_v=V,
        phase_voltage_v=V,
    )


def test_a_one_phase_ev_counts_at_what_it_draws_against_the_target() -> None:
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=40.0))

    allocation = allocator.allocate(
        TARGET_W, [one_phase_ev(8.7), three_phase_ev(8.7)], now=0.0
    )

    fair_a = TARGET_W / (V + CHARGER_W_PER_A)  # the same current for both
    one, three = allocation.setpoints[ONE_PHASE], allocation.setpoints[THREE_PHASE]
    assert (one.current_a, three.current_a) == pytest.approx((fair_a, fair_a))
    assert one.power_w == pytest.approx(fair_a * CHARGER_W_PER_A)  # sent
    assert one.drawn_power_w == pytest.approx(fair_a * V)  # drawn, on L1
    assert three.drawn_power_w == pytest.approx(three.power_w)
    assert allocation.drawn_power_w == pytest.approx(TARGET_W)
    assert allocation.excess_power_w == pytest.approx(0.0)
    assert allocation.phase_currents_a == pytest.approx((2 * fair_a, fair_a, fair_a))
    assert {one.reason, three.reason} == {Reason.TARGET}


def test_the_fuse_still_counts_the_one_phase_ev_on_its_phase() -> None:
    """L1 carries both EVs and binds; L2/L3 are free but no EV uses them alone."""
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=40.0))

    allocation = allocator.allocate(
        TARGET_W,
        [one_phase_ev(8.7), three_phase_ev(8.7)],
        now=0.0,
        other_currents_a=(20.0, 0.0, 0.0),
    )

    assert allocation.phase_currents_a[0] == pytest.approx(20.0)
    assert allocation.setpoints[ONE_PHASE].current_a == pytest.approx(10.0)
    assert allocation.setpoints[THREE_PHASE].current_a == pytest.approx(10.0)
    assert allocation.setpoints[THREE_PHASE].reason is Reason.PHASE_LIMIT
    assert allocation.drawn_power_w < TARGET_W


def test_a_one_phase_ev_drawing_less_gives_the_rest_of_the_target_back() -> None:
    """Its car takes 8 A of its share: capped, the three-phase EV gets the rest."""
    config = EvAllocatorConfig(phase_limit_a=40.0)
    allocator = EvChargerAllocator(config)
    fair_a = TARGET_W / (V + CHARGER_W_PER_A)
    allocator.allocate(TARGET_W, [one_phase_ev(0.0), three_phase_ev(0.0)], now=0.0)
    allocation = None
    for now in (1.0, 2.0, 3.0, 4.0, 5.0):
        allocation = allocator.allocate(
            TARGET_W, [one_phase_ev(8.0), three_phase_ev(fair_a)], now=now
        )
    assert allocation is not None

    one, three = allocation.setpoints[ONE_PHASE], allocation.setpoints[THREE_PHASE]
    capped_a = 8.0 + config.give_back_headroom_a
    assert one.current_a == pytest.approx(capped_a)
    assert one.reason is Reason.DEMAND
    assert three.current_a == pytest.approx((TARGET_W - capped_a * V) / CHARGER_W_PER_A)
    assert allocation.drawn_power_w == pytest.approx(TARGET_W)


def test_a_one_phase_ev_known_by_its_power_only_is_not_taken_for_under_using() -> None:
    """Without its phase current, its power counts over one phase's voltage."""
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=40.0))
    fair_a = TARGET_W / (V + CHARGER_W_PER_A)
    allocator.allocate(TARGET_W, [one_phase_ev(0.0), three_phase_ev(0.0)], now=0.0)
    allocation = None
    for now in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0):
        allocation = allocator.allocate(
            TARGET_W,
            [
                one_phase_ev(fair_a, power_w=fair_a * V, known=False),
                three_phase_ev(fair_a),
            ],
            now=now,
        )
    assert allocation is not None

    assert allocation.setpoints[ONE_PHASE].current_a == pytest.approx(fair_a)
    assert allocation.setpoints[ONE_PHASE].reason is not Reason.DEMAND
