"""A circuit's power limits over time: datafev's `enter_power_limits`, live.

datafev's `ChargerCluster.enter_power_limits` takes a table of time steps with a
lower and an upper limit of the cluster's net consumption, forward-fills it, and
lets the caller replace it at any time; a tolerance (kW) says how far the
consumption may stray beyond the limits before it counts as a violation. Here an
envelope is a list of steps, each in force from its start until the next one
starts (the last one for good), plus that tolerance in W.

Tolerance never loosens the steering: the EV chargers are steered to the upper
limit itself; the tolerance only decides when the circuit counts as *limit
exceeded* (measured power above upper + tolerance). A fuse has no tolerance at
all: its rating is a separate, physical limit of the circuit (`circuits`).

Times are POSIX seconds (UTC), so an envelope survives a restart unchanged.
Validation names each problem with a `EnvelopeProblem` code that the Home
Assistant layer translates; an envelope that fails it is never built.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
import math


class EnvelopeProblem(StrEnum):
    """Why a list of steps or a tolerance is not a valid envelope (translation keys)."""

    NO_STEPS = "no_steps"
    """An envelope needs at least one step (clearing is a separate action)."""
    NOT_FINITE = "not_finite"
    """A start, limit or the tolerance is NaN or infinite."""
    UNORDERED_STEPS = "unordered_steps"
    """Starts must rise from step to step."""
    DUPLICATE_START = "duplicate_start"
    """Two steps start at the same time (which one holds would be arbitrary)."""
    LOWER_ABOVE_UPPER = "lower_above_upper"
    """A step's lower limit is above its upper limit."""
    NEGATIVE_TOLERANCE = "negative_tolerance"
    """The tolerance is below 0 W."""


class InvalidEnvelopeError(ValueError):
    """The steps or the tolerance do not form an envelope; nothing was changed."""

    def __init__(self, problem: EnvelopeProblem, step_index: int | None = None) -> None:
        """Name the problem and, where it is one step's, that step (0-based)."""
        where = "" if step_index is None else f" (step {step_index + 1})"
        super().__init__(f"{problem.value}{where}")
        self.problem = problem
        self.step_index = step_index


@dataclass(frozen=True, slots=True)
class LimitStep:
    """Limits of a circuit's net consumption from `start` until the next step."""

    start: float
    """POSIX seconds (UTC) from which this step is in force."""
    lower_w: float
    """Lower limit of net consumption (W; negative = feeding in)."""
    upper_w: float
    """Upper limit of net consumption (W) the steering holds the circuit to."""

    def as_dict(self) -> dict[str, float]:
        """A JSON-able form (action responses, diagnostics, storage)."""
        return {"start": self.start, "lower_w": self.lower_w, "upper_w": self.upper_w}


@dataclass(frozen=True, slots=True)
class LimitEnvelope:
    """Steps in order of start, forward-filled, and the tolerance (W).

    Build it with `LimitEnvelope.of`, which validates; the constructor trusts its
    arguments.
    """

    steps: tuple[LimitStep, ...]
    tolerance_w: float = 0.0
    _starts: tuple[float, ...] = field(init=False, repr=False, compare=False)
    """The steps' starts, built once: looked up several times per circuit a tick."""

    def __post_init__(self) -> None:
        """Keep the starts for `_index_at` (frozen: set through `object`)."""
        object.__setattr__(self, "_starts", tuple(step.start for step in self.steps))

    @classmethod
    def of(cls, steps: Iterable[LimitStep], tolerance_w: float = 0.0) -> LimitEnvelope:
        """Validate `steps` (in the order given) and the tolerance into an envelope.

        Raises:
            InvalidEnvelopeError: the first problem found, with the step it is in.
        """
        ordered = tuple(steps)
        if not ordered:
            raise InvalidEnvelopeError(EnvelopeProblem.NO_STEPS)
        if not math.isfinite(tolerance_w):
            raise InvalidEnvelopeError(EnvelopeProblem.NOT_FINITE)
        if tolerance_w < 0.0:
            raise InvalidEnvelopeError(EnvelopeProblem.NEGATIVE_TOLERANCE)
        for index, step in enumerate(ordered):
            if not all(map(math.isfinite, (step.start, step.lower_w, step.upper_w))):
                raise InvalidEnvelopeError(EnvelopeProblem.NOT_FINITE, index)
            if step.lower_w > step.upper_w:
                raise InvalidEnvelopeError(EnvelopeProblem.LOWER_ABOVE_UPPER, index)
            if index and step.start == ordered[index - 1].start:
                raise InvalidEnvelopeError(EnvelopeProblem.DUPLICATE_START, index)
            if index and step.start < ordered[index - 1].start:
                raise InvalidEnvelopeError(EnvelopeProblem.UNORDERED_STEPS, index)
        return cls(ordered, float(tolerance_w))

    def _index_at(self, at: float) -> int:
        """Index of the step in force at `at`; −1 before the first step."""
        return bisect.bisect_right(self._starts, at) - 1

    def in_force(self, at: float) -> LimitStep | None:
        """The step in force at `at`; `None` before the first one (no limit yet)."""
        index = self._index_at(at)
        return self.steps[index] if index >= 0 else None

    def next_change(self, at: float) -> float | None:
        """When the next step after `at` starts; `None` when none follows."""
        index = self._index_at(at) + 1
        return self.steps[index].start if index < len(self.steps) else None

    def pruned(self, at: float) -> LimitEnvelope:
        """The envelope without the steps that ended before `at` (kept at restart).

        The step in force at `at` stays, so the forward fill is unchanged.
        """
        index = max(self._index_at(at), 0)
        return LimitEnvelope(self.steps[index:], self.tolerance_w)

    def exceeded(self, power_w: float, at: float) -> bool:
        """Whether `power_w` is above the upper limit in force plus the tolerance."""
        step = self.in_force(at)
        return step is not None and power_w > step.upper_w + self.tolerance_w

    def as_dict(self) -> dict[str, object]:
        """A JSON-able form (action responses, diagnostics, storage)."""
        return {
            "steps": [step.as_dict() for step in self.steps],
            "tolerance_w": self.tolerance_w,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> LimitEnvelope:
        """Rebuild (and validate) an envelope written by `as_dict`.

        Raises:
            InvalidEnvelopeError: the data does not form a valid envelope.
            KeyError, TypeError, ValueError: the data is not of that shape.
        """
        raw_steps = data["steps"]
        if not isinstance(raw_steps, list):
            raise TypeError("steps must be a list")
        tolerance = data.get("tolerance_w", 0.0)
        if not isinstance(tolerance, int | float):
            raise TypeError("tolerance_w must be a number")
        return cls.of(
            (
                LimitStep(
                    float(step["start"]), float(step["lower_w"]), float(step["upper_w"])
                )
                for step in raw_steps
            ),
            float(tolerance),
        )
