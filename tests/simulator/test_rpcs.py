"""Every RPC through real gRPC on loopback and the real frequenz-client-microgrid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from frequenz.client.base.exception import (
    EntityNotFound,
    InvalidArgument,
    OperationOutOfRange,
    OperationPreconditionFailed,
)
from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid import MicrogridApiClient
from frequenz.client.microgrid.component import (
    AcEvCharger,
    BatteryInverter,
    ComponentCategory,
    ComponentStateCode,
    GridConnectionPoint,
    LiIonBattery,
    Meter,
    SolarInverter,
)
from frequenz.client.microgrid.metrics import Bounds, Metric
import pytest

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.control import SETPOINT_HISTORY

from .conftest import (
    BATTERY,
    BATTERY_INVERTER,
    EV_CHARGER_1,
    FAST,
    GRID,
    GRID_METER,
    PV_INVERTER,
    first_matching,
    value,
)

AC_METRICS = [
    Metric.AC_POWER_ACTIVE,
    Metric.AC_POWER_ACTIVE_PHASE_1,
    Metric.AC_POWER_ACTIVE_PHASE_2,
    Metric.AC_POWER_ACTIVE_PHASE_3,
    Metric.AC_CURRENT_PHASE_1,
    Metric.AC_CURRENT_PHASE_2,
    Metric.AC_CURRENT_PHASE_3,
    Metric.AC_VOLTAGE_PHASE_1_N,
    Metric.AC_VOLTAGE_PHASE_2_N,
    Metric.AC_VOLTAGE_PHASE_3_N,
    Metric.AC_ENERGY_ACTIVE_CONSUMED,
    Metric.AC_ENERGY_ACTIVE_DELIVERED,
]
"""Per-phase AC metrics a meter must send (a superset of what the integration reads)."""


async def test_microgrid_info(client: MicrogridApiClient) -> None:
    info = await client.get_microgrid_info()
    assert info.name == "Simulated home"
    assert info.location is not None
    assert info.delivery_area is not None


async def test_components_are_complete_client_objects(
    client: MicrogridApiClient,
) -> None:
    components = {int(c.id): c for c in await client.list_components()}
    grid = components[GRID]
    assert isinstance(grid, GridConnectionPoint)
    assert grid.rated_fuse_current == 40
    assert isinstance(components[GRID_METER], Meter)
    assert isinstance(components[BATTERY_INVERTER], BatteryInverter)
    assert isinstance(components[BATTERY], LiIonBattery)
    assert isinstance(components[PV_INVERTER], SolarInverter)
    assert isinstance(components[EV_CHARGER_1], AcEvCharger)
    inverter = components[BATTERY_INVERTER]
    assert inverter.manufacturer == "SMA"
    assert inverter.rated_bounds[Metric.AC_POWER_ACTIVE] == Bounds(
        lower=-5000.0, upper=5000.0
    )


async def test_component_and_connection_filters(client: MicrogridApiClient) -> None:
    only = await client.list_components(
        components=[ComponentId(BATTERY)], categories=[ComponentCategory.BATTERY]
    )
    assert [int(c.id) for c in only] == [BATTERY]
    chargers = await client.list_components(categories=[ComponentCategory.EV_CHARGER])
    assert sorted(int(c.id) for c in chargers) == [6, 7]
    everything = list(await client.list_connections())
    assert {(int(c.source), int(c.destination)) for c in everything} >= {
        (GRID, GRID_METER),
        (BATTERY_INVERTER, BATTERY),
    }
    behind_meter = list(
        await client.list_connections(sources=[ComponentId(GRID_METER)])
    )
    assert sorted(int(c.destination) for c in behind_meter) == [3, 5, 6, 7, 8]
    into_battery = list(
        await client.list_connections(destinations=[ComponentId(BATTERY)])
    )
    assert [int(c.source) for c in into_battery] == [BATTERY_INVERTER]
    assert list(await client.list_sensors()) == []


async def test_telemetry_honours_the_metric_filter(client: MicrogridApiClient) -> None:
    receiver = client.receive_component_data_samples_stream(
        ComponentId(BATTERY_INVERTER), [Metric.AC_POWER_ACTIVE, Metric.BATTERY_SOC_PCT]
    )
    samples = await receiver.receive()
    # An inverter has no SoC: the metric is left out, not sent empty.
    assert [s.metric for s in samples.metric_samples] == [Metric.AC_POWER_ACTIVE]
    assert samples.states[0].states == {ComponentStateCode.READY}
    assert datetime.now(UTC) - samples.metric_samples[0].sampled_at < timedelta(
        seconds=2
    )


async def test_meter_telemetry_is_consistent_per_phase(
    client: MicrogridApiClient,
) -> None:
    samples = await first_matching(
        client,
        GRID_METER,
        AC_METRICS,
        lambda s: len(s.metric_samples) == len(AC_METRICS),
    )
    phases = [
        value(samples, m)
        for m in (
            Metric.AC_POWER_ACTIVE_PHASE_1,
            Metric.AC_POWER_ACTIVE_PHASE_2,
            Metric.AC_POWER_ACTIVE_PHASE_3,
        )
    ]
    assert sum(phases) == pytest.approx(
        value(samples, Metric.AC_POWER_ACTIVE), rel=1e-5
    )
    assert value(samples, Metric.AC_CURRENT_PHASE_2) == pytest.approx(
        phases[1] / value(samples, Metric.AC_VOLTAGE_PHASE_2_N), rel=1e-5
    )


async def test_charging_battery_shows_power_and_rising_soc(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    valid_until = await client.set_component_power_active(
        ComponentId(BATTERY_INVERTER), 4000.0, request_lifetime=timedelta(seconds=60)
    )
    assert valid_until is not None
    expected = datetime.now(UTC) + timedelta(seconds=60 / FAST)
    assert abs((valid_until - expected).total_seconds()) < 0.5
    first = await first_matching(
        client,
        BATTERY,
        [Metric.DC_POWER, Metric.BATTERY_SOC_PCT],
        lambda s: value(s, Metric.DC_POWER) == pytest.approx(4000.0),
    )
    later = await first_matching(
        client,
        BATTERY,
        [Metric.DC_POWER, Metric.BATTERY_SOC_PCT],
        lambda s: (
            value(s, Metric.BATTERY_SOC_PCT)
            > value(first, Metric.BATTERY_SOC_PCT) + 0.1
        ),
    )
    assert value(later, Metric.DC_POWER) == pytest.approx(4000.0)
    assert ComponentStateCode.CHARGING in later.states[0].states
    assert ComponentStateCode.RELAY_CLOSED in later.states[0].states
    assert sim.setpoints[-1][1:] == (BATTERY_INVERTER, 4000.0, 60.0)
    assert sim.unsafe_setpoint_count == 0


async def test_setpoint_lapses_after_its_lifetime(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    await client.set_component_power_active(
        ComponentId(BATTERY_INVERTER), -3000.0, request_lifetime=timedelta(seconds=10)
    )
    metrics = [Metric.AC_POWER_ACTIVE]
    await first_matching(
        client, BATTERY_INVERTER, metrics, lambda s: value(s, metrics[0]) == -3000.0
    )
    # 10 simulated seconds are 0.2 s of real time at 50×.
    await first_matching(
        client, BATTERY_INVERTER, metrics, lambda s: value(s, metrics[0]) == 0.0
    )
    runtime = sim.model.component(BATTERY_INVERTER)
    assert runtime.active_setpoint is None


async def test_bounds_encode_inclusion_and_exclusion(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    sim.plug_ev(EV_CHARGER_1)
    samples = await first_matching(
        client,
        EV_CHARGER_1,
        [Metric.AC_POWER_ACTIVE],
        lambda s: bool(s.metric_samples[0].bounds),
    )
    bounds = samples.metric_samples[0].bounds
    assert bounds == [
        Bounds(lower=0.0, upper=0.0),
        Bounds(lower=6 * 230 * 3, upper=32 * 230 * 3),
    ]
    ranges = [(b.lower, b.upper) for b in bounds]
    assert PowerBounds.from_ranges(ranges) == PowerBounds(0.0, 22_080.0, 0.0, 4_140.0)


async def test_plugged_ev_shows_cable_states(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    metrics = [Metric.AC_POWER_ACTIVE]
    unplugged = ComponentStateCode.EV_CHARGING_CABLE_UNPLUGGED
    await first_matching(
        client, EV_CHARGER_1, metrics, lambda s: unplugged in s.states[0].states
    )
    sim.plug_ev(EV_CHARGER_1)
    plugged = {
        ComponentStateCode.EV_CHARGING_CABLE_PLUGGED_AT_STATION,
        ComponentStateCode.EV_CHARGING_CABLE_PLUGGED_AT_EV,
    }
    locked = {
        ComponentStateCode.EV_CHARGING_CABLE_LOCKED_AT_STATION,
        ComponentStateCode.EV_CHARGING_CABLE_LOCKED_AT_EV,
    }
    seen = await first_matching(
        client,
        EV_CHARGER_1,
        metrics,
        lambda s: bool(s.states[0].states & (plugged | locked)),
    )
    assert not seen.states[0].states & {unplugged}
    await first_matching(
        client, EV_CHARGER_1, metrics, lambda s: locked <= s.states[0].states
    )
    await client.set_component_power_active(ComponentId(EV_CHARGER_1), 11_040.0)
    charging = await first_matching(
        client, EV_CHARGER_1, metrics, lambda s: value(s, metrics[0]) > 0
    )
    assert value(charging, metrics[0]) == pytest.approx(11_040.0)
    assert ComponentStateCode.CHARGING in charging.states[0].states
    sim.unplug_ev(EV_CHARGER_1)
    await first_matching(
        client, EV_CHARGER_1, metrics, lambda s: unplugged in s.states[0].states
    )


async def test_refusals_are_grpc_errors(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    with pytest.raises(OperationOutOfRange):
        await client.set_component_power_active(ComponentId(BATTERY_INVERTER), 6000.0)
    with pytest.raises(OperationOutOfRange):
        await client.set_component_power_active(ComponentId(PV_INVERTER), 1000.0)
    with pytest.raises(InvalidArgument):
        await client.set_component_power_active(ComponentId(GRID_METER), 1000.0)
    with pytest.raises(InvalidArgument):
        await client.set_component_power_active(ComponentId(BATTERY), 1000.0)
    with pytest.raises(InvalidArgument):
        await client.set_component_power_active(
            ComponentId(BATTERY_INVERTER),
            1000.0,
            request_lifetime=timedelta(seconds=5),
            validate_arguments=False,
        )
    with pytest.raises(EntityNotFound):
        await client.set_component_power_active(ComponentId(99), 1000.0)
    # Received setpoints are recorded; the two out of bounds are counted unsafe.
    assert [s.power_w for s in sim.setpoints] == [6000.0, 1000.0]
    assert sim.unsafe_setpoint_count == 2


async def test_exclusion_zone_setpoint_is_refused_and_counted() -> None:
    from custom_components.frequenz_microgrid.simulator import (
        load_scenario,
        running_simulator,
    )

    async with running_simulator(load_scenario("depot"), sample_period_s=0.05) as sim:
        client = MicrogridApiClient(sim.url)
        try:
            with pytest.raises(OperationOutOfRange):
                await client.set_component_power_active(ComponentId(13), 500.0)
            await client.set_component_power_active(ComponentId(13), 0.0)
            await client.set_component_power_active(ComponentId(13), 1000.0)
        finally:
            await client.disconnect()
        assert sim.unsafe_setpoint_count == 1


async def test_reactive_power(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    await client.set_component_power_reactive(ComponentId(BATTERY_INVERTER), 1200.0)
    samples = await first_matching(
        client,
        BATTERY_INVERTER,
        [Metric.AC_POWER_REACTIVE],
        lambda s: value(s, Metric.AC_POWER_REACTIVE) == 1200.0,
    )
    assert samples.metric_samples[0].bounds == [Bounds(lower=-5000.0, upper=5000.0)]
    with pytest.raises(InvalidArgument):
        await client.set_component_power_reactive(ComponentId(EV_CHARGER_1), 100.0)


async def test_augmented_bounds_narrow_for_their_lifetime(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    valid_until = await client.add_component_bounds(
        ComponentId(BATTERY_INVERTER),
        Metric.AC_POWER_ACTIVE,
        [Bounds(lower=-2000.0, upper=2000.0)],
        validity=None,
    )
    assert valid_until is not None
    with pytest.raises(OperationOutOfRange):
        await client.set_component_power_active(ComponentId(BATTERY_INVERTER), 3000.0)
    metrics = [Metric.AC_POWER_ACTIVE]
    narrowed = await first_matching(
        client,
        BATTERY_INVERTER,
        metrics,
        lambda s: s.metric_samples[0].bounds == [Bounds(lower=-2000.0, upper=2000.0)],
    )
    assert narrowed is not None
    # The default lifetime is 5 simulated seconds (0.1 s here).
    await first_matching(
        client,
        BATTERY_INVERTER,
        metrics,
        lambda s: s.metric_samples[0].bounds == [Bounds(lower=-5000.0, upper=5000.0)],
    )
    await client.set_component_power_active(ComponentId(BATTERY_INVERTER), 3000.0)
    with pytest.raises(InvalidArgument):
        await client.add_component_bounds(
            ComponentId(GRID_METER),
            Metric.AC_POWER_ACTIVE,
            [Bounds(lower=-1.0, upper=1.0)],
        )


async def test_a_batterys_new_bounds_hold_for_its_inverter_at_once(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    """No leniency for the inverter's older, wider bounds once its battery's narrow.

    The leniency for the bounds of the last advance is kept per inverter; bounds
    set on the battery dropped it under the battery's id, so a setpoint far
    outside them passed uncounted for the rest of the tick (oracle probe).
    """
    sim.tick()  # an advance: its inverter's bounds are remembered
    await client.add_component_bounds(
        ComponentId(BATTERY),
        Metric.DC_POWER,
        [Bounds(lower=-2000.0, upper=2000.0)],
        validity=None,
    )
    before = sim.unsafe_setpoint_count
    with pytest.raises(OperationOutOfRange):
        await client.set_component_power_active(ComponentId(BATTERY_INVERTER), 4000.0)
    assert sim.unsafe_setpoint_count == before + 1


async def test_start_standby_stop(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    stub = client.stub
    from frequenz.api.microgrid.v1alpha18 import microgrid_pb2 as pb

    component = BATTERY_INVERTER
    metrics = [Metric.AC_POWER_ACTIVE]

    async def reported(state: ComponentStateCode) -> None:
        await first_matching(
            client, component, metrics, lambda s: state in s.states[0].states
        )

    await stub.StopElectricalComponent(
        pb.StopElectricalComponentRequest(electrical_component_id=component)
    )
    await reported(ComponentStateCode.OFF)
    with pytest.raises(OperationPreconditionFailed):
        await client.set_component_power_active(ComponentId(component), 1000.0)
    await stub.PutElectricalComponentInStandby(
        pb.PutElectricalComponentInStandbyRequest(electrical_component_id=component)
    )
    await reported(ComponentStateCode.STANDBY)
    await stub.StartElectricalComponent(
        pb.StartElectricalComponentRequest(electrical_component_id=component)
    )
    await client.set_component_power_active(ComponentId(component), 1000.0)
    await first_matching(
        client, component, metrics, lambda s: value(s, metrics[0]) == 1000.0
    )


def test_the_setpoint_history_keeps_the_newest_and_stays_bounded(
    sim: MicrogridSimulator,
) -> None:
    # A simulator runs for days: every setpoint kept would grow without end.
    for i in range(SETPOINT_HISTORY + 5):
        sim.control.set_active_power(BATTERY_INVERTER, float(i % 3000), 60.0, 0.0)
    assert len(sim.setpoints) == SETPOINT_HISTORY
    assert sim.control.setpoints_received == SETPOINT_HISTORY + 5  # all counted
    assert sim.setpoints[0].power_w == 5.0  # the five oldest are gone
    assert sim.setpoints[-1].power_w == float((SETPOINT_HISTORY + 4) % 3000)


async def test_a_setpoint_on_an_advertised_edge_is_safe(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    """Bounds and setpoints travel as 32-bit floats: the edge a client sees is safe.

    An SoC-derived bound like −1131.99508… W is advertised as −1131.9951171875 W,
    a little beyond it; a client clamping to it sends exactly that. One float32
    step further is beyond what was advertised, and unsafe.
    """
    exact = -1131.9950816697285
    # Inside the model, as the SoC would make it (a client's request is float32).
    sim.control.augment_bounds(
        BATTERY_INVERTER, False, [(exact, 5000.0)], 60.0, sim.clock.now()
    )
    samples = await first_matching(
        client,
        BATTERY_INVERTER,
        [Metric.AC_POWER_ACTIVE],
        lambda s: s.metric_samples[0].bounds[0].lower != -5000.0,
    )
    advertised = samples.metric_samples[0].bounds[0].lower
    assert advertised is not None
    assert advertised == -1131.9951171875 < exact
    await client.set_component_power_active(ComponentId(BATTERY_INVERTER), advertised)
    assert sim.unsafe_setpoint_count == 0
    beyond = -1131.9952392578125  # the next float32 below the advertised edge
    with pytest.raises(OperationOutOfRange):
        await client.set_component_power_active(ComponentId(BATTERY_INVERTER), beyond)
    assert sim.unsafe_setpoint_count == 1
