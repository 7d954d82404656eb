"""The controller's status views: its monotonic times shown as UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from custom_components.frequenz_microgrid.engine.control.status import (
    monotonic_to_wall_time,
)

WALL_NOW = datetime(2025, 1, 1, 12, 0, 0, 400_000, tzinfo=UTC)


def test_a_monotonic_time_becomes_the_matching_utc_second() -> None:
    assert monotonic_to_wall_time(1005.0, 1000.0, WALL_NOW) == datetime(
        2025, 1, 1, 12, 0, 5, tzinfo=UTC
    )
    assert monotonic_to_wall_time(990.0, 1000.0, WALL_NOW) == datetime(
        2025, 1, 1, 11, 59, 50, tzinfo=UTC
    )


def test_the_same_instant_converted_a_moment_later_is_unchanged() -> None:
    """Attributes must not change on every tick while the block stays the same."""
    first = monotonic_to_wall_time(1030.0, 1000.0, WALL_NOW)
    later = WALL_NOW.replace(microsecond=450_000)
    assert monotonic_to_wall_time(1030.0, 1000.05, later) == first
