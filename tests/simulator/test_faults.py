"""Fault injection, from Python and through the command-line commands."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import math

from frequenz.client.base.exception import (
    OperationPreconditionFailed,
    OperationUnauthenticated,
    ServiceUnavailable,
)
from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid import MicrogridApiClient
from frequenz.client.microgrid.component import ComponentErrorCode, ComponentStateCode
from frequenz.client.microgrid.metrics import Bounds, Metric
import pytest

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.simulator import Fault, MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.cli import (
    apply_command,
    build_parser,
    scenario_from_arg,
)
from tests.observations import held_setpoint

from .conftest import BATTERY, BATTERY_INVERTER, PV_INVERTER, first_matching, value


async def test_rejected_and_failed_set_power(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    sim.inject_fault(BATTERY_INVERTER, Fault.REJECT_SET_POWER)
    with pytest.raises(OperationPreconditionFailed):
        await client.set_component_power_active(ComponentId(BATTERY_INVERTER), 100.0)
    sim.clear_fault(BATTERY_INVERTER)
    sim.inject_fault(BATTERY_INVERTER, Fault.FAIL_SET_POWER)
    with pytest.raises(ServiceUnavailable):
        await client.set_component_power_active(ComponentId(BATTERY_INVERTER), 100.0)
    sim.clear_fault(BATTERY_INVERTER, Fault.FAIL_SET_POWER)
    await client.set_component_power_active(ComponentId(BATTERY_INVERTER), 100.0)
    assert held_setpoint(sim, BATTERY_INVERTER) is not None
    assert len(sim.setpoints) == 3


async def test_set_power_that_times_out(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    sim.inject_fault(BATTERY_INVERTER, Fault.TIMEOUT_SET_POWER)
    call = client.set_component_power_active(ComponentId(BATTERY_INVERTER), 100.0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(call, timeout=0.3)
    assert held_setpoint(sim, BATTERY_INVERTER) is None


async def test_stop_data_silences_only_that_component(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    battery = client.receive_component_data_samples_stream(
        ComponentId(BATTERY), [Metric.BATTERY_SOC_PCT]
    )
    pv = client.receive_component_data_samples_stream(
        ComponentId(PV_INVERTER), [Metric.AC_POWER_ACTIVE]
    )
    await battery.receive()
    sim.inject_fault(BATTERY, Fault.STOP_DATA)
    await asyncio.sleep(0.1)
    while await _drain_ready(battery):
        pass
    for _ in range(5):  # PV keeps streaming ...
        await pv.receive()
    with pytest.raises(TimeoutError):  # ... the battery sends nothing
        await asyncio.wait_for(battery.receive(), timeout=0.2)
    sim.clear_fault(BATTERY)
    samples = await asyncio.wait_for(battery.receive(), timeout=2)
    assert value(samples, Metric.BATTERY_SOC_PCT) == pytest.approx(50.0, abs=1)


async def _drain_ready(receiver: object) -> bool:
    """Consume whatever was already queued before the fault took effect."""
    from frequenz.channels import Receiver

    assert isinstance(receiver, Receiver)
    try:
        await asyncio.wait_for(receiver.receive(), timeout=0.05)
    except TimeoutError:
        return False
    return True


async def test_nan_values(sim: MicrogridSimulator, client: MicrogridApiClient) -> None:
    sim.inject_fault(BATTERY, Fault.SEND_NAN)
    samples = await first_matching(
        client,
        BATTERY,
        [Metric.BATTERY_SOC_PCT, Metric.DC_POWER],
        lambda s: math.isnan(value(s, Metric.BATTERY_SOC_PCT)),
    )
    assert math.isnan(value(samples, Metric.DC_POWER))


async def test_error_state(sim: MicrogridSimulator, client: MicrogridApiClient) -> None:
    await client.set_component_power_active(ComponentId(BATTERY_INVERTER), 2000.0)
    sim.inject_fault(BATTERY_INVERTER, Fault.ERROR_STATE)
    samples = await first_matching(
        client,
        BATTERY_INVERTER,
        [Metric.AC_POWER_ACTIVE],
        lambda s: ComponentStateCode.ERROR in s.states[0].states,
    )
    assert samples.states[0].errors == {ComponentErrorCode.HARDWARE_INACCESSIBLE}
    await first_matching(
        client,
        BATTERY_INVERTER,
        [Metric.AC_POWER_ACTIVE],
        lambda s: value(s, Metric.AC_POWER_ACTIVE) == 0.0,
    )
    with pytest.raises(OperationPreconditionFailed):
        await client.set_component_power_active(ComponentId(BATTERY_INVERTER), 100.0)


async def test_streams_ending_abruptly_are_retried_by_the_client(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    receiver = client.receive_component_data_samples_stream(
        ComponentId(BATTERY), [Metric.BATTERY_SOC_PCT]
    )
    await receiver.receive()
    assert sim.hub.stream_count == 1
    await sim.end_all_streams()
    await first_matching(client, BATTERY, [Metric.BATTERY_SOC_PCT], lambda s: True)
    # The client's broadcaster reconnected: a new stream replaced the ended one.
    assert sim.hub.stream_count == 1


async def test_restart_on_the_same_port(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    port = sim.port
    receiver = client.receive_component_data_samples_stream(
        ComponentId(BATTERY), [Metric.BATTERY_SOC_PCT]
    )
    await receiver.receive()
    await client.set_component_power_active(
        ComponentId(BATTERY_INVERTER), 1000.0, request_lifetime=timedelta(seconds=900)
    )
    await sim.restart()
    restarted_at = datetime.now(UTC)
    assert sim.port == port
    assert sim.running
    # The model survives the restart, and the client's stream comes back.
    assert held_setpoint(sim, BATTERY_INVERTER) is not None
    async with asyncio.timeout(5):
        samples = await receiver.receive()
        while samples.metric_samples[0].sampled_at <= restarted_at:
            samples = await receiver.receive()
    assert value(samples, Metric.BATTERY_SOC_PCT) > 50.0
    await client.set_component_power_active(ComponentId(BATTERY_INVERTER), 500.0)


async def test_command_line_switches_faults(sim: MicrogridSimulator) -> None:
    reply = await apply_command(sim, "fault 3 reject_set_power|stop_data")
    assert "REJECT_SET_POWER" in reply
    assert sim.faults.of(3) == Fault.REJECT_SET_POWER | Fault.STOP_DATA
    await apply_command(sim, "clear 3 stop_data")
    assert sim.faults.of(3) == Fault.REJECT_SET_POWER
    await apply_command(sim, "clear 3")
    assert sim.faults.of(3) == Fault(0)
    await apply_command(sim, "plug 6")
    assert sim.model.component(6).ev_charger is not None
    assert "unsafe_setpoints=0" in await apply_command(sim, "status")
    assert "unknown command" in await apply_command(sim, "explode")
    with pytest.raises(ValueError, match="unknown fault"):
        await apply_command(sim, "fault 3 melt")


def test_command_line_options() -> None:
    args = build_parser().parse_args(
        [
            "--scenario",
            "depot",
            "--port",
            "0",
            "--speed",
            "10",
            "--fault",
            "11:send_nan",
        ]
    )
    assert (args.scenario, args.port, args.speed, args.fault) == (
        "depot",
        0,
        10.0,
        ["11:send_nan"],
    )
    assert len(scenario_from_arg("generated:50").components) == 50


async def test_infinite_values(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    sim.inject_fault(BATTERY, Fault.SEND_INF)
    samples = await first_matching(
        client,
        BATTERY,
        [Metric.BATTERY_SOC_PCT, Metric.DC_POWER],
        lambda s: math.isinf(value(s, Metric.BATTERY_SOC_PCT)),
    )
    assert value(samples, Metric.BATTERY_SOC_PCT) == math.inf, "signed like 50 %"
    assert math.isinf(value(samples, Metric.DC_POWER))


async def test_refused_bounds(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    bounds = [Bounds(lower=-2000.0, upper=2000.0)]
    sim.inject_fault(BATTERY_INVERTER, Fault.REJECT_BOUNDS)
    with pytest.raises(OperationPreconditionFailed):
        await client.add_component_bounds(
            ComponentId(BATTERY_INVERTER), Metric.AC_POWER_ACTIVE, bounds
        )
    assert sim.model.setpoint_bounds(BATTERY_INVERTER) == PowerBounds(-5000, 5000)
    sim.clear_fault(BATTERY_INVERTER, Fault.REJECT_BOUNDS)
    await client.add_component_bounds(
        ComponentId(BATTERY_INVERTER), Metric.AC_POWER_ACTIVE, bounds
    )
    assert sim.model.setpoint_bounds(BATTERY_INVERTER) == PowerBounds(-2000, 2000)


async def test_rejected_credentials(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    await sim.reject_credentials()
    with pytest.raises(OperationUnauthenticated):
        await client.get_microgrid_info()
    with pytest.raises(OperationUnauthenticated):
        await client.set_component_power_active(ComponentId(BATTERY_INVERTER), 100.0)
    assert held_setpoint(sim, BATTERY_INVERTER) is None
    await sim.reject_credentials(False)
    await client.get_microgrid_info()


async def test_clock_offset_shifts_every_timestamp(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    sim.clock_offset_s = 3600.0
    ahead = await first_matching(
        client,
        BATTERY,
        [Metric.BATTERY_SOC_PCT],
        lambda s: (
            s.metric_samples[0].sampled_at > datetime.now(UTC) + timedelta(0, 3000)
        ),
    )
    assert ahead.metric_samples[0].sampled_at < datetime.now(UTC) + timedelta(0, 3700)
    sim.clock_offset_s = 0.0
    await first_matching(
        client,
        BATTERY,
        [Metric.BATTERY_SOC_PCT],
        lambda s: (
            abs(s.metric_samples[0].sampled_at - datetime.now(UTC))
            < timedelta(seconds=60)
        ),
    )
