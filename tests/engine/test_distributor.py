"""The distributor against the simulator over real gRPC: dispatch, keep-alive."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
import itertools

from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid import MicrogridApiClient
from frequenz.client.microgrid.metrics import Metric
import pytest

from custom_components.frequenz_microgrid.engine import (
    distributor as distributor_module,
)
from custom_components.frequenz_microgrid.engine.distributor import (
    REFRESH_SPREAD,
    Distributor,
)
from custom_components.frequenz_microgrid.engine.health import (
    ComponentHealth,
    HealthTracker,
)
from custom_components.frequenz_microgrid.simulator import (
    Fault,
    MicrogridSimulator,
    load_scenario,
    running_simulator,
)
from tests.observations import held_setpoint, setpoints_to

BATTERY_INVERTER = 3
BATTERY = 4
PV_INVERTER = 5
SPEED = 10.0
"""Simulated seconds per real second: a 10 s request lifetime lapses in 1 s."""


@dataclass
class Bench:
    sim: MicrogridSimulator
    client: MicrogridApiClient


@pytest.fixture
async def bench() -> AsyncIterator[Bench]:
    async with running_simulator(load_scenario("home"), speed=SPEED) as sim:
        client = MicrogridApiClient(sim.url)
        try:
            yield Bench(sim, client)
        finally:
            await client.disconnect()


@asynccontextmanager
async def keeping_alive(distributor: Distributor) -> AsyncIterator[None]:
    """Run the distributor's keep-alive loop for the duration of a `with` block."""
    distributor.start()
    try:
        yield
    finally:
        await distributor.stop()


async def observe_once(
    client: MicrogridApiClient, health: HealthTracker, component_id: int, now: float
) -> None:
    """Feed the tracker one real telemetry message of the component."""
    receiver = client.receive_component_data_samples_stream(
        ComponentId(component_id), [Metric.BATTERY_CAPACITY, Metric.AC_POWER_ACTIVE]
    )
    async with asyncio.timeout(5):
        samples = await receiver.receive()
    health.observe_data(samples, at=now)


async def test_setpoints_go_out_concurrently_and_report_success(bench: Bench) -> None:
    distributor = Distributor(bench.client, lifetime_s=10.0)
    report = await distributor.apply({BATTERY_INVERTER: 2000.0, PV_INVERTER: -3000.0})

    assert report.succeeded == {BATTERY_INVERTER: 2000.0, PV_INVERTER: -3000.0}
    assert report.failed == {}
    assert report.succeeded_power == -1000.0
    assert setpoints_to(bench.sim, BATTERY_INVERTER) == [2000.0]
    assert held_setpoint(bench.sim, BATTERY_INVERTER) == 2000.0
    assert [s.lifetime_s for s in bench.sim.setpoints] == [10.0, 10.0]


async def test_a_setpoint_holds_for_three_lifetimes_while_kept_alive(
    bench: Bench,
) -> None:
    distributor = Distributor(bench.client, lifetime_s=10.0)
    async with keeping_alive(distributor):
        await distributor.apply({BATTERY_INVERTER: 1500.0})
        # Three lifetimes of simulated time (3 × 10 s at speed 10 = 3 real seconds).
        for _ in range(7):
            await asyncio.sleep(0.5)
            assert held_setpoint(bench.sim, BATTERY_INVERTER) == 1500.0
        assert len(setpoints_to(bench.sim, BATTERY_INVERTER)) >= 4


async def test_a_released_setpoint_lapses_and_the_component_falls_back(
    bench: Bench,
) -> None:
    distributor = Distributor(bench.client, lifetime_s=10.0)
    async with keeping_alive(distributor):
        await distributor.apply({BATTERY_INVERTER: 1500.0})
        await distributor.release()
        assert distributor.standing_setpoints == {}
        await asyncio.sleep(1.5)  # more than one lifetime in simulated time
        bench.sim.tick()
        assert held_setpoint(bench.sim, BATTERY_INVERTER) is None
        assert bench.sim.model.component(BATTERY_INVERTER).active_power_w == 0.0
        assert setpoints_to(bench.sim, BATTERY_INVERTER) == [1500.0]


