"""Charger modes: how each charger should charge, applied to the EV allocator's inputs.

Per charger (spec §4, issue 15):

- **off** — 0 W, kept alive (a released charger would fall back to full
  charging); the EV stays plugged, so its session goes on.
- **fast** — as much as the fuse, the circuits and the pool target allow (the
  default, and what every charger did before modes existed).
- **solar** — only PV surplus, shared fairly among the solar-mode chargers, with
  hysteresis and an optional minimum current (`solar`).
- **boost** — admitted before every other EV (even one in its on-dwell) for a set
  time, then back to the mode it had before.
- **smart** — follows the current 15-minute slot of the hub's charging plan
  (`planner`): at most the planned power, held off in a slot the plan leaves
  empty; without a need in the plan (no booking with an energy, no target) it
  charges as *fast* does.

A mode only ever *lowers* what a charger gets: it becomes a 0 W hold, an upper
limit or an admission order on the allocator's input (`EvChargerInput.held_off`,
`mode_max_current_a`, `boost`). The fuse, the circuits and the pool target from
the power manager still apply on top, so the smaller always wins and no mode can
make a setpoint unsafe.

`ChargerModes` is the mutable table Home Assistant writes (select, switch,
actions) and the EV steering reads every round; it tells its listeners about
every change (a new mode, a boost that ran out) so the steering acts at once and
the settings can be stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import contextlib
import dataclasses
from dataclasses import dataclass
from enum import StrEnum
import math
import time

from ..distribution.ev_chargers import EvAllocationReason, EvChargerInput
from .site import SiteFlows
from .solar import SolarCharger, SolarSharing, solar_surplus_w

DEFAULT_BOOST_S = 3600.0
"""How long a boost lasts unless told otherwise."""
MAX_BOOST_S = 24 * 3600.0
"""The longest boost (a day): a boost is for now, not a permanent priority."""


class ChargerMode(StrEnum):
    """How a charger should charge."""

    OFF = "off"
    FAST = "fast"
    SOLAR = "solar"
    BOOST = "boost"
    SMART = "smart"


DEFAULT_MODE = ChargerMode.FAST


@dataclass(frozen=True, slots=True)
class ChargerModeState:
    """One charger's mode, and for a boost when it ends and what comes after."""

    mode: ChargerMode = DEFAULT_MODE
    boost_until: float | None = None
    """End of the boost on the modes' clock (only in boost mode)."""
    after_boost: ChargerMode = DEFAULT_MODE
    """The mode the charger returns to when the boost ends."""
    solar_min_current: bool = False
    """Solar mode charges at least at the minimum current, surplus or not."""


type Listener = Callable[[], None]
type PlannedPower = Callable[[int], float | None]
"""The plan's power for a charger now (W); `None`: the plan has no need for it."""


