"""Reactive power steering: checks before sending, keep-alive, release."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import itertools
import math

from frequenz.client.base.exception import ApiClientError
from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid.metrics import Metric
import grpc
from grpc.aio import AioRpcError, Metadata
import pytest

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.reactive import (
    ReactivePowerSteering,
    ReactiveRefusedError,
)

INVERTER, BATTERY, PV_INVERTER = 3, 4, 5
BOUNDS = PowerBounds(-5000.0, 5000.0)


def grpc_error(code: grpc.StatusCode) -> ApiClientError:
    """The client's error for a call that ended with `code`."""
    return ApiClientError.from_grpc_error(
        server_url="grpc://x",
        operation="SetElectricalComponentPower",
        grpc_error=AioRpcError(code, Metadata(), Metadata(), details="no"),
    )


class FakeSender:
    """Records every reactive setpoint; can fail, hang or shorten lifetimes.

    `errors` and `gates` are keyed by component id or by (component id, var):
    an error is raised instead of answering, a gate is waited for first.
    """

    def __init__(self) -> None:
        self.sent: list[tuple[int, float]] = []
        self.sent_at: list[tuple[int, float, float]] = []
        self.calls: list[tuple[int, float]] = []
        self.errors: dict[int | tuple[int, float], Exception] = {}
        self.gates: dict[int | tuple[int, float], asyncio.Event] = {}
        self.valid_s: float | None = None
        """Answer a `valid_until` this far ahead (`None`: answer none)."""

    async def set_component_power_active(
        self,
        component: ComponentId,
        power: float,
        *,
        request_lifetime: timedelta | None = None,
        validate_arguments: bool = True,
    ) -> datetime | None:
        raise AssertionError("the reactive steering sends no active power")

    async def set_component_power_reactive(
        self,
        component: ComponentId,
        power: float,
        *,
        request_lifetime: timedelta | None = None,
        validate_arguments: bool = True,
    ) -> datetime | None:
        key = (int(component), power)
        self.calls.append(key)
        gate = self.gates.get(key) or self.gates.get(int(component))
        if gate is not None:
            await gate.wait()
        error = self.errors.get(key) or self.errors.get(int(component))
        if error is not None:
            raise error
        self.sent.append(key)
        self.sent_at.append((*key, asyncio.get_running_loop().time()))
        if self.valid_s is None:
            return None
        return datetime.now(UTC) + timedelta(seconds=self.valid_s)

    def last(self, component_id: int) -> float | None:
        """The last setpoint the inverter accepted."""
        sent = [power for cid, power in self.sent if cid == component_id]
        return sent[-1] if sent else None


def _steering(
    sender: FakeSender,
    bounds: PowerBounds | None = BOUNDS,
    lifetime_s: float = 60.0,
    *,
    inverters: frozenset[int] = frozenset({INVERTER}),
    timeout_s: float = 10.0,
) -> ReactivePowerSteering:
    def bounds_of(component_id: int, metric: Metric) -> PowerBounds | None:
        assert metric is Metric.AC_POWER_REACTIVE
        return bounds if component_id in inverters else None

    return ReactivePowerSteering(
        sender,
        lambda: inverters,
        bounds_of,
        lifetime_s=lifetime_s,
        timeout_s=timeout_s,
    )


async def _until(condition: object, timeout_s: float = 2.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.002)


@pytest.mark.parametrize(
    ("component", "power", "reason"),
    [
        (INVERTER, math.nan, "not_finite"),
        (INVERTER, -math.inf, "not_finite"),
        (BATTERY, 10.0, "not_an_inverter"),
        (INVERTER, 5000.5, "out_of_bounds"),
        (INVERTER, -5001.0, "out_of_bounds"),
    ],
)
async def test_bad_setpoints_are_refused_unsent(
    component: int, power: float, reason: str
) -> None:
    sender = FakeSender()
    with pytest.raises(ReactiveRefusedError) as refused:
        await _steering(sender).set(component, power)
    assert refused.value.reason == reason
    assert sender.sent == []


