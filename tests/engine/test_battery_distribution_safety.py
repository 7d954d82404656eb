"""Property tests of the two places where the battery split is safer than the SDK.

- SoC limits hold whatever the exponent: a battery at or above its upper SoC
  limit is never charged, one at or below its lower limit never discharged. The
  SDK's share weight ``available ^ exponent`` is ``0.0 ** 0.0 == 1.0`` for a full
  battery, so at exponent 0 it charges a battery at 84 % with an 80 % limit.
- Never against the request: a pair whose allowed range excludes 0 W on the
  request's side (an inverter that may only do [262.8 W, ∞), asked for −1 W)
  gets 0 W and the request becomes excess, with and without exclusion zones. The
  SDK clamps it onto its range and sends +262.8 W. Through the whole chain too:
  the pool's system bounds never make the power manager clamp across 0, and
  unusable batteries that already do more than the request are not compensated
  by running the others against it.
"""

from __future__ import annotations

from hypothesis import example, given, settings, strategies as st
import pytest

from custom_components.frequenz_microgrid.engine.bounds import Bounds, PowerBounds
from custom_components.frequenz_microgrid.engine.distribution.battery import (
    BatteryDistribution,
    BatteryRefusal,
    BatteryState,
    InverterBatteries,
    distribute_battery_power,
    reachable_bounds,
)
from custom_components.frequenz_microgrid.engine.power_manager import (
    ShiftingMatryoshka,
)
from custom_components.frequenz_microgrid.engine.power_manager.proposal import (
    Proposal,
)

WIDE = PowerBounds(-8000.0, 8000.0)
exponents = st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 3.0])
soc_values = st.integers(min_value=0, max_value=200).map(lambda half: half / 2)
requests = st.floats(min_value=-30_000.0, max_value=30_000.0, allow_nan=False)
edges = st.floats(min_value=-8000.0, max_value=8000.0, allow_nan=False)
zone_edge = st.floats(min_value=0.0, max_value=1500.0, allow_nan=False)


@st.composite
def inverter_bounds(draw: st.DrawFn) -> PowerBounds:
    """Any inclusion range, also one that excludes 0; sometimes a zone."""
    lower, upper = sorted((draw(edges), draw(edges)))
    if draw(st.booleans()):
        return PowerBounds(lower, upper)
    return PowerBounds(lower, upper, -draw(zone_edge), draw(zone_edge))


def make_pair(
    inverter_id: int,
    soc: float,
    bounds: PowerBounds,
    *,
    soc_limits: tuple[float, float] = (10.0, 90.0),
    capacity: float = 10_000.0,
) -> InverterBatteries:
    """One inverter with one battery (which never limits the power)."""
    battery = BatteryState(inverter_id + 100, capacity, soc, *soc_limits, WIDE)
    pair = InverterBatteries.aggregate(inverter_id, bounds, [battery])
    assert pair is not None
    return pair


@st.composite
def pair_lists(draw: st.DrawFn) -> list[InverterBatteries]:
    """One to five pairs, SoC anywhere (also beyond its limits)."""
    count = draw(st.integers(min_value=1, max_value=5))
    return [
        make_pair(
            index + 1,
            draw(soc_values),
            draw(inverter_bounds()),
            soc_limits=(
                draw(st.sampled_from([0.0, 10.0, 20.0])),
                draw(st.sampled_from([80.0, 90.0, 100.0])),
            ),
            capacity=draw(st.floats(min_value=1000.0, max_value=50_000.0)),
        )
        for index in range(count)
    ]


def distributed(
    power: float, pairs: list[InverterBatteries], exponent: float
) -> BatteryDistribution | None:
    """Distribute; None when refused, which only a request in the zone may be."""
    outcome = distribute_battery_power(power, pairs, exponent=exponent)
    if isinstance(outcome, BatteryRefusal):
        assert outcome.bounds is not None, outcome
        assert outcome.bounds.exclusion_lower < power < outcome.bounds.exclusion_upper
        return None
    return outcome


def full_in_direction(pair: InverterBatteries, power: float) -> bool:
    """At or beyond the SoC limit the request moves towards."""
    if power > 0.0:
        return pair.soc_pct >= pair.soc_upper_pct
    return pair.soc_pct <= pair.soc_lower_pct


@settings(max_examples=400, deadline=None)
@given(pair_lists(), requests, exponents)
def test_soc_limits_hold_whatever_the_exponent(
    pairs: list[InverterBatteries], power: float, exponent: float
) -> None:
    result = distributed(power, pairs, exponent)
    if result is None:
        return
    for pair in pairs:
        setpoint = result.setpoints[pair.inverter_id]
        if full_in_direction(pair, power):
            assert setpoint == 0.0, (pair, setpoint)
        assert not (setpoint > 0.0 and pair.soc_pct >= pair.soc_upper_pct)
        assert not (setpoint < 0.0 and pair.soc_pct <= pair.soc_lower_pct)


