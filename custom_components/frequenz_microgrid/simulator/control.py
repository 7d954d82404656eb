"""Power control requests: validation, the unsafe-setpoint count, and faults.

Independent of gRPC transport details except for the status codes a refusal
carries: the client ignores the status field of the streamed set-power reply, so
every refusal must surface as a gRPC error.
"""

from __future__ import annotations

from collections import Counter, deque
import logging
import math
from typing import NamedTuple

import grpc

from ..engine.bounds import PowerBounds
from .faults import Fault, FaultBook
from .physics.model import (
    CONTROLLABLE_KINDS,
    ComponentRuntime,
    MicrogridModel,
    Operation,
)
from .safety import as_advertised, setpoint_allowed
from .scenario import Kind

_LOGGER = logging.getLogger(__name__)

SET_POWER_LIFETIME_S = (10.0, 900.0)
"""Allowed `request_lifetime` of a set-power request (seconds, inclusive)."""
DEFAULT_SET_POWER_LIFETIME_S = 60.0
"""Lifetime of a setpoint whose request gives none (the API's default)."""
BOUNDS_LIFETIME_S = (5.0, 900.0)
"""Allowed `request_lifetime` of an augment-bounds request (seconds, inclusive)."""
DEFAULT_BOUNDS_LIFETIME_S = 5.0
"""Lifetime of augmented bounds whose request gives none (the API's default)."""
SETPOINT_HISTORY = 10_000
"""Setpoints kept for inspection (the newest): a simulator runs for days."""


class ReceivedSetpoint(NamedTuple):
    """An active-power setpoint as it arrived, accepted or not."""

    sim_time: float
    component_id: int
    power_w: float
    lifetime_s: float


