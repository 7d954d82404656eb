"""EV charger distribution: a fair, phase-aware, fuse-safe share of the pool target.

The SDK's EV charger manager hands a new EV 10 A on three phases (6 A if only that
fits), raises allocations at most every 60 s, throttles to 6 A and then 0 when the
target drops, and knows nothing about phases or fuses. This allocator keeps that
floor (an EV without a charger setpoint never charges; no EV means 0 W; a target drop
acts at once) and goes further (spec §4):

- **Per-phase fuse.** Currents are planned per phase L1–L3 against
  ``phase_limit_a − fuse_tolerance_a`` minus the current of loads behind the same
  fuse that are not controlled here (estimated from readings that belong
  together, see `ev_fuse`). Single-phase EVs count on their phase only.
- **Fair share.** Max-min fair water-filling in amperes: every charging EV gets the
  same current unless its charger maximum, its own demand, a phase or the pool target
  (in watts, each EV counted at what it draws: a one-phase EV behind a
  three-phase charger at a third of its setpoint's watts) holds it lower. Each
  setpoint is either 0 W or between ``min_current_a × phases × V`` and
  ``max_current_a × phases × V``.
- **Circuits.** Beside the fuse of the whole pool, any number of circuits
  (`CircuitCapacity`: a feeder's chargers with the current per phase and the
  power in W left for them this round) bound the chargers behind them; a
  charger's current never exceeds what any of its circuits leaves on any phase,
  and sharing is max-min fair within each circuit.
- **Who charges when not everyone fits.** When the limit cannot give every EV its
  minimum (6 A), EVs are admitted in a deterministic order – priority, then who has
  waited longest – and rotate: an EV that has charged for ``min_dwell_s`` yields to
  one that is waiting. A boosted EV (`EvChargerInput.boost`) comes before all.
- **Modes.** The charging hub's charger modes (`engine.hub.modes`) only narrow an
  input: a 0 W hold (`held_off`), an upper limit (`mode_max_current_a`) or boost.
- **Who gets the rest first (deadlines).** Once the admitted EVs have their
  minimum, the current above it is filled in stages (`ev_fair_share`): boosted
  EVs first, then EVs with a deadline target by least laxity first
  (`EvChargerInput.laxity_s`, datafev's LLF; laxities within
  ``laxity_tolerance_s`` count as equal and share max-min fairly), then by
  priority, then an equal split of the rest. Each stage only takes what every
  constraint leaves after the earlier stages and the later stages' minimums, so
  the fuse, the circuits and the target bind exactly as before; with no boost,
  target or priority it is one stage, the plain max-min fair split.
- **Give-back.** An EV that draws well below its allocation for
  ``give_back_after_s`` is capped near what it draws, so the others get the rest
  within seconds; the cap grows back as soon as the EV draws more.
- **No flapping.** A charger's current is not changed for deltas below
  ``hysteresis_a``, and a charger is not switched on/off again within
  ``min_dwell_s`` of its last switch (relay wear). Safety is never delayed: when the
  fuse or the target would be exceeded, setpoints drop immediately.

Public API::

    allocator = EvChargerAllocator(EvAllocatorConfig(phase_limit_a=32.0))
    allocation = allocator.allocate(
        target_w,                      # pool target (W, ≥ 0; negative = 0)
        chargers,                      # Sequence[EvChargerInput]
        now,                           # monotonic seconds (injected, for tests)
        other_currents_a=(4.0, 0.0, 2.5),  # optional per-phase non-EV load (A)
    )
    allocation.powers()                # {component_id: watts}
    allocation.setpoints[cid].reason   # EvAllocationReason, for diagnostics

The allocator is pure apart from its per-charger memory (allocations, switch times,
give-back caps); it never reads a clock, so every behaviour is reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
import math

from .ev_allocation import (
    ALL_PHASES,
    PHASES,
    CircuitCapacity,
    EvAllocation,
    EvAllocationReason,
    EvAllocatorConfig,
    EvChargerInput,
    EvChargerSetpoint,
)
from .ev_fair_share import (
    EPSILON,
    Candidate,
    Constraint,
    constraints_of,
    staged_fill,
    target_watts_per_amp,
)

__all__ = [
    "ALL_PHASES",
    "PHASES",
    "CircuitCapacity",
    "EvAllocation",
    "EvAllocationReason",
    "EvAllocatorConfig",
    "EvChargerAllocator",
    "EvChargerInput",
    "EvChargerSetpoint",
]


@dataclass(slots=True)
class _ChargerMemory:
    """What the allocator remembers about one charger's current charging session."""

    queued_since: float
    """Plug-in or switch-off time while waiting; switch-on time while charging."""
    allocated_a: float = 0.0
    """Current (per phase) of the last setpoint; 0 = switched off."""
    last_switch_at: float | None = None
    """When this session's charger was last switched on or off by us."""
    under_use_since: float | None = None
    """Since when the EV draws well below its allocation; None = it does not."""
    demand_cap_a: float | None = None
    """Give-back cap on the allocation (A); None = only the charger maximum."""


