"""The power manager: standing proposals per component set → one target power.

One `PowerManager` serves one kind of pool (batteries, EV chargers or PV
inverters), and inside it one bucket of proposals per component set, as the SDK's
power-managing actor does. It holds no clock and does no I/O: every method takes
what happened and returns the target power the caller should now send to the
distributor (or `None` when there is nothing to send).

Deliberate differences from the SDK (1.0.0rc2214); the targets and bounds computed
from the same proposals and system bounds are the SDK's (a differential test
checks it), only when and what gets re-sent differs:

- A proposal that arrives before the pool's system bounds are known is kept (the
  SDK drops it); the target follows as soon as `set_system_bounds` is called.
- Expiry recomputes the target at once and returns the default power when the last
  proposal is gone (the SDK only forgets the target, leaving the pool at the old
  setpoint until the next proposal).
- A proposal can be ``keep_alive``: its sender maintains it, so it never expires.
- A change of the exclusion bounds alone is taken into account (the SDK only
  reacts to a change of the inclusion bounds).
- Proposals with bounds but no power steer the pool (`steering_target`): its
  default power within the bounds they leave, as if the pool's default were
  the lowest-priority actor. The SDK sends nothing then, so "at most 7 kW for
  the EVs" left them charging at full power. `target_power` stays the SDK's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
import enum

from ..bounds import PowerBounds
from ..results import PartialFailure, Result, Success
from .algorithms import Algorithm, Matryoshka, ShiftingMatryoshka, or_default
from .book import ProposalBook
from .exclusion import Overlap, Zone, exclusion_zone, nearest_allowed, overlap
from .proposal import Proposal
from .refusal import ProposalRefusedError, RefusalReason

MAX_PROPOSAL_AGE = 60.0
"""Seconds after which a proposal that nobody re-sent is dropped (as the SDK)."""
_BELOW_EVERY_PRIORITY = -(10**9)
"""A priority below any proposal's: `available_bounds` at it walks them all."""


class DefaultPower(enum.Enum):
    """What a pool falls back to once its last power proposal is gone."""

    ZERO = "zero"
    """0 W: batteries stop charging or discharging."""
    MIN = "min"
    """The inclusion lower bound: PV inverters produce as much as they can."""
    MAX = "max"
    """The inclusion upper bound: EV chargers charge as fast as they can."""

    def of(self, system: PowerBounds) -> float:
        """Return the default power under the given system bounds."""
        match self:
            case DefaultPower.ZERO:
                return 0.0
            case DefaultPower.MIN:
                return system.inclusion_lower
            case DefaultPower.MAX:
                return system.inclusion_upper


@dataclass(frozen=True, slots=True)
class Report:
    """What an actor at one priority sees of its pool (the SDK's power status)."""

    target_power: float | None
    """The pool's one target power; `None` when no proposal asks for a power."""
    bounds: PowerBounds | None
    """What this priority may still use: the system inclusion bounds narrowed (and
    for shifting, shifted) by the higher priorities, with the system's exclusion
    zone. `None` while the system bounds are unknown."""
    last_result: Result | None
    """The last distribution result for the pool, if any."""


