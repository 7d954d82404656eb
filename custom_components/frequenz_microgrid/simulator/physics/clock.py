"""The simulator's single clock: simulated seconds that run `speed` times real time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import time


class SimClock:
    """Maps real (monotonic) time onto simulated seconds since the start.

    One clock drives every component, so a speed factor makes a whole scenario
    (SoC, EV sessions, request lifetimes) run faster without changing its physics.
    """

    def __init__(self, speed: float = 1.0) -> None:
        """Start the clock now; `speed` is simulated seconds per real second."""
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self._start_monotonic = time.monotonic()

    def now(self) -> float:
        """Simulated seconds elapsed since the clock started."""
        return (time.monotonic() - self._start_monotonic) * self.speed

    def real_delay(self, sim_seconds: float) -> float:
        """Real seconds it takes for `sim_seconds` of simulated time to pass."""
        return sim_seconds / self.speed

    def wall_time_after(self, sim_seconds: float) -> datetime:
        """The wall-clock (UTC) moment when `sim_seconds` from now will have passed.

        Clients compare timestamps with their own wall clock, so the API's
        `valid_until_time` is expressed in real time, not simulated time.
        """
        return datetime.now(UTC) + timedelta(seconds=self.real_delay(sim_seconds))