async def test_repeated_zero_is_not_sent_again_where_zero_is_the_default(
    bench: Bench,
) -> None:
    distributor = Distributor(
        bench.client, lifetime_s=10.0, falls_back_to_zero=frozenset({BATTERY_INVERTER})
    )
    await distributor.apply({BATTERY_INVERTER: 0.0})
    report = await distributor.apply({BATTERY_INVERTER: 0.0})
    assert report.succeeded == {BATTERY_INVERTER: 0.0}
    assert setpoints_to(bench.sim, BATTERY_INVERTER) == [0.0]
    assert distributor.standing_setpoints == {}


async def test_a_zero_limit_is_kept_alive_where_zero_is_not_the_default(
    bench: Bench,
) -> None:
    """PV falls back to full production: its 0 W (no production) must hold."""
    distributor = Distributor(
        bench.client, lifetime_s=10.0, falls_back_to_zero=frozenset({BATTERY_INVERTER})
    )
    async with keeping_alive(distributor):
        await distributor.apply({PV_INVERTER: 0.0})
        assert distributor.standing_setpoints == {PV_INVERTER: 0.0}
        # Three lifetimes of simulated time (3 × 10 s at speed 10 = 3 real seconds).
        for _ in range(7):
            await asyncio.sleep(0.5)
            assert held_setpoint(bench.sim, PV_INVERTER) == 0.0
        assert setpoints_to(bench.sim, PV_INVERTER)[:4] == [0.0] * 4


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault.REJECT_SET_POWER, "OperationPreconditionFailed"),
        (Fault.FAIL_SET_POWER, "ServiceUnavailable"),
        (Fault.TIMEOUT_SET_POWER, "timeout"),
        (Fault.ERROR_STATE, "OperationPreconditionFailed"),
    ],
)
async def test_a_failing_component_is_reported_and_blocked(
    bench: Bench, fault: Fault, reason: str
) -> None:
    now = 1000.0
    health = HealthTracker()
    health.add_battery(BATTERY, BATTERY_INVERTER)
    for component_id in (BATTERY, BATTERY_INVERTER):
        await observe_once(bench.client, health, component_id, now)
    assert health.health(BATTERY, now) is ComponentHealth.WORKING
    bench.sim.inject_fault(BATTERY_INVERTER, fault)
    distributor = Distributor(
        bench.client, observer=health, timeout_s=0.5, clock=lambda: now
    )

    report = await distributor.apply({BATTERY_INVERTER: 1000.0, PV_INVERTER: -500.0})

    assert report.failed == {BATTERY_INVERTER: 1000.0}
    assert report.errors[BATTERY_INVERTER].startswith(reason)
    assert report.succeeded == {PV_INVERTER: -500.0}
    assert report.failed_power == 1000.0
    assert distributor.standing_setpoints == {PV_INVERTER: -500.0}
    status = health.status(BATTERY, now)
    assert status.blocked_until == pytest.approx(now + 1.0)
    assert health.health(BATTERY, now) is not ComponentHealth.WORKING

    bench.sim.clear_fault(BATTERY_INVERTER)
    later = await distributor.apply({BATTERY_INVERTER: 1000.0})
    assert later.succeeded == {BATTERY_INVERTER: 1000.0}
    assert health.status(BATTERY, now).blocked_until is None


async def test_an_out_of_range_refusal_is_named(bench: Bench) -> None:
    distributor = Distributor(bench.client)
    report = await distributor.apply({BATTERY_INVERTER: 50_000.0})
    assert report.errors == {BATTERY_INVERTER: "out_of_range"}
    assert held_setpoint(bench.sim, BATTERY_INVERTER) is None


