"""The monitor against the simulator over real gRPC (127.0.0.1).

The simulator publishes only when told (`sim.tick()`, plus the current values when
a stream opens), so its physics stand still between ticks and the monitor's values
can be compared with the model exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
import gc

from frequenz.api.microgrid.v1alpha18 import microgrid_pb2
from frequenz.client.microgrid import MicrogridApiClient, OperationUnauthenticated
import grpc
import pytest

from custom_components.frequenz_microgrid.engine.graph import Topology, load_topology
from custom_components.frequenz_microgrid.engine.monitor import (
    MicrogridMonitor,
    streamed_components,
)
from custom_components.frequenz_microgrid.engine.snapshot import MicrogridSnapshot
from custom_components.frequenz_microgrid.engine.telemetry_message import (
    TelemetryMessage,
)
from custom_components.frequenz_microgrid.simulator import (
    Fault,
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

_TelemetryResponse = microgrid_pb2.ReceiveElectricalComponentTelemetryStreamResponse

FRESHNESS_S = 1.5
TICK_S = 0.1


@dataclass
class Observed:
    """What the monitor reported through its callbacks."""

    snapshots: list[MicrogridSnapshot] = field(default_factory=list)
    reachability: list[bool] = field(default_factory=list)
    auth_errors: list[Exception] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def on_snapshot(self, snapshot: MicrogridSnapshot) -> None:
        self.snapshots.append(snapshot)
        self._arrived.set()

    async def next_snapshot(self) -> None:
        self._arrived.clear()
        await self._arrived.wait()

    @property
    def latest(self) -> MicrogridSnapshot:
        return self.snapshots[-1]


@dataclass
class Bench:
    sim: MicrogridSimulator
    client: MicrogridApiClient
    topology: Topology
    monitor: MicrogridMonitor
    observed: Observed


@pytest.fixture
async def bench() -> AsyncIterator[Bench]:
    # A sample period far beyond the test: the physics only move on `sim.tick()`.
    sim = MicrogridSimulator(load_scenario("home"), speed=1.0, sample_period_s=3600)
    await sim.start(host="127.0.0.1", port=0)
    client = MicrogridApiClient(sim.url)
    observed = Observed()
    try:
        topology = await load_topology(client)
        monitor = MicrogridMonitor(
            client,
            topology,
            freshness_s=FRESHNESS_S,
            tick_s=TICK_S,
            on_snapshot=observed.on_snapshot,
            on_reachability=observed.reachability.append,
            on_auth_error=observed.auth_errors.append,
        )
        await monitor.start()
        try:
            yield Bench(sim, client, topology, monitor, observed)
        finally:
            await monitor.stop()
    finally:
        await client.disconnect()
        await sim.stop()


async def wait_for(
    bench: Bench, condition: Callable[[], bool], timeout_s: float, what: str
) -> None:
    """Wait, snapshot by snapshot, until `condition` holds."""
    try:
        async with asyncio.timeout(timeout_s):
            while not condition():
                await bench.observed.next_snapshot()
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


def has_grid_power(observed: Observed) -> bool:
    return bool(observed.snapshots) and observed.latest.grid_power_w is not None


async def test_values_equal_the_simulated_physics(bench: Bench) -> None:
    await wait_for(bench, lambda: has_grid_power(bench.observed), 5.0, "first values")
    await asyncio.sleep(3 * TICK_S)  # every stream has greeted by now
    model = bench.sim.model
    snap = bench.monitor.snapshot()
    assert snap.reachable
    assert snap.grid_power_w == pytest.approx(
        model.component(GRID_METER).active_power_w
    )
    assert snap.pv_power_w == pytest.approx(model.component(PV_INVERTER).active_power_w)
    assert snap.battery.power_w == pytest.approx(
        model.component(BATTERY_INVERTER).active_power_w
    )
    battery = model.component(BATTERY).battery
    assert battery is not None
    # Home battery: 10 kWh, SoC window 10–90 %.
    assert snap.battery.usable_capacity_wh == pytest.approx(10_000 * 0.8)
    assert snap.battery.soc_pct == pytest.approx((battery.soc_pct - 10) / 80 * 100)
    household = snap.component(HOUSEHOLD)
    assert household is not None
    assert household.fresh
    assert snap.consumer_power_w is not None
    assert bench.observed.auth_errors == []


async def test_a_silent_component_goes_stale_without_a_made_up_value(
    bench: Bench,
) -> None:
    await wait_for(
        bench,
        lambda: (
            bench.observed.snapshots != []
            and bench.observed.latest.pv_power_w is not None
        ),
        5.0,
        "a first PV value (it must be known before it can go stale)",
    )
    bench.sim.inject_fault(PV_INVERTER, Fault.STOP_DATA)
    bench.sim.tick()
    await wait_for(
        bench,
        lambda: bench.observed.latest.pv_power_w is None,
        FRESHNESS_S + 2.0,
        "PV power to become unknown",
    )
    snap = bench.observed.latest
    pv = snap.component(PV_INVERTER)
    assert pv is not None
    assert not pv.fresh
    assert snap.grid_power_w is not None  # the others still report
    assert snap.reachable

    bench.sim.clear_fault(PV_INVERTER)
    bench.sim.tick()
    await wait_for(
        bench,
        lambda: bench.observed.latest.pv_power_w is not None,
        3.0,
        "PV to come back",
    )


async def test_nan_data_gives_no_value(bench: Bench) -> None:
    await wait_for(bench, lambda: has_grid_power(bench.observed), 5.0, "first values")
    bench.sim.inject_fault(GRID_METER, Fault.SEND_NAN)
    bench.sim.tick()
    await wait_for(
        bench,
        lambda: bench.observed.latest.grid_power_w is None,
        2.0,
        "NaN to give None",
    )


@pytest.mark.slow
async def test_values_come_back_after_a_simulator_restart(bench: Bench) -> None:
    await wait_for(bench, lambda: has_grid_power(bench.observed), 5.0, "first values")
    await bench.sim.stop()
    await wait_for(
        bench,
        lambda: bench.observed.reachability[-1:] == [False],
        FRESHNESS_S + 2.0,
        "the microgrid to look unreachable",
    )
    assert bench.observed.latest.grid_power_w is None
    await bench.sim.start(host="127.0.0.1", port=bench.sim.port)
    # The client's stream retry waits 3 s (+ up to 1 s jitter) between attempts.
    await wait_for(
        bench,
        lambda: (
            bench.observed.reachability[-1:] == [True]
            and has_grid_power(bench.observed)
        ),
        10.0,
        "values after the restart",
    )
    assert bench.observed.reachability == [False, True]
    assert bench.observed.auth_errors == []


async def fresh_grid_data_after(bench: Bench, timeout_s: float) -> None:
    """Tick the simulator until a grid meter sample reaches the store."""
    store = bench.monitor.store
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                bench.sim.tick()
                await bench.observed.next_snapshot()
                age = store.age_s(GRID_METER)
                if age is not None and age < TICK_S:
                    return
    except TimeoutError:
        pytest.fail("no fresh grid meter data")


async def test_streams_failed_by_the_server_come_back(bench: Bench) -> None:
    await wait_for(bench, lambda: has_grid_power(bench.observed), 5.0, "first values")
    await bench.sim.end_all_streams()  # the client sees UNAVAILABLE
    await asyncio.sleep(3 * TICK_S)
    age = bench.monitor.store.age_s(GRID_METER)
    assert age is not None
    assert age >= 2 * TICK_S
    # The client's stream retry waits 3 s (+ up to 1 s jitter).
    await fresh_grid_data_after(bench, 8.0)


async def test_a_stream_that_finished_is_subscribed_again(bench: Bench) -> None:
    await wait_for(bench, lambda: has_grid_power(bench.observed), 5.0, "first values")
    # A stream the server ends normally finishes its broadcaster for good (its
    # receiver ends, it never retries): make the grid meter's so.
    finished = bench.monitor._streams[GRID_METER]
    await finished.stop()
    await asyncio.sleep(3 * TICK_S)
    age = bench.monitor.store.age_s(GRID_METER)
    assert age is not None
    assert age >= 2 * TICK_S
    await fresh_grid_data_after(bench, 5.0)
    resubscribed = bench.monitor._streams[GRID_METER]
    assert resubscribed is not finished
    assert resubscribed.is_running


async def test_a_waiting_stream_holds_nothing_of_the_last_message(bench: Bench) -> None:
    """Between messages a stream keeps neither the response nor what it decoded.

    Thousands of streams wait at once on a large site; whatever each holds
    outlives the young garbage collections, which then traverse all of it (at
    5,000 components that made them take up to 100 ms each).
    """
    await fresh_grid_data_after(bench, 5.0)
    bench.sim.tick()
    await bench.observed.next_snapshot()  # every stream has delivered and waits
    gc.collect()
    held = [
        type(obj).__name__
        for obj in gc.get_objects()
        if isinstance(obj, (TelemetryMessage, _TelemetryResponse))
    ]
    assert held == []


async def test_stop_leaves_no_task_behind(bench: Bench) -> None:
    await wait_for(bench, lambda: has_grid_power(bench.observed), 5.0, "first values")
    streams = list(bench.monitor._streams.values())
    assert {int(c.id) for c in streamed_components(bench.topology)} == set(
        bench.monitor._streams
    )
    # The monitor streams through its own broadcasters, not the client's cached
    # ones: `client.disconnect()` would not stop them, `monitor.stop()` must.
    assert bench.client._component_data_broadcasters == {}
    await bench.monitor.stop()
    assert not any(stream.is_running for stream in streams)
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert not any(name.startswith("frequenz-microgrid") for name in names)
    count = len(bench.observed.snapshots)
    await asyncio.sleep(3 * TICK_S)
    assert len(bench.observed.snapshots) == count  # no more ticks


class _DenyEverything(grpc.GenericRpcHandler):
    """A Microgrid API endpoint that rejects every call as unauthenticated."""

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[bytes, bytes]:
        async def deny_unary(
            _request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
        ) -> bytes:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid API key")

        async def deny_stream(
            _request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
        ) -> AsyncIterator[bytes]:
            nothing: tuple[bytes, ...] = ()
            for message in nothing:  # an async generator that yields nothing
                yield message
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid API key")

        method = str(getattr(handler_call_details, "method", ""))
        if "Stream" in method:
            return grpc.unary_stream_rpc_method_handler(deny_stream)
        return grpc.unary_unary_rpc_method_handler(deny_unary)


async def test_an_auth_failure_is_reported_once() -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_DenyEverything(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    client = MicrogridApiClient(f"grpc://127.0.0.1:{port}")
    observed = Observed()
    monitor = MicrogridMonitor(
        client,
        topologies.home_topology(),
        freshness_s=0.3,
        tick_s=TICK_S,
        on_snapshot=observed.on_snapshot,
        on_reachability=observed.reachability.append,
        on_auth_error=observed.auth_errors.append,
    )
    try:
        await monitor.start()
        async with asyncio.timeout(5.0):
            while not observed.auth_errors:
                await observed.next_snapshot()
        await asyncio.sleep(1.0)  # more probes happen, still one report
        assert len(observed.auth_errors) == 1
        assert isinstance(observed.auth_errors[0], OperationUnauthenticated)
        assert observed.reachability == [False]
        assert not monitor.reachable
        assert observed.latest.grid_power_w is None
    finally:
        await monitor.stop()
        await client.disconnect()
        await server.stop(None)
