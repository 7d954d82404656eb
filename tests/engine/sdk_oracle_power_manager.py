"""Drive the Frequenz SDK's own power-manager algorithms as a test oracle.

The SDK (test-only dependency) is the reference the spec points at: "same as the
SDK". `SdkPowerManager` feeds its ``Matryoshka`` / ``ShiftingMatryoshka`` the same
proposals and system bounds as ours, converting through `frequenz.quantities.Power`,
and reproduces the parts of the power-managing actor the algorithms leave to it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import logging
from typing import Literal

from frequenz.client.common.microgrid.components import ComponentId
from frequenz.quantities import Power
from frequenz.sdk.microgrid._power_managing._base_classes import (
    BaseAlgorithm,
    DefaultPower as SdkDefaultPower,
    Proposal as SdkProposal,
)
from frequenz.sdk.microgrid._power_managing._matryoshka import Matryoshka
from frequenz.sdk.microgrid._power_managing._shifting_matryoshka import (
    ShiftingMatryoshka,
)
from frequenz.sdk.timeseries._base_types import Bounds as SdkBounds, SystemBounds

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.power_manager import (
    DefaultPower,
    Proposal,
)

# The shifting matryoshka logs every allocation at INFO; under pytest's log capture
# that alone costs more than the algorithm.
logging.getLogger("frequenz.sdk.microgrid._power_managing").setLevel(logging.WARNING)

AlgorithmName = Literal["matryoshka", "shifting"]

_DEFAULTS = {
    DefaultPower.ZERO: SdkDefaultPower.ZERO,
    DefaultPower.MIN: SdkDefaultPower.MIN,
    DefaultPower.MAX: SdkDefaultPower.MAX,
}


def _power(watts: float | None) -> Power | None:
    return None if watts is None else Power.from_watts(watts)


def _watts(power: Power | None) -> float | None:
    return None if power is None else power.as_watts()


def sdk_component_ids(component_ids: frozenset[int]) -> frozenset[ComponentId]:
    """Return the SDK's typed form of a component set."""
    return frozenset(ComponentId(i) for i in component_ids)


def sdk_proposal(proposal: Proposal) -> SdkProposal:
    """Return the SDK's form of one of our proposals."""
    return SdkProposal(
        source_id=proposal.source_id,
        preferred_power=_power(proposal.power),
        bounds=SdkBounds[Power | None](
            lower=_power(proposal.bounds.lower), upper=_power(proposal.bounds.upper)
        ),
        component_ids=sdk_component_ids(proposal.component_ids),
        priority=proposal.priority,
        creation_time=proposal.creation_time,
    )


def sdk_system_bounds(bounds: PowerBounds) -> SystemBounds:
    """Return the SDK's form of a pool's system bounds."""
    return SystemBounds(
        timestamp=datetime.now(tz=UTC),
        inclusion_bounds=SdkBounds[Power](
            lower=Power.from_watts(bounds.inclusion_lower),
            upper=Power.from_watts(bounds.inclusion_upper),
        ),
        exclusion_bounds=SdkBounds[Power](
            lower=Power.from_watts(bounds.exclusion_lower),
            upper=Power.from_watts(bounds.exclusion_upper),
        ),
    )


def new_sdk_algorithm(
    name: AlgorithmName, default_power: DefaultPower, max_proposal_age: float = 60.0
) -> BaseAlgorithm:
    """Create the SDK's algorithm of that name."""
    age = timedelta(seconds=max_proposal_age)
    if name == "matryoshka":
        return Matryoshka(age, _DEFAULTS[default_power])
    return ShiftingMatryoshka(age, _DEFAULTS[default_power])


class SdkPowerManager:
    """The SDK's algorithm for one component set, driven like our `PowerManager`.

    Targets are what the SDK's ``calculate_target_power`` returns. Where our manager
    deliberately goes further (see its module docstring), the expected value is
    derived from the SDK's state, and the method says so.
    """

    def __init__(
        self,
        name: AlgorithmName,
        default_power: DefaultPower,
        component_ids: frozenset[int],
        system_bounds: PowerBounds,
    ) -> None:
        """Create the SDK algorithm with the pool's bounds already known."""
        self.algorithm = new_sdk_algorithm(name, default_power)
        self.default_power = default_power
        self.component_ids = sdk_component_ids(component_ids)
        self.bounds = system_bounds
        self._system_bounds = sdk_system_bounds(system_bounds)

    def _calculate(self, proposal: SdkProposal | None) -> float | None:
        return _watts(
            self.algorithm.calculate_target_power(
                self.component_ids, proposal, self._system_bounds
            )
        )

    def propose(self, proposal: Proposal) -> float | None:
        """Add, replace or withdraw a proposal; return the SDK's target."""
        return self._calculate(sdk_proposal(proposal))

    def set_system_bounds(self, bounds: PowerBounds) -> float | None:
        """Recalculate under new bounds, as the SDK's bounds tracker does.

        Like the tracker, nothing happens when the bounds did not change.
        """
        if bounds == self.bounds:
            return None
        self.bounds = bounds
        self._system_bounds = sdk_system_bounds(bounds)
        return self._calculate(None)

    def proposal_count(self) -> int:
        """Return how many proposals the SDK holds for the component set."""
        buckets = self.algorithm._component_buckets  # type: ignore[attr-defined]
        bucket: set[SdkProposal] = buckets.get(self.component_ids, set())
        return len(bucket)

    def drop_expired(self, now: float) -> float | None:
        """Drop old proposals; the target to send if any were dropped.

        The SDK only forgets the target of an emptied bucket; ours sends the default
        power then (documented difference), and recalculates right away otherwise.
        """
        had_target = self.target_power() is not None
        before = self.proposal_count()
        self.algorithm.drop_old_proposals(now)
        after = self.proposal_count()
        if after == before:
            return None
        if after == 0:
            return self._default() if had_target else None
        return self._calculate(None)

    def _default(self) -> float:
        match self.default_power:
            case DefaultPower.ZERO:
                return 0.0
            case DefaultPower.MIN:
                return self.bounds.inclusion_lower
            case DefaultPower.MAX:
                return self.bounds.inclusion_upper

    def target_power(self) -> float | None:
        """Return the SDK's stored target for the component set (its report's)."""
        targets = self.algorithm._target_power  # type: ignore[attr-defined]
        target: Power | None = targets.get(self.component_ids)
        return _watts(target)

    def available_bounds(self, priority: int) -> tuple[float, float] | None:
        """Return the SDK's report bounds (inclusion) for a priority."""
        report = self.algorithm.get_status(
            self.component_ids, priority, self._system_bounds
        )
        if report.bounds is None:
            return None
        return (report.bounds.lower.as_watts(), report.bounds.upper.as_watts())
