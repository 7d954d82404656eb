"""Fixtures: a running `home` simulator and a real client connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
import math

from frequenz.client.base.retry import LinearBackoff
from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid import MicrogridApiClient
from frequenz.client.microgrid.component import ComponentDataSamples
from frequenz.client.microgrid.metrics import Metric
import pytest

from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    load_scenario,
    running_simulator,
)

# `home` scenario ids (documented in docs/simulator.md).
GRID, GRID_METER, BATTERY_INVERTER, BATTERY, PV_INVERTER = 1, 2, 3, 4, 5
EV_CHARGER_1, EV_CHARGER_2, HOUSEHOLD_METER = 6, 7, 8

FAST = 50.0
"""Simulated seconds per real second in tests that need time to pass."""


@pytest.fixture
async def sim() -> AsyncIterator[MicrogridSimulator]:
    """The `home` scenario at 50× speed, sampling every 20 ms."""
    async with running_simulator(
        load_scenario("home"), speed=FAST, sample_period_s=0.02
    ) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: MicrogridSimulator) -> AsyncIterator[MicrogridApiClient]:
    """A real client with quick retries; disconnected before the server stops."""
    api = MicrogridApiClient(
        sim.url, retry_strategy=LinearBackoff(interval=0.05, jitter=0)
    )
    yield api
    await api.disconnect()


def value(samples: ComponentDataSamples, metric: Metric) -> float:
    """The value of one metric in a telemetry message (NaN if absent)."""
    for sample in samples.metric_samples:
        if sample.metric == metric:
            single = sample.as_single_value()
            return math.nan if single is None else single
    return math.nan


async def first_matching(
    client: MicrogridApiClient,
    component_id: int,
    metrics: list[Metric],
    predicate: Callable[[ComponentDataSamples], bool],
    *,
    attempts: int = 200,
) -> ComponentDataSamples:
    """Receive a component's telemetry until a message satisfies `predicate`."""
    receiver = client.receive_component_data_samples_stream(
        ComponentId(component_id), metrics
    )
    last: ComponentDataSamples | None = None
    for _ in range(attempts):
        last = await receiver.receive()
        if predicate(last):
            return last
    raise AssertionError(f"no matching telemetry; last message: {last}")
