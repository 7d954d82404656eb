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
  (in watts) holds it lower. Each setpoint is either 0 W or between
  ``min_current_a × phases × V`` and ``max_current_a × phases × V``.
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
  minimum, the current above it is filled in stages (`_staged_fill`): boosted
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
from dataclasses import dataclass, field
from enum import StrEnum
import itertools
import math

PHASES: tuple[int, int, int] = (1, 2, 3)
"""Phase numbers L1, L2, L3 as used in `EvChargerInput.phases`."""

ALL_PHASES: tuple[int, ...] = PHASES
"""The phases of a three-phase EV (the default)."""

_EPSILON = 1e-9


class EvAllocationReason(StrEnum):
    """Why a charger got the setpoint it got (shown in diagnostics)."""

    NO_EV = "no_ev"
    """No EV connected: 0 W."""
    NOT_WORKING = "not_working"
    """The charger is not working (status tracking): 0 W."""
    INVALID_LIMITS = "invalid_limits"
    """The charger's maximum current is below its minimum: 0 W."""
    WAITING = "waiting"
    """An EV is connected but the minimum current does not fit now: 0 W."""
    DWELL = "dwell"
    """Switched off less than `min_dwell_s` ago; may not switch on yet: 0 W."""
    FAIR_SHARE = "fair_share"
    """Charging at the common level (when rounding leaves no tighter reason)."""
    CHARGER_MAX = "charger_max"
    """Charging at the charger's maximum current."""
    DEMAND = "demand"
    """Capped near what the EV draws (give-back); the rest went to others."""
    PHASE_LIMIT = "phase_limit"
    """Held by the per-phase fuse limit of one of its phases."""
    TARGET = "target"
    """Held by the pool target (watts)."""
    CIRCUIT_LIMIT = "circuit_limit"
    """Held by a circuit's power limit (watts: its envelope or fixed kW limit)."""
    HYSTERESIS = "hysteresis"
    """Kept at its previous current: the change would have been too small."""
    MODE_OFF = "mode_off"
    """The charger's mode is *off* (`engine.hub.modes`): 0 W, the EV stays plugged."""
    NO_SOLAR_SURPLUS = "no_solar_surplus"
    """Solar mode without enough PV surplus for its minimum current: 0 W."""
    NOT_IN_PLAN = "not_in_plan"
    """Smart mode in a slot the charging plan leaves empty: 0 W."""
    MODE_LIMIT = "mode_limit"
    """Held by its mode's limit (solar: its share of the PV surplus)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EvChargerInput:
    """What the allocator needs to know about one charger, from its latest data."""

    component_id: int
    ev_connected: bool
    """From the cable state: plugged or locked at both the EV and the station."""
    working: bool = True
    """From component status tracking (spec §3)."""
    phases: tuple[int, ...] = ALL_PHASES
    """Phases (1–3) the EV draws on: ``(1, 2, 3)`` or e.g. ``(2,)`` for 1-phase."""
    measured_currents_a: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Measured current on L1, L2, L3 (A); NaN where unknown."""
    measured_power_w: float = math.nan
    """Measured active power (W); the fallback when phase currents are unknown."""
    min_current_a: float = 6.0
    """Smallest current (per phase) at which the EV charges at all (IEC 61851)."""
    max_current_a: float = 32.0
    """Largest current (per phase) the charger allows."""
    voltage_v: float | None = None
    """Phase voltage the charger converts watts with; `None` = nominal voltage."""
    confirmed_limit_a: float | None = math.inf
    """Per-phase current its standing setpoint allows, once a reading taken after
    that setpoint arrived confirms it; `None` while a newer setpoint is not
    confirmed yet (what the EV draws then answers an older one); inf when unknown
    (judged against the allocation). Under-use is judged against this, so a raise
    that was held back or is still in flight never counts as an EV's give-back."""
    held_off: EvAllocationReason | None = None
    """Why the charger's mode keeps it at 0 W whatever fits (`MODE_OFF`,
    `NO_SOLAR_SURPLUS`); `None`: it may charge."""
    mode_max_current_a: float = math.inf
    """Upper limit per phase (A) set by the charger's mode (solar: its share of
    the surplus); never below `min_current_a` in effect (a mode that cannot give
    the minimum holds the charger off instead)."""
    boost: bool = False
    """Boost mode: admitted before every other EV, even one in its on-dwell."""
    laxity_s: float | None = None
    """A deadline target's laxity (s): time to departure less the time the
    remaining energy takes at the charger's maximum power (`engine.hub.targets`);
    `None`: no target (or it is met). The least laxity gets current first."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EvAllocatorConfig:
    """Tuning of the allocator; the defaults suit a home or small depot."""

    phase_limit_a: float | None = None
    """Per-phase fuse / cluster limit (A) for all chargers together; None = none."""
    fuse_tolerance_a: float = 0.0
    """Headroom kept below `phase_limit_a` (A).

    datafev lets a cluster exceed its limit by its tolerance; a fuse must never be
    exceeded, so here the tolerance works the other way: it is kept free for meter
    noise and for EVs that overshoot while ramping.
    """
    nominal_voltage_v: float = 230.0
    """Phase voltage used when a charger reports none."""
    hysteresis_a: float = 1.0
    """Changes of a charger's current smaller than this are not sent (A)."""
    min_dwell_s: float = 60.0
    """Minimum time between two on/off switches of one charger (relay wear)."""
    give_back_margin_a: float = 3.0
    """An EV drawing this much below its allocation (A) is under-using it."""
    give_back_after_s: float = 3.0
    """How long an EV must under-use before its unused current goes to others."""
    give_back_headroom_a: float = 2.0
    """Current left above what a capped EV draws, so it can ramp up again (A)."""
    priorities: Mapping[int, int] = field(default_factory=dict)
    """Optional priority per charger id (higher is admitted first; default 0)."""
    laxity_tolerance_s: float = 300.0
    """Laxities closer than this (s) count as equal: those EVs share fairly
    instead of flip-flopping as their laxities cross."""

    def __post_init__(self) -> None:
        """Reject settings that would make the allocator unsafe or oscillate."""
        if self.phase_limit_a is not None and not self.phase_limit_a >= 0.0:
            raise ValueError("phase_limit_a must be ≥ 0 A")
        if not self.nominal_voltage_v > 0.0:
            raise ValueError("nominal_voltage_v must be > 0 V")
        for name in (
            "fuse_tolerance_a",
            "hysteresis_a",
            "min_dwell_s",
            "give_back_margin_a",
            "give_back_after_s",
            "give_back_headroom_a",
            "laxity_tolerance_s",
        ):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} must be ≥ 0")
        if self.give_back_headroom_a > self.give_back_margin_a:
            # A capped EV would immediately count as under-using its new cap and
            # be capped again and again.
            raise ValueError("give_back_headroom_a must not exceed give_back_margin_a")


