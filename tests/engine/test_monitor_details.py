"""Detail metrics are streamed only from the components the caller names.

Against the simulator over real gRPC: what the simulator was asked for is what
its telemetry hub recorded from the stream requests.
"""

from __future__ import annotations

import asyncio

from frequenz.client.microgrid import MicrogridApiClient
from frequenz.client.microgrid.component import (
    AcEvCharger,
    BatteryInverter,
    LiIonBattery,
    Meter,
    SolarInverter,
)
from frequenz.client.microgrid.metrics import Metric

from custom_components.frequenz_microgrid.engine.graph import load_topology
from custom_components.frequenz_microgrid.engine.monitor import (
    DETAIL_METRICS,
    MicrogridMonitor,
    metrics_for,
)
from custom_components.frequenz_microgrid.engine.snapshot import MicrogridSnapshot
from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    load_scenario,
)
from tests.engine import topologies

# Ids of the "home" scenario (docs/simulator.md).
GRID_METER = 2
BATTERY_INVERTER = 3
BATTERY = 4
PV_INVERTER = 5
HOUSEHOLD = 8


def _ids(metrics: frozenset[Metric] | set[Metric]) -> set[int]:
    return {metric.value for metric in metrics}


async def test_only_the_named_detail_metrics_are_requested_and_stored() -> None:
    sim = MicrogridSimulator(load_scenario("home"), speed=1.0, sample_period_s=3600)
    await sim.start(host="127.0.0.1", port=0)
    client = MicrogridApiClient(sim.url)
    battery_dc_voltage = asyncio.Event()

    def on_snapshot(snapshot: MicrogridSnapshot) -> None:
        battery = snapshot.component(BATTERY)
        if battery is not None and battery.value(Metric.DC_VOLTAGE) is not None:
            battery_dc_voltage.set()

    try:
        topology = await load_topology(client)
        monitor = MicrogridMonitor(
            client,
            topology,
            tick_s=0.1,
            on_snapshot=on_snapshot,
            detail_metrics={BATTERY: frozenset({Metric.DC_VOLTAGE})},
        )
        await monitor.start()
        try:
            async with asyncio.timeout(5.0):
                await battery_dc_voltage.wait()
            requested = sim.hub.requested_metrics
            assert requested[BATTERY] & _ids(DETAIL_METRICS) == _ids(
                {Metric.DC_VOLTAGE}
            )
            # Reactive power of the inverters validates reactive steering: always.
            for inverter in (BATTERY_INVERTER, PV_INVERTER):
                assert requested[inverter] & _ids(DETAIL_METRICS) == _ids(
                    {Metric.AC_POWER_REACTIVE}
                )
            for meter in (GRID_METER, HOUSEHOLD):
                assert requested[meter]
                assert not requested[meter] & _ids(DETAIL_METRICS)
            assert sim.hub.streamed_metrics(BATTERY) == requested[BATTERY]
            household = monitor.snapshot().component(HOUSEHOLD)
            assert household is not None
            assert household.value(Metric.AC_POWER_ACTIVE) is not None
            assert household.value(Metric.AC_POWER_REACTIVE) is None
        finally:
            await monitor.stop()
    finally:
        await client.disconnect()
        await sim.stop()


def test_metrics_for_adds_the_details_once() -> None:
    """Details on top of a component's own metrics, none twice, no others lost."""
    meter = topologies.component(Meter, 1)
    inverter = topologies.component(BatteryInverter, 2)
    battery = topologies.component(LiIonBattery, 3)
    pv = topologies.component(SolarInverter, 4)
    charger = topologies.component(AcEvCharger, 5)
    for component in (meter, inverter, battery, pv, charger):
        own = metrics_for(component)
        assert not set(own) & DETAIL_METRICS - {Metric.AC_POWER_REACTIVE}
        assert metrics_for(component, ()) == own
        with_details = metrics_for(component, DETAIL_METRICS)
        assert with_details[: len(own)] == own
        assert len(with_details) == len(set(with_details))
        assert set(with_details) == set(own) | DETAIL_METRICS
    assert Metric.AC_POWER_REACTIVE in metrics_for(inverter)
    assert Metric.AC_POWER_REACTIVE not in metrics_for(meter)


def test_each_kind_streams_the_energy_counters_that_are_read() -> None:
    """A counter nothing reads is not streamed.

    Grid meters and battery inverters count both ways; PV only delivers, EV
    chargers only consume (`pools.energy_counters`, the sessions).
    """
    consumed, delivered = (
        Metric.AC_ENERGY_ACTIVE_CONSUMED,
        Metric.AC_ENERGY_ACTIVE_DELIVERED,
    )
    for kind in (Meter, BatteryInverter):
        own = set(metrics_for(topologies.component(kind, 1)))
        assert {consumed, delivered} <= own, kind
    pv = set(metrics_for(topologies.component(SolarInverter, 2)))
    assert delivered in pv
    assert consumed not in pv
    charger = set(metrics_for(topologies.component(AcEvCharger, 3)))
    assert consumed in charger
    assert delivered not in charger
    # What steering reads stays: power and the per-phase currents.
    for metrics in (pv, charger):
        assert {
            Metric.AC_POWER_ACTIVE,
            Metric.AC_CURRENT_PHASE_1,
            Metric.AC_CURRENT_PHASE_2,
            Metric.AC_CURRENT_PHASE_3,
        } <= metrics
