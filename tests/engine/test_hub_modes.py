"""Charger modes (issue 15): off, fast, solar, boost; the battery for the EVs."""

from __future__ import annotations

from collections.abc import Iterator
import math

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.frequenz_microgrid.engine.distribution.ev_chargers import (
    EvAllocationReason,
    EvAllocatorConfig,
    EvChargerAllocator,
    EvChargerInput,
)
from custom_components.frequenz_microgrid.engine.hub.battery_for_evs import (
    BatteryForEvs,
    DischargeBudget,
)
from custom_components.frequenz_microgrid.engine.hub.modes import (
    MAX_BOOST_S,
    ChargerMode,
    ChargerModes,
    ChargerModeState,
)
from custom_components.frequenz_microgrid.engine.hub.site import SiteFlows
from custom_components.frequenz_microgrid.engine.hub.solar import (
    SolarCharger,
    SolarSharing,
    fair_split,
    solar_surplus_w,
)

V = 230.0
MIN_3PH_W = 6 * 3 * V  # 4140 W
MAX_3PH_W = 32 * 3 * V


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ev(
    cid: int,
    *,
    drawing_w: float = 0.0,
    phases: tuple[int, ...] = (1, 2, 3),
    voltage_v: float = V,
) -> EvChargerInput:
    return EvChargerInput(
        component_id=cid,
        ev_connected=True,
        measured_power_w=drawing_w,
        phases=phases,
        voltage_v=voltage_v,
    )


def modes_with(
    clock: Clock, site: list[SiteFlows | None], *ids: int, **solar: float
) -> ChargerModes:
    return ChargerModes(
        frozenset(ids),
        clock=clock,
        site=lambda: site[0],
        solar=SolarSharing(**solar),
    )


# -- off / fast / boost through the allocator ----------------------------------------


def test_off_holds_a_plugged_charger_at_0_w_and_fast_charges_it_again() -> None:
    clock = Clock()
    modes = modes_with(clock, [None], 1)
    allocator = EvChargerAllocator(EvAllocatorConfig(min_dwell_s=0.0))
    inputs = {1: ev(1)}

    assert allocator.allocate(
        1e9, list(modes.apply(inputs, 0.0).values()), 0.0
    ).powers() == {1: MAX_3PH_W}
    modes.set_mode(1, ChargerMode.OFF)
    off = allocator.allocate(1e9, list(modes.apply(inputs, 1.0).values()), 1.0)
    assert off.powers() == {1: 0.0}
    assert off.setpoints[1].reason is EvAllocationReason.MODE_OFF

    modes.set_mode(1, ChargerMode.FAST)
    again = allocator.allocate(1e9, list(modes.apply(inputs, 2.0).values()), 2.0)
    assert again.powers() == {1: MAX_3PH_W}


def test_boost_wins_the_minimum_current_when_the_fuse_only_fits_one() -> None:
    clock = Clock()
    modes = modes_with(clock, [None], 1, 2)
    # 10 A per phase: one EV at 6 A fits, two do not.
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=10.0))
    inputs = {1: ev(1), 2: ev(2)}
    first = allocator.allocate(1e9, list(modes.apply(inputs, 0.0).values()), 0.0)
    assert first.setpoints[1].current_a == 10.0
    assert first.setpoints[2].reason is EvAllocationReason.WAITING

    modes.set_mode(2, ChargerMode.BOOST, boost_s=600.0)
    # EV 1 is still inside its on-dwell: a boost takes its place all the same.
    boosted = allocator.allocate(1e9, list(modes.apply(inputs, 5.0).values()), 5.0)
    assert boosted.setpoints[2].current_a == 10.0
    assert boosted.setpoints[1].power_w == 0.0
    assert max(boosted.phase_currents_a) <= 10.0


def test_a_boost_runs_out_and_returns_to_the_mode_before_it() -> None:
    clock = Clock()
    modes = modes_with(clock, [None], 1)
    changes: list[ChargerMode] = []
    modes.listen(lambda: changes.append(modes.mode(1)))
    modes.set_mode(1, ChargerMode.SOLAR)
    modes.set_mode(1, ChargerMode.BOOST, boost_s=60.0)
    clock.now += 30.0
    # A second boost restarts the time but still returns to solar afterwards.
    modes.set_mode(1, ChargerMode.BOOST, boost_s=60.0)
    clock.now += 59.0
    assert modes.mode(1) is ChargerMode.BOOST
    assert modes.boost_remaining_s(1) == pytest.approx(1.0)
    clock.now += 1.0
    assert modes.mode(1) is ChargerMode.SOLAR
    assert modes.boost_remaining_s(1) is None
    assert changes[-1] is ChargerMode.SOLAR
    assert changes.count(ChargerMode.BOOST) == 2


