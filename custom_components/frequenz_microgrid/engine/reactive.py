"""Reactive power of inverters: validated setpoints, kept alive until released.

Reactive power is steered per inverter, outside the active-power pools: nothing
arbitrates it (one setpoint per inverter, the latest wins) and nothing distributes
it. A setpoint is checked against the bounds the inverter reports with its
`AC_POWER_REACTIVE` metric before anything is sent, and re-sent before its request
lifetime lapses, as the active power's keep-alive does, until it is released —
released by a setpoint of 0 var (unity power factor: what the inverter does on
its own once a setpoint lapses) or by `stop`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
import logging
import math

from frequenz.client.base.exception import ApiClientError
from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid.metrics import Metric

from .bounds import PowerBounds
from .set_power import SetPowerClient

_LOGGER = logging.getLogger(__name__)


class ReactiveRefusedError(ValueError):
    """A reactive setpoint that must not be sent; `reason` names why."""

    def __init__(self, reason: str, bounds: PowerBounds | None = None) -> None:
        """Refuse for `reason`, with the bounds checked against (if any).

        Reasons: `not_finite`, `not_an_inverter`, `no_bounds`, `out_of_bounds`.
        """
        super().__init__(reason)
        self.reason = reason
        self.bounds = bounds


@dataclass(frozen=True, slots=True)
class ReactiveOutcome:
    """What was sent, against which bounds, and until when it holds."""

    component_id: int
    power_var: float
    bounds: PowerBounds
    valid_until: datetime | None
    kept_alive: bool


class ReactivePowerSteering:
    """Sends and keeps alive the reactive setpoints of a microgrid's inverters."""

    def __init__(
        self,
        sender: SetPowerClient,
        inverter_ids: Callable[[], frozenset[int]],
        bounds: Callable[[int, Metric], PowerBounds | None],
        *,
        lifetime_s: float = 60.0,
    ) -> None:
        """Send through `sender`, to `inverter_ids()`, within `bounds(id, metric)`.

        Setpoints are re-sent every half `lifetime_s`, so one lost re-send
        does not let a setpoint lapse.
        """
        self._sender = sender
        self._inverter_ids = inverter_ids
        self._bounds = bounds
        self._lifetime = timedelta(seconds=lifetime_s)
        self._setpoints: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def setpoints(self) -> dict[int, float]:
        """The standing (kept-alive) setpoints, var per inverter."""
        return dict(self._setpoints)

    def check(self, component_id: int, power_var: float) -> PowerBounds:
        """Return the bounds `power_var` is within; raise `ReactiveRefusedError`."""
        if not math.isfinite(power_var):
            raise ReactiveRefusedError("not_finite")
        if component_id not in self._inverter_ids():
            raise ReactiveRefusedError("not_an_inverter")
        bounds = self._bounds(component_id, Metric.AC_POWER_REACTIVE)
        if bounds is None:
            raise ReactiveRefusedError("no_bounds")
        if not bounds.allows(power_var):
            raise ReactiveRefusedError("out_of_bounds", bounds)
        return bounds

    async def set(self, component_id: int, power_var: float) -> ReactiveOutcome:
        """Check and send a setpoint; keep it alive unless it is 0 var.

        Raises:
            ReactiveRefusedError: Bad input; nothing was sent.
            ApiClientError: The microgrid refused it or is unreachable (a setpoint
                kept alive before is dropped: it is not in force any more).
        """
        bounds = self.check(component_id, power_var)
        try:
            valid_until = await self._sender.set_component_power_reactive(
                ComponentId(component_id), power_var, request_lifetime=self._lifetime
            )
        except ApiClientError:
            self._setpoints.pop(component_id, None)
            raise
        if power_var == 0.0:
            self._setpoints.pop(component_id, None)
        else:
            self._setpoints[component_id] = power_var
        self._ensure_keep_alive()
        return ReactiveOutcome(
            component_id,
            power_var,
            bounds,
            valid_until,
            component_id in self._setpoints,
        )

    def forget(self, component_ids: frozenset[int]) -> None:
        """Stop keeping the setpoints of components that left the microgrid."""
        for component_id in component_ids:
            self._setpoints.pop(component_id, None)

    async def stop(self) -> None:
        """Stop the keep-alive and release every standing setpoint (0 var)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        standing, self._setpoints = self._setpoints, {}
        for component_id in standing:
            with contextlib.suppress(ApiClientError, ValueError):
                await self._sender.set_component_power_reactive(
                    ComponentId(component_id), 0.0, request_lifetime=self._lifetime
                )

    def _ensure_keep_alive(self) -> None:
        if self._setpoints and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(
                self._keep_alive(), name="frequenz-reactive-keep-alive"
            )

    async def _keep_alive(self) -> None:
        """Re-send the standing setpoints, each within bounds, until none is left."""
        while self._setpoints:
            await asyncio.sleep(self._lifetime.total_seconds() / 2)
            for component_id, power_var in list(self._setpoints.items()):
                try:
                    self.check(component_id, power_var)
                    await self._sender.set_component_power_reactive(
                        ComponentId(component_id),
                        power_var,
                        request_lifetime=self._lifetime,
                    )
                except (ReactiveRefusedError, ApiClientError, ValueError) as err:
                    # Out of bounds now, gone, or refused: let it lapse.
                    _LOGGER.warning(
                        "Dropping the reactive setpoint of %s (%s var): %s",
                        component_id,
                        power_var,
                        err,
                    )
                    self._setpoints.pop(component_id, None)