class ChargerModes:
    """The mode of every charger, and how the modes shape the allocator's inputs.

    Args:
        charger_ids: The chargers that have a mode (the topology's).
        clock: Monotonic seconds (the controller's clock; injected for tests).
        nominal_voltage_v: Phase voltage for turning surplus watts into amperes.
        site: The site's latest power flows (`None` until known).
        solar: Solar sharing with its delays.
    """

    def __init__(
        self,
        charger_ids: frozenset[int],
        *,
        clock: Callable[[], float] = time.monotonic,
        nominal_voltage_v: float = 230.0,
        site: Callable[[], SiteFlows | None] = lambda: None,
        solar: SolarSharing | None = None,
        planned_power_w: PlannedPower = lambda _charger_id: None,
    ) -> None:
        """Start every charger in the default mode (fast)."""
        self.charger_ids = charger_ids
        self._clock = clock
        self._nominal_voltage_v = nominal_voltage_v
        self._site = site
        self.solar = solar or SolarSharing()
        self._states: dict[int, ChargerModeState] = {}
        self._listeners: list[Listener] = []
        self.default_boost_s = DEFAULT_BOOST_S
        """The boost duration used when none is given (Home Assistant's number)."""
        self.last_surplus_w: float | None = None
        """The solar surplus of the last round (diagnostics)."""
        self.planned_power_w = planned_power_w
        """What smart mode follows (the hub's charging plan, set by its owner)."""

    # -- reading ----------------------------------------------------------------

    def state(self, charger_id: int) -> ChargerModeState:
        """The charger's mode state (after any boost that ran out)."""
        self._expire_boosts(self._clock())
        return self._states.get(charger_id, ChargerModeState())

    def mode(self, charger_id: int) -> ChargerMode:
        """The charger's mode now."""
        return self.state(charger_id).mode

    def boost_remaining_s(self, charger_id: int) -> float | None:
        """Seconds left of the charger's boost; `None` when it is not boosting."""
        until = self.state(charger_id).boost_until
        return None if until is None else max(0.0, until - self._clock())

    def states(self) -> dict[int, ChargerModeState]:
        """Every charger's state that differs from the default."""
        self._expire_boosts(self._clock())
        return dict(self._states)

    # -- changing ---------------------------------------------------------------

    def set_mode(
        self, charger_id: int, mode: ChargerMode, *, boost_s: float | None = None
    ) -> ChargerModeState:
        """Set a charger's mode; a boost lasts `boost_s` (default: `default_boost_s`).

        A new boost on a boosting charger restarts its time and keeps the mode
        it returns to.

        Raises:
            KeyError: Not a charger of this microgrid.
            ValueError: A boost duration that is not within 0 s … `MAX_BOOST_S`.
        """
        self._check(charger_id)
        old = self.state(charger_id)
        if mode is ChargerMode.BOOST:
            duration = self.default_boost_s if boost_s is None else boost_s
            check_boost_duration(duration)
            after = old.after_boost if old.mode is ChargerMode.BOOST else old.mode
            new = dataclasses.replace(
                old,
                mode=mode,
                boost_until=self._clock() + duration,
                after_boost=after,
            )
        else:
            new = dataclasses.replace(old, mode=mode, boost_until=None)
        self._store(charger_id, new)
        return new

    def set_solar_min_current(self, charger_id: int, enabled: bool) -> None:
        """Switch the solar minimum-current option of a charger."""
        self._check(charger_id)
        old = self.state(charger_id)
        self._store(charger_id, dataclasses.replace(old, solar_min_current=enabled))

    def restore(
        self,
        charger_id: int,
        state: ChargerModeState,
        *,
        boost_remaining_s: float | None = None,
    ) -> None:
        """Put back a stored state (ignored for chargers the microgrid lacks).

        A boost comes back with the time it had left; one that ran out while
        Home Assistant was away comes back as the mode it would have returned to.
        """
        if charger_id not in self.charger_ids:
            return
        if state.mode is ChargerMode.BOOST:
            if boost_remaining_s is not None and boost_remaining_s > 0.0:
                until = self._clock() + min(boost_remaining_s, MAX_BOOST_S)
                state = dataclasses.replace(state, boost_until=until)
            else:
                state = dataclasses.replace(
                    state, mode=state.after_boost, boost_until=None
                )
        else:
            state = dataclasses.replace(state, boost_until=None)
        self._store(charger_id, state)

    def listen(self, callback: Listener) -> Callable[[], None]:
        """Call `callback` after every change; return the unsubscribe function."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return unsubscribe

    # -- applying ---------------------------------------------------------------

    def apply(
        self, inputs: Mapping[int, EvChargerInput], now: float
    ) -> dict[int, EvChargerInput]:
        """Return the allocator inputs with every charger's mode applied."""
        self._expire_boosts(now)
        shaped = dict(inputs)
        solar: list[tuple[EvChargerInput, SolarCharger]] = []
        solar_draw = 0.0
        for charger_id, charger in inputs.items():
            state = self._states.get(charger_id, ChargerModeState())
            match state.mode:
                case ChargerMode.OFF:
                    shaped[charger_id] = dataclasses.replace(
                        charger, held_off=EvAllocationReason.MODE_OFF
                    )
                case ChargerMode.BOOST:
                    shaped[charger_id] = dataclasses.replace(charger, boost=True)
                case ChargerMode.SOLAR:
                    if (drawn := charger.measured_power_w) > 0.0:
                        solar_draw += drawn
                    if _may_charge(charger):
                        solar.append((charger, self._solar_charger(charger, state)))
                case ChargerMode.SMART:
                    shaped[charger_id] = self._follow_plan(charger)
                case ChargerMode.FAST:
                    pass
        surplus = solar_surplus_w(self._site(), solar_draw)
        self.last_surplus_w = surplus
        shares = self.solar.shares([s for _, s in solar], surplus, now)
        for charger, solar_charger in solar:
            share = shares[charger.component_id]
            if share <= 0.0:
                limited = dataclasses.replace(
                    charger, held_off=EvAllocationReason.NO_SOLAR_SURPLUS
                )
            else:
                watts_per_amp = solar_charger.min_power_w / charger.min_current_a
                limited = dataclasses.replace(
                    charger, mode_max_current_a=share / watts_per_amp
                )
            shaped[charger.component_id] = limited
        return shaped

    def _follow_plan(self, charger: EvChargerInput) -> EvChargerInput:
        """Smart mode: the plan's power now as an upper limit, or a hold at 0 W."""
        planned = self.planned_power_w(charger.component_id)
        if planned is None or not math.isfinite(planned):
            return charger
        if planned <= 0.0:
            return dataclasses.replace(charger, held_off=EvAllocationReason.NOT_IN_PLAN)
        watts_per_amp = len(charger.phases) * self._nominal_voltage_v
        return dataclasses.replace(
            charger,
            mode_max_current_a=min(charger.mode_max_current_a, planned / watts_per_amp),
        )

    def _solar_charger(
        self, charger: EvChargerInput, state: ChargerModeState
    ) -> SolarCharger:
        """The charger as solar sharing sees it: the power its EV really draws.

        A one-phase EV draws ``I × V``, not the ``3 × I × V`` its setpoint says
        (the charger converts watts over three phases), and only what it draws
        counts against the surplus.
        """
        watts_per_amp = len(charger.phases) * self._nominal_voltage_v
        return SolarCharger(
            component_id=charger.component_id,
            min_power_w=charger.min_current_a * watts_per_amp,
            max_power_w=charger.max_current_a * watts_per_amp,
            min_current_option=state.solar_min_current,
        )

    # -- internals --------------------------------------------------------------

    def _check(self, charger_id: int) -> None:
        if charger_id not in self.charger_ids:
            raise KeyError(charger_id)

    def _store(self, charger_id: int, state: ChargerModeState) -> None:
        old = self._states.get(charger_id, ChargerModeState())
        if state == ChargerModeState():
            self._states.pop(charger_id, None)
        else:
            self._states[charger_id] = state
        if state != old:
            self._notify()

    def _expire_boosts(self, now: float) -> None:
        """Return every boost that ran out to the mode it came from."""
        expired = [
            charger_id
            for charger_id, state in self._states.items()
            if state.boost_until is not None and now >= state.boost_until
        ]
        for charger_id in expired:
            state = self._states[charger_id]
            self._store(
                charger_id,
                dataclasses.replace(state, mode=state.after_boost, boost_until=None),
            )

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()


def check_boost_duration(duration_s: float) -> None:
    """Raise `ValueError` unless the boost duration is within 0 s … a day."""
    if not (math.isfinite(duration_s) and 0.0 < duration_s <= MAX_BOOST_S):
        raise ValueError(
            f"a boost lasts more than 0 s and at most {MAX_BOOST_S:g} s, "
            f"not {duration_s!r}"
        )


def _may_charge(charger: EvChargerInput) -> bool:
    """Whether the allocator would consider the charger at all (EV, working, limits)."""
    return (
        charger.ev_connected
        and charger.working
        and charger.held_off is None
        and 0.0 < charger.min_current_a <= charger.max_current_a
        and math.isfinite(charger.max_current_a)
        and bool(charger.phases)
    )
