"""Max-min fair filling of per-phase EV currents under linear constraints.

Each constraint is a cap ``Σ weight × current ≤ capacity`` over some EVs: a
phase of a fuse (weight 1 A/A), the pool target or a circuit's power limit
(weight W/A). A common current level rises until a constraint is full or EVs
reach their ceiling (progressive filling), which is max-min fair; stages fill
one after another (boost, least laxity, priority) so earlier stages get the
rest first without any constraint being broken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
import itertools
import math

from .ev_allocation import (
    ALL_PHASES,
    PHASES,
    CircuitCapacity,
    EvAllocationReason,
    EvChargerInput,
)

EPSILON = 1e-9
"""Tolerance of current and power comparisons (A, W)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A charger with an EV that may receive current this round."""

    charger: EvChargerInput
    voltage_v: float
    ceiling_a: float
    """Charger maximum, lowered by the give-back cap."""
    nominal_voltage_v: float
    """The allocator's nominal phase voltage (the EV's own phases carry it)."""

    @property
    def component_id(self) -> int:
        """The charger's component id."""
        return self.charger.component_id

    @property
    def watts_per_amp(self) -> float:
        """Setpoint watts per ampere of per-phase current."""
        return len(self.charger.phases) * self.voltage_v

    @property
    def drawn_watts_per_amp(self) -> float:
        """Active power the EV draws per ampere of per-phase current (W/A).

        On its own phases only: a one-phase EV behind a three-phase charger
        draws a third of the watts its setpoint carries (`watts_per_amp`, over
        the charger's three phases). A circuit's power limit is measured at its
        meter, so it is charged with these; at the EV's `phase_voltage_v`
        (without it, the nominal one), never less than the setpoint's watts
        over the EV's share of the charger's phases (a voltage above it).
        """
        return drawn_watts_per_amp(self.charger, self.voltage_v, self.nominal_voltage_v)

    @property
    def target_watts_per_amp(self) -> float:
        """What the pool target counts per ampere (W/A): what the EV draws.

        The target is the pool's measured power, so what a one-phase EV leaves
        of its setpoint's watts goes to the others. Only for an EV whose
        `phase_voltage_v` says so (as the steering describes every EV); without
        it, its setpoint's watts.
        """
        return target_watts_per_amp(
            self.charger, self.voltage_v, self.nominal_voltage_v
        )


def drawn_watts_per_amp(
    charger: EvChargerInput, voltage_v: float, nominal_voltage_v: float
) -> float:
    """`Candidate.drawn_watts_per_amp` of `charger` converting at `voltage_v`."""
    phases = len(charger.phases)
    phase_voltage = _phase_voltage(charger) or nominal_voltage_v
    return max(phases * phase_voltage, voltage_v * phases**2 / len(ALL_PHASES))


def target_watts_per_amp(
    charger: EvChargerInput, voltage_v: float, nominal_voltage_v: float
) -> float:
    """`Candidate.target_watts_per_amp` of `charger` converting at `voltage_v`."""
    if _phase_voltage(charger) is None:
        return len(charger.phases) * voltage_v
    return drawn_watts_per_amp(charger, voltage_v, nominal_voltage_v)


def _phase_voltage(charger: EvChargerInput) -> float | None:
    voltage = charger.phase_voltage_v
    if voltage is None or not 0.0 < voltage < math.inf:
        return None
    return voltage


@dataclass(frozen=True, slots=True)
class Constraint:
    """A linear cap ``Σ weight_i × current_i ≤ capacity`` shared by some EVs."""

    reason: EvAllocationReason
    capacity: float
    weights: Mapping[int, float]


def constraints_of(
    admitted: Sequence[Candidate],
    capacity: tuple[float, float, float],
    target_w: float,
    circuits: Sequence[CircuitCapacity] = (),
) -> list[Constraint]:
    """The constraints the allocation must hold.

    The per-phase fuse (A), the pool target (W), and per circuit its per-phase
    (A) and power (W) constraints over the chargers behind it. Watts count what
    each EV draws (`Candidate.target_watts_per_amp`,
    `Candidate.drawn_watts_per_amp`), as the pool's and the circuits' power is
    measured; amperes count on the EV's own phases.
    """
    constraints = [
        Constraint(
            EvAllocationReason.PHASE_LIMIT,
            capacity[phase - 1],
            {c.component_id: 1.0 for c in admitted if phase in c.charger.phases},
        )
        for phase in PHASES
        if math.isfinite(capacity[phase - 1])
    ]
    constraints.append(
        Constraint(
            EvAllocationReason.TARGET,
            target_w,
            # The target is the pool's power: each EV at what it draws.
            {c.component_id: c.target_watts_per_amp for c in admitted},
        )
    )
    for circuit in circuits:
        behind = [c for c in admitted if c.component_id in circuit.charger_ids]
        constraints.extend(
            Constraint(
                EvAllocationReason.PHASE_LIMIT,
                circuit.phase_capacity_a[phase - 1],
                {c.component_id: 1.0 for c in behind if phase in c.charger.phases},
            )
            for phase in PHASES
            if math.isfinite(circuit.phase_capacity_a[phase - 1])
        )
        if math.isfinite(circuit.power_capacity_w):
            constraints.append(
                Constraint(
                    EvAllocationReason.CIRCUIT_LIMIT,
                    circuit.power_capacity_w,
                    {c.component_id: c.drawn_watts_per_amp for c in behind},
                )
            )
    return [c for c in constraints if c.weights]