async def test_no_bounds_no_setpoint() -> None:
    sender = FakeSender()
    with pytest.raises(ReactiveRefusedError) as refused:
        await _steering(sender, bounds=None).set(INVERTER, 0.0)
    assert refused.value.reason == "no_bounds"
    assert sender.sent == []


async def test_setpoint_is_kept_alive_until_released() -> None:
    sender = FakeSender()
    steering = _steering(sender, lifetime_s=0.02)
    outcome = await steering.set(INVERTER, 1200.0)
    assert outcome.kept_alive
    assert outcome.bounds == BOUNDS
    await asyncio.sleep(0.08)
    assert sender.sent.count((INVERTER, 1200.0)) >= 3  # first send and re-sends
    released = await steering.set(INVERTER, 0.0)
    assert not released.kept_alive
    sent = len(sender.sent)
    await asyncio.sleep(0.05)
    assert len(sender.sent) == sent  # nothing re-sent after the release
    await steering.stop()


async def test_stop_releases_standing_setpoints() -> None:
    sender = FakeSender()
    steering = _steering(sender)
    await steering.set(INVERTER, -800.0)
    await steering.stop()
    assert sender.sent == [(INVERTER, -800.0), (INVERTER, 0.0)]
    assert steering.setpoints == {}


async def test_keep_alive_follows_the_validity_the_microgrid_answers() -> None:
    """A server that shortens lifetimes: re-sent from its `valid_until`, in time."""
    sender = FakeSender()
    sender.valid_s = 0.04  # asked for 10 s, granted 40 ms
    steering = _steering(sender, lifetime_s=10.0)
    await steering.set(INVERTER, 1200.0)
    await asyncio.sleep(0.3)
    times = [at for _, _, at in sender.sent_at]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(times) >= 5, "re-sent every half lifetime asked, not half granted"
    assert max(gaps) < 0.04, "the setpoint lapsed between two re-sends"
    await steering.stop()


@pytest.mark.parametrize(
    "failure",
    [
        grpc_error(grpc.StatusCode.UNAVAILABLE),
        grpc_error(grpc.StatusCode.FAILED_PRECONDITION),
        grpc_error(grpc.StatusCode.DEADLINE_EXCEEDED),
        ApiClientError(
            server_url="grpc://x", operation="set", description="?", retryable=False
        ),
    ],
)
async def test_setpoint_stands_through_an_outage_and_is_reapplied(
    failure: Exception,
) -> None:
    sender = FakeSender()
    steering = _steering(sender, lifetime_s=0.05)
    await steering.set(INVERTER, 900.0)
    sender.errors[INVERTER] = failure  # the microgrid goes away
    await _until(lambda: sender.calls.count((INVERTER, 900.0)) >= 4)
    assert steering.setpoints == {INVERTER: 900.0}, "stands while it cannot be sent"
    sent = len(sender.sent)
    del sender.errors[INVERTER]  # and comes back
    await _until(lambda: len(sender.sent) > sent)
    assert sender.last(INVERTER) == 900.0
    assert steering.setpoints == {INVERTER: 900.0}
    await steering.stop()


async def test_setpoint_stands_while_its_bounds_are_stale() -> None:
    """Bounds stale in an outage: nothing is sent, and it is re-applied after."""
    sender = FakeSender()
    bounds: list[PowerBounds | None] = [BOUNDS]
    steering = ReactivePowerSteering(
        sender,
        lambda: frozenset({INVERTER}),
        lambda _cid, _metric: bounds[0],
        lifetime_s=0.05,
    )
    await steering.set(INVERTER, 900.0)
    bounds[0] = None
    sent = len(sender.sent)
    await asyncio.sleep(0.1)
    assert len(sender.sent) == sent, "never sent without bounds"
    assert steering.setpoints == {INVERTER: 900.0}
    bounds[0] = BOUNDS
    await _until(lambda: len(sender.sent) > sent)
    assert sender.last(INVERTER) == 900.0
    await steering.stop()