async def test_a_failed_refresh_is_reported_to_the_owner(bench: Bench) -> None:
    lost: list[frozenset[int]] = []
    reported = asyncio.Event()

    def on_failure(ids: frozenset[int]) -> None:
        lost.append(ids)
        reported.set()

    distributor = Distributor(
        bench.client, lifetime_s=10.0, on_setpoints_lost=on_failure
    )
    async with keeping_alive(distributor):
        await distributor.apply({BATTERY_INVERTER: 800.0})
        bench.sim.inject_fault(BATTERY_INVERTER, Fault.REJECT_SET_POWER)
        async with asyncio.timeout(3):
            await reported.wait()
        assert lost == [frozenset({BATTERY_INVERTER})]
        assert distributor.standing_setpoints == {}


async def test_a_refresh_the_latest_bounds_exclude_is_withheld_and_reported(
    bench: Bench,
) -> None:
    allowed = {BATTERY_INVERTER: True, PV_INVERTER: True}
    lost: list[frozenset[int]] = []
    reported = asyncio.Event()

    def on_lost(ids: frozenset[int]) -> None:
        lost.append(ids)
        reported.set()

    distributor = Distributor(
        bench.client,
        lifetime_s=10.0,
        on_setpoints_lost=on_lost,
        still_allowed=lambda cid, _power: allowed[cid],
    )
    async with keeping_alive(distributor):
        await distributor.apply({BATTERY_INVERTER: 800.0, PV_INVERTER: -500.0})
        allowed[BATTERY_INVERTER] = False  # e.g. the battery's bound shrank
        async with asyncio.timeout(3):
            await reported.wait()
        assert lost == [frozenset({BATTERY_INVERTER})]
        assert distributor.standing_setpoints == {PV_INVERTER: -500.0}
        # The PV limit is still refreshed; the battery's 800 W never again.
        pv_before = len(setpoints_to(bench.sim, PV_INVERTER))
        await asyncio.sleep(1.0)
        assert len(setpoints_to(bench.sim, PV_INVERTER)) > pv_before
    assert setpoints_to(bench.sim, BATTERY_INVERTER) == [800.0]


def test_lifetime_must_be_within_the_api_range() -> None:
    class NoClient(FakeSetPowerClient):
        async def handle(self, component_id: int, power: float) -> None:
            raise AssertionError("not called")

    with pytest.raises(ValueError, match="lifetime_s"):
        Distributor(NoClient(), lifetime_s=5.0)


class FakeSetPowerClient:
    """The distributor's client, answering through `handle` (no `valid_until`)."""

    async def set_component_power_active(
        self,
        component: ComponentId,
        power: float,
        *,
        request_lifetime: timedelta | None = None,
        validate_arguments: bool = True,
    ) -> datetime | None:
        await self.handle(int(component), power)
        return None

    async def set_component_power_reactive(
        self,
        component: ComponentId,
        power: float,
        *,
        request_lifetime: timedelta | None = None,
        validate_arguments: bool = True,
    ) -> datetime | None:
        raise AssertionError("the distributor sends no reactive power")

    async def handle(self, component_id: int, power: float) -> None:
        """Take one call (subclasses decide how)."""
        raise NotImplementedError


class GatedClient(FakeSetPowerClient):
    """Records the order of set-power calls; holds each call until released.

    Only the ordering between a keep-alive refresh and a newer setpoint is under
    test here, which a real server cannot make deterministic.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[int, float]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def handle(self, component_id: int, power: float) -> None:
        self.entered.set()
        await self.gate.wait()
        self.calls.append((component_id, power))


class CountingClient(FakeSetPowerClient):
    """Records every set-power call, answering at once."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float]] = []

    async def handle(self, component_id: int, power: float) -> None:
        self.calls.append((component_id, power))


