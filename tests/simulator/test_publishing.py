"""A telemetry round is published in parts spread over time, with one sample time.

With hundreds of streams, a round published in one go keeps the simulator (and
the client reading it) busy for tens of milliseconds, and a set-power request
waits behind it. The hub splits a round into `STEPS_PER_ROUND` equal parts and
the ticker spreads them over `ROUND_SPREAD` of the sample period; these tests
check the round itself (everything sent exactly once, in parts, with one sample
time) and, on a running simulator, that it is spread and ends well before the
next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import itertools
import math
from typing import Any

from frequenz.api.common.v1alpha8.metrics import metrics_pb2
from frequenz.api.microgrid.v1alpha18 import microgrid_pb2
import pytest

from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    generate_scenario,
    streams,
)
from custom_components.frequenz_microgrid.simulator.server import (
    ROUND_SPREAD,
    round_part_interval_s,
)
from custom_components.frequenz_microgrid.simulator.streams import (
    STEPS_PER_ROUND,
    Subscription,
)

_Response = microgrid_pb2.ReceiveElectricalComponentTelemetryStreamResponse


def sample_time_of(payload: bytes) -> tuple[int, int]:
    """The sample time of one published message, as (seconds, nanos)."""
    samples = _Response.FromString(payload).telemetry.metric_samples
    stamp = samples[0].sample_time
    return stamp.seconds, stamp.nanos


def test_a_round_goes_out_in_steps_once_per_stream_with_one_sample_time() -> None:
    sim = MicrogridSimulator(generate_scenario(402))
    subscriptions: list[Subscription] = [
        sim.hub.subscribe(component_id, frozenset())
        for component_id in sorted(sim.model.components)
    ]
    sent_per_step: list[int] = []

    for part_complete in sim.hub.publish_in_steps(
        sim.model, sim.faults, sim._now_timestamp()
    ):
        if part_complete:
            sent_per_step.append(sum(not s.queue.empty() for s in subscriptions))

    part = math.ceil(len(subscriptions) / STEPS_PER_ROUND)  # 17 of 402
    assert sent_per_step[0] == part
    assert len(sent_per_step) == math.ceil(len(subscriptions) / part) - 1
    assert all(b - a == part for a, b in itertools.pairwise(sent_per_step))
    payloads = [s.queue.get_nowait() for s in subscriptions]
    assert all(s.queue.empty() for s in subscriptions)  # exactly one each
    assert len({sample_time_of(p) for p in payloads}) == 1


def test_streams_opened_during_a_round_wait_for_the_next_one() -> None:
    sim = MicrogridSimulator(generate_scenario(102))
    components = sorted(sim.model.components)
    early = [sim.hub.subscribe(cid, frozenset()) for cid in components]
    steps = sim.hub.publish_in_steps(sim.model, sim.faults, sim._now_timestamp())
    next(steps)
    # A new (component, filter) group:
    late = sim.hub.subscribe(
        components[-1], frozenset({metrics_pb2.METRIC_AC_POWER_ACTIVE})
    )
    for _ in steps:
        pass

    assert all(s.queue.qsize() == 1 for s in early)
    assert late.queue.empty()


async def test_a_request_waits_for_one_message_to_be_built_not_for_a_whole_part(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = MicrogridSimulator(generate_scenario(402), sample_period_s=0.2)
    for component_id in sorted(sim.model.components):
        sim.hub.subscribe(component_id, frozenset())
    groups = sim.hub.group_count
    part = math.ceil(groups / STEPS_PER_ROUND)
    loop = asyncio.get_running_loop()
    built = 0
    built_when_a_request_ran: list[int] = []
    ran = asyncio.Event()

    def request_arrives() -> None:
        built_when_a_request_ran.append(built)
        ran.set()

    def counted(*args: Any) -> bytes:
        nonlocal built
        built += 1
        if built == groups + 1:  # the first message of a ticked round
            loop.call_soon(request_arrives)  # as an arriving request would
        return serialise(*args)

    serialise = streams._serialise
    monkeypatch.setattr(streams, "_serialise", counted)
    await sim.start(host="127.0.0.1", port=0)
    try:
        async with asyncio.timeout(5.0):
            await ran.wait()
    finally:
        await sim.stop()

    # It ran once that message was built, long before the part's last one.
    assert built_when_a_request_ran[0] < groups + part // 2


async def test_a_running_simulator_spreads_each_round_over_part_of_the_period() -> None:
    period = 0.2
    sim = MicrogridSimulator(generate_scenario(402), sample_period_s=period)
    subscriptions = [
        sim.hub.subscribe(component_id, frozenset())
        for component_id in sorted(sim.model.components)
    ]
    loop = asyncio.get_running_loop()
    offered: list[float] = []
    # `start` publishes a round at once; then two ticked rounds:
    three_rounds = asyncio.Event()
    for subscription in subscriptions:
        original = subscription.offer

        def timed(payload: bytes, original: Callable[[bytes], None] = original) -> None:
            offered.append(loop.time())
            original(payload)
            if len(offered) == 3 * len(subscriptions):
                three_rounds.set()

        subscription.offer = timed  # type: ignore[method-assign]
    await sim.start(host="127.0.0.1", port=0)
    try:
        async with asyncio.timeout(5.0):
            await three_rounds.wait()
    finally:
        await sim.stop()

    count = len(subscriptions)
    ticked = sorted(offered[count : 2 * count])
    spread = ticked[-1] - ticked[0]
    parts = math.ceil(count / math.ceil(count / STEPS_PER_ROUND))  # 24 of 17
    gap = round_part_interval_s(period)
    # Spread (one burst takes ≈20 ms): a part starts a gap after the one before
    # at the earliest; two gaps of slack for a late first part.
    assert spread >= (parts - 3) * gap
    # Over well before the next round, even on a slow machine.
    assert spread < ROUND_SPREAD * period + period / 4
