"""Why the power manager or the controller refuses a proposal.

A refusal is the caller's mistake (a component set that cannot be steered as
asked), not a fault of the engine: it carries its own type and a reason, so the
Home Assistant layer can answer it as bad input without mistaking any other error
(a bug) for one.
"""

from __future__ import annotations

from enum import StrEnum


class RefusalReason(StrEnum):
    """What is wrong with a refused proposal's component set."""

    OVERLAPPING_SET = "overlapping_set"
    """The set overlaps another set of the pool that has proposals: a component
    can follow only one target."""
    NOT_A_POOL_SUBSET = "not_a_pool_subset"
    """The set is empty or has components that are not the pool's."""


class ProposalRefusedError(ValueError):
    """A proposal the engine refuses; nothing was changed."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        """Refuse for `reason`, explained by `message`."""
        super().__init__(message)
        self.reason = reason
