"""Differential tests: our power manager against the Frequenz SDK's algorithms.

Seeded random scenarios — system bounds with and without exclusion zones, proposals
with and without powers and bounds, equal priorities, replacements, withdrawals,
expiry and changing system bounds — are fed to both; after every step the returned
target, the stored target and the bounds reported to every priority must agree
within 1e-6 W.

Where we deliberately differ, the case is picked out by a named predicate and our
safe behaviour is asserted instead: `sdk_snaps_across_zero` (the shifting
matryoshka's final snap out of the exclusion zone never reverses the target).
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import random

import pytest

from custom_components.frequenz_microgrid.engine.bounds import Bounds, PowerBounds
from custom_components.frequenz_microgrid.engine.power_manager import (
    DefaultPower,
    Matryoshka,
    PowerManager,
    Proposal,
    ShiftingMatryoshka,
)
from tests.engine.sdk_oracle_power_manager import AlgorithmName, SdkPowerManager

IDS = frozenset({1, 2, 3})
SOURCES = ("a", "b", "c", "d")
PRIORITIES = (0, 1, 2, 3)
REPORT_PRIORITIES = (-1, 0, 1, 2, 3)
"""Below every proposal's priority and at each one (3: only the system bounds)."""
TOLERANCE = 1e-6
STEPS_PER_SCENARIO = 6
SCENARIOS = 2_500
"""Per algorithm: 2,500 scenarios of 6 steps = 15,000 compared cases (30,000 in all)."""
REPORTS_PER_STEP = 2
"""Report priorities checked per step, drawn at random (the SDK is slow)."""


def _watts(rng: random.Random, lower: float, upper: float) -> float:
    """A power in ``[lower, upper]``, often a round or an edge value (ties, edges)."""
    if rng.random() < 0.3:
        return rng.choice((lower, upper, 0.0, (lower + upper) / 2))
    if rng.random() < 0.3:
        return float(round(rng.uniform(lower, upper), -3))
    return rng.uniform(lower, upper)


def random_system_bounds(rng: random.Random) -> PowerBounds:
    """Mostly realistic pool bounds (0 inside, exclusion inside inclusion)."""
    if rng.random() < 0.1:  # Anything the SDK accepts, e.g. a pool that must run.
        a, b = sorted(rng.uniform(-8_000, 8_000) for _ in range(2))
        return PowerBounds(a, b)
    lower = -rng.choice((0.0, 1_000.0, 5_000.0, rng.uniform(0, 10_000)))
    upper = rng.choice((0.0, 1_000.0, 5_000.0, rng.uniform(0, 10_000)))
    if rng.random() < 0.5:
        return PowerBounds(lower, upper)
    return PowerBounds(
        lower,
        upper,
        rng.uniform(max(lower, -1_500), 0),
        rng.uniform(0, min(upper, 1_500)),
    )


def random_proposal(rng: random.Random, now: float) -> Proposal:
    """A proposal, withdrawal or bounds-only wish from one of a few actors."""
    kind = rng.random()
    power = None if kind < 0.25 else _watts(rng, -12_000, 12_000)
    lower: float | None = None
    upper: float | None = None
    if kind > 0.1 and rng.random() < 0.6:
        lower = _watts(rng, -12_000, 3_000) if rng.random() < 0.8 else None
        upper = _watts(rng, -3_000, 12_000) if rng.random() < 0.8 else None
    return Proposal(
        source_id=rng.choice(SOURCES),
        priority=rng.choice(PRIORITIES),
        power=power,
        bounds=Bounds(lower, upper),
        component_ids=IDS,
        creation_time=now,
    )


def _story(history: list[str]) -> str:
    """Render the scenario so far, to replay a failure by hand."""
    return "\n".join(history)


def sdk_snaps_across_zero(
    ours: float | None, sdk: float | None, system: PowerBounds
) -> bool:
    """Where we deliberately differ: the SDK snaps the target across 0 W.

    When one end of the range left is inside the exclusion zone, the SDK keeps
    only the zone's far edge as a candidate and snaps to it even if it lies on
    the other side of 0 (a −545 W target became +72 W). Ours takes 0 W there
    (always allowed; spec §1 "0 if that edge has the opposite sign"), so the
    pool never runs against what its actors asked for. Such a case shows as ours
    at 0 W and the SDK on a non-zero edge of the zone.
    """
    return (
        ours == 0.0
        and sdk is not None
        and sdk != 0.0
        and sdk in (system.exclusion_lower, system.exclusion_upper)
    )


