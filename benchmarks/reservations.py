"""Reservations: overlap-checked bookings per second and availability queries.

A depot of 100 chargers (a third at 22 kW, the rest at 11 kW) behind a 400 A grid
fuse and three 125 A feeders books a month ahead: each request asks for a random
period (15 min to 8 h, starting within 30 days), half of them for a named
charger, half for "any". Every request is checked against the charger's bookings
(refused on overlap); `bookings_per_s` counts all requests, booked or refused,
per second of wall time. Then `find_available` answers random periods on the
full book; `find_available_ms_p99` is its 99th-percentile time. Finally the book
is verified: no two bookings of one charger overlap.

    scripts/python -m benchmarks.reservations [--chargers N] [--requests N]

One line:

    reservations chargers=100 bookings=<booked> requests=<n> refused=<n>
        bookings_per_s=<r> find_available_ms_p99=<ms>
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import itertools
import math
import random
import time

from custom_components.frequenz_microgrid.engine.hub.circuits import Circuit
from custom_components.frequenz_microgrid.engine.hub.reservations import (
    ReservationBook,
    ReservationError,
    charger_capacities,
)

NOW = 1_800_000_000.0
"""The book's fixed wall clock (the benchmark measures booking, not time)."""
HORIZON_S = 30 * 86400.0
QUARTER_S = 900.0
SEED = 16


@dataclass(frozen=True, slots=True)
class Result:
    """What one run measured."""

    chargers: int
    requests: int
    booked: int
    refused: int
    bookings_per_s: float
    find_available_ms_p99: float

    def line(self) -> str:
        """The benchmark's output line."""
        return (
            f"reservations chargers={self.chargers} bookings={self.booked} "
            f"requests={self.requests} refused={self.refused} "
            f"bookings_per_s={self.bookings_per_s:.0f} "
            f"find_available_ms_p99={self.find_available_ms_p99:.3f}"
        )


def depot_book(chargers: int, max_per_charger: int) -> ReservationBook:
    """The depot's book: chargers behind the grid fuse and three feeders."""
    ids = list(range(1, chargers + 1))
    powers = {cid: 22_000.0 if cid % 3 == 0 else 11_000.0 for cid in ids}
    feeders = [
        Circuit(
            circuit_id=f"feeder_{index}",
            name=f"Feeder {index}",
            charger_ids=frozenset(ids[index::3]),
            phase_limit_a=125,
        )
        for index in range(3)
    ]
    grid = Circuit(
        circuit_id="grid",
        name="Grid",
        charger_ids=frozenset(ids),
        phase_limit_a=400,
        root=True,
    )
    counter = itertools.count(1)
    return ReservationBook(
        charger_capacities(powers, [grid, *feeders]),
        clock=lambda: NOW,
        max_per_charger=max_per_charger,
        new_id=lambda: f"r{next(counter)}",
    )


def _period(rng: random.Random) -> tuple[float, float]:
    start = NOW + rng.randrange(int(HORIZON_S / QUARTER_S)) * QUARTER_S
    return start, start + rng.randint(1, 32) * QUARTER_S


def run(chargers: int = 100, requests: int = 50_000, queries: int = 1_000) -> Result:
    """Book `requests` random periods, then time `queries` availability queries."""
    rng = random.Random(SEED)
    book = depot_book(chargers, max_per_charger=max(1, 2 * requests // chargers))
    asks = [
        (rng.choice([None, rng.randint(1, chargers)]), *_period(rng))
        for _ in range(requests)
    ]
    refused = 0
    began = time.perf_counter()
    for charger, start, end in asks:
        try:
            book.reserve(charger, start, end)
        except ReservationError:
            refused += 1
    elapsed = time.perf_counter() - began

    periods = [_period(rng) for _ in range(queries)]
    times_ms = []
    for start, end in periods:
        began = time.perf_counter()
        book.find_available(start, end)
        times_ms.append((time.perf_counter() - began) * 1000.0)
    times_ms.sort()
    p99 = times_ms[min(len(times_ms) - 1, math.ceil(0.99 * len(times_ms)) - 1)]

    for charger_id in book.charger_ids:
        for earlier, later in itertools.pairwise(book.of_charger(charger_id)):
            if earlier.end > later.start:
                raise AssertionError(f"overlap on charger {charger_id}")
    return Result(
        chargers=chargers,
        requests=requests,
        booked=len(book),
        refused=refused,
        bookings_per_s=requests / elapsed if elapsed > 0 else math.inf,
        find_available_ms_p99=p99,
    )


def main() -> None:
    """Run the benchmark and print its line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=100)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=1_000)
    args = parser.parse_args()
    print(run(args.chargers, args.requests, args.queries).line())


if __name__ == "__main__":
    main()
