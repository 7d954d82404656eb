"""Set-power calls over real gRPC: first answer, the client's errors, no call left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
import gc

from frequenz.client.base.exception import OperationOutOfRange
from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid import MicrogridApiClient
import grpc.aio
import pytest

from custom_components.frequenz_microgrid.engine.set_power import (
    CompletingSetPowerClient,
    SetpointRefusedError,
)
from custom_components.frequenz_microgrid.simulator import (
    Fault,
    MicrogridSimulator,
    load_scenario,
    running_simulator,
)
from tests.observations import held_setpoint

INVERTER = 3  # the home scenario's battery inverter (±5 kW)
LIFETIME = timedelta(seconds=60)


@pytest.fixture
async def sim() -> AsyncIterator[MicrogridSimulator]:
    async with running_simulator(load_scenario("home")) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: MicrogridSimulator) -> AsyncIterator[MicrogridApiClient]:
    api = MicrogridApiClient(sim.url)
    try:
        yield api
    finally:
        await api.disconnect()


def open_calls() -> int:
    """GRPC calls of this process that are still alive."""
    gc.collect()
    return sum(isinstance(o, grpc.aio.UnaryStreamCall) for o in gc.get_objects())


async def test_every_call_ends_after_its_first_answer_was_returned(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    calls = CompletingSetPowerClient(client)
    before = open_calls()
    for power in range(1, 51):
        valid_until = await calls.set_component_power_active(
            ComponentId(INVERTER), power * 10.0, request_lifetime=LIFETIME
        )
        assert valid_until is not None
        assert valid_until > datetime.now(UTC) + timedelta(seconds=50)
    assert held_setpoint(sim, INVERTER) == 500.0
    await calls.finish()
    assert open_calls() == before  # all 50 read to their end and let go


async def test_a_refusal_raises_the_clients_error(
    client: MicrogridApiClient,
) -> None:
    calls = CompletingSetPowerClient(client)
    with pytest.raises(OperationOutOfRange):
        await calls.set_component_power_active(
            ComponentId(INVERTER), 50_000.0, request_lifetime=LIFETIME
        )
    with pytest.raises(ValueError, match="request_lifetime"):
        await calls.set_component_power_active(
            ComponentId(INVERTER), 100.0, request_lifetime=timedelta(seconds=5)
        )


async def test_a_call_given_up_on_is_cancelled(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    calls = CompletingSetPowerClient(client)
    before = open_calls()
    sim.inject_fault(INVERTER, Fault.TIMEOUT_SET_POWER)  # never answers
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await calls.set_component_power_active(
                ComponentId(INVERTER), 100.0, request_lifetime=LIFETIME
            )
    await asyncio.sleep(0.1)  # the cancellation reaches gRPC's core
    assert open_calls() == before


async def test_a_rejected_reply_raises_and_nothing_is_applied(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    failed: list[tuple[int, float]] = []
    calls = CompletingSetPowerClient(
        client, on_failed=lambda cid, power: failed.append((cid, power))
    )
    sim.inject_fault(INVERTER, Fault.REPLY_REJECTED)
    before = open_calls()

    with pytest.raises(SetpointRefusedError, match="REJECTED"):
        await calls.set_component_power_active(
            ComponentId(INVERTER), 1200.0, request_lifetime=LIFETIME
        )
    # The bare client takes the same answer for a success:
    assert (
        await client.set_component_power_active(
            ComponentId(INVERTER), 1200.0, request_lifetime=LIFETIME
        )
        is None
    )
    assert held_setpoint(sim, INVERTER) is None
    assert failed == []
    await calls.finish()
    assert open_calls() <= before + 1  # the bare client's call may linger


async def test_an_accepted_setpoint_that_fails_is_reported(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    failed: list[tuple[int, float]] = []
    reported = asyncio.Event()

    def on_failed(component_id: int, power: float) -> None:
        failed.append((component_id, power))
        reported.set()

    calls = CompletingSetPowerClient(client, on_failed=on_failed)
    await calls.set_component_power_active(
        ComponentId(INVERTER), 800.0, request_lifetime=LIFETIME
    )
    await calls.finish()
    assert failed == []  # ACCEPTED, then SUCCESS
    sim.inject_fault(INVERTER, Fault.REPLY_FAILED)

    valid_until = await calls.set_component_power_active(
        ComponentId(INVERTER), 1500.0, request_lifetime=LIFETIME
    )

    assert valid_until is not None  # the first reply: ACCEPTED
    async with asyncio.timeout(5):
        await reported.wait()
    assert failed == [(INVERTER, 1500.0)]
    assert held_setpoint(sim, INVERTER) == 800.0  # the failed one never applied