async def test_a_setpoint_the_microgrid_cannot_take_now_stands_and_is_retried() -> None:
    sender = FakeSender()
    steering = _steering(sender, lifetime_s=0.05)
    sender.errors[INVERTER] = grpc_error(grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(ApiClientError):
        await steering.set(INVERTER, 700.0)
    assert steering.setpoints == {INVERTER: 700.0}
    del sender.errors[INVERTER]
    await _until(lambda: sender.last(INVERTER) == 700.0)
    await steering.stop()
    assert sender.last(INVERTER) == 0.0


@pytest.mark.parametrize(
    "refusal",
    [
        grpc_error(grpc.StatusCode.OUT_OF_RANGE),
        grpc_error(grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_refused_resend_drops_the_setpoint(
    refusal: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    sender = FakeSender()
    steering = _steering(sender, lifetime_s=0.02)
    await steering.set(INVERTER, 500.0)
    sender.errors[INVERTER] = refusal
    await _until(lambda: not steering.setpoints)
    assert "Dropping the reactive setpoint of 3" in caplog.text
    calls = len(sender.calls)
    await asyncio.sleep(0.05)
    assert len(sender.calls) == calls, "nothing sent once dropped"
    await steering.stop()


async def test_setpoint_out_of_shrunk_bounds_is_dropped_unsent() -> None:
    sender = FakeSender()
    bounds: list[PowerBounds | None] = [BOUNDS]
    inverters = [frozenset({INVERTER, PV_INVERTER})]
    steering = ReactivePowerSteering(
        sender, lambda: inverters[0], lambda _c, _m: bounds[0], lifetime_s=0.02
    )
    await steering.set(INVERTER, 3000.0)
    await steering.set(PV_INVERTER, 300.0)
    bounds[0] = PowerBounds(-1000.0, 1000.0)  # derated
    inverters[0] = frozenset({INVERTER})  # the PV inverter is not one any more
    await _until(lambda: not steering.setpoints)
    assert sender.sent == [(INVERTER, 3000.0), (PV_INVERTER, 300.0)]
    await steering.stop()


async def test_one_hanging_inverter_holds_up_no_other() -> None:
    sender = FakeSender()
    steering = _steering(
        sender, lifetime_s=0.04, inverters=frozenset({INVERTER, PV_INVERTER})
    )
    await steering.set(INVERTER, 1000.0)
    await steering.set(PV_INVERTER, 800.0)
    sender.gates[INVERTER] = asyncio.Event()  # inverter 3 never answers
    await asyncio.sleep(0.01)
    start = len(sender.sent)
    await asyncio.sleep(0.2)
    pv_sent = [at for cid, _, at in sender.sent_at[start:] if cid == PV_INVERTER]
    assert len(pv_sent) >= 5, "the PV inverter's re-sends waited for inverter 3"
    sender.gates[INVERTER].set()
    await steering.stop()


async def test_a_hanging_resend_times_out_and_is_retried() -> None:
    sender = FakeSender()
    steering = _steering(sender, lifetime_s=0.05, timeout_s=0.02)
    await steering.set(INVERTER, 1000.0)
    sender.gates[INVERTER] = asyncio.Event()
    await _until(lambda: sender.calls.count((INVERTER, 1000.0)) >= 4)
    assert steering.setpoints == {INVERTER: 1000.0}
    del sender.gates[INVERTER]
    sent = len(sender.sent)
    await _until(lambda: len(sender.sent) > sent)
    await steering.stop()


@pytest.mark.parametrize("new_value", [0.0, -400.0])
async def test_a_release_or_new_value_during_a_resend_round_is_kept(
    new_value: float,
) -> None:
    """A re-send round that hangs on one inverter resends no other's old value."""
    sender = FakeSender()
    steering = _steering(
        sender, lifetime_s=0.04, inverters=frozenset({INVERTER, PV_INVERTER})
    )
    await steering.set(INVERTER, 1000.0)
    await steering.set(PV_INVERTER, 800.0)
    gate = sender.gates[INVERTER] = asyncio.Event()
    await _until(lambda: (INVERTER, 1000.0) in sender.calls[2:])  # round hangs
    await steering.set(PV_INVERTER, new_value)
    gate.set()  # the round goes on
    await asyncio.sleep(0.1)
    assert sender.last(PV_INVERTER) == new_value
    since = sender.calls.index((PV_INVERTER, new_value))
    assert (PV_INVERTER, 800.0) not in sender.calls[since:], "the old value again"
    expected = {INVERTER: 1000.0} | ({PV_INVERTER: new_value} if new_value else {})
    assert steering.setpoints == expected
    await steering.stop()


async def test_a_failed_resend_of_an_older_value_never_drops_a_newer_one() -> None:
    sender = FakeSender()
    steering = _steering(sender, lifetime_s=0.04)
    await steering.set(INVERTER, 1000.0)
    gate = sender.gates[(INVERTER, 1000.0)] = asyncio.Event()
    sender.errors[(INVERTER, 1000.0)] = grpc_error(grpc.StatusCode.OUT_OF_RANGE)
    await _until(lambda: sender.calls.count((INVERTER, 1000.0)) > 1)
    newer = asyncio.create_task(steering.set(INVERTER, 1500.0))
    await asyncio.sleep(0.01)
    gate.set()  # the old re-send is refused, then the newer value goes out
    outcome = await newer
    assert outcome.kept_alive
    await asyncio.sleep(0.05)
    assert steering.setpoints == {INVERTER: 1500.0}
    assert sender.last(INVERTER) == 1500.0
    await steering.stop()


async def test_stop_with_a_hanging_inverter_releases_the_others_and_ends() -> None:
    sender = FakeSender()
    steering = _steering(
        sender,
        lifetime_s=0.04,
        inverters=frozenset({INVERTER, PV_INVERTER}),
        timeout_s=0.05,
    )
    await steering.set(INVERTER, 1000.0)
    await steering.set(PV_INVERTER, 800.0)
    sender.gates[INVERTER] = asyncio.Event()
    await _until(lambda: (INVERTER, 1000.0) in sender.calls[2:])
    async with asyncio.timeout(1.0):
        await steering.stop()
    assert sender.last(PV_INVERTER) == 0.0
    assert steering.setpoints == {}
    calls = len(sender.calls)
    with pytest.raises(ApiClientError):
        await steering.set(PV_INVERTER, 100.0)  # after the stop: nothing is sent
    await asyncio.sleep(0.05)
    assert len(sender.calls) == calls


async def test_a_resend_in_flight_never_overtakes_a_newer_value() -> None:
    """Calls to one inverter are serialised: the newer value reaches it last."""
    sender = FakeSender()
    steering = _steering(sender, lifetime_s=0.04)
    await steering.set(INVERTER, 1000.0)
    gate = sender.gates[(INVERTER, 1000.0)] = asyncio.Event()
    await _until(lambda: sender.calls.count((INVERTER, 1000.0)) > 1)
    newer = asyncio.create_task(steering.set(INVERTER, 1500.0))
    await asyncio.sleep(0.01)
    gate.set()  # the old re-send is answered late
    await newer
    await asyncio.sleep(0.01)
    since = sender.sent.index((INVERTER, 1500.0))
    assert (INVERTER, 1000.0) not in sender.sent[since:], "the old value came last"
    await steering.stop()


async def test_a_microgrid_clock_ahead_does_not_let_the_setpoint_lapse() -> None:
    """Its `valid_until` lies beyond the lifetime asked for: capped (review)."""
    sender = FakeSender()
    sender.valid_s = 0.6 + 1.2  # a 0.6 s lifetime, its clock 1.2 s ahead of ours
    steering = _steering(sender, lifetime_s=0.6)
    await steering.set(INVERTER, 1200.0)
    await asyncio.sleep(2.0)
    times = [at for _, _, at in sender.sent_at]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    await steering.stop()
    assert gaps
    assert max(gaps) < 0.6


async def test_a_microgrid_clock_behind_makes_no_busy_loop() -> None:
    """Its `valid_until` is already past on our clock: the lifetime is the guide."""
    sender = FakeSender()
    sender.valid_s = 0.0
    inverters = frozenset(range(100, 300))
    steering = _steering(sender, lifetime_s=60.0, inverters=inverters)
    for inverter in sorted(inverters):
        await steering.set(inverter, 100.0)
    sender.sent.clear()
    await asyncio.sleep(1.0)
    resent = len(sender.sent)
    await steering.stop()
    assert resent == 0
