"""Reactive power of inverters: validated setpoints, kept alive until released.

Reactive power is steered per inverter, outside the active-power pools: nothing
arbitrates it (one setpoint per inverter, the latest wins) and nothing distributes
it. A setpoint is checked against the bounds the inverter reports with its
`AC_POWER_REACTIVE` metric before anything is sent, and re-sent before its request
lifetime lapses, as the active power's keep-alive does, until it is released —
released by a setpoint of 0 var (unity power factor: what the inverter does on
its own once a setpoint lapses) or by `stop`.

Each inverter has a keep-alive of its own, so one that hangs or fails holds up no
other. A re-send is due once half of the validity the microgrid answered has
passed (a server that shortens lifetimes is followed). A setpoint stands until it
is released or definitively refused: out of the inverter's bounds, not an
inverter (any more), or refused by the microgrid as invalid or out of range.
Anything else — the microgrid unreachable, a call that hangs, bounds gone stale
during an outage — is retried with back-off (nothing is sent while the bounds are
not known), so the setpoint is in force again once the inverter recovers. Calls to
one inverter are serialised: a re-send never overtakes, undoes or drops a newer
setpoint or a release.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import logging
import math
import time

from frequenz.client.base.exception import (
    ApiClientError,
    ClientNotConnected,
    OperationNotImplemented,
    OperationOutOfRange,
)
from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid.metrics import Metric

from .bounds import PowerBounds
from .set_power import SetpointRefusedError, SetPowerClient

_LOGGER = logging.getLogger(__name__)

REFRESH_FRACTION = 0.5
"""Re-send once this share of the answered validity has passed: one lost or late
re-send (retried with back-off) still comes before the setpoint lapses."""
_DEFINITIVE_REFUSALS = (
    SetpointRefusedError,  # answered REJECTED (invalid parameters) or FAILED
    OperationOutOfRange,
    OperationNotImplemented,
    ValueError,  # the client's argument validation, gRPC INVALID_ARGUMENT
)
"""Errors of a send after which the same setpoint would be refused again."""
_REFUSED_FOR_GOOD = frozenset({"not_finite", "not_an_inverter", "out_of_bounds"})
"""Reasons of `ReactiveRefusedError` that retrying cannot change (`no_bounds` can)."""


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


@dataclass(slots=True, eq=False)
class _Standing:
    """A setpoint kept alive (one object per `set`: identity tells them apart)."""

    power: float
    due: float
    """Monotonic time of the next send: the re-send, or the retry after a failure."""
    failures: int = 0
    """Failed sends in a row (the back-off grows with them)."""


class ReactivePowerSteering:
    """Sends and keeps alive the reactive setpoints of a microgrid's inverters."""

    def __init__(
        self,
        sender: SetPowerClient,
        inverter_ids: Callable[[], frozenset[int]],
        bounds: Callable[[int, Metric], PowerBounds | None],
        *,
        lifetime_s: float = 60.0,
        timeout_s: float = 10.0,
        retry_s: tuple[float, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Send through `sender`, to `inverter_ids()`, within `bounds(id, metric)`.

        Setpoints are requested for `lifetime_s` and re-sent once half of the
        validity the microgrid answered has passed, so one lost re-send does not
        let a setpoint lapse. A re-send (or the release at `stop`) that takes
        longer than `timeout_s` counts as failed. A failed send is retried after
        `retry_s` (first, longest: doubling in between); by default 1/60 and
        1/4 of `lifetime_s` (1 s and 15 s for 60 s).
        """
        self._sender = sender
        self._inverter_ids = inverter_ids
        self._bounds = bounds
        self._lifetime = timedelta(seconds=lifetime_s)
        self._timeout_s = timeout_s
        self._retry_s = retry_s or (lifetime_s / 60, lifetime_s / 4)
        self._clock = clock
        self._standing: dict[int, _Standing] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._wakes: dict[int, asyncio.Event] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._stopped = False

    @property
    def setpoints(self) -> dict[int, float]:
        """The standing (kept-alive) setpoints, var per inverter."""
        return {cid: standing.power for cid, standing in self._standing.items()}

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

        Waits for a send to the same inverter in flight (a re-send), never for
        another inverter's.

        Raises:
            ReactiveRefusedError: Bad input; nothing was sent and the setpoint
                standing before (if any) still stands.
            ApiClientError: The microgrid refused it or is unreachable. A
                definitive refusal (invalid, out of range) drops the inverter's
                setpoint; otherwise the new setpoint stands and is sent again
                with back-off until it is accepted, released or refused.
        """
        self.check(component_id, power_var)  # bad input fails at once
        async with self._lock(component_id):
            if self._stopped:
                raise ClientNotConnected(
                    server_url="microgrid", operation="set_component_power_reactive"
                )
            bounds = self.check(component_id, power_var)  # bounds may have moved
            if power_var == 0.0:  # a release: nothing is kept alive, whatever follows
                self._stand(component_id, None)
            try:
                valid_until = await self._send(component_id, power_var, bounded=False)
            except _DEFINITIVE_REFUSALS as err:
                self._stand(component_id, None)
                _LOGGER.warning(
                    "The microgrid refused the reactive setpoint of %s (%s var), "
                    "it is not kept alive: %s",
                    component_id,
                    power_var,
                    err,
                )
                raise
            except ApiClientError as err:
                if power_var != 0.0:
                    standing = _Standing(power_var, 0.0, failures=1)
                    standing.due = self._clock() + self._backoff(standing)
                    self._stand(component_id, standing)
                    _LOGGER.warning(
                        "The reactive setpoint of %s (%s var) was not sent, it is "
                        "retried: %s",
                        component_id,
                        power_var,
                        err,
                    )
                raise
            if power_var != 0.0:
                self._stand(
                    component_id,
                    _Standing(power_var, self._clock() + self._validity(valid_until)),
                )
        return ReactiveOutcome(
            component_id,
            power_var,
            bounds,
            valid_until,
            component_id in self._standing,
        )

    def forget(self, component_ids: frozenset[int]) -> None:
        """Stop keeping the setpoints of components that left the microgrid."""
        for component_id in component_ids:
            self._stand(component_id, None)

    async def stop(self) -> None:
        """Stop the keep-alive and release every standing setpoint (0 var).

        The releases go out concurrently, each after a send in flight to its
        inverter (a `set` racing the stop is released too); a `set` after the
        stop sends nothing.
        """
        self._stopped = True
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(self._release(cid) for cid in list(self._locks)))
        self._wakes.clear()

    async def _release(self, component_id: int) -> None:
        """Send 0 var to an inverter whose setpoint stands (at `stop`)."""
        async with self._lock(component_id):
            if self._standing.pop(component_id, None) is None:
                return
            with contextlib.suppress(ApiClientError, ValueError, TimeoutError):
                await self._send(component_id, 0.0, bounded=True)

    def _lock(self, component_id: int) -> asyncio.Lock:
        return self._locks.setdefault(component_id, asyncio.Lock())

    def _stand(self, component_id: int, standing: _Standing | None) -> None:
        """Make `standing` the inverter's setpoint (`None`: none), wake its task."""
        if standing is None:
            self._standing.pop(component_id, None)
        else:
            self._standing[component_id] = standing
            task = self._tasks.get(component_id)
            if not self._stopped and (task is None or task.done()):
                self._tasks[component_id] = asyncio.create_task(
                    self._keep_alive(component_id),
                    name=f"frequenz-microgrid-reactive-keep-alive-{component_id}",
                )
        wake = self._wakes.get(component_id)
        if wake is not None:
            wake.set()

    def _validity(self, valid_until: datetime | None) -> float:
        """Seconds until the next re-send of a setpoint valid until `valid_until`."""
        lifetime_s = self._lifetime.total_seconds()
        valid_s = lifetime_s
        if valid_until is not None:
            answered_s = (valid_until - datetime.now(UTC)).total_seconds()
            # The microgrid's clock is not ours: an answer beyond the lifetime
            # asked for (its clock ahead) is capped, one already past (its
            # clock behind) is no guide (the lifetime is).
            if answered_s > 0.0:
                valid_s = min(answered_s, lifetime_s)
        # a floor, so that a validity about to end does not make a busy loop
        return max(valid_s * REFRESH_FRACTION, lifetime_s / 600)

    def _backoff(self, standing: _Standing) -> float:
        first, longest = self._retry_s
        doublings = min(max(0, standing.failures - 1), 30)
        return min(longest, first * (1 << doublings))

    async def _send(
        self, component_id: int, power_var: float, *, bounded: bool
    ) -> datetime | None:
        """Send one setpoint; `bounded`: within `timeout_s` (else the call's own)."""
        async with asyncio.timeout(self._timeout_s if bounded else None):
            return await self._sender.set_component_power_reactive(
                ComponentId(component_id), power_var, request_lifetime=self._lifetime
            )

    async def _keep_alive(self, component_id: int) -> None:
        """Re-send one inverter's setpoint when due, until none stands."""
        wake = self._wakes.setdefault(component_id, asyncio.Event())
        while (standing := self._standing.get(component_id)) is not None:
            delay = standing.due - self._clock()
            if delay > 0:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await wake.wait()
                continue
            async with self._lock(component_id):
                if self._standing.get(component_id) is not standing:
                    continue  # replaced or released meanwhile
                try:
                    await self._refresh(component_id, standing)
                except Exception:  # a bug here must not end the keep-alive
                    _LOGGER.exception("Keep-alive of reactive power failed")
                    standing.failures += 1
                    standing.due = self._clock() + self._backoff(standing)

    async def _refresh(self, component_id: int, standing: _Standing) -> None:
        """Re-send `standing` (under the inverter's lock); reschedule or drop it."""
        power_var = standing.power
        try:
            self.check(component_id, power_var)
            valid_until = await self._send(component_id, power_var, bounded=True)
        except ReactiveRefusedError as err:
            if err.reason in _REFUSED_FOR_GOOD:
                self._drop(component_id, standing, err)
            else:
                self._retry(component_id, standing, "its reactive bounds are unknown")
        except _DEFINITIVE_REFUSALS as err:
            self._drop(component_id, standing, err)
        except (ApiClientError, TimeoutError) as err:
            self._retry(component_id, standing, str(err) or "no answer in time")
        else:
            if standing.failures:
                _LOGGER.info(
                    "The reactive setpoint of %s (%s var) is in force again",
                    component_id,
                    power_var,
                )
            standing.failures = 0
            standing.due = self._clock() + self._validity(valid_until)

    def _drop(self, component_id: int, standing: _Standing, err: Exception) -> None:
        """Stop keeping a setpoint that is refused for good; it lapses."""
        _LOGGER.warning(
            "Dropping the reactive setpoint of %s (%s var), it lapses: %s",
            component_id,
            standing.power,
            err,
        )
        if self._standing.get(component_id) is standing:  # never a newer one
            self._stand(component_id, None)

    def _retry(self, component_id: int, standing: _Standing, why: str) -> None:
        """Keep a setpoint whose re-send failed; send it again after a back-off."""
        standing.failures += 1
        log = _LOGGER.warning if standing.failures == 1 else _LOGGER.debug
        log(
            "The reactive setpoint of %s (%s var) was not re-sent (%s); it stands "
            "and is retried",
            component_id,
            standing.power,
            why,
        )
        standing.due = self._clock() + self._backoff(standing)