async def test_setpoints_sent_together_are_refreshed_one_by_one_in_time() -> None:
    now = 0.0
    client = CountingClient()
    distributor = Distributor(client, lifetime_s=60.0, clock=lambda: now)
    ids = range(100, 200)  # a pool's chargers, all sent at start-up
    await distributor.apply(dict.fromkeys(ids, 0.0))
    client.calls.clear()

    refreshed_at: dict[int, float] = {}
    while now < 40.0:  # ⅔ of the lifetime: every refresh is due by then
        now += 0.1
        await distributor.refresh_due()
        for component_id, _ in client.calls:
            refreshed_at.setdefault(component_id, now)
        client.calls.clear()

    assert set(refreshed_at) == set(ids), "each one refreshed before it lapses"
    times = sorted(refreshed_at.values())
    assert times[0] >= 60.0 * (2 / 3) * (1 - REFRESH_SPREAD)
    assert max(Counter(times).values()) <= 5, "spread out, not one burst of 100"
    assert times[-1] - times[0] >= 3.0


async def test_a_refresh_never_lands_after_a_newer_setpoint() -> None:
    now = 0.0
    client = GatedClient()
    distributor = Distributor(client, lifetime_s=10.0, clock=lambda: now)
    await distributor.apply({BATTERY_INVERTER: 1000.0})

    now = 100.0  # the refresh is due
    client.gate.clear()
    client.entered.clear()
    refresh = asyncio.create_task(distributor.refresh_due())
    await client.entered.wait()  # the old value is on the wire
    newer = asyncio.create_task(distributor.apply({BATTERY_INVERTER: 2000.0}))
    await asyncio.sleep(0)
    client.gate.set()
    await asyncio.gather(refresh, newer)

    assert client.calls == [
        (BATTERY_INVERTER, 1000.0),
        (BATTERY_INVERTER, 1000.0),
        (BATTERY_INVERTER, 2000.0),
    ]
    assert distributor.standing_setpoints == {BATTERY_INVERTER: 2000.0}


async def test_a_setpoint_released_during_its_refresh_stays_released() -> None:
    now = 0.0
    client = GatedClient()
    distributor = Distributor(client, lifetime_s=10.0, clock=lambda: now)
    await distributor.apply({BATTERY_INVERTER: 1000.0})

    now = 100.0
    client.gate.clear()
    client.entered.clear()
    refresh = asyncio.create_task(distributor.refresh_due())
    await client.entered.wait()
    await distributor.release()
    client.gate.set()
    report = await refresh

    assert distributor.standing_setpoints == {}
    assert report.succeeded == {}