@dataclass(frozen=True, slots=True)
class EvChargerSetpoint:
    """The allocator's decision for one charger."""

    component_id: int
    power_w: float
    """The setpoint to send (W): 0 or between the charger's min and max power."""
    current_a: float
    """Current per phase (A) the setpoint implies on each of `phases`."""
    phases: tuple[int, ...]
    reason: EvAllocationReason

    @property
    def phase_currents_a(self) -> tuple[float, float, float]:
        """Current this setpoint implies on L1, L2, L3 (A)."""
        l1, l2, l3 = (self.current_a if p in self.phases else 0.0 for p in PHASES)
        return (l1, l2, l3)


@dataclass(frozen=True, slots=True)
class CircuitCapacity:
    """What one circuit leaves the chargers behind it this round.

    Built by the steering from the circuit's fuse and power limit less its other
    loads (`engine.hub.circuits`). NaN or negative values count as 0 (no data,
    no risk); inf means no limit of that kind.
    """

    circuit_id: str
    charger_ids: frozenset[int]
    phase_capacity_a: tuple[float, float, float] = (math.inf, math.inf, math.inf)
    """Current the chargers may draw per phase together (A)."""
    power_capacity_w: float = math.inf
    """Power the chargers may draw together (W)."""

    def sanitized(self) -> CircuitCapacity:
        """The same with NaN and negative capacities set to 0."""
        l1, l2, l3 = (_non_negative(c) for c in self.phase_capacity_a)
        return CircuitCapacity(
            self.circuit_id,
            self.charger_ids,
            (l1, l2, l3),
            _non_negative(self.power_capacity_w),
        )

    def less(
        self, currents_a: tuple[float, float, float], power_w: float
    ) -> CircuitCapacity:
        """What is left after chargers planned elsewhere took `currents_a`/`power_w`."""
        l1, l2, l3 = (
            cap - used
            for cap, used in zip(self.phase_capacity_a, currents_a, strict=True)
        )
        return CircuitCapacity(
            self.circuit_id,
            self.charger_ids,
            (l1, l2, l3),
            self.power_capacity_w - power_w,
        )


def _non_negative(value: float) -> float:
    return value if value > 0.0 else 0.0  # also maps NaN to 0


