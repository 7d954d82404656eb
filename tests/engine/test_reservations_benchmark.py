"""`benchmarks.reservations` runs end to end on a tiny depot and reports honestly."""

from __future__ import annotations

from benchmarks.reservations import run


def test_the_benchmark_books_checks_and_reports_on_a_tiny_depot() -> None:
    result = run(chargers=3, requests=300, queries=20)
    assert result.chargers == 3
    assert result.requests == 300
    # A month of random periods on three chargers: many fit, some collide.
    assert 0 < result.booked < 300
    assert result.booked + result.refused == 300
    assert result.bookings_per_s > 0
    assert result.find_available_ms_p99 >= 0
    line = result.line()
    assert line.startswith("reservations chargers=3 bookings=")
    assert "bookings_per_s=" in line
    assert "find_available_ms_p99=" in line
