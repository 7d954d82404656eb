"""A telemetry round is published in short steps, all with one sample time.

With hundreds of streams, a round published in one go keeps the simulator (and
the client reading it) busy for tens of milliseconds, and a set-power request
waits behind it. The hub publishes `PUBLISH_STEP` stream groups per step and the
ticker pauses between steps; these tests check the round itself: everything is
sent exactly once, in steps, with one sample time, and the pauses stay a small
part of the sample period.
"""

from __future__ import annotations

import itertools

from frequenz.api.common.v1alpha8.metrics import metrics_pb2
from frequenz.api.microgrid.v1alpha18 import microgrid_pb2
import pytest

from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    generate_scenario,
)
from custom_components.frequenz_microgrid.simulator.server import (
    MAX_STEP_PAUSE_S,
    ROUND_SPREAD,
    step_pause_s,
)
from custom_components.frequenz_microgrid.simulator.streams import (
    PUBLISH_STEP,
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

    for _ in sim.hub.publish_in_steps(sim.model, sim.faults, sim._now_timestamp()):
        sent_per_step.append(sum(not s.queue.empty() for s in subscriptions))

    assert sent_per_step[0] < PUBLISH_STEP  # the first pause comes early
    assert len(sent_per_step) == len(subscriptions) // PUBLISH_STEP
    assert all(b - a <= PUBLISH_STEP for a, b in itertools.pairwise(sent_per_step))
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


@pytest.mark.parametrize(
    ("groups", "period_s"), [(0, 1.0), (24, 1.0), (402, 1.0), (4000, 1.0), (402, 0.05)]
)
def test_pauses_within_a_round_add_up_to_a_small_part_of_the_period(
    groups: int, period_s: float
) -> None:
    pause = step_pause_s(groups, period_s)
    steps = groups // PUBLISH_STEP

    assert 0.0 <= pause <= MAX_STEP_PAUSE_S
    assert pause * steps <= ROUND_SPREAD * period_s + 1e-12
    if steps and period_s >= 1.0 and steps * MAX_STEP_PAUSE_S <= ROUND_SPREAD:
        assert pause == MAX_STEP_PAUSE_S