class RequestRefusedError(Exception):
    """A request the simulated microgrid refuses, with the gRPC status to send."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        """Refuse with status `code` and a human-readable `message`."""
        super().__init__(message)
        self.code = code
        self.message = message


class SetpointTimeoutError(Exception):
    """The component is faulted to never answer this set-power request."""


class SetpointNotAppliedError(Exception):
    """The request is answered with status replies, but nothing is applied."""

    def __init__(self, lifetime_s: float, *, accepted_first: bool) -> None:
        """REJECTED at once, or (`accepted_first`) ACCEPTED and then FAILED."""
        super().__init__("setpoint not applied (injected fault)")
        self.lifetime_s = lifetime_s
        self.accepted_first = accepted_first


class PowerControl:
    """Applies set-power and augment-bounds requests to the model, or refuses them."""

    def __init__(self, model: MicrogridModel, faults: FaultBook) -> None:
        """Control `model`, honouring the faults in `faults`."""
        self._model = model
        self._faults = faults
        self.setpoints: deque[ReceivedSetpoint] = deque(maxlen=SETPOINT_HISTORY)
        self.reactive_setpoints: deque[ReceivedSetpoint] = deque(
            maxlen=SETPOINT_HISTORY
        )
        self.setpoints_received = 0
        """Every active-power setpoint received (the history keeps the newest)."""
        self.reactive_setpoints_received = 0
        """Every reactive-power setpoint received (the history keeps the newest)."""
        self.requests_received = 0
        """Every set-power and augment-bounds request, refused ones included."""
        self.requests_by_component: Counter[int] = Counter()
        """Active-power setpoints received per component id, refused ones included
        (a component removed live must get none afterwards)."""
        self.unsafe_setpoint_count = 0
        self._previous_bounds: dict[int, PowerBounds] = {}

    def remember_bounds(self) -> None:
        """Keep the bounds clients can see, once the model has moved on.

        A client acts on the last telemetry it received; a setpoint that was safe
        under the bounds of the previous tick is not counted as unsafe just because
        the SoC moved a little since. Those are the bounds each battery inverter's
        last advance started from (the only bounds that move with time; others
        change only by a client's augmentation, or widen when one lapses).
        """
        self._previous_bounds = dict(self._model.bounds_at_last_advance)

    def set_active_power(
        self, component_id: int, power_w: float, lifetime_s: float | None, now_s: float
    ) -> float:
        """Apply an active-power setpoint; return the lifetime it holds for.

        Raises:
            RequestRefusedError: the request is refused, with the gRPC status.
            SetpointTimeoutError: the component is faulted to never answer.
            SetpointNotAppliedError: the component is faulted to answer with a
                REJECTED or FAILED status reply.
        """
        self.requests_received += 1
        self.requests_by_component[component_id] += 1
        lifetime = self._check_request(component_id, power_w, lifetime_s)
        self.setpoints.append(ReceivedSetpoint(now_s, component_id, power_w, lifetime))
        self.setpoints_received += 1
        bounds = self._model.setpoint_bounds(component_id)
        assert bounds is not None
        previous = self._previous_bounds.get(component_id, bounds)
        allowed = any(
            setpoint_allowed(power_w, ranges)
            for known in (bounds, previous)
            for ranges in (known.to_ranges(), as_advertised(known.to_ranges()))
        )
        if not allowed:
            self.unsafe_setpoint_count += 1
            _LOGGER.warning(
                "Unsafe setpoint at t=%.1f s: component %s, %.1f W; bounds now %s, "
                "at the last advance %s",
                now_s,
                component_id,
                power_w,
                bounds.to_ranges(),
                previous.to_ranges(),
            )
        self._check_faults(component_id, lifetime)
        if not allowed:
            raise RequestRefusedError(
                grpc.StatusCode.OUT_OF_RANGE,
                f"{power_w} W is outside the bounds of component {component_id}: "
                f"{bounds.to_ranges()}",
            )
        self._model.set_active_power(component_id, power_w, lifetime, now_s)
        return lifetime

    def set_reactive_power(
        self,
        component_id: int,
        power_var: float,
        lifetime_s: float | None,
        now_s: float,
    ) -> float:
        """Apply a reactive-power setpoint (inverters only); return its lifetime."""
        self.requests_received += 1
        lifetime = self._check_request(component_id, power_var, lifetime_s)
        spec = self._model.component(component_id).spec
        if spec.inverter is None:
            raise RequestRefusedError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"component {component_id} cannot take reactive power",
            )
        self.reactive_setpoints.append(
            ReceivedSetpoint(now_s, component_id, power_var, lifetime)
        )
        self.reactive_setpoints_received += 1
        rated = spec.inverter.rated_power_w
        allowed = abs(power_var) <= rated
        if not allowed:  # outside the reactive bounds its telemetry reports
            self.unsafe_setpoint_count += 1
            _LOGGER.warning(
                "Unsafe reactive setpoint at t=%.1f s: component %s, %.1f var; "
                "bounds ±%.1f var",
                now_s,
                component_id,
                power_var,
                rated,
            )
        self._check_faults(component_id, lifetime)
        if not allowed:
            raise RequestRefusedError(
                grpc.StatusCode.OUT_OF_RANGE,
                f"{power_var} var is outside ±{rated} var of component {component_id}",
            )
        self._model.set_reactive_power(component_id, power_var, lifetime, now_s)
        return lifetime

    def augment_bounds(
        self,
        component_id: int,
        target_is_dc_power: bool,
        ranges: list[tuple[float | None, float | None]],
        lifetime_s: float | None,
        now_s: float,
    ) -> float:
        """Narrow a component's power bounds for a while; return the lifetime.

        Inverters and EV chargers take AC active-power bounds, batteries DC-power
        bounds.
        """
        self.requests_received += 1
        runtime = self._require_component(component_id)
        kind = runtime.spec.kind
        if kind not in CONTROLLABLE_KINDS and kind is not Kind.BATTERY:
            raise RequestRefusedError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"component {component_id} ({kind}) has no power bounds",
            )
        if target_is_dc_power != (kind is Kind.BATTERY):
            raise RequestRefusedError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "bounds target AC_POWER_ACTIVE for inverters and EV chargers, "
                "DC_POWER for batteries",
            )
        if not ranges:
            raise RequestRefusedError(
                grpc.StatusCode.INVALID_ARGUMENT, "no bounds given"
            )
        lifetime = _lifetime(lifetime_s, DEFAULT_BOUNDS_LIFETIME_S, BOUNDS_LIFETIME_S)
        if self._faults.has(component_id, Fault.REJECT_BOUNDS):
            raise RequestRefusedError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"component {component_id} refused the bounds (injected fault)",
            )
        self._model.augment_bounds(
            component_id, PowerBounds.from_ranges(ranges), lifetime, now_s
        )
        # The client asked for narrower bounds: no leniency for older, wider ones
        # (kept per inverter: a battery's bounds narrow its inverter's setpoints).
        for inverter_id in list(self._previous_bounds):
            if inverter_id == component_id or component_id in self._model.children(
                inverter_id
            ):
                del self._previous_bounds[inverter_id]
        return lifetime

    def set_operation(self, component_id: int, operation: Operation) -> None:
        """Start, put in standby or stop a controllable component (or a battery)."""
        runtime = self._require_component(component_id)
        kind = runtime.spec.kind
        if kind not in CONTROLLABLE_KINDS and kind is not Kind.BATTERY:
            raise RequestRefusedError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"component {component_id} ({kind}) cannot be started or stopped",
            )
        self._model.set_operation(component_id, operation)

    def _check_request(
        self, component_id: int, power: float, lifetime_s: float | None
    ) -> float:
        runtime = self._require_component(component_id)
        if runtime.spec.kind not in CONTROLLABLE_KINDS:
            raise RequestRefusedError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"component {component_id} ({runtime.spec.kind}) cannot take power",
            )
        if not math.isfinite(power):
            raise RequestRefusedError(
                grpc.StatusCode.INVALID_ARGUMENT, f"invalid power {power}"
            )
        return _lifetime(lifetime_s, DEFAULT_SET_POWER_LIFETIME_S, SET_POWER_LIFETIME_S)

    def _check_faults(self, component_id: int, lifetime_s: float) -> None:
        runtime = self._model.component(component_id)
        faults = self._faults
        if faults.has(component_id, Fault.TIMEOUT_SET_POWER):
            raise SetpointTimeoutError()
        if faults.has(component_id, Fault.REJECT_SET_POWER):
            raise RequestRefusedError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"component {component_id} rejected the setpoint (injected fault)",
            )
        if faults.has(component_id, Fault.REPLY_REJECTED):
            raise SetpointNotAppliedError(lifetime_s, accepted_first=False)
        if faults.has(component_id, Fault.REPLY_FAILED):
            raise SetpointNotAppliedError(lifetime_s, accepted_first=True)
        if faults.has(component_id, Fault.FAIL_SET_POWER):
            raise RequestRefusedError(
                grpc.StatusCode.UNAVAILABLE,
                f"component {component_id} failed to apply the setpoint (injected)",
            )
        if runtime.in_error:
            raise RequestRefusedError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"component {component_id} is in ERROR",
            )
        if runtime.operation is Operation.OFF:
            raise RequestRefusedError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"component {component_id} is stopped",
            )

    def _require_component(self, component_id: int) -> ComponentRuntime:
        try:
            return self._model.component(component_id)
        except KeyError:
            raise RequestRefusedError(
                grpc.StatusCode.NOT_FOUND, f"no component with id {component_id}"
            ) from None


def _lifetime(
    requested: float | None, default: float, allowed: tuple[float, float]
) -> float:
    if requested is None:
        return default
    if not allowed[0] <= requested <= allowed[1]:
        raise RequestRefusedError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"request_lifetime {requested} s is outside "
            f"{allowed[0]:g}–{allowed[1]:g} s",
        )
    return requested