class PowerManager:
    """Arbitrates between actors' proposals for each component set of one pool kind."""

    def __init__(
        self,
        algorithm: Algorithm,
        default_power: DefaultPower,
        *,
        max_proposal_age: float = MAX_PROPOSAL_AGE,
    ) -> None:
        """Create a manager that combines proposals with `algorithm`."""
        self.algorithm = algorithm
        self.default_power = default_power
        self.max_proposal_age = max_proposal_age
        self._books: dict[frozenset[int], ProposalBook] = {}
        self._system_bounds: dict[frozenset[int], PowerBounds] = {}
        self._targets: dict[frozenset[int], float] = {}
        self._results: dict[frozenset[int], Result] = {}
        self._in_partial_failure: set[frozenset[int]] = set()

    @classmethod
    def for_batteries(cls) -> PowerManager:
        """Shifting matryoshka, 0 W by default (spec §1)."""
        return cls(ShiftingMatryoshka(), DefaultPower.ZERO)

    @classmethod
    def for_ev_chargers(cls) -> PowerManager:
        """Matryoshka, full charging power (inclusion upper bound) by default."""
        return cls(Matryoshka(), DefaultPower.MAX)

    @classmethod
    def for_pv_inverters(cls) -> PowerManager:
        """Matryoshka, full production (inclusion lower bound) by default."""
        return cls(Matryoshka(), DefaultPower.MIN)

    # -- inputs ---------------------------------------------------------------

    def propose(self, proposal: Proposal) -> float | None:
        """Add, replace or withdraw a proposal; return the target to send.

        The target is returned even when unchanged (the SDK re-sends it too, which
        keeps the components' setpoints alive). `None` means nothing to send: no
        proposal asks for a power and none did before, or the bounds are unknown.

        Raises:
            ProposalRefusedError: The component set overlaps another one that has
                proposals.
        """
        component_ids = proposal.component_ids
        book = self._books.get(component_ids)
        if book is None:
            if proposal.is_withdrawal:
                return self._recalculate(component_ids)
            self._refuse_overlap(component_ids)
            book = self._books[component_ids] = ProposalBook()
        book.apply(proposal)
        return self._recalculate(component_ids)

    def withdraw(
        self,
        source_id: str,
        *,
        priority: int | None = None,
        component_ids: frozenset[int] | None = None,
    ) -> dict[frozenset[int], float]:
        """Remove a source's proposals (e.g. when an entry unloads).

        Limited to one priority and/or one component set when given. Return the
        targets to send, per component set whose proposals changed.
        """
        return self._recalculate_all(self._remove(source_id, priority, component_ids))

    def withdraw_sets(
        self,
        source_id: str,
        *,
        priority: int | None = None,
        component_ids: frozenset[int] | None = None,
    ) -> list[frozenset[int]]:
        """Remove a source's proposals as `withdraw`; return every set that lost one.

        Also the sets whose target does not change (bounds alone before and
        after): their steering target does. Their targets are recalculated.
        """
        changed = self._remove(source_id, priority, component_ids)
        self._recalculate_all(changed)
        return changed

    def _remove(
        self,
        source_id: str,
        priority: int | None,
        component_ids: frozenset[int] | None,
    ) -> list[frozenset[int]]:
        """Remove a source's proposals; return the sets that lost one."""
        return [
            ids
            for ids, book in self._books.items()
            if (component_ids is None or ids == component_ids)
            and book.remove_where(source_id, priority)
        ]

    def refresh(self, source_id: str, now: float) -> None:
        """Restart the age of a source's proposals, as if it had re-sent them."""
        for book in self._books.values():
            book.refresh(source_id, now)

    def drop_expired(self, now: float) -> dict[frozenset[int], float]:
        """Drop proposals older than the maximum age (call it every second).

        Return the targets to send, per component set that lost proposals: the new
        target, or the default power when the last power proposal expired.
        """
        changed = [
            ids
            for ids, book in self._books.items()
            if book.drop_expired(now, self.max_proposal_age)
        ]
        return self._recalculate_all(changed)

    def set_system_bounds(
        self, component_ids: frozenset[int], bounds: PowerBounds
    ) -> float | None:
        """Update what the pool's working components allow; return the target.

        `None` when the bounds did not change or there is nothing to send.
        """
        if self._system_bounds.get(component_ids) == bounds:
            return None
        self._system_bounds[component_ids] = bounds
        return self._recalculate(component_ids)

    def forget(self, component_ids: frozenset[int]) -> None:
        """Forget a set without proposals: its system bounds, target and result.

        For a set its pool no longer steers (released): kept, it would stay in
        the status for good, with a last result its components have long left.
        A set with proposals is kept.
        """
        if component_ids in self._books:
            return
        self._system_bounds.pop(component_ids, None)
        self._targets.pop(component_ids, None)
        self._results.pop(component_ids, None)
        self._in_partial_failure.discard(component_ids)

    def record_result(
        self, result: Result, component_ids: frozenset[int] | None = None
    ) -> float | None:
        """Keep the distribution result for the reports; maybe return a re-send.

        The result belongs to `component_ids` (the set the proposals were made
        for), by default the set in the result's request.

        After a partial failure the target is re-sent once (as the SDK does), so the
        distributor can place the power on the components that still work; only a
        success re-arms that.
        """
        if component_ids is None:
            component_ids = result.request.component_ids
        self._results[component_ids] = result
        if isinstance(result, PartialFailure):
            if component_ids in self._in_partial_failure:
                return None
            self._in_partial_failure.add(component_ids)
            return self._recalculate(component_ids)
        if isinstance(result, Success):
            self._in_partial_failure.discard(component_ids)
        return None

    def follow_components(
        self,
        old_pool: frozenset[int],
        new_pool: frozenset[int],
        gone: frozenset[int],
    ) -> dict[frozenset[int], frozenset[int]]:
        """Re-key every component set after the microgrid's components changed.

        The whole pool's set becomes the new pool (with newcomers, without the
        components that left); any other set loses the components that left,
        and one left empty is dropped with its proposals. Proposals keep their
        priorities and ages; sets that end up equal are merged (the newer
        proposal of a source at a priority wins). The system bounds, targets and
        results of a re-keyed set are dropped: the caller sets system bounds for
        the new sets, which recomputes their targets. Returns old → new set for
        every set that changed (the new one empty when it was dropped).
        """
        known = (
            self._books.keys()
            | self._system_bounds.keys()
            | self._targets.keys()
            | self._results.keys()
        )
        renamed: dict[frozenset[int], frozenset[int]] = {}
        for old in known:
            new = new_pool if old == old_pool else old - gone
            if new != old:
                renamed[old] = new
        moved: dict[frozenset[int], list[Proposal]] = {}
        for old in renamed:
            book = self._books.pop(old, None)
            self._system_bounds.pop(old, None)
            self._targets.pop(old, None)
            self._results.pop(old, None)
            self._in_partial_failure.discard(old)
            if book is not None and renamed[old]:
                moved.setdefault(renamed[old], []).extend(book.in_processing_order())
        for new, proposals in moved.items():
            book = self._books.setdefault(new, ProposalBook())
            for proposal in sorted(proposals, key=lambda p: p.creation_time):
                book.apply(replace(proposal, component_ids=new))
            self._system_bounds.pop(new, None)  # recomputed: its members changed
        return renamed

    # -- views ----------------------------------------------------------------

    def target_power(self, component_ids: frozenset[int]) -> float | None:
        """Return the current target of a component set, if any (the SDK's)."""
        return self._targets.get(component_ids)

    def steering_target(self, component_ids: frozenset[int]) -> float | None:
        """Return the power the set is steered to: the target, or the default.

        With no power proposed, standing bounds-only proposals still act: the
        pool's default power (EVs: full charging, PV: full production) is taken
        within the bounds the proposals leave, as a lowest-priority actor asking
        for the default would get it. `None` without any proposal (the pool is
        left to its own default) or while the system bounds are unknown.

        Bounds wholly inside the exclusion zone, which the SDK skips, leave 0 W
        to whatever comes after them (matryoshka: the priorities below).
        """
        target = self._targets.get(component_ids)
        book = self._books.get(component_ids)
        system = self._system_bounds.get(component_ids)
        if not book or system is None:
            return target
        zone_may_bind = exclusion_zone(system) is not None and isinstance(
            self.algorithm, Matryoshka
        )
        if target is not None and not zone_may_bind:
            return target  # the common case, per tick and per status: no walk
        proposals = list(book.in_processing_order())
        if target is not None:
            powered = [i for i, p in enumerate(proposals) if p.power is not None]
            cap = self._zone_cap(proposals, system, powered[-1] if powered else 0)
            return target if cap is None else cap
        cap = self._zone_cap(proposals, system, len(proposals))
        if cap is not None:
            return cap
        lowest = min(p.priority for p in proposals)
        lower, upper = self.algorithm.available_bounds(proposals, system, lowest - 1)
        return nearest_allowed(
            self.default_power.of(system), lower, upper, exclusion_zone(system)
        )

    def _zone_cap(
        self, proposals: list[Proposal], system: PowerBounds, until: int
    ) -> float | None:
        """The power bounds inside the exclusion zone leave, if any before `until`.

        Matryoshka only (the shifting one adds powers up; its bounds stay the
        SDK's). The SDK skips bounds wholly inside the exclusion zone; taken at
        their word they leave nothing but 0 W to what comes after them — as
        near 0 W as the proposals before them allow ("between 1 and 3 kW" at
        priority 10, EVs of 4.14 kW minimum: a 10 kW power at priority 1 gives
        0 W, not 10 kW). Bounds that miss the range left are skipped, as the
        SDK skips them.
        """
        zone = exclusion_zone(system)
        if zone is None or not isinstance(self.algorithm, Matryoshka):
            return None
        for index, proposal in enumerate(proposals[:until]):
            if not _inside(proposal, system, zone):
                continue
            lower, upper = self.algorithm.available_bounds(
                proposals[:index], system, _BELOW_EVERY_PRIORITY
            )
            own_lower = or_default(proposal.bounds.lower, lower)
            own_upper = or_default(proposal.bounds.upper, upper)
            if own_lower > upper or own_upper < lower:
                continue
            return nearest_allowed(0.0, lower, upper, zone)
        return None

    def last_result(self, component_ids: frozenset[int]) -> Result | None:
        """Return the outcome of the set's latest distribution, if any."""
        return self._results.get(component_ids)

    def system_bounds(self, component_ids: frozenset[int]) -> PowerBounds | None:
        """Return the last system bounds given for a component set."""
        return self._system_bounds.get(component_ids)

    def proposals(self, component_ids: frozenset[int]) -> list[Proposal]:
        """Return the standing proposals of a component set in processing order."""
        book = self._books.get(component_ids)
        return [] if book is None else list(book.in_processing_order())

    def component_sets(self) -> list[frozenset[int]]:
        """Return every component set with proposals or system bounds."""
        return sorted(self._books.keys() | self._system_bounds.keys(), key=sorted)

    def report(self, component_ids: frozenset[int], priority: int) -> Report:
        """Return what an actor at `priority` sees: target, bounds, last result."""
        target = self._targets.get(component_ids)
        last_result = self.last_result(component_ids)
        system = self._system_bounds.get(component_ids)
        if system is None:
            return Report(target, None, last_result)
        lower, upper = self.algorithm.available_bounds(
            self._ordered(component_ids), system, priority
        )
        bounds = PowerBounds(
            lower, upper, system.exclusion_lower, system.exclusion_upper
        )
        return Report(target, bounds, last_result)

    # -- internals ------------------------------------------------------------

    def _ordered(self, component_ids: frozenset[int]) -> Iterable[Proposal]:
        book = self._books.get(component_ids)
        return () if book is None else book.in_processing_order()

    def _refuse_overlap(self, component_ids: frozenset[int]) -> None:
        for other in self._books:
            if not other.isdisjoint(component_ids):
                raise ProposalRefusedError(
                    RefusalReason.OVERLAPPING_SET,
                    f"Components {sorted(component_ids)} overlap the set "
                    f"{sorted(other)} that already has proposals",
                )

    def _recalculate(self, component_ids: frozenset[int]) -> float | None:
        """Recompute the target after a change; return what to send, if anything.

        When the target disappears (no power proposal left) the pool's default power
        is returned once, to release it at once rather than leave the last setpoint.
        """
        book = self._books.get(component_ids)
        if book is not None and not book:
            del self._books[component_ids]
            book = None
        system = self._system_bounds.get(component_ids)
        if system is None:
            return None
        target = (
            None
            if book is None
            else self.algorithm.target_power(book.in_processing_order(), system)
        )
        if target is not None:
            self._targets[component_ids] = target
            return target
        if self._targets.pop(component_ids, None) is not None:
            return self.default_power.of(system)
        return None

    def _recalculate_all(
        self, component_sets: Iterable[frozenset[int]]
    ) -> dict[frozenset[int], float]:
        targets: dict[frozenset[int], float] = {}
        for component_ids in component_sets:
            target = self._recalculate(component_ids)
            if target is not None:
                targets[component_ids] = target
        return targets


def _inside(proposal: Proposal, system: PowerBounds, zone: Zone) -> bool:
    """Whether the proposal's bounds lie wholly inside the exclusion zone."""
    bounds = proposal.bounds
    if bounds.lower is None and bounds.upper is None:
        return False
    lower = or_default(bounds.lower, system.inclusion_lower)
    upper = or_default(bounds.upper, system.inclusion_upper)
    return overlap(lower, upper, zone) is Overlap.BOTH
