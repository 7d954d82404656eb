"""What tests read off the simulator and write into a telemetry store by hand.

Kept with the tests: the package itself never needs to ask a simulator what it was
sent, nor to fake a telemetry message.
"""

from __future__ import annotations

from collections.abc import Iterable

from frequenz.client.microgrid.component import ComponentErrorCode, ComponentStateCode
from frequenz.client.microgrid.metrics import Metric

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.telemetry import TelemetryStore
from custom_components.frequenz_microgrid.engine.telemetry_message import (
    ComponentStates,
    TelemetryMessage,
)
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator


def setpoints_to(sim: MicrogridSimulator, component_id: int) -> list[float]:
    """The active powers (W) `component_id` was sent, oldest first.

    Among the newest `SETPOINT_HISTORY` setpoints (`sim.setpoints`).
    """
    return [s.power_w for s in sim.setpoints if s.component_id == component_id]


def held_setpoint(sim: MicrogridSimulator, component_id: int) -> float | None:
    """The active power `component_id` follows now; `None` once it lapsed."""
    setpoint = sim.model.component(component_id).active_setpoint
    return None if setpoint is None else setpoint.value


def record(
    store: TelemetryStore,
    component_id: int,
    metric: Metric | int,
    value: float,
    bounds: PowerBounds | None = None,
) -> None:
    """Let one value (and optionally its bounds) arrive as a telemetry message."""
    ranges = () if bounds is None else tuple(bounds.to_ranges())
    store.ingest_message(TelemetryMessage(component_id, [(metric, value, ranges)]))


def record_state(
    store: TelemetryStore,
    component_id: int,
    states: Iterable[ComponentStateCode | int],
    *,
    warnings: Iterable[ComponentErrorCode | int] = (),
    errors: Iterable[ComponentErrorCode | int] = (),
) -> None:
    """Let a component's states, warnings and errors arrive as a message."""
    store.ingest_message(
        TelemetryMessage(
            component_id,
            [],
            ComponentStates(frozenset(states), frozenset(warnings), frozenset(errors)),
        )
    )


class ManualClock:
    """A monotonic clock a test moves by hand (`clock.now += …`)."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
