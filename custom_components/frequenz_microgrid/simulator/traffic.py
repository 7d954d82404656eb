"""EV traffic: seeded random arrivals and departures, repeated over the day.

A scenario lists EV arrivals (``ev_arrivals``) and/or describes its traffic
(``ev_traffic``): how many EVs arrive per hour of the day, at the whole site or
at each charger, and what they are like (battery capacity, SoC on arrival, how
long they stay, phases, maximum current), each drawn from a `Distribution`.
The same seed gives the same EVs at the same chargers at the same times.

Sessions never overlap: an EV plugs in only where no EV is planned (listed or
generated) from its arrival until `CHANGEOVER_S` after its departure. A site-wide
arrival takes a free charger (picked at random); when every charger is taken it
drives on (`TrafficPlan.turned_away` counts it). A per-charger arrival that
falls while its charger is taken is skipped; the charger's next arrival is drawn
from the moment it is free again (arrivals are memoryless).

    traffic = EvTraffic(seed=7, arrivals_per_hour=(4.0,), sessions=300)
    plan = TrafficPlan(traffic, charger_ids=[31, 32], listed=(), start_tod_s=8 * 3600)
    for arrival in plan: ...  # EvArrival, in order of arrival
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
import heapq
import math
import random
from typing import Any

from .physics.ev_charger import CHANGEOVER_S, EvSpec

HOURS_PER_DAY = 24
MIN_STAY_S = 60.0
"""Shortest stay drawn: an EV that plugs in stays long enough to be seen."""


@dataclass(frozen=True, slots=True)
class EvArrival:
    """An EV that plugs into `charger_id` at `arrive_at_s` (simulated seconds)."""

    charger_id: int
    arrive_at_s: float
    ev: EvSpec
    depart_at_s: float | None = None


_DISTRIBUTION_KEYS = frozenset({"uniform", "normal", "min", "max"})


def _pair(data: Any) -> tuple[float, float]:
    first, second = (float(x) for x in data)
    return first, second


@dataclass(frozen=True, slots=True)
class Distribution:
    """How one property of an arriving EV is drawn.

    One of: a constant (`choices` with one value), a choice among `choices`
    (equally likely; repeat a value to weight it), `uniform` (low, high) or
    `normal` (mean, standard deviation); the result is clipped to
    [`low`, `high`].
    """

    choices: tuple[float, ...] = ()
    uniform: tuple[float, float] | None = None
    normal: tuple[float, float] | None = None
    low: float = -math.inf
    high: float = math.inf

    def __post_init__(self) -> None:
        """Exactly one way to draw, with finite parameters."""
        ways = sum(
            (bool(self.choices), self.uniform is not None, self.normal is not None)
        )
        if ways != 1:
            raise ValueError(
                "a distribution needs exactly one of choices, uniform, normal"
            )
        numbers = [*self.choices, *(self.uniform or ()), *(self.normal or ())]
        if not all(math.isfinite(x) for x in numbers) or self.low > self.high:
            raise ValueError(f"invalid distribution {self}")

    @classmethod
    def constant(cls, value: float) -> Distribution:
        """Always `value`."""
        return cls(choices=(value,))

    @classmethod
    def parse(cls, data: Any) -> Distribution:
        """Read one from a scenario file.

        ``5``, ``[16, 32]``, ``{"uniform": [10, 60]}`` or
        ``{"normal": [10800, 3600], "min": 1800, "max": 43200}``.
        """
        if isinstance(data, int | float):
            return cls.constant(float(data))
        if isinstance(data, list):
            return cls(choices=tuple(float(x) for x in data))
        if isinstance(data, Mapping) and set(data) <= _DISTRIBUTION_KEYS:
            low = float(data.get("min", -math.inf))
            high = float(data.get("max", math.inf))
            uniform = data.get("uniform")
            normal = data.get("normal")
            return cls(
                uniform=None if uniform is None else _pair(uniform),
                normal=None if normal is None else _pair(normal),
                low=low,
                high=high,
            )
        raise ValueError(f"cannot read a distribution from {data!r}")

    def draw(self, rng: random.Random) -> float:
        """One value."""
        if self.choices:
            value = rng.choice(self.choices)
        elif self.uniform is not None:
            value = rng.uniform(*self.uniform)
        else:
            assert self.normal is not None
            value = rng.gauss(*self.normal)
        return min(max(value, self.low), self.high)


@dataclass(frozen=True, slots=True, kw_only=True)
class EvTraffic:
    """A seeded random model of the EVs that come and go (see the module doc)."""

    seed: int = 0
    arrivals_per_hour: tuple[float, ...] = (1.0,)
    """Arrivals per hour: one value for the whole day, or 24 by hour of day
    (local time of the scenario, from its start time)."""
    per_charger: bool = False
    """Whether `arrivals_per_hour` is per charger (else for the whole site)."""
    sessions: int | None = None
    """Exactly this many site-wide arrivals between `start_s` and `end_s`, at times
    drawn from the shape of `arrivals_per_hour` (`None`: as many as the rate
    gives). Needs `end_s` and a site-wide rate."""
    chargers: tuple[int, ...] = ()
    """Chargers the EVs use (empty: all of the scenario's)."""
    start_s: float = 0.0
    end_s: float | None = None
    """No arrivals after this simulated time (`None`: the traffic goes on)."""
    capacity_wh: Distribution = field(
        default_factory=lambda: Distribution(choices=(40_000.0, 60_000.0, 77_000.0))
    )
    soc_pct: Distribution = field(
        default_factory=lambda: Distribution(uniform=(10.0, 60.0))
    )
    stay_s: Distribution = field(
        default_factory=lambda: Distribution(
            normal=(3 * 3600.0, 3600.0), low=1800.0, high=12 * 3600.0
        )
    )
    """How long an EV stays plugged in (its planned departure)."""
    phases: Distribution = field(
        default_factory=lambda: Distribution(choices=(3.0, 3.0, 3.0, 1.0))
    )
    max_current_a: Distribution = field(
        default_factory=lambda: Distribution(choices=(16.0, 32.0))
    )

    def __post_init__(self) -> None:
        """Reject a traffic model that cannot generate arrivals."""
        rates = self.arrivals_per_hour
        if len(rates) not in (1, HOURS_PER_DAY):
            raise ValueError("arrivals_per_hour needs 1 or 24 values")
        if not all(math.isfinite(r) and r >= 0.0 for r in rates):
            raise ValueError("arrivals_per_hour must be finite and ≥ 0")
        if self.sessions is not None and (
            self.sessions < 0 or self.end_s is None or self.per_charger
        ):
            raise ValueError("sessions needs end_s and a site-wide rate")
        if self.end_s is not None and self.end_s < self.start_s:
            raise ValueError("end_s is before start_s")

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> EvTraffic:
        """The ``ev_traffic`` table of a scenario file."""
        rate = data.get("arrivals_per_hour", 1.0)
        rates = tuple(float(r) for r in (rate if isinstance(rate, list) else [rate]))
        sessions = data.get("sessions")
        end = data.get("end_s")
        distributions = {
            name: Distribution.parse(data[name])
            for name in ("capacity_wh", "soc_pct", "stay_s", "phases", "max_current_a")
            if name in data
        }
        return cls(
            seed=int(data.get("seed", 0)),
            arrivals_per_hour=rates,
            per_charger=bool(data.get("per_charger", False)),
            sessions=None if sessions is None else int(sessions),
            chargers=tuple(int(c) for c in data.get("chargers", ())),
            start_s=float(data.get("start_s", 0.0)),
            end_s=None if end is None else float(end),
            **distributions,
        )

    def rate_per_s(self, time_of_day_s: float) -> float:
        """Arrivals per second at this time of day."""
        rates = self.arrivals_per_hour
        hour = int(time_of_day_s // 3600.0) % HOURS_PER_DAY if len(rates) > 1 else 0
        return rates[hour] / 3600.0

    def draw_ev(self, rng: random.Random) -> EvSpec:
        """One arriving EV."""
        phases = 1 if round(self.phases.draw(rng)) <= 1 else 3
        return EvSpec(
            capacity_wh=max(1000.0, self.capacity_wh.draw(rng)),
            soc_pct=min(max(self.soc_pct.draw(rng), 0.0), 100.0),
            phases=phases,
            max_current_a=max(1.0, self.max_current_a.draw(rng)),
        )

    def draw_stay_s(self, rng: random.Random) -> float:
        """How long one EV stays (whole seconds, at least `MIN_STAY_S`)."""
        return float(max(MIN_STAY_S, round(self.stay_s.draw(rng))))


class _Occupancy:
    """When each charger is taken: planned sessions plus their changeover."""

    def __init__(self, charger_ids: Sequence[int], listed: Sequence[EvArrival]) -> None:
        self._busy: dict[int, list[tuple[float, float]]] = {c: [] for c in charger_ids}
        for arrival in listed:
            if arrival.charger_id in self._busy:
                self.take(arrival.charger_id, arrival.arrive_at_s, arrival.depart_at_s)

    def take(self, charger_id: int, start_s: float, depart_s: float | None) -> None:
        """Mark a charger taken from `start_s` until the changeover after departure."""
        end = math.inf if depart_s is None else depart_s + CHANGEOVER_S
        self._busy[charger_id].append((start_s - CHANGEOVER_S, end))

    def forget_before(self, at_s: float) -> None:
        """Drop what ended before `at_s`.

        Arrivals are planned in time order, so endless traffic only needs the
        sessions still ahead.
        """
        for charger_id, busy in self._busy.items():
            self._busy[charger_id] = [b for b in busy if b[1] > at_s]

    def free(self, charger_id: int, start_s: float, depart_s: float) -> bool:
        """Whether a session from `start_s` to `depart_s` fits at this charger."""
        return all(
            depart_s <= begin or end <= start_s for begin, end in self._busy[charger_id]
        )

    def free_from(self, charger_id: int, at_s: float) -> float:
        """The first moment from `at_s` on at which the charger is not taken."""
        moved = True
        while moved:
            moved = False
            for begin, end in self._busy[charger_id]:
                if begin <= at_s < end:
                    at_s, moved = end, True
        return at_s


class TrafficPlan:
    """The arrivals an `EvTraffic` generates for a scenario, in order of arrival.

    Iterating is lazy (endless traffic is fine) and reproducible: each iteration
    starts from the seed again.
    """

    def __init__(
        self,
        traffic: EvTraffic,
        *,
        charger_ids: Sequence[int],
        listed: Sequence[EvArrival] = (),
        start_tod_s: float = 0.0,
    ) -> None:
        """Plan `traffic` at `charger_ids`, around the `listed` arrivals.

        `start_tod_s` is the scenario's time of day at simulated time 0.
        """
        unknown = set(traffic.chargers) - set(charger_ids)
        if unknown:
            raise ValueError(f"EV traffic at {sorted(unknown)}: not EV chargers")
        self.traffic = traffic
        self.charger_ids = tuple(traffic.chargers or charger_ids)
        self.listed = tuple(listed)
        self.start_tod_s = start_tod_s
        self.turned_away = 0
        """Site-wide arrivals that found every charger taken (so far iterated)."""

    def __iter__(self) -> Iterator[EvArrival]:
        """Every generated arrival, earliest first."""
        self.turned_away = 0
        if not self.charger_ids:
            return iter(())
        if self.traffic.per_charger:
            return heapq.merge(
                *(self._at_charger(c) for c in self.charger_ids),
                key=lambda a: a.arrive_at_s,
            )
        return self._site_wide()

    def _rate(self, at_s: float) -> float:
        return self.traffic.rate_per_s((self.start_tod_s + at_s) % 86400.0)

    def _arrival_times(self, rng: random.Random) -> Iterator[float]:
        """Arrival times of an inhomogeneous Poisson process (by thinning)."""
        traffic = self.traffic
        peak = max(traffic.arrivals_per_hour) / 3600.0
        if peak <= 0.0:
            return
        if traffic.sessions is not None:
            assert traffic.end_s is not None
            yield from sorted(self._exact_times(rng, traffic.sessions, peak))
            return
        at = traffic.start_s
        while True:
            at += rng.expovariate(peak)
            if traffic.end_s is not None and at > traffic.end_s:
                return
            if rng.random() * peak <= self._rate(at):
                yield float(round(at))

    def _exact_times(self, rng: random.Random, count: int, peak: float) -> list[float]:
        """`count` times spread like the rate profile over the window."""
        assert self.traffic.end_s is not None
        start, end = self.traffic.start_s, self.traffic.end_s
        times: list[float] = []
        attempts = 0
        while len(times) < count:
            attempts += 1
            if attempts > 1000 * (count + 1):
                raise ValueError("arrivals_per_hour is 0 throughout start_s…end_s")
            at = rng.uniform(start, end)
            if rng.random() * peak <= self._rate(at):
                times.append(float(round(at)))
        return times

    def _site_wide(self) -> Iterator[EvArrival]:
        traffic = self.traffic
        rng = random.Random(f"ev-traffic:{traffic.seed}")
        occupancy = _Occupancy(self.charger_ids, self.listed)
        for at in self._arrival_times(rng):
            occupancy.forget_before(at)
            ev = traffic.draw_ev(rng)
            depart = at + traffic.draw_stay_s(rng)
            free = [c for c in self.charger_ids if occupancy.free(c, at, depart)]
            if not free:
                self.turned_away += 1
                continue
            charger = rng.choice(free)
            occupancy.take(charger, at, depart)
            yield EvArrival(charger, at, ev, depart)

    def _at_charger(self, charger_id: int) -> Iterator[EvArrival]:
        traffic = self.traffic
        rng = random.Random(f"ev-traffic:{traffic.seed}:{charger_id}")
        occupancy = _Occupancy([charger_id], self.listed)
        peak = max(traffic.arrivals_per_hour) / 3600.0
        if peak <= 0.0:
            return
        at = traffic.start_s
        while True:
            at = occupancy.free_from(charger_id, at)
            if at == math.inf:
                return
            occupancy.forget_before(at)
            at += rng.expovariate(peak)
            if traffic.end_s is not None and at > traffic.end_s:
                return
            if rng.random() * peak > self._rate(at):
                continue
            at = float(round(at))
            ev = traffic.draw_ev(rng)
            depart = at + traffic.draw_stay_s(rng)
            if not occupancy.free(charger_id, at, depart):
                continue  # a listed EV comes first; try again once it has left
            occupancy.take(charger_id, at, depart)
            yield EvArrival(charger_id, at, ev, depart)
            at = depart