@pytest.mark.parametrize("duration", [0.0, -5.0, math.nan, math.inf, MAX_BOOST_S + 1])
def test_a_bad_boost_duration_is_refused_and_changes_nothing(duration: float) -> None:
    modes = modes_with(Clock(), [None], 1)
    with pytest.raises(ValueError, match="boost"):
        modes.set_mode(1, ChargerMode.BOOST, boost_s=duration)
    assert modes.state(1) == ChargerModeState()


def test_an_unknown_charger_is_refused() -> None:
    modes = modes_with(Clock(), [None], 1)
    with pytest.raises(KeyError):
        modes.set_mode(9, ChargerMode.OFF)


# -- solar ---------------------------------------------------------------------------


def test_surplus_counts_solar_evs_draw_and_never_battery_discharge() -> None:
    exporting = SiteFlows(grid_power_w=-3000.0, battery_power_w=0.0)
    assert solar_surplus_w(exporting, 2000.0) == 5000.0
    discharging = SiteFlows(grid_power_w=-3000.0, battery_power_w=-2500.0)
    assert solar_surplus_w(discharging, 0.0) == 500.0
    charging = SiteFlows(grid_power_w=-1000.0, battery_power_w=2000.0)
    assert solar_surplus_w(charging, 0.0) == 1000.0
    assert solar_surplus_w(SiteFlows(grid_power_w=None), 4000.0) == 0.0
    assert solar_surplus_w(None, 4000.0) == 0.0
    assert solar_surplus_w(SiteFlows(grid_power_w=2000.0), 1000.0) == 0.0


def test_solar_starts_after_the_start_delay_and_stops_after_the_stop_delay() -> None:
    clock = Clock()
    site: list[SiteFlows | None] = [SiteFlows(grid_power_w=-6000.0)]
    modes = modes_with(clock, site, 1, start_delay_s=60.0, stop_delay_s=180.0)
    modes.set_mode(1, ChargerMode.SOLAR)

    def shaped(t: float, drawing_w: float = 0.0) -> EvChargerInput:
        return modes.apply({1: ev(1, drawing_w=drawing_w)}, t)[1]

    assert shaped(0.0).held_off is EvAllocationReason.NO_SOLAR_SURPLUS
    assert shaped(59.0).held_off is EvAllocationReason.NO_SOLAR_SURPLUS
    started = shaped(60.0)
    assert started.held_off is None
    assert started.mode_max_current_a == pytest.approx(6000.0 / (3 * V))

    # Drawing 6 kW, the grid is at 0: the surplus is still the 6 kW it draws.
    site[0] = SiteFlows(grid_power_w=0.0)
    assert shaped(100.0, 6000.0).mode_max_current_a == pytest.approx(6000 / (3 * V))
    # A cloud: 1 kW of export less than the minimum. It keeps the minimum ...
    site[0] = SiteFlows(grid_power_w=MIN_3PH_W - 1000.0)
    assert shaped(200.0, MIN_3PH_W).mode_max_current_a == pytest.approx(6.0)
    assert shaped(379.0, MIN_3PH_W).held_off is None
    # ... until the stop delay has passed.
    assert shaped(380.0, MIN_3PH_W).held_off is EvAllocationReason.NO_SOLAR_SURPLUS


def test_the_minimum_current_option_charges_without_surplus_at_the_minimum() -> None:
    clock = Clock()
    modes = modes_with(clock, [SiteFlows(grid_power_w=500.0)], 1)
    modes.set_mode(1, ChargerMode.SOLAR)
    modes.set_solar_min_current(1, True)
    shaped = modes.apply({1: ev(1)}, 0.0)[1]
    assert shaped.held_off is None
    assert shaped.mode_max_current_a == pytest.approx(6.0)


def test_solar_surplus_is_shared_fairly_and_a_one_phase_ev_counts_what_it_draws() -> (
    None
):
    clock = Clock()
    modes = modes_with(
        clock, [SiteFlows(grid_power_w=-9000.0)], 1, 2, start_delay_s=0.0
    )
    for cid in (1, 2):
        modes.set_mode(cid, ChargerMode.SOLAR)
    inputs = {1: ev(1), 2: ev(2, phases=(2,), voltage_v=3 * V)}
    shaped = modes.apply(inputs, 0.0)
    # Equal power: 4500 W each; the one-phase EV draws 230 W per ampere.
    assert shaped[1].mode_max_current_a == pytest.approx(4500 / (3 * V))
    assert shaped[2].mode_max_current_a == pytest.approx(4500 / V)