class EvChargerAllocator:
    """Turns the pool target into per-charger setpoints, round after round.

    Call `allocate` whenever the target or the chargers' data change (at least every
    few seconds while EVs charge, so give-back and rotation can happen).
    """

    def __init__(self, config: EvAllocatorConfig | None = None) -> None:
        """Start with no memory: the first round allocates from scratch."""
        self._config = config or EvAllocatorConfig()
        self._memory: dict[int, _ChargerMemory] = {}

    @property
    def config(self) -> EvAllocatorConfig:
        """The configuration this allocator runs with."""
        return self._config

    def allocate(
        self,
        target_w: float,
        chargers: Sequence[EvChargerInput],
        now: float,
        *,
        other_currents_a: tuple[float, float, float] | None = None,
        circuits: Sequence[CircuitCapacity] = (),
    ) -> EvAllocation:
        """Return this round's setpoints and remember them for the next round.

        Args:
            target_w: Pool target (W). EVs only charge: a negative or NaN target
                means 0 W.
            chargers: Every charger of the pool, with or without an EV.
            now: Current time in seconds (monotonic, injected).
            other_currents_a: Per-phase current (A) of loads behind the same fuse
                that this allocator does not control; NaN counts as "the whole
                phase is taken" (no data, no risk) and a negative current (local
                production) is not credited, as it can vanish at any moment.
                Ignored without a phase limit.
            circuits: Further circuits the chargers are behind, each with what it
                leaves them this round; a charger in none is bound only by the
                phase limit and the target.
        """
        target = target_w if target_w > 0.0 else 0.0  # also maps NaN to 0
        capacity = self._phase_capacity(other_currents_a)
        held = tuple(circuit.sanitized() for circuit in circuits)
        setpoints: dict[int, EvChargerSetpoint] = {}
        candidates: list[Candidate] = []
        self._forget_disconnected(chargers)
        for charger in chargers:
            reason = self._ineligibility(charger)
            if reason is not None:
                setpoints[charger.component_id] = _off(charger, reason)
                continue
            memory = self._memory.setdefault(
                charger.component_id,
                _ChargerMemory(queued_since=now),
            )
            voltage = self._voltage(charger)
            self._track_demand(memory, charger, voltage, now)
            ceiling = min(
                charger.max_current_a,
                max(charger.min_current_a, charger.mode_max_current_a),
            )
            if memory.demand_cap_a is not None:
                ceiling = max(charger.min_current_a, min(ceiling, memory.demand_cap_a))
            candidates.append(
                Candidate(charger, voltage, ceiling, self._config.nominal_voltage_v)
            )

        admitted, refused = self._admit(candidates, capacity, target, held, now)
        for candidate, reason in refused:
            setpoints[candidate.component_id] = _off(candidate.charger, reason)

        constraints = constraints_of(admitted, capacity, target, held)
        fair = staged_fill(admitted, constraints, self._stages(admitted))
        currents = self._apply_hysteresis(admitted, fair, constraints)
        for candidate in admitted:
            current, reason = currents[candidate.component_id]
            setpoints[candidate.component_id] = EvChargerSetpoint(
                component_id=candidate.component_id,
                power_w=current * candidate.watts_per_amp,
                current_a=current,
                phases=candidate.charger.phases,
                reason=reason,
                drawn_power_w=current * candidate.target_watts_per_amp,
            )
        self._remember(setpoints, now)
        return EvAllocation(
            target_w=target,
            setpoints=setpoints,
            phase_capacity_a=capacity,
            circuits=held,
        )

    # -- inputs ---------------------------------------------------------------

    def _phase_capacity(
        self, other_currents_a: tuple[float, float, float] | None
    ) -> tuple[float, float, float]:
        """Current the EVs may use per phase: limit − tolerance − other loads."""
        limit = self._config.phase_limit_a
        if limit is None:
            return (math.inf, math.inf, math.inf)
        others = other_currents_a or (0.0, 0.0, 0.0)
        usable = limit - self._config.fuse_tolerance_a
        l1, l2, l3 = (
            max(0.0, usable - max(0.0, other)) if not math.isnan(other) else 0.0
            for other in others
        )
        return (l1, l2, l3)

    def _voltage(self, charger: EvChargerInput) -> float:
        voltage = charger.voltage_v
        if voltage is None or not 0.0 < voltage < math.inf:
            return self._config.nominal_voltage_v
        return voltage

    @staticmethod
    def _ineligibility(charger: EvChargerInput) -> EvAllocationReason | None:
        """Return why a charger gets 0 W no matter what, or None if it may charge."""
        if not charger.ev_connected:
            return EvAllocationReason.NO_EV
        if not charger.working:
            return EvAllocationReason.NOT_WORKING
        if (
            not charger.phases
            or not set(charger.phases) <= set(PHASES)
            or not 0.0 < charger.min_current_a <= charger.max_current_a
            or not math.isfinite(charger.max_current_a)
        ):
            return EvAllocationReason.INVALID_LIMITS
        return charger.held_off

    def _forget_disconnected(self, chargers: Sequence[EvChargerInput]) -> None:
        """Drop the memory of sessions that ended: a new EV starts afresh."""
        connected = {c.component_id for c in chargers if c.ev_connected}
        for component_id in list(self._memory):
            if component_id not in connected:
                del self._memory[component_id]

    def _track_demand(
        self,
        memory: _ChargerMemory,
        charger: EvChargerInput,
        voltage: float,
        now: float,
    ) -> None:
        """Update the give-back cap from what the EV draws of its allocation.

        An EV under-using its allocation by more than the margin for
        `give_back_after_s` is capped at what it draws plus headroom; when it draws
        more, the cap follows it up (by at least the headroom per round), so an EV
        that wakes up gets its share back within a few rounds without flapping.
        """
        if memory.allocated_a <= 0.0:
            memory.under_use_since = None
            return
        drawn = _drawn_current(
            charger,
            target_watts_per_amp(charger, voltage, self._config.nominal_voltage_v),
        )
        if math.isnan(drawn) or charger.confirmed_limit_a is None:
            return  # no verdict on readings that may answer an older setpoint
        in_force = min(memory.allocated_a, charger.confirmed_limit_a)
        config = self._config
        if drawn < in_force - config.give_back_margin_a:
            if memory.under_use_since is None:
                memory.under_use_since = now
            if now - memory.under_use_since >= config.give_back_after_s:
                memory.demand_cap_a = drawn + config.give_back_headroom_a
            return
        memory.under_use_since = None
        if memory.demand_cap_a is None:
            return
        raised = max(memory.demand_cap_a, drawn + config.give_back_headroom_a)
        memory.demand_cap_a = None if raised >= charger.max_current_a else raised

    # -- who charges ----------------------------------------------------------

    def _admit(
        self,
        candidates: Sequence[Candidate],
        capacity: tuple[float, float, float],
        target_w: float,
        circuits: Sequence[CircuitCapacity],
        now: float,
    ) -> tuple[list[Candidate], list[tuple[Candidate, EvAllocationReason]]]:
        """Choose the EVs that charge: as many as fit at their minimum current.

        Order: EVs inside their on-dwell first (not rotated out early), then by
        priority, then waiting EVs before charging ones, then by turn (see
        `_admission_key`). An EV that does not fit is skipped, so a smaller one
        behind it may still fit – in its circuits as well as in the pool's fuse:
        an EV whose feeder is full waits while one on another feeder may start.
        Safety overrides dwell: an EV in its dwell that no longer fits is
        switched off.
        """
        remaining_phase = list(capacity)
        remaining_power = target_w
        circuit_phase = [list(c.phase_capacity_a) for c in circuits]
        circuit_power = [c.power_capacity_w for c in circuits]
        admitted: list[Candidate] = []
        refused: list[tuple[Candidate, EvAllocationReason]] = []
        for candidate in sorted(candidates, key=lambda c: self._admission_key(c, now)):
            memory = self._memory[candidate.component_id]
            if memory.allocated_a <= 0.0 and self._in_dwell(memory, now):
                refused.append((candidate, EvAllocationReason.DWELL))
                continue
            minimum = candidate.charger.min_current_a
            # The target and the circuits' power limits count what it draws.
            target_power = minimum * candidate.target_watts_per_amp
            drawn_power = minimum * candidate.drawn_watts_per_amp
            phases = candidate.charger.phases
            inside = [
                index
                for index, circuit in enumerate(circuits)
                if candidate.component_id in circuit.charger_ids
            ]
            fits = (
                target_power <= remaining_power + EPSILON
                and all(minimum <= remaining_phase[p - 1] + EPSILON for p in phases)
                and all(
                    drawn_power <= circuit_power[index] + EPSILON
                    and all(
                        minimum <= circuit_phase[index][p - 1] + EPSILON for p in phases
                    )
                    for index in inside
                )
            )
            if not fits:
                refused.append((candidate, EvAllocationReason.WAITING))
                continue
            admitted.append(candidate)
            remaining_power -= target_power
            for phase in phases:
                remaining_phase[phase - 1] -= minimum
            for index in inside:
                circuit_power[index] -= drawn_power
                for phase in phases:
                    circuit_phase[index][phase - 1] -= minimum
        return admitted, refused

    def _admission_key(
        self, candidate: Candidate, now: float
    ) -> tuple[bool, bool, int, bool, float, int]:
        """Sort key: boost, protected, priority, waiting before charging, then turn.

        A waiting EV's turn comes the longer it has waited (earliest queue time
        first); among charging EVs the one that started last keeps its slot, so the
        one that has charged longest is the first to yield (round robin).
        """
        memory = self._memory[candidate.component_id]
        charging = memory.allocated_a > 0.0
        protected = charging and self._in_dwell(memory, now)
        priority = self._config.priorities.get(candidate.component_id, 0)
        turn = -memory.queued_since if charging else memory.queued_since
        return (
            not candidate.charger.boost,
            not protected,
            -priority,
            charging,
            turn,
            candidate.component_id,
        )

    def _stages(self, admitted: Sequence[Candidate]) -> dict[int, tuple[int, ...]]:
        """Each admitted EV's stage key: boost, then laxity group, then priority.

        Lower keys are filled first. Laxities are grouped greedily from the
        smallest: a group holds every laxity within `laxity_tolerance_s` of its
        first one, so equal (or nearly equal) laxities share one stage.
        """
        laxities = sorted(
            {
                c.charger.laxity_s
                for c in admitted
                if c.charger.laxity_s is not None and not math.isnan(c.charger.laxity_s)
            }
        )
        group_of: dict[float, int] = {}
        group, group_start = -1, -math.inf
        for laxity in laxities:
            if group < 0 or laxity - group_start > self._config.laxity_tolerance_s:
                group, group_start = group + 1, laxity
            group_of[laxity] = group
        no_target = len(laxities)
        return {
            c.component_id: (
                0 if c.charger.boost else 1,
                group_of.get(
                    c.charger.laxity_s if c.charger.laxity_s is not None else math.nan,
                    no_target,
                ),
                -self._config.priorities.get(c.component_id, 0),
            )
            for c in admitted
        }

    def _in_dwell(self, memory: _ChargerMemory, now: float) -> bool:
        return (
            memory.last_switch_at is not None
            and now - memory.last_switch_at < self._config.min_dwell_s
        )

    # -- how much -------------------------------------------------------------

    def _apply_hysteresis(
        self,
        admitted: Sequence[Candidate],
        fair: Mapping[int, tuple[float, EvAllocationReason]],
        constraints: Sequence[Constraint],
    ) -> dict[int, tuple[float, EvAllocationReason]]:
        """Keep a charging EV's previous current when the change would be small.

        Keeping a higher previous current must not break a fuse or the target: if
        it would, those EVs take their new, lower current at once.
        """
        chosen = dict(fair)
        kept_higher: set[int] = set()
        for candidate in admitted:
            component_id = candidate.component_id
            previous = self._memory[component_id].allocated_a
            current = fair[component_id][0]
            if (
                previous > 0.0
                and EPSILON < abs(current - previous) < self._config.hysteresis_a
                and candidate.charger.min_current_a
                <= previous
                <= candidate.charger.max_current_a
            ):
                chosen[component_id] = (previous, EvAllocationReason.HYSTERESIS)
                if previous > current:
                    kept_higher.add(component_id)
        for constraint in constraints:
            load = math.fsum(
                weight * chosen[cid][0] for cid, weight in constraint.weights.items()
            )
            if load <= constraint.capacity + EPSILON:
                continue
            for component_id in kept_higher & constraint.weights.keys():
                chosen[component_id] = fair[component_id]
        return chosen

    def _remember(
        self,
        setpoints: Mapping[int, EvChargerSetpoint],
        now: float,
    ) -> None:
        """Record allocations and on/off switches for dwell, rotation, give-back.

        Chargers with an EV that are not candidates (not working) count as
        switched off, so they start over cleanly when they work again.
        """
        for component_id, memory in self._memory.items():
            if component_id not in setpoints:
                continue
            current = setpoints[component_id].current_a
            switched = (current > 0.0) != (memory.allocated_a > 0.0)
            if switched:
                memory.last_switch_at = now
                memory.queued_since = now
            if current > memory.allocated_a or current == 0.0:
                # More current (or none) gives the EV time to ramp before it can be
                # found under-using its allocation.
                memory.under_use_since = None
            if current == 0.0:
                memory.demand_cap_a = None
            memory.allocated_a = current


def _off(charger: EvChargerInput, reason: EvAllocationReason) -> EvChargerSetpoint:
    return EvChargerSetpoint(
        component_id=charger.component_id,
        power_w=0.0,
        current_a=0.0,
        phases=charger.phases,
        reason=reason,
        drawn_power_w=0.0,
    )


def _drawn_current(charger: EvChargerInput, watts_per_amp: float) -> float:
    """Current the EV draws per phase (A): the largest of its phases' currents.

    Without them, its power over what it draws per ampere (`watts_per_amp`: a
    one-phase EV behind a three-phase charger at its one phase's voltage).
    """
    currents = [charger.measured_currents_a[p - 1] for p in charger.phases]
    if currents and not any(math.isnan(c) for c in currents):
        return max(currents)
    return charger.measured_power_w / watts_per_amp
