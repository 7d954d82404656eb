"""Smart mode: a charger follows the current slot of the hub's charging plan."""

from __future__ import annotations

import pytest

from custom_components.frequenz_microgrid.engine.distribution.ev_chargers import (
    EvAllocationReason,
    EvAllocatorConfig,
    EvChargerAllocator,
    EvChargerInput,
)
from custom_components.frequenz_microgrid.engine.hub.modes import (
    ChargerMode,
    ChargerModes,
)

V = 230.0


def ev(cid: int, phases: tuple[int, ...] = (1, 2, 3)) -> EvChargerInput:
    return EvChargerInput(
        component_id=cid, ev_connected=True, phases=phases, voltage_v=V
    )


def smart_modes(plan: dict[int, float | None]) -> ChargerModes:
    modes = ChargerModes(frozenset(plan), clock=lambda: 0.0, planned_power_w=plan.get)
    for cid in plan:
        modes.set_mode(cid, ChargerMode.SMART)
    return modes


def test_smart_mode_caps_at_the_planned_power() -> None:
    modes = smart_modes({1: 6_900.0, 2: 2_300.0})
    shaped = modes.apply({1: ev(1), 2: ev(2, phases=(1,))}, 0.0)
    assert shaped[1].mode_max_current_a == pytest.approx(10.0)
    assert shaped[2].mode_max_current_a == pytest.approx(10.0)
    assert shaped[1].held_off is None


def test_smart_mode_holds_off_in_an_empty_slot_and_is_fast_without_a_need() -> None:
    modes = smart_modes({1: 0.0, 2: None})
    unplanned = ev(2)
    shaped = modes.apply({1: ev(1), 2: unplanned}, 0.0)
    assert shaped[1].held_off is EvAllocationReason.NOT_IN_PLAN
    assert shaped[2] is unplanned


def test_the_allocator_gives_no_more_than_the_plan() -> None:
    modes = smart_modes({1: 6_900.0, 2: 0.0})
    shaped = modes.apply({1: ev(1), 2: ev(2)}, 0.0)
    allocation = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=63.0)).allocate(
        100_000.0, list(shaped.values()), 0.0
    )
    powers = allocation.powers()
    assert powers[1] == pytest.approx(6_900.0)
    assert powers[2] == 0.0