@pytest.mark.parametrize("delay", [-1.0, math.nan, math.inf, 3601.0])
def test_a_bad_solar_delay_is_refused(delay: float) -> None:
    with pytest.raises(ValueError, match="delay"):
        SolarSharing(start_delay_s=delay)
    with pytest.raises(ValueError, match="delay"):
        SolarSharing(stop_delay_s=delay)


def test_fair_split_gives_everyone_the_same_unless_min_or_max_holds_them() -> None:
    chargers = [
        SolarCharger(1, 1000.0, 2000.0),
        SolarCharger(2, 1000.0, 8000.0),
        SolarCharger(3, 4000.0, 8000.0),
    ]
    split = fair_split(chargers, 10_000.0)
    assert split[1] == pytest.approx(2000.0)
    assert split[2] == pytest.approx(4000.0)
    assert split[3] == pytest.approx(4000.0)
    assert math.fsum(split.values()) == pytest.approx(10_000.0)


surpluses = st.lists(
    st.floats(min_value=-5000.0, max_value=15_000.0), min_size=1, max_size=200
)


def _run_solar(
    samples: list[float], options: tuple[bool, ...], *, step_s: float = 1.0
) -> Iterator[tuple[float, float, dict[int, float], list[SolarCharger]]]:
    sharing = SolarSharing(start_delay_s=30.0, stop_delay_s=60.0)
    chargers = [
        SolarCharger(i, MIN_3PH_W if i % 2 else 1380.0, MAX_3PH_W, option)
        for i, option in enumerate(options, start=1)
    ]
    for index, surplus in enumerate(samples):
        now = index * step_s
        yield now, surplus, sharing.shares(chargers, surplus, now), chargers


@settings(max_examples=200, deadline=None)
@given(surpluses, st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_solar_takes_grid_power_only_for_minimums(
    samples: list[float], options: tuple[bool, bool, bool]
) -> None:
    """More than the surplus only ever goes to chargers held at their minimum."""
    for _, surplus, shares, chargers in _run_solar(samples, options):
        by_id = {c.component_id: c for c in chargers}
        given_w = math.fsum(shares.values())
        if given_w <= max(0.0, surplus) + 1e-6:
            continue
        for cid, power in shares.items():
            assert power == 0.0 or power == pytest.approx(by_id[cid].min_power_w)


@settings(max_examples=200, deadline=None)
@given(surpluses)
def test_without_surplus_for_a_whole_stop_delay_solar_draws_nothing(
    samples: list[float],
) -> None:
    """No option: after 60 s short of the smallest minimum, nobody charges."""
    short_since: float | None = None
    for now, surplus, shares, chargers in _run_solar(samples, (False, False, False)):
        smallest = min(c.min_power_w for c in chargers)
        if surplus >= smallest:
            short_since = None
        elif short_since is None:
            short_since = now
        if short_since is not None and now - short_since >= 60.0:
            assert all(power == 0.0 for power in shares.values())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=10, max_size=400),
    st.floats(min_value=2000.0, max_value=12_000.0),
)
def test_a_noisy_surplus_never_switches_a_charger_faster_than_its_delays(
    noise: list[float], level: float
) -> None:
    """Noise of ±100 % around a level: on/off switches stay a delay apart."""
    samples = [level * factor for factor in noise]
    last_switch: dict[int, float] = {}
    was_on: dict[int, bool] = {}
    for now, _, shares, _ in _run_solar(samples, (False, False, False)):
        for cid, power in shares.items():
            on = power > 0.0
            if cid in was_on and on != was_on[cid]:
                if cid in last_switch:
                    assert now - last_switch[cid] >= 30.0
                last_switch[cid] = now
            was_on[cid] = on


# -- battery for EVs -----------------------------------------------------------------


def test_the_battery_may_feed_evs_by_default() -> None:
    site = SiteFlows(grid_power_w=0.0, ev_power_w=7000.0, battery_power_w=-5000.0)
    assert BatteryForEvs().discharge_limit_w(site) is None


