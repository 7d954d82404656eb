"""Telemetry fan-out: one serialised message per component and filter per tick.

Each open stream is a `Subscription` with a small queue. On every tick the hub
builds the reply for each distinct (component, metric filter) once, serialises
it once, and puts the same bytes into every matching queue; streams only wait on
their queue, so there is no per-stream loop doing work.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
import math

from frequenz.api.microgrid.v1alpha18 import microgrid_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from .faults import Fault, FaultBook
from .physics.model import MicrogridModel
from .telemetry import MetricId, Readings, readings, telemetry_message

STEPS_PER_ROUND = 25
"""Parts a publishing round is split into (the server spreads them over time).

Real components report at their own pace, not all in the same millisecond. More
parts make each burst lighter (set-power is answered sooner) but wake the
receiving side more often: 25 parts a second cost Home Assistant no more CPU
than a few bursts (see the ingest and control-latency benchmarks)."""

QUEUE_SIZE = 8
"""Messages a slow stream may fall behind before the oldest are dropped."""

END_OF_STREAM = b""
"""Queue marker telling a stream to end with an error (never a real message)."""

type StreamKey = tuple[int, frozenset[MetricId]]


@dataclass(eq=False)
class Subscription:
    """One open telemetry stream: a component, a metric filter and a queue."""

    component_id: int
    metrics: frozenset[MetricId]
    queue: asyncio.Queue[bytes] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )

    def offer(self, payload: bytes) -> None:
        """Queue `payload`, dropping the oldest message if the stream lags."""
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(payload)


class TelemetryHub:
    """The set of open telemetry streams and the per-tick fan-out to them."""

    def __init__(self) -> None:
        """Start with no streams."""
        self._groups: dict[StreamKey, list[Subscription]] = defaultdict(list)
        self.messages_sent = 0
        self.requested_metrics: defaultdict[int, set[MetricId]] = defaultdict(set)
        """Per component, every metric a stream ever asked for (tests read it)."""

    @property
    def group_count(self) -> int:
        """How many distinct (component, metric filter) pairs are streamed."""
        return len(self._groups)

    @property
    def stream_count(self) -> int:
        """How many telemetry streams are open."""
        return sum(len(subs) for subs in self._groups.values())

    def subscribe(
        self, component_id: int, metrics: frozenset[MetricId]
    ) -> Subscription:
        """Open a stream (the caller must `unsubscribe` it when it ends)."""
        subscription = Subscription(component_id, metrics)
        self.requested_metrics[component_id].update(metrics)
        self._groups[(component_id, metrics)].append(subscription)
        return subscription

    def streamed_metrics(self, component_id: int) -> frozenset[MetricId]:
        """The metrics the open streams of a component ask for."""
        return frozenset(
            metric
            for (streamed_id, metrics) in self._groups
            if streamed_id == component_id
            for metric in metrics
        )

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a stream that ended."""
        key = (subscription.component_id, subscription.metrics)
        group = self._groups.get(key)
        if group is not None and subscription in group:
            group.remove(subscription)
            if not group:
                del self._groups[key]

    def publish(
        self, model: MicrogridModel, faults: FaultBook, sample_time: Timestamp
    ) -> None:
        """Send every open stream its component's current telemetry, at once."""
        for _ in self.publish_in_steps(model, faults, sample_time):
            pass

    def publish_in_steps(
        self,
        model: MicrogridModel,
        faults: FaultBook,
        sample_time: Timestamp,
        *,
        steps: int = STEPS_PER_ROUND,
    ) -> Iterator[bool]:
        """Send every open stream its telemetry in up to `steps` equal parts.

        Yields after building each (component, filter) group's message: `False`
        within a part (the caller lets requests that came meanwhile go first, so
        a set-power request waits for one message to be built, not for a whole
        part), `True` once a part has been queued (the caller spreads the parts
        over the sample period; serialising 400 components takes ≈20 ms). A
        part's messages are queued together, so they still leave in one burst:
        the receiving side wakes once per part, not once per message.
        A stream opened meanwhile gets its greeting and joins its group (or, in a
        new group, the next round); a stream closed meanwhile is skipped.
        """
        groups = list(self._groups.items())
        size = max(1, math.ceil(len(groups) / steps))
        part: list[tuple[list[Subscription], bytes]] = []
        built = self._build(groups, model, faults, sample_time)
        for index, message in enumerate(built):
            if index % size == 0 and index:
                self._send_part(part)
                yield True
            elif index:
                yield False
            if message is not None:
                part.append((message[1], message[2]))
        self._send_part(part)

    def round_messages(
        self, model: MicrogridModel, faults: FaultBook, sample_time: Timestamp
    ) -> list[tuple[int, list[Subscription], bytes]]:
        """Build (not send) a round: per group its component, streams and bytes."""
        groups = list(self._groups.items())
        return [
            message
            for message in self._build(groups, model, faults, sample_time)
            if message is not None
        ]

    def deliver(self, subscriptions: list[Subscription], payload: bytes) -> None:
        """Queue one built message on its streams now."""
        self._send_part([(subscriptions, payload)])

    @staticmethod
    def _build(
        groups: list[tuple[StreamKey, list[Subscription]]],
        model: MicrogridModel,
        faults: FaultBook,
        sample_time: Timestamp,
    ) -> Iterator[tuple[int, list[Subscription], bytes] | None]:
        """Each group's message, built lazily; `None` for a silent group."""
        cache: dict[int, Readings] = {}
        for (component_id, metrics), subscriptions in groups:
            if (
                not subscriptions
                or component_id not in model.components  # removed live
                or faults.has(component_id, Fault.STOP_DATA)
            ):
                yield None
                continue
            reading = cache.get(component_id)
            if reading is None:
                reading = cache[component_id] = readings(model, component_id)
            payload = _serialise(reading, metrics, sample_time, faults)
            yield component_id, subscriptions, payload

    def _send_part(self, part: list[tuple[list[Subscription], bytes]]) -> None:
        """Queue a part's messages together (they leave in one burst) and clear it."""
        for subscriptions, payload in part:
            for subscription in subscriptions:
                subscription.offer(payload)
            self.messages_sent += len(subscriptions)
        part.clear()

    def greet(
        self,
        subscription: Subscription,
        model: MicrogridModel,
        faults: FaultBook,
        sample_time: Timestamp,
    ) -> None:
        """Give a new stream the current values at once, not a tick later."""
        component_id = subscription.component_id
        if faults.has(component_id, Fault.STOP_DATA):
            return
        reading = readings(model, component_id)
        subscription.offer(
            _serialise(reading, subscription.metrics, sample_time, faults)
        )

    def end_component(self, component_ids: Collection[int]) -> int:
        """End the open streams of these components with an error (they are gone).

        Returns how many streams were ended.
        """
        ended = 0
        for (component_id, _), subscriptions in self._groups.items():
            if component_id in component_ids:
                for subscription in subscriptions:
                    subscription.offer(END_OF_STREAM)
                ended += len(subscriptions)
        return ended

    def end_all(self) -> None:
        """Make every open stream end abruptly with an error."""
        for subscriptions in self._groups.values():
            for subscription in subscriptions:
                subscription.offer(END_OF_STREAM)


def _serialise(
    reading: Readings,
    metrics: frozenset[MetricId],
    sample_time: Timestamp,
    faults: FaultBook,
) -> bytes:
    telemetry = telemetry_message(
        reading,
        metrics,
        sample_time,
        nan=faults.has(reading.component_id, Fault.SEND_NAN),
        inf=faults.has(reading.component_id, Fault.SEND_INF),
        warning=faults.has(reading.component_id, Fault.WARNING),
    )
    response = microgrid_pb2.ReceiveElectricalComponentTelemetryStreamResponse(
        telemetry=telemetry
    )
    return response.SerializeToString()