@dataclass(frozen=True, slots=True)
class EvAllocation:
    """The setpoints of one allocation round and what they add up to."""

    target_w: float
    setpoints: dict[int, EvChargerSetpoint]
    phase_capacity_a: tuple[float, float, float]
    """Current available to the EVs per phase this round (inf without a limit)."""
    circuits: tuple[CircuitCapacity, ...] = ()
    """The circuit capacities this round was allocated against (sanitized)."""

    def powers(self) -> dict[int, float]:
        """Return the setpoint per charger id (W)."""
        return {cid: s.power_w for cid, s in self.setpoints.items()}

    @property
    def total_power_w(self) -> float:
        """Sum of all setpoints (W)."""
        return math.fsum(s.power_w for s in self.setpoints.values())

    @property
    def phase_currents_a(self) -> tuple[float, float, float]:
        """Current the setpoints imply on L1, L2, L3 together (A)."""
        sums = [0.0, 0.0, 0.0]
        for setpoint in self.setpoints.values():
            for index, current in enumerate(setpoint.phase_currents_a):
                sums[index] += current
        return (sums[0], sums[1], sums[2])

    def currents_of(self, charger_ids: frozenset[int]) -> tuple[float, float, float]:
        """Current the setpoints of `charger_ids` imply on L1, L2, L3 (A)."""
        sums = [0.0, 0.0, 0.0]
        for cid, setpoint in self.setpoints.items():
            if cid in charger_ids:
                for index, current in enumerate(setpoint.phase_currents_a):
                    sums[index] += current
        return (sums[0], sums[1], sums[2])

    def power_of(self, charger_ids: frozenset[int]) -> float:
        """Sum of the setpoints of `charger_ids` (W)."""
        return math.fsum(
            s.power_w for cid, s in self.setpoints.items() if cid in charger_ids
        )

    @property
    def excess_power_w(self) -> float:
        """Part of the target that was not allocated (W)."""
        return max(0.0, self.target_w - self.total_power_w)


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


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A charger with an EV that may receive current this round."""

    charger: EvChargerInput
    voltage_v: float
    ceiling_a: float
    """Charger maximum, lowered by the give-back cap."""
    nominal_voltage_v: float
    """The allocator's nominal phase voltage (the EV's own phases carry it)."""

    @property
    def component_id(self) -> int:
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
        meter, so it is charged with these; never less than the setpoint's
        watts over the EV's share of the charger's phases (a voltage above the
        nominal one).
        """
        phases = len(self.charger.phases)
        return max(
            phases * self.nominal_voltage_v,
            self.watts_per_amp * phases / len(ALL_PHASES),
        )


@dataclass(frozen=True, slots=True)
class _Constraint:
    """A linear cap ``Σ weight_i × current_i ≤ capacity`` shared by some EVs."""

    reason: EvAllocationReason
    capacity: float
    weights: Mapping[int, float]


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
        candidates: list[_Candidate] = []
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
                _Candidate(charger, voltage, ceiling, self._config.nominal_voltage_v)
            )

        admitted, refused = self._admit(candidates, capacity, target, held, now)
        for candidate, reason in refused:
            setpoints[candidate.component_id] = _off(candidate.charger, reason)

        constraints = _constraints(admitted, capacity, target, held)
        fair = _staged_fill(admitted, constraints, self._stages(admitted))
        currents = self._apply_hysteresis(admitted, fair, constraints)
        for candidate in admitted:
            current, reason = currents[candidate.component_id]
            setpoints[candidate.component_id] = EvChargerSetpoint(
                component_id=candidate.component_id,
                power_w=current * candidate.watts_per_amp,
                current_a=current,
                phases=candidate.charger.phases,
                reason=reason,
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
        drawn = _drawn_current(charger, voltage)
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
        candidates: Sequence[_Candidate],
        capacity: tuple[float, float, float],
        target_w: float,
        circuits: Sequence[CircuitCapacity],
        now: float,
    ) -> tuple[list[_Candidate], list[tuple[_Candidate, EvAllocationReason]]]:
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
        admitted: list[_Candidate] = []
        refused: list[tuple[_Candidate, EvAllocationReason]] = []
        for candidate in sorted(candidates, key=lambda c: self._admission_key(c, now)):
            memory = self._memory[candidate.component_id]
            if memory.allocated_a <= 0.0 and self._in_dwell(memory, now):
                refused.append((candidate, EvAllocationReason.DWELL))
                continue
            minimum = candidate.charger.min_current_a
            needed_power = minimum * candidate.watts_per_amp
            drawn_power = minimum * candidate.drawn_watts_per_amp
            phases = candidate.charger.phases
            inside = [
                index
                for index, circuit in enumerate(circuits)
                if candidate.component_id in circuit.charger_ids
            ]
            fits = (
                needed_power <= remaining_power + _EPSILON
                and all(minimum <= remaining_phase[p - 1] + _EPSILON for p in phases)
                and all(
                    drawn_power <= circuit_power[index] + _EPSILON
                    and all(
                        minimum <= circuit_phase[index][p - 1] + _EPSILON
                        for p in phases
                    )
                    for index in inside
                )
            )
            if not fits:
                refused.append((candidate, EvAllocationReason.WAITING))
                continue
            admitted.append(candidate)
            remaining_power -= needed_power
            for phase in phases:
                remaining_phase[phase - 1] -= minimum
            for index in inside:
                circuit_power[index] -= drawn_power
                for phase in phases:
                    circuit_phase[index][phase - 1] -= minimum
        return admitted, refused

    def _admission_key(
        self, candidate: _Candidate, now: float
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

    def _stages(self, admitted: Sequence[_Candidate]) -> dict[int, tuple[int, ...]]:
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
        admitted: Sequence[_Candidate],
        fair: Mapping[int, tuple[float, EvAllocationReason]],
        constraints: Sequence[_Constraint],
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
                and _EPSILON < abs(current - previous) < self._config.hysteresis_a
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
            if load <= constraint.capacity + _EPSILON:
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
    )


