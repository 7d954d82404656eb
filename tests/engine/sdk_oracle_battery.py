"""The Frequenz SDK's battery distribution, fed from our own input types.

Test-only: the SDK is the reference the spec is written against ("same as the
SDK"), so the differential tests and the benchmark run its
`BatteryDistributionAlgorithm` on exactly the inputs ours gets. The SDK's own
component data classes are built field by field from our `BatteryState`s and
inverter bounds, and aggregated by the SDK's `AggregatedBatteryData`, so its
aggregation is exercised too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from frequenz.client.common.microgrid.components import ComponentId
from frequenz.quantities import Power
from frequenz.sdk.microgrid._old_component_data import BatteryData, InverterData
from frequenz.sdk.microgrid._power_distributing._distribution_algorithm import (
    AggregatedBatteryData,
    BatteryDistributionAlgorithm,
    InvBatPair,
)

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.distribution.battery import (
    BatteryState,
    InverterBatteries,
)

_TIMESTAMP = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RawPair:
    """One inverter with its batteries, before aggregation (what tests generate)."""

    inverter_id: int
    inverter_bounds: PowerBounds
    batteries: tuple[BatteryState, ...]

    def ours(self) -> InverterBatteries:
        """Aggregate for our distribution (never None for generated data)."""
        pair = InverterBatteries.aggregate(
            self.inverter_id, self.inverter_bounds, self.batteries
        )
        assert pair is not None
        return pair

    def sdk(self) -> InvBatPair:
        """Build the SDK's pair from the same numbers."""
        return InvBatPair(
            AggregatedBatteryData([_battery_data(b) for b in self.batteries]),
            [_inverter_data(self.inverter_id, self.inverter_bounds)],
        )


def _battery_data(battery: BatteryState) -> BatteryData:
    return BatteryData(
        component_id=ComponentId(battery.component_id),
        timestamp=_TIMESTAMP,
        soc=battery.soc_pct,
        soc_lower_bound=battery.soc_lower_pct,
        soc_upper_bound=battery.soc_upper_pct,
        capacity=battery.capacity_wh,
        power_inclusion_lower_bound=battery.bounds.inclusion_lower,
        power_exclusion_lower_bound=battery.bounds.exclusion_lower,
        power_exclusion_upper_bound=battery.bounds.exclusion_upper,
        power_inclusion_upper_bound=battery.bounds.inclusion_upper,
    )


def _inverter_data(inverter_id: int, bounds: PowerBounds) -> InverterData:
    return InverterData(
        component_id=ComponentId(inverter_id),
        timestamp=_TIMESTAMP,
        active_power_inclusion_lower_bound=bounds.inclusion_lower,
        active_power_exclusion_lower_bound=bounds.exclusion_lower,
        active_power_exclusion_upper_bound=bounds.exclusion_upper,
        active_power_inclusion_upper_bound=bounds.inclusion_upper,
    )


@dataclass(frozen=True, slots=True)
class SdkOutcome:
    """The SDK's answer in plain floats: power per inverter id, remaining power."""

    setpoints: dict[int, float]
    remaining_power: float


def sdk_distribute(
    power_w: float, pairs: Sequence[InvBatPair], *, exponent: float = 1.0
) -> SdkOutcome:
    """Run the SDK's algorithm and convert its answer to floats."""
    algorithm = BatteryDistributionAlgorithm(float(exponent))
    result = algorithm.distribute_power(Power.from_watts(power_w), list(pairs))
    return SdkOutcome(
        setpoints={
            int(cid): power.as_watts() for cid, power in result.distribution.items()
        },
        remaining_power=result.remaining_power.as_watts(),
    )
