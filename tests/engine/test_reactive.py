"""Reactive power steering: checks before sending, keep-alive, release."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
import math

from frequenz.client.base.exception import ApiClientError
from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid.metrics import Metric
import pytest

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.reactive import (
    ReactivePowerSteering,
    ReactiveRefusedError,
)

INVERTER, BATTERY = 3, 4
BOUNDS = PowerBounds(-5000.0, 5000.0)


class FakeSender:
    """Records every reactive setpoint; refuses them all when `refuse` is set."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, float]] = []
        self.refuse = False

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
        if self.refuse:
            raise ApiClientError(
                server_url="grpc://x",
                operation="set",
                description="no",
                retryable=False,
            )
        self.sent.append((int(component), power))
        return None


def _steering(
    sender: FakeSender, bounds: PowerBounds | None = BOUNDS, lifetime_s: float = 60.0
) -> ReactivePowerSteering:
    def bounds_of(component_id: int, metric: Metric) -> PowerBounds | None:
        assert metric is Metric.AC_POWER_REACTIVE
        return bounds if component_id == INVERTER else None

    return ReactivePowerSteering(
        sender, lambda: frozenset({INVERTER}), bounds_of, lifetime_s=lifetime_s
    )


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


async def test_refused_resend_drops_the_setpoint() -> None:
    sender = FakeSender()
    steering = _steering(sender, lifetime_s=0.02)
    await steering.set(INVERTER, 500.0)
    sender.refuse = True
    await asyncio.sleep(0.05)
    assert steering.setpoints == {}
    await steering.stop()
