"""The Frequenz SDK as an independent consumer of the simulator.

The SDK reads the component graph and telemetry through its own pipeline and
sends setpoints through its own power distributor, so agreeing with it shows the
simulator speaks the API the way real microgrids do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

from frequenz.quantities import Power
from frequenz.sdk import microgrid
from frequenz.sdk.timeseries import ResamplerConfig2
import pytest

from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    load_scenario,
    running_simulator,
)
from tests.sdk_runtime import stop_sdk

from .conftest import BATTERY_INVERTER

pytestmark = pytest.mark.slow


@pytest.fixture
async def sdk_sim() -> AsyncIterator[MicrogridSimulator]:
    """The `home` scenario with the SDK initialised against it, torn down after."""
    async with running_simulator(
        load_scenario("home"), speed=1.0, sample_period_s=0.1
    ) as sim:
        before = asyncio.all_tasks()
        await microgrid.initialize(
            sim.url, ResamplerConfig2(resampling_period=timedelta(seconds=0.2))
        )
        try:
            yield sim
        finally:
            await stop_sdk(before)


async def test_sdk_battery_pool_reads_and_steers_the_simulator(
    sdk_sim: MicrogridSimulator,
) -> None:
    pool = microgrid.new_battery_pool(priority=5)
    try:
        soc = await asyncio.wait_for(pool.soc.new_receiver().receive(), timeout=10)
        assert soc.value is not None
        assert soc.value.as_percent() == pytest.approx(50.0, abs=0.5)
        # The SDK's power manager ignores proposals until it has seen bounds:
        # propose again until the simulated inverter receives the setpoint.
        async with asyncio.timeout(15):
            while not any(
                s.component_id == BATTERY_INVERTER and s.power_w > 0
                for s in sdk_sim.setpoints
            ):
                await pool.propose_power(Power.from_watts(2000.0))
                await asyncio.sleep(0.5)
        power_rx = pool.power.new_receiver()
        async with asyncio.timeout(10):
            while True:
                sample = await power_rx.receive()
                if sample.value is not None and sample.value.as_watts() > 1900.0:
                    break
        assert sample.value.as_watts() == pytest.approx(2000.0)
        received = [s for s in sdk_sim.setpoints if s.component_id == BATTERY_INVERTER]
        assert received
        assert received[-1].power_w == pytest.approx(2000.0)
        assert sdk_sim.unsafe_setpoint_count == 0
    finally:
        await pool.stop()
