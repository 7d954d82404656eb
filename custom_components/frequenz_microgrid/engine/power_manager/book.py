"""The standing proposals of one component set, kept in processing order."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import replace

from .proposal import Proposal


def _key(proposal: Proposal) -> tuple[int, str]:
    return proposal.key


class ProposalBook:
    """Proposals keyed by ``(priority, source_id)``, sorted once on insertion.

    Kept ascending by key and read backwards, so the algorithms walk highest
    priority first without re-sorting on every proposal: replacing a proposal is a
    binary search plus one list slot, inserting or removing one is a binary search
    plus a short memmove.
    """

    __slots__ = ("_proposals",)

    def __init__(self) -> None:
        """Start empty."""
        self._proposals: list[Proposal] = []

    def __len__(self) -> int:
        """Return how many proposals stand."""
        return len(self._proposals)

    def in_processing_order(self) -> Iterator[Proposal]:
        """Iterate highest priority first; equal priorities by source id descending."""
        return reversed(self._proposals)

    def apply(self, proposal: Proposal) -> None:
        """Add, replace or (for a withdrawal) remove the actor's proposal."""
        proposals = self._proposals
        key = proposal.key
        index = bisect.bisect_left(proposals, key, key=_key)
        present = index < len(proposals) and proposals[index].key == key
        if proposal.is_withdrawal:
            if present:
                del proposals[index]
        elif present:
            proposals[index] = proposal
        else:
            proposals.insert(index, proposal)

    def remove_where(self, source_id: str, priority: int | None = None) -> bool:
        """Remove the source's proposals (at one priority, or all); return if any."""
        kept = [
            p
            for p in self._proposals
            if p.source_id != source_id
            or (priority is not None and p.priority != priority)
        ]
        removed = len(kept) != len(self._proposals)
        self._proposals = kept
        return removed

    def drop_expired(self, now: float, max_age: float) -> bool:
        """Drop proposals older than `max_age` seconds, unless kept alive.

        Return whether anything was dropped.
        """
        kept = [
            p
            for p in self._proposals
            if p.keep_alive or now - p.creation_time <= max_age
        ]
        dropped = len(kept) != len(self._proposals)
        self._proposals = kept
        return dropped

    def refresh(self, source_id: str, now: float) -> bool:
        """Restart the age of the source's proposals; return whether it had any."""
        found = False
        for index, proposal in enumerate(self._proposals):
            if proposal.source_id == source_id:
                self._proposals[index] = replace(proposal, creation_time=now)
                found = True
        return found
