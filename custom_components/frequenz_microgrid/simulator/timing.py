"""When each component's message of a telemetry round leaves the simulator.

Real sites do not report in one burst: meters and chargers sample on their own
clocks, gateways batch, links lag. A round here is sampled at one instant (all
its messages carry that sample time), and `TelemetryTiming` decides when each
component's message is delivered: spread over `spread_s` in a chosen order, plus
random jitter, plus a fixed lag for chosen components. A component's messages
always leave in sampling order. Without a timing the server keeps its default:
the round in `STEPS_PER_ROUND` parts over half the sample period, in stream order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
import enum
import random


class DeliveryOrder(enum.StrEnum):
    """In which order a round's messages are spread out."""

    STREAMS = "streams"
    """The order the streams were opened in (the grid meter usually first)."""
    REVERSED = "reversed"
    """The opposite: the components opened last come first."""
    RANDOM = "random"
    """A new random order every round."""


@dataclass(frozen=True, slots=True)
class TelemetryTiming:
    """How a round's telemetry is spread, ordered, jittered and delayed (real s)."""

    spread_s: float = 0.0
    """The round's messages start at even intervals over this time."""
    order: DeliveryOrder = DeliveryOrder.STREAMS
    jitter_s: float = 0.0
    """Each message is delayed by a further random 0…jitter_s."""
    lag_s: Mapping[int, float] = field(default_factory=dict)
    """Per component id, a fixed extra delay (a lagging component)."""
    seed: int = 0
    """Seed of the random order and jitter (reproducible runs)."""

    def __post_init__(self) -> None:
        """Reject negative delays."""
        delays = (self.spread_s, self.jitter_s, *self.lag_s.values())
        if any(not delay >= 0.0 for delay in delays):
            raise ValueError("telemetry delays must be ≥ 0 s")

    @classmethod
    def parse_lag(cls, text: str) -> tuple[int, float]:
        """Parse ``ID:SECONDS`` (a component that lags by that much)."""
        component_id, _, seconds = text.partition(":")
        return int(component_id), float(seconds)


class DeliverySchedule:
    """Turns a `TelemetryTiming` into each message's delay, round after round."""

    def __init__(self, timing: TelemetryTiming) -> None:
        """Draw order and jitter from the timing's seed."""
        self.timing = timing
        self._random = random.Random(timing.seed)

    def delays(self, component_ids: Sequence[int]) -> list[float]:
        """The delay (s after sampling) of each component's message this round."""
        timing = self.timing
        order = list(range(len(component_ids)))
        if timing.order is DeliveryOrder.REVERSED:
            order.reverse()
        elif timing.order is DeliveryOrder.RANDOM:
            self._random.shuffle(order)
        step = timing.spread_s / max(1, len(component_ids) - 1)
        delays = [0.0] * len(component_ids)
        for position, index in enumerate(order):
            jitter = (
                self._random.uniform(0.0, timing.jitter_s) if timing.jitter_s else 0.0
            )
            lag = timing.lag_s.get(component_ids[index], 0.0)
            delays[index] = position * step + jitter + lag
        return delays