def staged_fill(
    admitted: Sequence[Candidate],
    constraints: Sequence[Constraint],
    stages: Mapping[int, tuple[int, ...]],
) -> dict[int, tuple[float, EvAllocationReason]]:
    """Fill the stages in order; within one stage, max-min fair.

    While a stage is filled, the EVs of earlier stages hold what they got and
    those of later stages their minimum, so every constraint keeps room for the
    later minimums (admission made sure all minimums fit). One stage is the
    plain max-min fair split.
    """
    order = sorted(set(stages.values()))
    if len(order) <= 1:
        return max_min_fair(admitted, constraints)
    chosen: dict[int, tuple[float, EvAllocationReason]] = {}
    for stage in order:
        members = [c for c in admitted if stages[c.component_id] == stage]
        ids = {c.component_id for c in members}
        held = {
            c.component_id: chosen[c.component_id][0]
            if c.component_id in chosen
            else c.charger.min_current_a
            for c in admitted
            if c.component_id not in ids
        }
        narrowed = [
            Constraint(
                constraint.reason,
                constraint.capacity
                - math.fsum(
                    weight * held[cid]
                    for cid, weight in constraint.weights.items()
                    if cid in held
                ),
                {
                    cid: weight
                    for cid, weight in constraint.weights.items()
                    if cid in ids
                },
            )
            for constraint in constraints
        ]
        chosen.update(max_min_fair(members, [c for c in narrowed if c.weights]))
    return chosen


def max_min_fair(
    admitted: Sequence[Candidate], constraints: Sequence[Constraint]
) -> dict[int, tuple[float, EvAllocationReason]]:
    """Progressive filling: raise a common current level until something binds.

    Every unfrozen EV gets ``clamp(level, min, ceiling)``. The level rises until a
    constraint is full or EVs reach their ceiling; the EVs held there are frozen
    and the level keeps rising for the others. The result is max-min fair: no EV
    gets more than another unless the other is held by its ceiling or a full
    constraint (or the first is held up by its own minimum).

    Precondition: every constraint admits all EVs at their minimum.
    """
    floors = {c.component_id: c.charger.min_current_a for c in admitted}
    ceilings = {c.component_id: c.ceiling_a for c in admitted}
    frozen: dict[int, tuple[float, EvAllocationReason]] = {}
    active = set(floors)
    while active:
        level = max(ceilings[cid] for cid in active)
        binding: list[Constraint] = []
        for constraint in constraints:
            members = active & constraint.weights.keys()
            if not members:
                continue
            fixed_load = math.fsum(
                constraint.weights[cid] * frozen[cid][0]
                for cid in constraint.weights.keys() & frozen.keys()
            )
            limit = _highest_level(
                [
                    (constraint.weights[cid], floors[cid], ceilings[cid])
                    for cid in members
                ],
                constraint.capacity - fixed_load,
            )
            if limit < level - EPSILON:
                level, binding = limit, [constraint]
            elif limit <= level + EPSILON:
                binding.append(constraint)
        newly_frozen: dict[int, tuple[float, EvAllocationReason]] = {}
        for constraint in binding:
            for cid in active & constraint.weights.keys():
                newly_frozen.setdefault(
                    cid, (_clamp(level, floors[cid], ceilings[cid]), constraint.reason)
                )
        for cid in active:
            if ceilings[cid] <= level + EPSILON and cid not in newly_frozen:
                newly_frozen[cid] = (ceilings[cid], EvAllocationReason.CHARGER_MAX)
        if not newly_frozen:  # only reachable through rounding: settle everyone
            newly_frozen = {
                cid: (
                    _clamp(level, floors[cid], ceilings[cid]),
                    EvAllocationReason.FAIR_SHARE,
                )
                for cid in active
            }
        frozen.update(newly_frozen)
        active -= newly_frozen.keys()
    by_id = {c.component_id: c for c in admitted}
    return {
        cid: (current, _explain(by_id[cid], current, reason))
        for cid, (current, reason) in frozen.items()
    }


def _highest_level(
    members: Sequence[tuple[float, float, float]], budget: float
) -> float:
    """Highest level L with ``Σ weight × clamp(L, floor, ceiling) ≤ budget``.

    The sum is piecewise linear and non-decreasing in L with kinks at the floors
    and ceilings, so it is solved exactly segment by segment. Returns the lowest
    floor if even the floors do not fit, and +inf if every ceiling fits.
    """

    def load(level: float) -> float:
        return math.fsum(w * _clamp(level, lo, hi) for w, lo, hi in members)

    kinks = sorted({lo for _, lo, _ in members} | {hi for _, _, hi in members})
    if load(kinks[-1]) <= budget:
        return math.inf
    if load(kinks[0]) > budget:
        return kinks[0]
    for low, high in itertools.pairwise(kinks):
        load_high = load(high)
        if load_high <= budget:
            continue
        load_low = load(low)
        slope = (load_high - load_low) / (high - low)
        return low + (budget - load_low) / slope
    return kinks[-1]  # pragma: no cover - the first check returned already


def _explain(
    candidate: Candidate, current: float, reason: EvAllocationReason
) -> EvAllocationReason:
    """Name the tightest reason an EV's current is what it is."""
    charger = candidate.charger
    if current >= charger.max_current_a - EPSILON:
        return EvAllocationReason.CHARGER_MAX
    if current >= charger.mode_max_current_a - EPSILON:
        return EvAllocationReason.MODE_LIMIT
    if current >= candidate.ceiling_a - EPSILON:
        return EvAllocationReason.DEMAND
    return reason


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)
