"""Power manager throughput: ours and the Frequenz SDK's, same proposals, one run.

Run from the repository root: ``scripts/python -m benchmarks.power_manager``.
Prints one line per case::

    power_manager algorithm=<matryoshka|shifting> actors=<n> proposals_per_s=<x>
    sdk_proposals_per_s=<y> ratio=<x/y>

A case is a stream of proposals from `n` actors (distinct priorities and source
ids, some with bounds, some replacing or withdrawing their earlier proposal) on one
pool, with an expiry sweep every 100 proposals. Each proposal is processed fully:
the book is updated and the target recomputed, as the SDK's
``calculate_target_power`` does. The figure is the best of a few runs, so the
number says what the code can do rather than how busy the machine was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import random
import time

from custom_components.frequenz_microgrid.engine.bounds import Bounds, PowerBounds
from custom_components.frequenz_microgrid.engine.power_manager import (
    DefaultPower,
    Matryoshka,
    PowerManager,
    Proposal,
    ShiftingMatryoshka,
)
from tests.engine.sdk_oracle_power_manager import (
    AlgorithmName,
    new_sdk_algorithm,
    sdk_component_ids,
    sdk_proposal,
    sdk_system_bounds,
)

ACTOR_COUNTS = (1, 10, 100)
PROPOSALS = 10_000
SDK_PROPOSALS = 2_000
REPEATS = 3
IDS = frozenset(range(1, 11))
SYSTEM = PowerBounds(-50_000.0, 50_000.0, -500.0, 500.0)
EXPIRY_EVERY = 100


def make_proposals(actors: int, count: int, seed: int) -> list[Proposal]:
    """A realistic stream: each actor keeps re-sending, sometimes withdrawing."""
    rng = random.Random(seed)
    stream = []
    for index in range(count):
        actor = rng.randrange(actors)
        roll = rng.random()
        power = None if roll < 0.05 else rng.uniform(-60_000.0, 60_000.0)
        bounds = Bounds()
        if 0.05 <= roll < 0.4:
            width = rng.uniform(0.0, 40_000.0)
            bounds = Bounds(-width, width)
        stream.append(
            Proposal(
                source_id=f"actor-{actor}",
                priority=actor % 7,
                power=power,
                bounds=bounds,
                component_ids=IDS,
                creation_time=index * 0.001,
            )
        )
    return stream


def best_rate(run: Callable[[], None], count: int) -> float:
    """Return the best proposals-per-second over a few runs."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best


def ours_rate(name: AlgorithmName, stream: Sequence[Proposal]) -> float:
    def run() -> None:
        algorithm = Matryoshka() if name == "matryoshka" else ShiftingMatryoshka()
        manager = PowerManager(algorithm, DefaultPower.ZERO)
        manager.set_system_bounds(IDS, SYSTEM)
        for index, proposal in enumerate(stream):
            manager.propose(proposal)
            if index % EXPIRY_EVERY == 0:
                manager.drop_expired(proposal.creation_time)

    return best_rate(run, len(stream))


def sdk_rate(name: AlgorithmName, stream: Sequence[Proposal]) -> float:
    # Conversion to the SDK's types happens before timing, as for ours.
    sdk_stream = [sdk_proposal(p) for p in stream]
    ids = sdk_component_ids(IDS)
    system = sdk_system_bounds(SYSTEM)

    def run() -> None:
        algorithm = new_sdk_algorithm(name, DefaultPower.ZERO)
        for index, proposal in enumerate(sdk_stream):
            algorithm.calculate_target_power(ids, proposal, system)
            if index % EXPIRY_EVERY == 0:
                algorithm.drop_old_proposals(proposal.creation_time)

    return best_rate(run, len(sdk_stream))


def main() -> None:
    names: tuple[AlgorithmName, ...] = ("matryoshka", "shifting")
    for name in names:
        for actors in ACTOR_COUNTS:
            stream = make_proposals(actors, PROPOSALS, seed=actors)
            ours = ours_rate(name, stream)
            sdk = sdk_rate(name, stream[:SDK_PROPOSALS])
            print(
                f"power_manager algorithm={name} actors={actors} "
                f"proposals_per_s={ours:.0f} sdk_proposals_per_s={sdk:.0f} "
                f"ratio={ours / sdk:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
