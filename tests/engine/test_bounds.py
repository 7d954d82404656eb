"""Bounds: the API's list-of-ranges encoding and the safety predicate."""

from __future__ import annotations

import math

import pytest

from custom_components.frequenz_microgrid.engine.bounds import (
    PowerBounds,
    intersect_pair,
    sum_bounds,
)


def test_ranges_with_a_gap_encode_an_exclusion_zone() -> None:
    bounds = PowerBounds.from_ranges([(-5000, -100), (100, 5000)])
    assert bounds == PowerBounds(-5000, 5000, -100, 100)
    assert bounds.to_ranges() == [(-5000, -100), (100, 5000)]


def test_a_single_range_has_no_exclusion_zone() -> None:
    bounds = PowerBounds.from_ranges([(-3000, 2000)])
    assert bounds == PowerBounds(-3000, 2000)
    assert not bounds.has_exclusion
    assert bounds.to_ranges() == [(-3000, 2000)]


def test_open_sides_are_unbounded_and_no_ranges_allow_only_zero() -> None:
    assert PowerBounds.from_ranges([(None, 10)]).inclusion_lower == -math.inf
    assert PowerBounds.from_ranges([]) == PowerBounds.zero()


@pytest.mark.parametrize(
    ("power", "allowed"),
    [
        (0.0, True),
        (-5000.0, True),
        (5000.0, True),
        (5000.1, False),
        (50.0, False),
        (-99.0, False),
        (100.0, True),
        (math.nan, False),
    ],
)
def test_allows(power: float, allowed: bool) -> None:
    assert PowerBounds(-5000, 5000, -100, 100).allows(power) is allowed


@pytest.mark.parametrize(
    ("power", "clamped"),
    [(7000.0, 5000.0), (-20.0, -100.0), (60.0, 100.0), (0.0, 0.0), (-6000.0, -5000.0)],
)
def test_clamp_snaps_out_of_the_exclusion_zone(power: float, clamped: float) -> None:
    assert PowerBounds(-5000, 5000, -100, 100).clamp(power) == clamped


def test_pair_and_pool_aggregation() -> None:
    battery = PowerBounds(-4000, 6000, -50, 50)
    inverter = PowerBounds(-5000, 5000, -100, 100)
    pair = intersect_pair(battery, inverter)
    assert pair == PowerBounds(-4000, 5000, -100, 100)
    assert sum_bounds([pair, pair]) == PowerBounds(-8000, 10000, -200, 200)
    assert sum_bounds([]) == PowerBounds.zero()
