"""What every pool's steering shares: its context, its sets, and change detection.

A pool steering object turns the power manager's targets into setpoints for its
component sets and sends them through the shared `Distributor`. It remembers what
it last sent per set, so a tick re-sends only what changed (the distributor keeps
the rest alive) and a withdrawal can release exactly what this pool commanded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
import math

from .. import members
from ..bounds import PowerBounds
from ..distributor import DispatchReport, Distributor
from ..graph import Topology
from ..health import ComponentHealth, HealthTracker
from ..power_manager import PowerManager
from ..results import Error, PartialFailure, Request, Result, Success
from ..telemetry import TelemetryStore
from .status import Pool

RESEND_ABS_TOLERANCE_W = 50.0
"""A setpoint that moves by less than this is not re-sent on a tick (W)."""
RESEND_REL_TOLERANCE = 0.01
"""... nor one that moves by less than this fraction of the set's target."""

type ComponentSet = frozenset[int]
type Results = dict[ComponentSet, Result]


@dataclass(frozen=True, slots=True)
class SteeringContext:
    """What every pool reads and sends through (one of each per microgrid)."""

    topology: Topology
    store: TelemetryStore
    health: HealthTracker
    distributor: Distributor


def resend_tolerance(target_w: float) -> float:
    """How far a setpoint may drift before a tick re-sends it (W)."""
    return max(RESEND_ABS_TOLERANCE_W, RESEND_REL_TOLERANCE * abs(target_w))


def drifted(
    old: Mapping[int, float], new: Mapping[int, float], tolerance: float
) -> bool:
    """Whether a new set of setpoints differs enough from the standing one to send.

    Different components count as a change; so does any value that moved by more
    than `tolerance`.
    """
    if old.keys() != new.keys():
        return True
    return any(
        not math.isclose(old[cid], power, abs_tol=tolerance)
        for cid, power in new.items()
    )


def dispatch_result(
    request: Request, setpoints: Mapping[int, float], report: DispatchReport
) -> Result:
    """Describe a dispatch of `setpoints` for `request` the SDK's way.

    Components that were not sent anything (their setpoint was standing already)
    count as succeeded. The excess is the part of the request the setpoints do not
    add up to.
    """
    if not setpoints:
        return Error(request=request, msg="No working components in the request")
    failed = {cid: p for cid, p in setpoints.items() if cid in report.failed}
    succeeded = {cid: p for cid, p in setpoints.items() if cid not in failed}
    excess = request.power - math.fsum(setpoints.values())
    if not failed:
        return Success(
            request=request,
            succeeded_power=math.fsum(succeeded.values()),
            succeeded_components=frozenset(succeeded),
            excess_power=excess,
            setpoints=dict(setpoints),
        )
    return PartialFailure(
        request=request,
        succeeded_power=math.fsum(succeeded.values()),
        succeeded_components=frozenset(succeeded),
        excess_power=excess,
        failed_power=math.fsum(failed.values()),
        failed_components=frozenset(failed),
        setpoints=dict(setpoints),
    )