def test_disallowed_the_battery_covers_only_the_rest_of_the_site() -> None:
    guard = BatteryForEvs(allowed=False)
    # House 2 kW, PV 0, EVs 7 kW, battery discharging 5 kW: grid imports 4 kW.
    site = SiteFlows(grid_power_w=4000.0, ev_power_w=7000.0, battery_power_w=-5000.0)
    assert guard.discharge_limit_w(site) == pytest.approx(2000.0)
    # PV covers the house: nothing for the battery to cover.
    sunny = SiteFlows(grid_power_w=-1000.0, ev_power_w=4000.0, battery_power_w=0.0)
    assert guard.discharge_limit_w(sunny) == 0.0
    # No EV charging: no limit.
    idle = SiteFlows(grid_power_w=-1000.0, ev_power_w=0.0, battery_power_w=-3000.0)
    assert guard.discharge_limit_w(idle) is None
    # Unknown EV power: the safe side.
    assert guard.discharge_limit_w(SiteFlows(grid_power_w=100.0)) == 0.0
    assert guard.discharge_limit_w(None) == 0.0


def test_allowed_down_to_a_floor_soc_only() -> None:
    guard = BatteryForEvs(allowed=True, floor_soc_pct=30.0)
    flows = {"grid_power_w": 0.0, "ev_power_w": 7000.0, "battery_power_w": -7000.0}
    assert guard.discharge_limit_w(SiteFlows(**flows, battery_soc_pct=31.0)) is None
    assert guard.discharge_limit_w(SiteFlows(**flows, battery_soc_pct=30.0)) == 0.0
    assert guard.discharge_limit_w(SiteFlows(**flows)) == 0.0
    with pytest.raises(ValueError, match="floor"):
        guard.set_floor_soc(101.0)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(min_value=0.0, max_value=5000.0),  # house
    st.floats(min_value=0.0, max_value=8000.0),  # pv production
    st.floats(min_value=100.0, max_value=22_000.0),  # EVs
    st.floats(min_value=-5000.0, max_value=5000.0),  # battery now
    st.lists(st.floats(min_value=-10_000.0, max_value=10_000.0), max_size=3),
)
def test_bounded_batteries_never_discharge_into_the_evs(
    house: float, pv: float, evs: float, battery: float, targets: list[float]
) -> None:
    """Whatever the targets, the sets together discharge at most house − PV."""
    grid = house - pv + evs + battery
    site = SiteFlows(grid_power_w=grid, ev_power_w=evs, battery_power_w=battery)
    budget = DischargeBudget(BatteryForEvs(allowed=False).discharge_limit_w(site))
    bounded = [budget.bound(target) for target in targets]
    discharge = math.fsum(-min(0.0, power) for power in bounded)
    assert discharge <= max(0.0, house - pv) + 1e-6
    for target, power in zip(targets, bounded, strict=True):
        assert power >= target  # only ever less discharge, never more
        if target >= 0.0:
            assert power == target  # charging is never touched


# -- modes never relax the fuse or the target ----------------------------------------

modes_strategy = st.lists(st.sampled_from(list(ChargerMode)), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(
    modes_strategy,
    st.lists(st.floats(min_value=-8000.0, max_value=20_000.0), min_size=1, max_size=30),
    st.floats(min_value=6.0, max_value=80.0),
    st.floats(min_value=0.0, max_value=60_000.0),
    st.booleans(),
)
def test_no_mode_ever_breaks_the_fuse_the_target_or_off(
    chosen: list[ChargerMode],
    exports: list[float],
    phase_limit_a: float,
    target_w: float,
    min_current: bool,
) -> None:
    """Round after round with a moving surplus: per phase ≤ the fuse, Σ ≤ target."""
    clock = Clock()
    site: list[SiteFlows | None] = [None]
    ids = tuple(range(1, len(chosen) + 1))
    modes = modes_with(clock, site, *ids, start_delay_s=2.0, stop_delay_s=3.0)
    for cid, mode in zip(ids, chosen, strict=True):
        modes.set_mode(cid, mode, boost_s=5.0 if mode is ChargerMode.BOOST else None)
        modes.set_solar_min_current(cid, min_current)
    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=phase_limit_a))
    drawn = dict.fromkeys(ids, 0.0)
    for step, export in enumerate(exports):
        now = clock.now = 1000.0 + step
        site[0] = SiteFlows(grid_power_w=-export)
        inputs = {cid: ev(cid, drawing_w=drawn[cid]) for cid in ids}
        allocation = allocator.allocate(
            target_w, list(modes.apply(inputs, now).values()), now
        )
        assert max(allocation.phase_currents_a) <= phase_limit_a + 1e-6
        assert allocation.total_power_w <= target_w + 1e-6
        for cid in ids:
            if modes.mode(cid) is ChargerMode.OFF:
                assert allocation.setpoints[cid].power_w == 0.0
        drawn = allocation.powers()