def _close(ours: float | None, sdk: float | None) -> bool:
    if ours is None or sdk is None:
        return ours is sdk
    return math.isclose(ours, sdk, rel_tol=0.0, abs_tol=TOLERANCE)


@dataclass
class Pair:
    """Our manager and the SDK oracle for the same component set."""

    ours: PowerManager
    sdk: SdkPowerManager
    rng: random.Random
    system: PowerBounds
    snapped_across_zero: int = 0
    """Steps where the SDK's target was reversed and ours was 0 W."""

    def assert_agree(
        self, history: list[str], ours: float | None, sdk: float | None
    ) -> None:
        stored_ours = self.ours.target_power(IDS)
        stored_sdk = self.sdk.target_power()
        if sdk_snaps_across_zero(stored_ours, stored_sdk, self.system):
            # Ours is 0 W (checked by the predicate); the returned target too.
            assert ours in (None, 0.0), _story(history)
            self.snapped_across_zero += 1
        else:
            assert _close(ours, sdk), f"{_story(history)}: target {ours} != SDK {sdk}"
            assert _close(stored_ours, stored_sdk), (
                f"{_story(history)}: stored target {stored_ours} != SDK {stored_sdk}"
            )
        for priority in self.rng.sample(REPORT_PRIORITIES, REPORTS_PER_STEP):
            bounds = self.ours.report(IDS, priority).bounds
            sdk_bounds = self.sdk.available_bounds(priority)
            assert bounds is not None
            assert sdk_bounds is not None
            ours_pair = (bounds.inclusion_lower, bounds.inclusion_upper)
            agree = all(map(_close, ours_pair, sdk_bounds, strict=True))
            assert agree, (
                f"{_story(history)}: priority {priority}: {ours_pair} != {sdk_bounds}"
            )


def run_scenario(seed: int, name: AlgorithmName) -> tuple[int, int]:
    """Play one random scenario on both; return the steps played and differing."""
    rng = random.Random(seed)
    default_power = rng.choice(list(DefaultPower))
    system = random_system_bounds(rng)
    algorithm = Matryoshka() if name == "matryoshka" else ShiftingMatryoshka()
    ours = PowerManager(algorithm, default_power)
    ours.set_system_bounds(IDS, system)
    pair = Pair(ours, SdkPowerManager(name, default_power, IDS, system), rng, system)
    now = 0.0
    history = [f"seed={seed} default={default_power} system={system}"]
    for _ in range(STEPS_PER_SCENARIO):
        now += rng.choice((0.0, 1.0, 15.0, 45.0))
        action = rng.random()
        if action < 0.8:
            proposal = random_proposal(rng, now)
            history.append(f"propose {proposal}")
            pair.assert_agree(
                history, ours.propose(proposal), pair.sdk.propose(proposal)
            )
        elif action < 0.9:
            history.append(f"drop_expired now={now}")
            expected = pair.sdk.drop_expired(now)
            pair.assert_agree(history, ours.drop_expired(now).get(IDS), expected)
        else:
            system = random_system_bounds(rng)
            history.append(f"system bounds {system}")
            pair.system = system
            pair.assert_agree(
                history,
                ours.set_system_bounds(IDS, system),
                pair.sdk.set_system_bounds(system),
            )
    return STEPS_PER_SCENARIO, pair.snapped_across_zero


@pytest.mark.parametrize("name", ["matryoshka", "shifting"])
def test_same_targets_and_bounds_as_the_sdk(name: AlgorithmName) -> None:
    base = 0 if name == "matryoshka" else 1_000_000
    outcomes = [run_scenario(base + i, name) for i in range(SCENARIOS)]
    steps = sum(played for played, _ in outcomes)
    assert steps == SCENARIOS * STEPS_PER_SCENARIO
    # The deliberate difference is rare: the rest still match the SDK.
    differing = sum(snapped for _, snapped in outcomes)
    assert differing < steps // 20, differing