@settings(max_examples=400, deadline=None)
@given(pair_lists(), requests, exponents)
@example([make_pair(1, 50.0, PowerBounds(262.8, 8000.0))], -1.0, 1.0)
@example([make_pair(1, 50.0, PowerBounds(262.8, 8000.0, -100.0, 100.0))], -150.0, 0.0)
@example(
    [
        make_pair(1, 50.0, PowerBounds(262.8, 8000.0)),
        make_pair(2, 50.0, PowerBounds(-1000.0, 1000.0)),
    ],
    -500.0,
    1.0,
)
def test_never_against_the_request_and_the_rest_is_excess(
    pairs: list[InverterBatteries], power: float, exponent: float
) -> None:
    result = distributed(power, pairs, exponent)
    if result is None:
        return
    for pair in pairs:
        setpoint = result.setpoints[pair.inverter_id]
        assert setpoint * power >= 0.0, (pair.inverter_id, setpoint, power)
        assert pair.bounds.allows(setpoint), (pair.inverter_id, setpoint)
    scale = max(1.0, abs(power))
    placed = result.distributed_power
    assert abs(placed) <= abs(power) + 1e-6 * scale
    assert placed + result.excess_power == pytest.approx(power, abs=1e-6 * scale)


@settings(max_examples=300, deadline=None)
@given(pair_lists(), requests)
def test_the_pools_bounds_always_allow_zero(
    pairs: list[InverterBatteries], power: float
) -> None:
    """0 W is always allowed per pair, so the pool's range never excludes it."""
    bounds = reachable_bounds(pairs)
    assert bounds.inclusion_lower <= 0.0 <= bounds.inclusion_upper
    del power


@settings(max_examples=300, deadline=None)
@given(pair_lists(), requests, exponents)
@example([make_pair(1, 50.0, PowerBounds(262.8, 8000.0))], -1.0, 1.0)
def test_the_whole_chain_never_reverses_a_proposal(
    pairs: list[InverterBatteries], power: float, exponent: float
) -> None:
    """Proposal → shifting matryoshka on the pool's bounds → split: same sign."""
    proposal = Proposal(
        source_id="actor",
        priority=1,
        power=power,
        component_ids=frozenset(pair.inverter_id for pair in pairs),
        creation_time=0.0,
        bounds=Bounds(),
    )
    target = ShiftingMatryoshka().target_power([proposal], reachable_bounds(pairs))
    assert target is not None
    assert target * power >= 0.0, (target, power)
    result = distributed(target, pairs, exponent)
    if result is None:
        return
    for setpoint in result.setpoints.values():
        assert setpoint * power >= 0.0, (setpoint, power)


def test_a_full_battery_is_not_charged_at_exponent_zero() -> None:
    # The case: 84 % with an 80 % limit got its capacity share at full power.
    full = make_pair(1, 84.0, WIDE, soc_limits=(10.0, 80.0))
    room = make_pair(2, 50.0, WIDE, soc_limits=(10.0, 80.0))
    result = distribute_battery_power(4000.0, [full, room], exponent=0.0)
    assert isinstance(result, BatteryDistribution)
    assert result.setpoints == {1: 0.0, 2: 4000.0}
    alone = distribute_battery_power(4000.0, [full], exponent=0.0)
    assert isinstance(alone, BatteryDistribution)
    assert alone.setpoints == {1: 0.0}
    assert alone.excess_power == 4000.0


@pytest.mark.parametrize("zone", [None, (-100.0, 100.0)])
def test_a_charge_only_inverter_asked_to_discharge_gets_zero(
    zone: tuple[float, float] | None,
) -> None:
    # The case: [262.8 W, ∞) asked for −1 W (−150 W past a ±100 W zone).
    bounds = PowerBounds(262.8, 8000.0, *(zone or (0.0, 0.0)))
    request = -1.0 if zone is None else -150.0
    result = distribute_battery_power(request, [make_pair(1, 50.0, bounds)])
    assert isinstance(result, BatteryDistribution)
    assert result.setpoints == {1: 0.0}
    assert result.excess_power == request


@settings(max_examples=300, deadline=None)
@given(pair_lists(), requests, exponents, requests)
@example([make_pair(1, 50.0, WIDE)], 100.0, 1.0, 300.0)
def test_unusable_batteries_are_not_compensated_against_the_request(
    pairs: list[InverterBatteries], power: float, exponent: float, unreachable: float
) -> None:
    outcome = distribute_battery_power(
        power, pairs, exponent=exponent, unreachable_power=unreachable
    )
    if isinstance(outcome, BatteryRefusal):
        return
    for setpoint in outcome.setpoints.values():
        assert setpoint * power >= 0.0, (setpoint, power, unreachable)
    if power * (power - unreachable) < 0.0:  # the unusable ones overshoot
        assert outcome.distributed_power == 0.0
        assert outcome.excess_power == power - unreachable
