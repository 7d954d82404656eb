"""Outcomes of a distribution request, shaped like the SDK's so users recognise them.

A result tells how much of the requested power went out, to which components, what
failed and what could not be placed at all (excess). It flows back to the power
manager's reports, the health tracker, sensors and service-call responses.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

from .bounds import PowerBounds


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """What the distributor was asked to do for a pool."""

    power: float
    component_ids: frozenset[int]
    adjust_power: bool = True
    """Clamp a request outside the inclusion bounds instead of refusing it."""
    limited_by: str | None = None
    """Why `power` is less than the pool's target (e.g. ``grid_fuse``); `None`:
    it is the target."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Success:
    """Every selected component accepted its setpoint."""

    request: Request
    succeeded_power: float
    succeeded_components: Set[int]
    excess_power: float
    """The part of the request that could not be placed within the bounds."""
    setpoints: dict[int, float] = field(default_factory=dict)
    """The setpoint sent to (or kept at) each component, in watts."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PartialFailure:
    """Some components failed their setpoint; the rest succeeded."""

    request: Request
    succeeded_power: float
    succeeded_components: Set[int]
    excess_power: float
    failed_power: float
    failed_components: Set[int]
    setpoints: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutOfBounds:
    """Nothing was sent: the request is not allowed by the bounds.

    Either it lies strictly inside the exclusion zone, or outside the inclusion range
    with ``adjust_power=False``.
    """

    request: Request
    bounds: PowerBounds


@dataclass(frozen=True, slots=True, kw_only=True)
class Error:
    """Nothing was sent because the request could not be served at all."""

    request: Request
    msg: str


Result = Success | PartialFailure | OutOfBounds | Error
"""Any distribution result."""


def result_kind(result: Result) -> str:
    """Return the result's kind as a stable snake-case name (for sensors, responses)."""
    match result:
        case Success():
            return "success"
        case PartialFailure():
            return "partial_failure"
        case OutOfBounds():
            return "out_of_bounds"
        case Error():
            return "error"


def result_as_dict(result: Result) -> dict[str, Any]:
    """Return a JSON-ready view of a result (service responses, diagnostics)."""
    data: dict[str, Any] = {
        "kind": result_kind(result),
        "requested_power": result.request.power,
        "components": sorted(result.request.component_ids),
    }
    if result.request.limited_by is not None:
        data["limited_by"] = result.request.limited_by
    match result:
        case Success() | PartialFailure():
            data["succeeded_power"] = result.succeeded_power
            data["succeeded_components"] = sorted(result.succeeded_components)
            data["excess_power"] = result.excess_power
            data["setpoints"] = {str(k): v for k, v in sorted(result.setpoints.items())}
            if isinstance(result, PartialFailure):
                data["failed_power"] = result.failed_power
                data["failed_components"] = sorted(result.failed_components)
        case OutOfBounds():
            data["bounds"] = result.bounds.as_dict()
        case Error():
            data["msg"] = result.msg
    return data
