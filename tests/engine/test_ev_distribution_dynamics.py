"""EV allocator over time: plug-in, give-back, hysteresis, dwell and rotation.

Each test drives the allocator round by round with injected time and a minimal EV
model: an EV draws what it was allocated (up to what it wants) one round later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import itertools

import pytest

from custom_components.frequenz_microgrid.engine.distribution.ev_chargers import (
    EvAllocation,
    EvAllocationReason as Reason,
    EvAllocatorConfig,
    EvChargerAllocator,
    EvChargerInput,
)

W_PER_A = 3 * 230.0
BIG_TARGET = 1e9


@dataclass
class SimulatedEv:
    """An EV on a charger that follows its setpoint with one round of lag."""

    component_id: int
    wants_a: float = 32.0
    connected: bool = True
    phases: tuple[int, ...] = (1, 2, 3)
    drawing_a: float = 0.0

    def data(self) -> EvChargerInput:
        currents = tuple(self.drawing_a if p in self.phases else 0.0 for p in (1, 2, 3))
        return EvChargerInput(
            component_id=self.component_id,
            ev_connected=self.connected,
            phases=self.phases,
            measured_currents_a=(currents[0], currents[1], currents[2]),
        )

    def follow(self, allocation: EvAllocation) -> None:
        allocated = allocation.setpoints[self.component_id].current_a
        self.drawing_a = min(allocated, self.wants_a) if self.connected else 0.0


@dataclass
class Site:
    """An allocator, its EVs and a log of every round's allocation."""

    allocator: EvChargerAllocator
    evs: list[SimulatedEv]
    history: list[tuple[float, EvAllocation]] = field(default_factory=list)

    def round(
        self,
        now: float,
        target_w: float = BIG_TARGET,
        other_currents_a: tuple[float, float, float] | None = None,
    ) -> EvAllocation:
        allocation = self.allocator.allocate(
            target_w,
            [e.data() for e in self.evs],
            now,
            other_currents_a=other_currents_a,
        )
        for simulated in self.evs:
            simulated.follow(allocation)
        self.history.append((now, allocation))
        return allocation

    def run(self, start: float, stop: float, target_w: float = BIG_TARGET) -> None:
        """One round per second from `start` up to, not including, `stop`."""
        now = start
        while now < stop:
            self.round(now, target_w)
            now += 1.0

    def current(self, component_id: int) -> float:
        return self.history[-1][1].setpoints[component_id].current_a

    def changes(self, component_id: int) -> int:
        """How often the setpoint of a charger changed over the history."""
        values = [a.setpoints[component_id].power_w for _, a in self.history]
        return sum(1 for a, b in itertools.pairwise(values) if a != b)


def site(*evs: SimulatedEv, **config: float) -> Site:
    return Site(EvChargerAllocator(EvAllocatorConfig(**config)), list(evs))  # type: ignore[arg-type]


def test_plug_in_reaches_fair_share_within_5_seconds() -> None:
    first, second = SimulatedEv(1), SimulatedEv(2, connected=False)
    grid = site(first, second, phase_limit_a=32.0)
    grid.run(0.0, 30.0)
    assert grid.current(1) == pytest.approx(32.0)

    second.connected = True
    plugged_at = 30.0
    grid.run(plugged_at, plugged_at + 5.0)
    reached = [
        now
        for now, a in grid.history
        if now >= plugged_at
        and a.setpoints[2].current_a == pytest.approx(16.0)
        and a.setpoints[1].current_a == pytest.approx(16.0)
    ]
    assert reached
    assert reached[0] - plugged_at <= 5.0


def test_unplug_gives_zero_and_returns_the_share() -> None:
    first, second = SimulatedEv(1), SimulatedEv(2)
    grid = site(first, second, phase_limit_a=32.0)
    grid.run(0.0, 5.0)
    second.connected = False
    allocation = grid.round(5.0)
    assert allocation.setpoints[2].power_w == 0.0
    assert allocation.setpoints[2].reason is Reason.NO_EV
    assert allocation.setpoints[1].current_a == pytest.approx(32.0)


def test_target_drop_acts_immediately_despite_hysteresis_and_dwell() -> None:
    grid = site(SimulatedEv(1), SimulatedEv(2), min_dwell_s=300.0)
    grid.run(0.0, 10.0, target_w=32.0 * W_PER_A)
    assert grid.current(1) == pytest.approx(16.0)

    slightly_lower = 31.4 * W_PER_A  # 0.3 A less per EV: below the hysteresis
    allocation = grid.round(10.0, slightly_lower)
    assert allocation.total_power_w <= slightly_lower + 1e-6

    allocation = grid.round(11.0, 8.0 * W_PER_A)  # room for only one EV at 6 A
    assert allocation.total_power_w <= 8.0 * W_PER_A + 1e-6
    assert sorted(s.current_a for s in allocation.setpoints.values()) == (
        pytest.approx([0.0, 8.0])
    )


def test_fuse_drop_from_other_loads_acts_immediately() -> None:
    grid = site(SimulatedEv(1), SimulatedEv(2), phase_limit_a=32.0)
    grid.run(0.0, 5.0)
    allocation = grid.round(5.0, other_currents_a=(0.0, 0.5, 0.0))
    assert allocation.phase_currents_a[1] <= 31.5 + 1e-9


