"""Faults a test (or the command line) can inject into simulated components."""

from __future__ import annotations

import enum


class Fault(enum.Flag):
    """Per-component misbehaviour; combine with ``|``.

    The set-power faults decide how `SetElectricalComponentPower` answers; the data
    faults change the component's telemetry stream; `ERROR_STATE` changes the
    component itself (state ERROR with an error diagnostic, 0 W, set-power refused).
    """

    REJECT_SET_POWER = enum.auto()
    """Set-power is refused: gRPC FAILED_PRECONDITION."""
    FAIL_SET_POWER = enum.auto()
    """Set-power fails: gRPC UNAVAILABLE."""
    REPLY_REJECTED = enum.auto()
    """Set-power is answered with one REJECTED reply (the API's answer to invalid
    parameters); nothing is applied."""
    REPLY_FAILED = enum.auto()
    """Set-power is answered ACCEPTED, then FAILED (the component did not reach
    the setpoint); nothing is applied."""
    TIMEOUT_SET_POWER = enum.auto()
    """Set-power never answers (the client's deadline or cancellation ends it)."""
    STOP_DATA = enum.auto()
    """The component's telemetry streams stay open but send nothing."""
    SEND_NAN = enum.auto()
    """Every metric value of the component is NaN."""
    ERROR_STATE = enum.auto()
    """The component is in ERROR: it carries 0 W and refuses setpoints."""
    SEND_INF = enum.auto()
    """Every metric value of the component is infinite (signed like the value)."""
    REJECT_BOUNDS = enum.auto()
    """Augment-bounds requests are refused: gRPC FAILED_PRECONDITION."""
    WARNING = enum.auto()
    """The component reports an OVERTEMPERATURE warning but keeps working."""

    @classmethod
    def parse(cls, text: str) -> Fault:
        """Parse ``"stop_data"`` or ``"send_nan|error_state"`` (case-insensitive)."""
        fault = cls(0)
        for name in text.replace(",", "|").split("|"):
            key = name.strip().upper().replace("-", "_")
            if key not in cls.__members__:
                choices = ", ".join(m.lower() for m in cls.__members__)
                raise ValueError(f"unknown fault {name!r}; choose from {choices}")
            fault |= cls[key]
        return fault


class FaultBook:
    """Which faults are active on which component."""

    def __init__(self) -> None:
        """Start with no faults."""
        self._faults: dict[int, Fault] = {}

    def inject(self, component_id: int, fault: Fault) -> None:
        """Add `fault` (possibly several flags) to a component."""
        self._faults[component_id] = self.of(component_id) | fault

    def clear(self, component_id: int, fault: Fault | None = None) -> None:
        """Remove `fault` from a component, or all its faults if `fault` is None."""
        remaining = Fault(0) if fault is None else self.of(component_id) & ~fault
        if remaining:
            self._faults[component_id] = remaining
        else:
            self._faults.pop(component_id, None)

    def of(self, component_id: int) -> Fault:
        """The faults active on a component (``Fault(0)`` if none)."""
        return self._faults.get(component_id, Fault(0))

    def has(self, component_id: int, fault: Fault) -> bool:
        """Whether any flag of `fault` is active on the component."""
        return bool(self.of(component_id) & fault)