class PoolSteering(ABC):
    """Steers one pool: system bounds for the power manager, setpoints out."""

    pool: Pool

    def __init__(
        self,
        context: SteeringContext,
        manager: PowerManager,
        component_ids: frozenset[int],
    ) -> None:
        """Steer `component_ids` (the whole pool) with the pool's power manager."""
        self.context = context
        self.manager = manager
        self.component_ids = component_ids
        self._sent: dict[ComponentSet, dict[int, float]] = {}
        """Per component set: the setpoints it commanded that were accepted."""

    def follow_topology(
        self,
        context: SteeringContext,
        component_ids: frozenset[int],
        gone: frozenset[int],
    ) -> set[ComponentSet]:
        """Steer `component_ids` of a changed topology; return the re-keyed sets.

        Components that left are forgotten at once (the caller has stopped
        keeping them alive); the power manager's sets follow (`PowerManager.
        follow_components`), and what each set commanded moves with it, so the
        next steer sees the change of components and re-distributes the set:
        a proposal in force is placed on what remains, or on the pool with its
        newcomers.
        """
        renamed = self.manager.follow_components(
            self.component_ids, component_ids, gone
        )
        self.context = context
        self.component_ids = component_ids
        self.forget(gone)
        for old, new in renamed.items():
            sent = self._sent.pop(old, None)
            if sent and new:
                self._sent.setdefault(new, {}).update(
                    (cid, power)
                    for cid, power in sent.items()
                    if self._commanded_through(cid, new)
                )
        return {new for new in renamed.values() if new}

    def _commanded_through(
        self, component_id: int, component_ids: ComponentSet
    ) -> bool:
        """Whether a setpoint to `component_id` serves the set `component_ids`.

        A pool whose setpoints go to other components than its sets name (the
        batteries' inverters) says so; here they are the set's own.
        """
        return component_id in component_ids

    def component_sets(self) -> list[ComponentSet]:
        """The sets to keep system bounds for: the pool, and every set in use."""
        sets = set(self.manager.component_sets()) | set(self._sent)
        if self.component_ids:
            sets.add(self.component_ids)
        return sorted(sets, key=sorted)

    def update_system_bounds(self, now: float) -> None:
        """Tell the power manager what each set's working components allow now.

        A set out of use (no proposal, no setpoint standing: released) is
        forgotten instead, so the status lists only sets that steer something
        (a subset whose proposal was withdrawn showed its last release for good,
        beside the set its components were steered by since).
        """
        in_use = self._sets_in_use()
        for component_ids in self.component_sets():
            if component_ids not in in_use:
                self.manager.forget(component_ids)
                continue
            self.manager.set_system_bounds(
                component_ids, self.system_bounds(component_ids, now)
            )

    def _sets_in_use(self) -> set[ComponentSet]:
        """The pool's whole set, the sets with proposals and those holding setpoints."""
        in_use = {
            ids for ids in self.manager.component_sets() if self.manager.proposals(ids)
        }
        in_use.update(self._sent)
        if self.component_ids:
            in_use.add(self.component_ids)
        return in_use

    def forget(self, component_ids: Collection[int]) -> None:
        """Forget that these components hold a setpoint (e.g. its refresh failed)."""
        for sent in self._sent.values():
            for cid in component_ids:
                sent.pop(cid, None)

    def commands(self, component_id: int) -> bool:
        """Whether one of this pool's sets holds a setpoint on the component."""
        return any(component_id in sent for sent in self._sent.values())

    def still_allows(self, component_id: int, power: float) -> bool:
        """Whether the latest telemetry allows a standing setpoint to be re-sent.

        The distributor asks before each keep-alive refresh: the value was
        decided on the bounds of its time. 0 W always (how a component is
        released); any other value only inside the component's fresh AC bounds
        — unknown or stale bounds allow nothing, as on a tick a component
        without fresh bounds gets no setpoint.
        """
        if power == 0.0:
            return True
        bounds = self.context.store.fresh_view().bounds(component_id, members.AC_POWER)
        return bounds is not None and bounds.allows(power)

    def commanded(self) -> dict[int, float]:
        """Every setpoint this pool has standing, per component."""
        return {cid: p for sent in self._sent.values() for cid, p in sent.items()}

    async def release_all(self) -> None:
        """Stop keeping this pool's setpoints alive; they lapse to the default."""
        released = frozenset(self.commanded())
        self._sent.clear()
        await self.context.distributor.release(released)

    async def _send(
        self,
        component_ids: ComponentSet,
        setpoints: Mapping[int, float],
        to_send: Mapping[int, float],
    ) -> DispatchReport:
        """Send `to_send`, release what the set no longer commands, remember it.

        `setpoints` is the set's complete new state; components that had a
        setpoint from this set but have none now stop being kept alive (nothing is
        sent to them: they may be broken).
        """
        distributor = self.context.distributor
        old = self._sent.get(component_ids, {})
        dropped = frozenset(old.keys() - setpoints.keys())
        if dropped:
            await distributor.release(dropped)
        report = await distributor.apply(to_send) if to_send else DispatchReport()
        sent = {
            cid: to_send[cid] if cid in to_send else old[cid]
            for cid in setpoints
            if cid not in report.failed and (cid in to_send or cid in old)
        }
        if sent:
            self._sent[component_ids] = sent
        else:
            self._sent.pop(component_ids, None)
        return report

    def _changes(
        self,
        component_ids: ComponentSet,
        setpoints: Mapping[int, float],
        bounds: Mapping[int, PowerBounds],
        target: float,
        now: float,
    ) -> dict[int, float] | None:
        """The setpoints a tick must send for a set, or `None` if none is due.

        Due: a standing setpoint that its component's `bounds` no longer allow
        (safety first), a change of components, or a setpoint that drifted beyond
        the tolerance; then the whole set is sent. A component blocked after a
        failed command that holds nothing is left out until its block has run out,
        so the back-off is honoured.
        """
        old = self._sent.get(component_ids, {})
        candidates = {
            cid: power
            for cid, power in setpoints.items()
            if cid in old or not self._is_blocked(cid, now)
        }
        unsafe = any(
            cid in bounds and not bounds[cid].allows(power)
            for cid, power in old.items()
        )
        if unsafe or drifted(old, candidates, resend_tolerance(target)):
            return candidates
        return None

    def _is_blocked(self, component_id: int, now: float) -> bool:
        """Whether the component is blocked after a failed command (`UNCERTAIN`)."""
        health = self.context.health
        return health.health(component_id, now) is ComponentHealth.UNCERTAIN

    def _drop(self, component_ids: ComponentSet) -> None:
        self._sent.pop(component_ids, None)

    def _is_steered(self, component_ids: ComponentSet) -> bool:
        return component_ids in self._sent

    def _targets(self) -> Iterator[tuple[ComponentSet, float | None]]:
        """Yield each set to steer with its target; `None`: the target went away.

        A set whose target went away is yielded only if this pool still steers
        it, so that the pool releases it once (each pool knows how); a set that
        was never steered and has no target is left alone.
        """
        for component_ids in self.component_sets():
            target = self.manager.steering_target(component_ids)
            if target is not None or self._is_steered(component_ids):
                yield component_ids, target

    @abstractmethod
    def system_bounds(self, component_ids: ComponentSet, now: float) -> PowerBounds:
        """What the set's working components allow together right now."""

    @abstractmethod
    async def steer(self, now: float, *, force: Iterable[ComponentSet] = ()) -> Results:
        """Bring every steered set's setpoints in line with its target.

        Sets in `force` are sent in full (a new proposal: the actor wants to know
        the outcome); the others only when their setpoints changed or became
        unsafe. Return a result per set that was distributed.
        """