def _drawn_current(charger: EvChargerInput, voltage: float) -> float:
    """Current the EV draws per phase (A): the largest of its phases' currents."""
    currents = [charger.measured_currents_a[p - 1] for p in charger.phases]
    if currents and not any(math.isnan(c) for c in currents):
        return max(currents)
    return charger.measured_power_w / (len(charger.phases) * voltage)


def _constraints(
    admitted: Sequence[_Candidate],
    capacity: tuple[float, float, float],
    target_w: float,
    circuits: Sequence[CircuitCapacity] = (),
) -> list[_Constraint]:
    """The constraints the allocation must hold.

    The per-phase fuse (A), the pool target (W), and per circuit its per-phase
    (A) and power (W) constraints over the chargers behind it.
    """
    constraints = [
        _Constraint(
            EvAllocationReason.PHASE_LIMIT,
            capacity[phase - 1],
            {c.component_id: 1.0 for c in admitted if phase in c.charger.phases},
        )
        for phase in PHASES
        if math.isfinite(capacity[phase - 1])
    ]
    constraints.append(
        _Constraint(
            EvAllocationReason.TARGET,
            target_w,
            {c.component_id: c.watts_per_amp for c in admitted},
        )
    )
    for circuit in circuits:
        behind = [c for c in admitted if c.component_id in circuit.charger_ids]
        constraints.extend(
            _Constraint(
                EvAllocationReason.PHASE_LIMIT,
                circuit.phase_capacity_a[phase - 1],
                {c.component_id: 1.0 for c in behind if phase in c.charger.phases},
            )
            for phase in PHASES
            if math.isfinite(circuit.phase_capacity_a[phase - 1])
        )
        if math.isfinite(circuit.power_capacity_w):
            constraints.append(
                _Constraint(
                    EvAllocationReason.CIRCUIT_LIMIT,
                    circuit.power_capacity_w,
                    {c.component_id: c.drawn_watts_per_amp for c in behind},
                )
            )
    return [c for c in constraints if c.weights]


def _staged_fill(
    admitted: Sequence[_Candidate],
    constraints: Sequence[_Constraint],
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
        return _max_min_fair(admitted, constraints)
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
            _Constraint(
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
        chosen.update(_max_min_fair(members, [c for c in narrowed if c.weights]))
    return chosen


def _max_min_fair(
    admitted: Sequence[_Candidate], constraints: Sequence[_Constraint]
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
        binding: list[_Constraint] = []
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
            if limit < level - _EPSILON:
                level, binding = limit, [constraint]
            elif limit <= level + _EPSILON:
                binding.append(constraint)
        newly_frozen: dict[int, tuple[float, EvAllocationReason]] = {}
        for constraint in binding:
            for cid in active & constraint.weights.keys():
                newly_frozen.setdefault(
                    cid, (_clamp(level, floors[cid], ceilings[cid]), constraint.reason)
                )
        for cid in active:
            if ceilings[cid] <= level + _EPSILON and cid not in newly_frozen:
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
    candidate: _Candidate, current: float, reason: EvAllocationReason
) -> EvAllocationReason:
    """Name the tightest reason an EV's current is what it is."""
    charger = candidate.charger
    if current >= charger.max_current_a - _EPSILON:
        return EvAllocationReason.CHARGER_MAX
    if current >= charger.mode_max_current_a - _EPSILON:
        return EvAllocationReason.MODE_LIMIT
    if current >= candidate.ceiling_a - _EPSILON:
        return EvAllocationReason.DEMAND
    return reason


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)
