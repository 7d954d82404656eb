"""The envelopes set on a site's circuits, and how each circuit stands against them.

`CircuitLimits` is the one place the steering reads a circuit's envelope from and
the Home Assistant layer writes it to (`set_power_limits`, restored at set-up).
Each tick the EV steering reports per circuit what it saw (`CircuitStatus`): the
step in force, the headroom per phase left after this tick's setpoints, the
circuit's measured power, whether it is beyond the upper limit plus the
tolerance, and the energy drawn above the upper limit so far (`LimitWatch`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import math

from .circuits import Circuit, CircuitTree
from .envelope import LimitEnvelope, LimitStep

MAX_INTEGRATION_GAP_S = 10.0
"""Longest gap between two measurements integrated into the energy above the
limit; across a longer one (no data, a restart) nothing is counted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitStatus:
    """How one circuit stood at the last tick."""

    circuit_id: str
    step: LimitStep | None
    """The envelope step in force (`None`: no envelope or not started yet)."""
    tolerance_w: float
    upper_limit_w: float
    """The power limit the chargers were steered to: the step's upper limit and
    the circuit's fixed limit, whichever is lower (inf: none)."""
    headroom_a: tuple[float, float, float]
    """Per phase, current left on the circuit after this tick's setpoints (A;
    inf without a fuse, NaN where unknown)."""
    measured_power_w: float
    """The circuit's measured net consumption (W; NaN: unknown)."""
    limit_exceeded: bool
    """Measured power above the upper limit in force plus the tolerance."""
    energy_above_limit_wh: float
    """Energy drawn above the upper limit since set-up (Wh; never decreases)."""
    uncontrollable_w: float
    """What the circuit's other loads drew (W; estimated; NaN: unknown)."""

    @property
    def other_load_w(self) -> float:
        """The other loads to expect ahead (W): as last drawn, 0 when unknown.

        Forecasts and plans hold it constant, the best the hub knows of them.
        """
        load = self.uncontrollable_w
        return load if math.isfinite(load) and load > 0.0 else 0.0

    def as_dict(self) -> dict[str, object]:
        """A JSON-able form (diagnostics, action responses)."""
        return {
            "circuit_id": self.circuit_id,
            "step": None if self.step is None else self.step.as_dict(),
            "tolerance_w": self.tolerance_w,
            "upper_limit_w": _json_number(self.upper_limit_w),
            "headroom_a": [_json_number(a) for a in self.headroom_a],
            "measured_power_w": _json_number(self.measured_power_w),
            "limit_exceeded": self.limit_exceeded,
            "energy_above_limit_wh": self.energy_above_limit_wh,
            "uncontrollable_w": _json_number(self.uncontrollable_w),
        }


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(slots=True)
class LimitWatch:
    """Integrates one circuit's measured power above its upper limit (Wh).

    Left-rectangle rule over the measurements handed in: the excess seen at one
    tick counts until the next, unless the gap is longer than
    `MAX_INTEGRATION_GAP_S` or the excess is unknown.
    """

    energy_wh: float = 0.0
    _last_at: float | None = None
    _last_excess_w: float = 0.0

    def update(self, at: float, power_w: float, upper_w: float) -> float:
        """Add the excess since the last call; return the energy so far (Wh)."""
        if self._last_at is not None:
            elapsed = at - self._last_at
            if 0.0 < elapsed <= MAX_INTEGRATION_GAP_S:
                self.energy_wh += self._last_excess_w * elapsed / 3600.0
        excess = power_w - upper_w
        self._last_excess_w = excess if excess > 0.0 else 0.0  # NaN counts as 0
        self._last_at = at
        return self.energy_wh


@dataclass(slots=True)
class CircuitLimits:
    """The circuit tree, the envelope set on each circuit, and the last statuses."""

    tree: CircuitTree
    _envelopes: dict[str, LimitEnvelope] = field(default_factory=dict)
    _watches: dict[str, LimitWatch] = field(default_factory=dict)
    statuses: dict[str, CircuitStatus] = field(default_factory=dict)
    _listeners: list[Callable[[], None]] = field(default_factory=list)

    def circuit(self, circuit_id: str) -> Circuit | None:
        """The circuit with that id, or `None`."""
        return self.tree.get(circuit_id)

    def envelope(self, circuit_id: str) -> LimitEnvelope | None:
        """The envelope set on the circuit, or `None`."""
        return self._envelopes.get(circuit_id)

    @property
    def envelopes(self) -> dict[str, LimitEnvelope]:
        """Every envelope set, by circuit id (a copy)."""
        return dict(self._envelopes)

    def set(self, circuit_id: str, envelope: LimitEnvelope) -> None:
        """Replace the circuit's envelope (validated already by `LimitEnvelope.of`).

        Raises:
            KeyError: no circuit has that id.
        """
        if self.tree.get(circuit_id) is None:
            raise KeyError(circuit_id)
        self._envelopes[circuit_id] = envelope
        self._changed()

    def clear(self, circuit_id: str) -> bool:
        """Remove the circuit's envelope; whether there was one."""
        removed = self._envelopes.pop(circuit_id, None) is not None
        if removed:
            self._changed()
        return removed

    def listen(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` after each change of an envelope; returns unsubscribe."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def upper_limit_w(self, circuit: Circuit, at: float) -> float:
        """The power limit in force: envelope upper limit and fixed limit, the lower."""
        envelope = self._envelopes.get(circuit.circuit_id)
        return _upper_limit_w(
            circuit, None if envelope is None else envelope.in_force(at)
        )

    def observe(
        self,
        circuit: Circuit,
        at: float,
        *,
        measured_power_w: float,
        headroom_a: tuple[float, float, float],
        uncontrollable_w: float,
    ) -> CircuitStatus:
        """Record how the circuit stands at `at` (wall-clock POSIX seconds)."""
        envelope = self._envelopes.get(circuit.circuit_id)
        step = None if envelope is None else envelope.in_force(at)
        tolerance = 0.0 if envelope is None else envelope.tolerance_w
        upper = _upper_limit_w(circuit, step)
        watch = self._watches.setdefault(circuit.circuit_id, LimitWatch())
        status = CircuitStatus(
            circuit_id=circuit.circuit_id,
            step=step,
            tolerance_w=tolerance,
            upper_limit_w=upper,
            headroom_a=headroom_a,
            measured_power_w=measured_power_w,
            limit_exceeded=measured_power_w > upper + tolerance,
            energy_above_limit_wh=watch.update(at, measured_power_w, upper),
            uncontrollable_w=uncontrollable_w,
        )
        self.statuses[circuit.circuit_id] = status
        return status

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()


def _upper_limit_w(circuit: Circuit, step: LimitStep | None) -> float:
    """The lower of the circuit's fixed power limit and the step's upper limit."""
    limit = math.inf if circuit.power_limit_w is None else circuit.power_limit_w
    return limit if step is None else min(limit, step.upper_w)