class RecordingObserver:
    """The distributor's observer, noting every outcome."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def record_success(self, component_ids: Iterable[int]) -> None:
        self.events += [("success", cid) for cid in component_ids]

    def record_failure(self, component_ids: Iterable[int], now: float) -> None:
        self.events += [("failure", cid) for cid in component_ids]


async def test_a_failed_setpoint_counts_only_while_it_is_the_standing_one() -> None:
    observer = RecordingObserver()
    lost: list[frozenset[int]] = []
    distributor = Distributor(
        GatedClient(), observer=observer, lifetime_s=10.0, on_setpoints_lost=lost.append
    )
    await distributor.apply({7: 100.0})
    await distributor.apply({7: 200.0})

    distributor.setpoint_failed(7, 100.0)  # the older one: replaced already
    assert distributor.standing_setpoints == {7: 200.0}
    assert lost == []

    distributor.setpoint_failed(7, 200.0)
    assert distributor.standing_setpoints == {}
    assert lost == [frozenset({7})]
    assert observer.events == [("success", 7), ("success", 7), ("failure", 7)]


class DeferredWriteClient(FakeSetPowerClient):
    """Writes each request one event-loop turn after the call, as gRPC does.

    `grpc.aio` builds the request when the call is made but writes it from a
    task of its own; `log` shows both, in order, so the test can see whether a
    request left before the next calls were built. Calls are answered only when
    `answer` is set.
    """

    def __init__(self) -> None:
        self.log: list[tuple[str, int]] = []
        self.cancelled: list[int] = []
        self.answer = asyncio.Event()
        self.two_built = asyncio.Event()

    async def handle(self, component_id: int, power: float) -> None:
        self.log.append(("built", component_id))
        if sum(kind == "built" for kind, _ in self.log) == 2:
            self.two_built.set()
        asyncio.get_running_loop().call_soon(self.log.append, ("written", component_id))
        try:
            await self.answer.wait()
        except asyncio.CancelledError:
            self.cancelled.append(component_id)
            raise


async def test_the_first_setpoints_leave_before_the_rest_are_built() -> None:
    """100 setpoints: the first request is written right after it is built.

    Started all together, the first request would wait until all 100 calls were
    built (≈3 ms on a real client), which is what an automation waits for.
    """
    client = DeferredWriteClient()
    client.answer.set()
    distributor = Distributor(client, lifetime_s=10.0)
    setpoints = {100 + index: 1000.0 for index in range(100)}

    report = await distributor.apply(setpoints)

    assert report.succeeded == setpoints
    built = [cid for kind, cid in client.log if kind == "built"]
    assert built == list(setpoints)  # every call, in order
    first_written = client.log.index(("written", 100))
    assert first_written < client.log.index(("built", 101))
    assert client.log.index(("written", 101)) < client.log.index(("built", 103))
    yields = sum(
        1
        for before, after in itertools.pairwise(client.log)
        if before[0] == "written" and after[0] == "built"
    )
    assert yields <= 8  # a logarithmic number of extra event-loop turns


async def test_grpc_threads_get_the_cpu_once_the_first_requests_are_handed_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After each batch of requests is handed over, the loop offers its CPU.

    gRPC's own threads send the requests; woken on the event loop's CPU, they
    would otherwise wait until the loop has built the remaining calls.
    """
    client = DeferredWriteClient()
    client.answer.set()
    monkeypatch.setattr(
        distributor_module, "_SCHED_YIELD", lambda: client.log.append(("yield", 0))
    )
    distributor = Distributor(client, lifetime_s=10.0)

    await distributor.apply({100 + index: 1000.0 for index in range(100)})

    first_yield = client.log.index(("yield", 0))
    assert client.log.index(("written", 100)) < first_yield
    assert first_yield < client.log.index(("built", 101))
    yields = client.log.count(("yield", 0))
    assert 1 < yields <= 8  # once per batch handed over, not once per call


async def test_a_thousand_setpoints_are_built_a_bounded_batch_per_loop_turn() -> None:
    """A large site's keep-alive or first EV setpoints: the loop is never held long.

    Building a call takes ~50–100 µs; doubling batches alone would build 512
    calls in one turn of the event loop.
    """
    client = DeferredWriteClient()
    client.answer.set()
    distributor = Distributor(client, lifetime_s=10.0)
    setpoints = {100 + index: 1000.0 for index in range(1000)}

    report = await distributor.apply(setpoints)

    assert report.succeeded == setpoints
    batches = [
        len(list(run))
        for built, run in itertools.groupby(client.log, key=lambda e: e[0] == "built")
        if built
    ]
    assert sum(batches) == 1000
    assert max(batches) <= distributor_module.MAX_CALLS_PER_TURN


async def test_cancelling_a_dispatch_while_it_starts_cancels_every_call() -> None:
    client = DeferredWriteClient()  # never answers
    distributor = Distributor(client, lifetime_s=10.0)
    setpoints = {100 + index: 1000.0 for index in range(20)}

    dispatch = asyncio.create_task(distributor.apply(setpoints))
    await client.two_built.wait()  # cancelled midway through starting the calls
    dispatch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dispatch

    started = [cid for kind, cid in client.log if kind == "built"]
    assert 2 <= len(started) < len(setpoints)
    assert sorted(client.cancelled) == sorted(started)
    assert distributor.standing_setpoints == {}
