"""What the EV charger allocator takes and gives: inputs, tuning, setpoints.

The allocator itself (`ev_chargers`) and the max-min fair filling
(`ev_fair_share`) work on these; the steering, the charging hub's modes and
targets build `EvChargerInput` from telemetry and read `EvAllocation` back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
import math

PHASES: tuple[int, int, int] = (1, 2, 3)
"""Phase numbers L1, L2, L3 as used in `EvChargerInput.phases`."""

ALL_PHASES: tuple[int, ...] = PHASES
"""The phases of a three-phase EV (the default)."""


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
    phase_voltage_v: float | None = None
    """Voltage of each phase the EV draws on, when it differs from what the
    setpoint's watts carry: a one-phase EV behind a three-phase charger has
    `voltage_v` ``3 × V`` (the charger spreads the watts over three phases) but
    draws ``V`` on its one phase (`ev_charger_input`). The pool target counts
    the EV at this; `None` = at its setpoint's watts."""
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
    drawn_power_w: float
    """What the EV draws at this setpoint (W), as the pool's power counts it:
    `power_w` for an EV on all of the charger's phases; a third of it for a
    one-phase EV behind a three-phase charger (the charger turns the watts into
    a current per phase over three phases, the EV draws it on one). The pool
    target is held in these."""

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
    def drawn_power_w(self) -> float:
        """What the EVs draw at these setpoints together (W; `drawn_power_w`).

        At most the target: the target is a budget of the pool's power, which
        counts a one-phase EV at what it draws, not at its setpoint's watts.
        """
        return math.fsum(s.drawn_power_w for s in self.setpoints.values())

    @property
    def excess_power_w(self) -> float:
        """Part of the target that was not allocated (W)."""
        return max(0.0, self.target_w - self.drawn_power_w)
