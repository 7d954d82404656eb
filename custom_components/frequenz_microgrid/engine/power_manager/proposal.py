"""What an actor asks of a pool: a preferred power and bounds for those below it."""

from __future__ import annotations

from dataclasses import dataclass
import math

from ..bounds import Bounds

_OPEN = Bounds()
"""No bounds of its own: the proposal restricts nobody."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """One actor's wish for a set of components.

    A proposal is identified by ``(priority, source_id)``: a newer proposal with the
    same pair replaces the older one. Its ``bounds`` restrict every lower-priority
    actor; its ``power`` is the power this actor would like (``None`` = no wish of
    its own, only bounds). A proposal with neither power nor bounds is a withdrawal.
    """

    source_id: str
    priority: int
    power: float | None
    component_ids: frozenset[int]
    creation_time: float
    """Monotonic seconds; proposals older than the manager's maximum age expire."""
    bounds: Bounds = _OPEN
    keep_alive: bool = False
    """The sender maintains this proposal itself, so it never expires by age.

    The Home Assistant side re-sends its standing proposals (spec §6): an automation
    that set a value once keeps it until it withdraws it or the entry unloads.
    """

    def __post_init__(self) -> None:
        """Refuse NaN: it would silently poison every comparison in the algorithms."""
        values = (self.power, self.bounds.lower, self.bounds.upper)
        if any(value is not None and math.isnan(value) for value in values):
            raise ValueError(f"Proposal from {self.source_id!r} contains NaN")

    @property
    def is_withdrawal(self) -> bool:
        """Whether this proposal only removes the actor's earlier one."""
        return (
            self.power is None
            and self.bounds.lower is None
            and self.bounds.upper is None
        )

    @property
    def key(self) -> tuple[int, str]:
        """The identity and the sort key: processing runs through it in reverse.

        Highest priority first; equal priorities by ``source_id`` descending, which is
        the SDK's order (kept so results are deterministic and comparable).
        """
        return (self.priority, self.source_id)
