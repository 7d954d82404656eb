"""An AC EV charger with EV sessions: plug, lock, current-limited charging, unplug."""

from __future__ import annotations

from dataclasses import dataclass, field
import enum
import math

from ...engine.bounds import PowerBounds
from .ac import NOMINAL_VOLTAGE_V, PhasePowers

LOCK_DELAY_S = 2.0
"""Simulated seconds between plugging a cable in and the charger locking it."""

FULL_ACCEPTANCE_UNTIL_PCT = 80.0
"""EVs accept their full current up to this SoC, then linearly less until 100 %."""

TAPER_FLOOR_A = 1.0
"""Least current an EV below 100 % accepts: the taper ends in a finite time.

A purely linear taper would approach 100 % SoC exponentially and never stop;
real EVs finish at a small current and then draw nothing."""

CHANGEOVER_S = 60.0
"""Simulated seconds a charger stays unplugged between two scheduled EVs.

One EV driving off and the next parking: every session ends with the cable
unplugged for a while, so a client sampling the cable state sees each session
end before the next one starts."""


@dataclass(frozen=True, slots=True)
class EvChargerParams:
    """A charger's electrical limits (IEC 61851: 6–32 A per phase, 230 V)."""

    phases: int = 3
    min_current_a: float = 6.0
    max_current_a: float = 32.0

    def power_bounds(self) -> PowerBounds:
        """0 W, or between the minimum and the maximum current on all phases.

        Charging below the minimum current is impossible, so the range from 0 W to
        the minimum power is the charger's exclusion zone.
        """
        per_amp = NOMINAL_VOLTAGE_V * self.phases
        return PowerBounds(
            0.0, self.max_current_a * per_amp, 0.0, self.min_current_a * per_amp
        )


@dataclass(frozen=True, slots=True)
class EvSpec:
    """An EV that arrives at a charger: its battery and how it can charge."""

    capacity_wh: float = 60_000.0
    soc_pct: float = 40.0
    phases: int = 3
    max_current_a: float = 32.0
    efficiency: float = 0.92


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A finished EV session as the simulator saw it (the truth to compare with)."""

    charger_id: int
    plugged_at_s: float
    unplugged_at_s: float
    charged_wh: float
    """AC energy the charger delivered during the session."""
    soc_at_arrival_pct: float
    soc_at_departure_pct: float
    capacity_wh: float


class CableState(enum.Enum):
    """Where the charging cable is, as the API's EV cable state codes describe it."""

    UNPLUGGED = "unplugged"
    PLUGGED = "plugged"
    LOCKED = "locked"


@dataclass(slots=True)
class EvSession:
    """An EV connected to a charger, from arrival to departure."""

    ev: EvSpec
    plugged_at_s: float
    departs_at_s: float | None = None
    soc_pct: float = field(init=False)
    charged_wh: float = 0.0
    """AC energy the charger has delivered to this EV so far (Wh)."""

    def __post_init__(self) -> None:
        """Start from the EV's state of charge on arrival."""
        self.soc_pct = self.ev.soc_pct

    @property
    def locks_at_s(self) -> float:
        """When the charger locks the cable: `LOCK_DELAY_S` after plugging in.

        The model steps up to exactly this time and `cable_state` compares with
        it, so both see the same float: checking ``now - plugged >= delay``
        instead can miss by an ulp at the very lock event (plugged at 1 s + 1 ulp
        locks at a rounded 3.0 s, and 3.0 - (1 + 1 ulp) < 2), leaving the cable
        unlocked for a whole step that a tick in between would have split.
        """
        return self.plugged_at_s + LOCK_DELAY_S

    def cable_state(self, now_s: float) -> CableState:
        """Plugged on arrival, locked once `LOCK_DELAY_S` has passed."""
        if now_s >= self.locks_at_s:
            return CableState.LOCKED
        return CableState.PLUGGED

    def acceptance_a(self) -> float:
        """The current the EV accepts now: full, tapering near a full battery.

        Linearly less above `FULL_ACCEPTANCE_UNTIL_PCT`, never below
        `TAPER_FLOOR_A` until the battery is full, then nothing.
        """
        if self.soc_pct >= 100.0:
            return 0.0
        if self.soc_pct <= FULL_ACCEPTANCE_UNTIL_PCT:
            return self.ev.max_current_a
        room = (100.0 - self.soc_pct) / (100.0 - FULL_ACCEPTANCE_UNTIL_PCT)
        floor = min(TAPER_FLOOR_A, self.ev.max_current_a)
        return max(self.ev.max_current_a * room, floor)

    @property
    def full(self) -> bool:
        """Whether the EV's battery is full (it draws nothing any more)."""
        return self.soc_pct >= 100.0


@dataclass(slots=True)
class EvChargerState:
    """A charger and, while one is plugged in, its EV session."""

    params: EvChargerParams
    session: EvSession | None = None
    current_a: float = 0.0
    unplugged_at_s: float = -math.inf
    """When the last EV left (a scheduled EV plugs in `CHANGEOVER_S` later)."""

    def cable_state(self, now_s: float) -> CableState:
        """The cable state codes to report."""
        if self.session is None:
            return CableState.UNPLUGGED
        return self.session.cable_state(now_s)

    def phases_in_use(self) -> int:
        """The phases the EV draws on: the fewer of the charger's and the EV's.

        A single-phase charger supplies one phase whatever the EV could take, and
        a single-phase EV draws on one phase of a three-phase charger.
        """
        if self.session is None:
            return 0
        return min(self.params.phases, self.session.ev.phases)

    def phase_powers(self) -> PhasePowers:
        """Per-phase power, on L1 first: a single-phase charge draws only on L1."""
        if self.session is None or self.current_a == 0.0:
            return PhasePowers()
        per_phase = self.current_a * NOMINAL_VOLTAGE_V
        in_use = self.phases_in_use()
        return PhasePowers(
            per_phase,
            per_phase if in_use >= 2 else 0.0,
            per_phase if in_use >= 3 else 0.0,
        )

    def charge(self, setpoint_w: float, now_s: float, dt_s: float) -> None:
        """Draw current for `dt_s` seconds under a power setpoint.

        A charger turns a power setpoint into a per-phase current limit
        (setpoint / (230 V · charger phases)), like the SDK assumes; a limit below
        the minimum current stops charging. The EV then draws at most what it
        accepts, on the fewer of its own and the charger's phases
        (`phases_in_use`), so a single-phase EV uses a third of a three-phase
        setpoint and a single-phase charger never exceeds its own bounds.
        """
        session = self.session
        if session is None or session.cable_state(now_s) is not CableState.LOCKED:
            self.current_a = 0.0
            return
        limit_a = setpoint_w / (NOMINAL_VOLTAGE_V * self.params.phases)
        if limit_a < self.params.min_current_a:
            self.current_a = 0.0
            return
        self.current_a = min(limit_a, self.params.max_current_a, session.acceptance_a())
        power_w = self.phase_powers().total
        session.charged_wh += power_w * dt_s / 3600.0
        stored_wh = power_w * session.ev.efficiency * dt_s / 3600.0
        session.soc_pct = min(
            session.soc_pct + stored_wh / session.ev.capacity_wh * 100.0, 100.0
        )
