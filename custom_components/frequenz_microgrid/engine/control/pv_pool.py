"""PV pool steering: a production limit → proportional curtailment per inverter.

Per component set with a target (spec §1: matryoshka, full production by
default), the working inverters get `distribute_pv_power` of the target with
their current bounds. PV is left alone while nobody proposes anything: its own
default is full production. When the last proposal goes away, full production
is sent once explicitly (so curtailment ends at once, not when the lifetime
lapses) and the setpoints are then no longer kept alive.

The set's inverters that get no setpoint (silent, failed, blocked) go on
producing: what they produce (or, silent, the most they may) is taken off the
production limit first, as the battery pool subtracts unreachable power, so the
set together stays within it.

Each inverter's limit in force is remembered with the time it was sent, so
that an inverter producing clearly less than its limit (the sun, not the
limit, holds it there) gives the rest of its share to the others
(`distribute_pv_power`'s give-back).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
import dataclasses
import math

from .. import members
from ..bounds import PowerBounds
from ..distribution.pv import PvInverterInput, distribute_pv_power
from ..power_manager import PowerManager
from ..results import Request
from .grid_fuse import FuseBudget, FuseRoomOf
from .inputs import pv_inputs, summed_ac_bounds
from .status import Pool
from .steering import (
    ComponentSet,
    PoolSteering,
    Results,
    SteeringContext,
    dispatch_result,
)


class PvPoolSteering(PoolSteering):
    """Steers the PV inverters (matryoshka, full production by default)."""

    pool = Pool.PV

    def __init__(
        self,
        context: SteeringContext,
        manager: PowerManager,
        *,
        fuse_room: FuseRoomOf | None = None,
    ) -> None:
        """Steer every PV inverter of the topology.

        `fuse_room` bounds the production limits by the grid fuse (`grid_fuse`):
        neither more curtailment than the fuse carries for import, nor more
        production than it carries for export.
        """
        super().__init__(context, manager, context.topology.pv_inverter_ids)
        self._fuse_room = fuse_room
        self._limits: dict[int, tuple[float, float]] = {}
        """Per inverter, the production limit in force (W, ≥ 0) and when it was
        sent (wall-clock seconds)."""
        self._judged: dict[int, tuple[float, float]] = {}
        """Per inverter, the last production read under a settled limit and that
        limit: used until a reading under the newer limit settles, so the split
        does not fall back to the ratings in between."""
        self.wanted_w: float | None = None
        """The production limits the sets' targets asked for last round, before
        the grid fuse bounded them (`None`: no target): a limit above what the
        inverters produce adds import, and the EV chargers leave room for it."""
        self.before_import_rise: Callable[[], Awaitable[None]] | None = None
        """Awaited each round once `wanted_w` is known, before the fuse's room is
        taken and anything is sent: the controller has the EV chargers lowered
        first where they counted on a production now curtailed."""

    def system_bounds(self, component_ids: ComponentSet, now: float) -> PowerBounds:
        """The working inverters' bounds added up."""
        working = self.context.health.working(component_ids, now)
        return summed_ac_bounds(self.context.store, working)

    async def steer(self, now: float, *, force: Iterable[ComponentSet] = ()) -> Results:
        """Curtail every set with a target; restore full production when it ends."""
        forced = set(force)
        results: Results = {}
        targets = list(self._targets())
        asked = [target for _, target in targets if target is not None]
        self.wanted_w = math.fsum(asked) if asked else None
        if self.before_import_rise is not None:
            await self.before_import_rise()
        fuse = self._fuse_budget([ids for ids, _ in targets])
        for component_ids, target in targets:
            releasing = target is None
            limited_by: str | None = None
            if target is None:
                system = self.system_bounds(component_ids, now)
                target = self.manager.default_power.of(system)
            else:
                target, limited_by = fuse.bound_explained(target, component_ids)
            working = self.context.health.working(component_ids, now)
            inputs = [
                self._with_judgement(i)
                for i in pv_inputs(self.context.store, working, self._limits)
            ]
            share = target  # what the inverters that get setpoints may produce
            if not releasing:
                steered = frozenset(i.component_id for i in inputs)
                outside = self._production_outside(component_ids, steered)
                share = min(0.0, target + outside)
            setpoints = distribute_pv_power(share, inputs)
            to_send = setpoints
            if not (releasing or component_ids in forced):
                bounds = {i.component_id: i.bounds for i in inputs}
                changes = self._changes(component_ids, setpoints, bounds, target, now)
                if changes is None:
                    continue
                to_send = changes
            report = await self._send(component_ids, setpoints, to_send)
            self._note_limits(to_send, report.failed, releasing=releasing)
            request = Request(
                power=target, component_ids=component_ids, limited_by=limited_by
            )
            results[component_ids] = dispatch_result(request, setpoints, report)
            if releasing:
                await self.context.distributor.release(frozenset(setpoints))
                self._drop(component_ids)
        standing = frozenset().union(*self._sent.values())
        for cid in self._limits.keys() - standing:
            del self._limits[cid]  # released or dropped: no limit in force
        for cid in self._judged.keys() - self._limits.keys():
            del self._judged[cid]
        return results

    def _production_outside(
        self, component_ids: ComponentSet, steered: frozenset[int]
    ) -> float:
        """What the set's inverters without a setpoint may produce (W, ≥ 0).

        Those not `steered`: not working, or working without fresh bounds.
        Measured, while they send data; a silent one the most its last bounds
        allowed: its old setpoint lapses to full production, and what the sun
        gives it now is unknown (a limit is kept, at the cost of some yield).
        """
        store = self.context.store
        total = 0.0
        for cid in component_ids - steered:
            measured = store.value(cid, members.AC_POWER)
            if measured is not None:
                total += max(0.0, -measured)
                continue
            bounds = store.last_known_bounds(cid, members.AC_POWER)
            if bounds is not None:  # none: it never sent any, never produced
                total += PvInverterInput(component_id=cid, bounds=bounds).available_w
        return total

    def _with_judgement(self, inverter: PvInverterInput) -> PvInverterInput:
        """The inverter with its latest settled production under a limit."""
        cid = inverter.component_id
        if inverter.limit_w is not None and inverter.limit_w > 0.0:
            self._judged[cid] = (inverter.produced_w, inverter.limit_w)
            return inverter
        # Under a 0 W limit (switched off, e.g. its share fell below its
        # smallest production) a reading tells nothing of what the sun gives
        # it: the judgement before stands (else it flipped back every round).
        judged = self._judged.get(cid)
        if judged is None:
            return inverter
        return dataclasses.replace(inverter, produced_w=judged[0], limit_w=judged[1])

    def _note_limits(
        self, sent: Mapping[int, float], failed: Collection[int], *, releasing: bool
    ) -> None:
        """Remember the limits that changed, from now; forget released ones."""
        at = self.context.store.wall_time_s()
        for cid, power in sent.items():
            if releasing or cid in failed:
                self._limits.pop(cid, None)
            elif self._limits.get(cid, (math.nan,))[0] != -power:
                self._limits[cid] = (-power, at)

    @property
    def inverter_ids(self) -> frozenset[int]:
        """The inverters that carry the pool's power (its own components)."""
        return self.component_ids

    def _fuse_budget(self, steered: Iterable[ComponentSet]) -> FuseBudget:
        """The grid fuse's room for this round's sets (`grid_fuse`).

        Not even looked up without a set to steer (no cost on a quiet site).
        """
        steered = list(steered)
        if self._fuse_room is None or not steered:
            return FuseBudget(None)
        unsteered = self.inverter_ids.difference(*steered)
        return FuseBudget(
            self._fuse_room(self.inverter_ids),
            self.context.store.fresh_values(members.AC_POWER, unsteered).values(),
            production_limits=True,
        )