def test_small_target_changes_do_not_flap() -> None:
    grid = site(SimulatedEv(1), SimulatedEv(2))
    wobble = [32.0, 31.6, 32.4, 31.8, 32.2, 31.7, 32.3]
    for second in range(120):
        grid.round(float(second), wobble[second % len(wobble)] * W_PER_A)
        assert grid.history[-1][1].total_power_w <= (
            wobble[second % len(wobble)] * W_PER_A + 1e-6
        )
    # Settled at the lowest wobble; at most the first drops changed anything.
    assert grid.changes(1) <= 2
    assert grid.changes(2) <= 2


def test_small_fuse_headroom_changes_do_not_flap() -> None:
    grid = site(SimulatedEv(1), SimulatedEv(2), phase_limit_a=40.0)
    for second in range(60):
        other = 4.0 if second % 2 else 3.5
        grid.round(float(second), other_currents_a=(other, other, other))
    assert grid.changes(1) <= 2
    assert grid.changes(2) <= 2


def test_large_changes_are_followed() -> None:
    grid = site(SimulatedEv(1), SimulatedEv(2))
    grid.round(0.0, 20.0 * W_PER_A)
    allocation = grid.round(1.0, 30.0 * W_PER_A)
    assert allocation.setpoints[1].current_a == pytest.approx(15.0)


def test_unused_allocation_goes_to_the_others_within_seconds() -> None:
    lazy, eager = SimulatedEv(1, wants_a=8.0), SimulatedEv(2)
    grid = site(lazy, eager, phase_limit_a=32.0)
    grid.run(0.0, 6.0)
    # Drawing 8 A of 16 A for 3 s: capped at 8 + 2 A, the rest goes to the other.
    assert grid.current(1) == pytest.approx(10.0)
    assert grid.current(2) == pytest.approx(22.0)
    assert grid.history[-1][1].setpoints[1].reason is Reason.DEMAND

    lazy.wants_a = 32.0  # the EV wants more again: its cap follows it back up
    grid.run(6.0, 12.0)
    assert grid.current(1) == pytest.approx(16.0)
    assert grid.current(2) == pytest.approx(16.0)


def test_an_ev_that_stops_drawing_keeps_its_minimum() -> None:
    full = SimulatedEv(1, wants_a=0.0)
    grid = site(full, SimulatedEv(2), phase_limit_a=32.0)
    grid.run(0.0, 10.0)
    assert grid.current(1) == pytest.approx(6.0)
    assert grid.current(2) == pytest.approx(26.0)


def test_switched_off_ev_waits_out_the_dwell_before_switching_on() -> None:
    grid = site(SimulatedEv(1), min_dwell_s=30.0)
    grid.run(0.0, 40.0, target_w=10.0 * W_PER_A)
    assert grid.round(40.0, 3.0 * W_PER_A).setpoints[1].power_w == 0.0

    allocation = grid.round(41.0, 10.0 * W_PER_A)
    assert allocation.setpoints[1].reason is Reason.DWELL
    assert allocation.setpoints[1].power_w == 0.0
    grid.run(42.0, 70.0, target_w=10.0 * W_PER_A)
    assert grid.current(1) == 0.0
    assert grid.round(70.0, 10.0 * W_PER_A).setpoints[1].current_a == (
        pytest.approx(10.0)
    )


def test_replugging_starts_a_new_session_without_dwell() -> None:
    car = SimulatedEv(1)
    grid = site(car, min_dwell_s=300.0)
    grid.round(0.0, 10.0 * W_PER_A)
    grid.round(1.0, 0.0)
    car.connected = False
    grid.round(2.0, 10.0 * W_PER_A)
    car.connected = True
    assert grid.round(3.0, 10.0 * W_PER_A).setpoints[1].current_a == (
        pytest.approx(10.0)
    )


def test_evs_rotate_when_not_all_fit() -> None:
    # 13 A per phase fits two EVs at 6 A, not three: they take turns of 60 s.
    evs = [SimulatedEv(1), SimulatedEv(2), SimulatedEv(3)]
    grid = site(*evs, phase_limit_a=13.0, min_dwell_s=60.0)
    grid.run(0.0, 360.0)
    charging_periods = {
        now: frozenset(cid for cid, s in a.setpoints.items() if s.power_w > 0)
        for now, a in grid.history
    }
    assert charging_periods[0.0] == {1, 2}
    assert charging_periods[60.0] == {1, 3}
    assert charging_periods[120.0] == {2, 3}
    assert charging_periods[180.0] == {1, 2}
    assert all(len(charging) == 2 for charging in charging_periods.values())
    for ev in evs:
        switches = grid.changes(ev.component_id)
        assert switches <= 360.0 / 60.0
        on_seconds = sum(1 for c in charging_periods.values() if ev.component_id in c)
        assert on_seconds == 240  # two of every three turns


def test_ev_that_stops_working_restarts_cleanly() -> None:
    grid = site(SimulatedEv(1), min_dwell_s=30.0)
    grid.round(0.0)
    broken = EvChargerInput(component_id=1, ev_connected=True, working=False)
    allocation = grid.allocator.allocate(BIG_TARGET, [broken], 1.0)
    assert allocation.setpoints[1].reason is Reason.NOT_WORKING
    # Back to work: it was switched off at 1 s, so dwell applies until 31 s.
    assert grid.round(2.0).setpoints[1].reason is Reason.DWELL
    assert grid.round(31.0).setpoints[1].current_a == pytest.approx(32.0)
