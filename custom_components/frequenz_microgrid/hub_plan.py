"""The charging hub's plan in Home Assistant: inputs gathered, re-planned on change.

`HubPlanner` owns the entry's current `ChargingPlan` (`engine.hub.planner`) and
hands each charger's planned power to the chargers in *smart* mode
(`ChargerModes.planned_power_w`). It re-plans, debounced, when something the
plan depends on changes — not on every tick:

- the bookings (the reservation book's listener),
- a plug-in or unplug (the session recorder's started/ended sessions),
- a circuit's envelope (`CircuitLimits.listen`),
- the price or PV forecast entity's state,
- every 15-minute slot boundary (forecasts roll on, a slot's plan ends),
- a deadline target set, cleared or bound to its session,
- a topology change (a charger came or went),
- a charger's mode (a need is planned as its charger will charge: `NeedRun`),
- a car charging at once outside any need (`UnplannedDraw`) that starts or stops
  drawing, or whose current moved by `DRAW_STEP_A` (at most every
  `DRAW_REPLAN_MIN_S`: a busy depot's cars move all the time).

Inputs: each booking with an energy (less what its open session already
delivered) becomes a need (`needs_from_reservations`); so does each deadline
target set by hand (`needs_from_targets`, less what its session delivered; a
target a booking gave is that booking's need already), and setting, clearing or
binding a target re-plans. Each charger's maximum current comes from its rated
power (three phases). Circuits carry their envelopes and, on the grid circuit,
nothing else: the live steering still holds every fuse and limit each tick, so
the plan is an upper bound that steering can only lower.

Forecasts: the entities chosen in the options (`forecast_sources`; a sensor of
Home Assistant's Nord Pool integration through its action, fetched at most
hourly); a demo entry
without chosen entities uses its simulator's own series (see
`simulator.plan_inputs`). The PV forecast becomes a surplus by taking off the
site's other consumption as last measured (the graph's consumer formula).

Planning runs in the executor (a 100-charger depot takes a few ms to tens of
ms); the plan is swapped in whole, so readers never see half a plan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
import dataclasses
from datetime import datetime
from functools import partial
import logging
import math
import time
from typing import Any

from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers.debounce import Debouncer
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.event import (
    async_track_state_change_event,
    async_track_time_change,
)

from .const import CONF_PRICE_ENTITY, CONF_PV_FORECAST_ENTITY
from .coordinator import MicrogridCoordinator
from .engine.control.controller import MicrogridController
from .engine.control.inputs import DEFAULT_MIN_CURRENT_A, DRAWING_THRESHOLD_A
from .engine.graph import Topology
from .engine.hub.circuits import rated_phase_currents_a
from .engine.hub.forecast import ForecastPoint, TimeSeries
from .engine.hub.modes import DEFAULT_MODE, ChargerMode
from .engine.hub.plan_needs import needs_from_reservations, needs_from_targets
from .engine.hub.planner import (
    SLOT_S,
    TARGET_ORIGIN,
    ChargingNeed,
    ChargingPlan,
    PlanCircuit,
    UnplannedDraw,
    need_run,
    plan_charging,
)
from .engine.hub.targets import ChargingTarget
from .engine.pools import CURRENT_PHASES
from .forecast_sources import (
    async_forecast_solar_pv,
    async_nordpool_prices,
    state_series,
)
from .hub_reservations import HubReservations, rated_charge_power_w
from .session_recorder import SessionRecorder
from .simulator import MicrogridSimulator
from .simulator.plan_inputs import simulator_series
from .topology_refresh import topology_signal

_LOGGER = logging.getLogger(__name__)

ACTION_TTL_S = 3600.0
"""How long what Nord Pool's and Forecast.Solar's actions gave is used before
they are asked again (both publish a few times a day)."""
REPLAN_COOLDOWN_S = 2.0
"""Changes within this long after a re-plan are planned together once."""
PHASES = 3
MAX_PLAN_AGE_S = 2 * SLOT_S
"""A plan re-made at every slot boundary is never older than one slot; past two,
re-planning failed and the plan no longer holds smart chargers back."""


class HubPlanner:
    """The entry's charging plan, its inputs, and when it is re-made."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        controller: MicrogridController,
        entry_id: str,
        topology: Callable[[], Topology],
        options: Mapping[str, Any],
        reservations: HubReservations | None = None,
        sessions: SessionRecorder | None = None,
        simulator: MicrogridSimulator | None = None,
        voltage_v: float = 230.0,
    ) -> None:
        """Gather the plan's sources; `async_start` begins following them."""
        self.hass = hass
        self.controller = controller
        self.entry_id = entry_id
        self._topology = topology
        self.reservations = reservations
        self.sessions = sessions
        self.simulator = simulator
        self.voltage_v = voltage_v
        self.price_entity: str | None = options.get(CONF_PRICE_ENTITY) or None
        self.pv_entity: str | None = options.get(CONF_PV_FORECAST_ENTITY) or None
        self.plan: ChargingPlan | None = None
        self.replans = 0
        self._stopped = False
        self._nordpool: tuple[float, TimeSeries] | None = None
        self._forecast_solar: tuple[float, TimeSeries] | None = None
        """Home Assistant's Forecast.Solar forecast, when fetched (time, watts)."""
        """Home Assistant's Nord Pool prices, when fetched (time, prices)."""
        self._coordinator: MicrogridCoordinator | None = None
        self._drawing_seen: frozenset[tuple[int, int]] = frozenset()
        """The chargers last seen charging at once, with their current in steps
        of `DRAW_STEP_A` (`_on_snapshot`)."""
        self._draw_replanned_at = -math.inf
        self._listeners: list[CALLBACK_TYPE] = []
        self._planning = asyncio.Lock()
        self._debouncer = Debouncer(
            hass,
            _LOGGER,
            cooldown=REPLAN_COOLDOWN_S,
            immediate=True,
            function=self.async_replan,
        )
        controller.charger_modes.planned_power_w = self.planned_power_w
        controller.charging_targets.planned_unmet_wh = self.planned_unmet_wh

    # -- reading ----------------------------------------------------------------

    def planned_power_w(self, charger_id: int) -> float | None:
        """The plan's power for the charger now (`None`: no need planned for it).

        A plan older than `MAX_PLAN_AGE_S` (re-planning keeps failing) holds
        nobody back any more: the chargers charge by their deadlines instead.
        """
        plan = self.plan
        now = time.time()
        if plan is None or now - plan.created > MAX_PLAN_AGE_S:
            return None
        return plan.power_w(charger_id, now)

    def planned_unmet_wh(self, target: ChargingTarget) -> float | None:
        """What the plan leaves unmet of a target whose car follows it (smart mode).

        Such a car charges as planned, so the plan says whether it is at risk,
        not the live forecast (which assumes it charges by least laxity now).
        `None` for other modes, a stale plan, or a target the plan has no need
        for (then the live forecast decides).
        """
        plan = self.plan
        if (
            plan is None
            or time.time() - plan.created > MAX_PLAN_AGE_S
            or self.controller.charger_modes.mode(target.charger_id)
            is not ChargerMode.SMART
        ):
            return None
        return plan.unmet_wh_of(target.charger_id, target.booking_id or TARGET_ORIGIN)

    def prices(self) -> TimeSeries:
        """The price forecast in use (per kWh; empty: none)."""
        if self._nordpool is not None:
            return self._nordpool[1]
        if self.price_entity is not None:
            return state_series(self.hass.states.get(self.price_entity), pv=False)
        if self.simulator is not None:
            return simulator_series(self.simulator, pv=False, now=time.time())
        return TimeSeries()

    def pv_forecast(self) -> TimeSeries:
        """The PV forecast in use (W; empty: none)."""
        if self._forecast_solar is not None:
            return self._forecast_solar[1]
        if self.pv_entity is not None:
            return state_series(self.hass.states.get(self.pv_entity), pv=True)
        if self.simulator is not None:
            return simulator_series(self.simulator, pv=True, now=time.time())
        return TimeSeries()

    def sources(self) -> dict[str, str | None]:
        """Where the forecasts come from (responses, diagnostics)."""
        simulated = "simulator" if self.simulator is not None else None
        return {
            "price": self.price_entity or simulated,
            "pv_forecast": self.pv_entity or simulated,
        }

    # -- following ----------------------------------------------------------------

    @property
    def topology(self) -> Topology:
        """The microgrid as last read (chargers come and go without a reload)."""
        return self._topology()

    @callback
    def async_start(self, coordinator: MicrogridCoordinator) -> CALLBACK_TYPE:
        """Follow every source of the plan and plan once; returns what stops it."""
        self._coordinator = coordinator
        unsubscribes: list[CALLBACK_TYPE] = []
        if self.reservations is not None:
            unsubscribes.append(self.reservations.book.listen(self.request))
        if self.sessions is not None:
            unsubscribes.append(
                self.sessions.async_add_listener(lambda _change: self.request())
            )
        unsubscribes.append(self.controller.circuit_limits.listen(self.request))
        unsubscribes.append(self.controller.charging_targets.listen(self.request))
        unsubscribes.append(self.controller.charger_modes.listen(self.request))
        unsubscribes.append(coordinator.async_add_listener(self._on_snapshot))
        unsubscribes.append(
            async_dispatcher_connect(
                self.hass,
                topology_signal(self.entry_id),
                self._on_topology_change,
            )
        )
        entities = [e for e in (self.price_entity, self.pv_entity) if e]
        if entities:
            unsubscribes.append(
                async_track_state_change_event(self.hass, entities, self._on_state)
            )
        unsubscribes.append(
            async_track_time_change(
                self.hass, self._on_slot, minute=(0, 15, 30, 45), second=1
            )
        )
        self.request()

        @callback
        def stop() -> None:
            self._stopped = True
            for unsubscribe in unsubscribes:
                unsubscribe()
            self._debouncer.async_shutdown()
            self.controller.charger_modes.planned_power_w = lambda _cid: None
            self.controller.charging_targets.planned_unmet_wh = lambda _t: None
            self.plan = None

        return stop

    @callback
    def add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `listener` after every new plan; returns the remover."""
        self._listeners.append(listener)

        @callback
        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    @callback
    def request(self) -> None:
        """Ask for a re-plan (debounced: a burst of changes plans once)."""
        self._debouncer.async_schedule_call()

    @callback
    def _on_state(self, _event: Event[Any]) -> None:
        self.request()

    @callback
    def _on_slot(self, _now: datetime) -> None:
        self.request()

    @callback
    def _on_topology_change(self, _change: object) -> None:
        """A callback: the dispatcher runs anything else in the executor."""
        self.request()

    # -- planning -------------------------------------------------------------------

    def needs(self, now: float) -> list[ChargingNeed]:
        """Every need to plan now: the bookings with an energy, then the targets."""
        topology = self.topology
        shapes = {
            cid: shape
            for cid in topology.ev_charger_ids
            if (shape := charger_shape(topology, cid, self.voltage_v)) is not None
        }
        max_current = {cid: amps for cid, (amps, _) in shapes.items()}
        phases = {cid: used for cid, (_, used) in shapes.items()}
        needs: list[ChargingNeed] = []
        if self.reservations is not None:
            needs = needs_from_reservations(
                self.reservations.book.reservations(now, now + 8 * 86400.0),
                now=now,
                delivered_wh=self._delivered_by_booking(),
                max_current_a=max_current,
                phases=phases,
            )
        by_hand = self._target_needs(now, max_current, phases)
        # A target set by hand wins over the charger's booking while they
        # overlap (as in the live steering): plan the car once, not twice. A
        # booking in force is the car's (its target replaced it); a later one
        # that runs on past the target's departure is another car's, from then.
        until = {need.charger_id: need.departure for need in by_hand}
        needs = [
            dataclasses.replace(need, earliest_start=max(need.earliest_start, start))
            for need in needs
            if need.departure > (start := until.get(need.charger_id, -math.inf))
            and (need.charger_id not in until or need.earliest_start > now)
        ]
        return [self._as_charged(need, now) for need in needs + by_hand]

    def _as_charged(self, need: ChargingNeed, now: float) -> ChargingNeed:
        """The need as its charger's mode charges it.

        A boost charges at once until it ends, then as the mode it returns to.
        """
        modes = self.controller.charger_modes
        state = modes.state(need.charger_id)
        boost_left_s = modes.boost_remaining_s(need.charger_id)
        if state.mode is ChargerMode.BOOST and boost_left_s is not None:
            return dataclasses.replace(
                need,
                runs=need_run(state.after_boost),
                at_once_until=now + boost_left_s,
            )
        return dataclasses.replace(need, runs=need_run(state.mode))

    def _target_needs(
        self,
        now: float,
        max_current: dict[int, float],
        phases: dict[int, tuple[int, ...]],
    ) -> list[ChargingNeed]:
        """The deadline targets set by hand, less what their sessions delivered."""
        targets = self.controller.charging_targets
        by_hand = [t for t in targets.targets().values() if t.booking_id is None]
        delivered: dict[int, float] = {}
        for target in by_hand:
            state = targets.state(target.charger_id)
            if state is not None:
                delivered[target.charger_id] = state.delivered_wh
        return needs_from_targets(
            by_hand,
            now=now,
            delivered_wh=delivered,
            max_current_a=max_current,
            phases=phases,
        )

    def unplanned(self, now: float, needs: list[ChargingNeed]) -> list[UnplannedDraw]:
        """Cars charging at once now that no need describes (fast or boost mode).

        The plan holds what they draw until their charger's next need begins,
        or their boost ends (unless it returns to fast), so the smart cars are
        not planned into it.
        """
        modes = self.controller.charger_modes
        draws: list[UnplannedDraw] = []
        for charger_id, currents in self._drawing_at_once().items():
            ahead = [
                n.earliest_start
                for n in needs
                if n.charger_id == charger_id and n.departure > now
            ]
            if any(start <= now for start in ahead):
                continue  # a need in force describes the car
            until = min(ahead, default=math.inf)
            boost_left_s = modes.boost_remaining_s(charger_id)
            if (
                boost_left_s is not None
                and modes.state(charger_id).after_boost is not ChargerMode.FAST
            ):  # a boost returning to fast charges on at once
                until = min(until, now + boost_left_s)
            draws.append(
                UnplannedDraw(charger_id=charger_id, currents_a=currents, until=until)
            )
        return draws

    def _drawing_at_once(self) -> dict[int, tuple[float, float, float]]:
        """The chargers in fast or boost mode whose car draws now: their currents.

        Looked at on every snapshot: the currents first, as most chargers of a
        large site are idle, and the mode only of those that draw.
        """
        coordinator = self._coordinator
        snapshot = None if coordinator is None else coordinator.data
        if snapshot is None or not snapshot.reachable:
            return {}
        mode_of = self.controller.charger_modes.mode
        components = snapshot.components
        phase_1, phase_2, phase_3 = CURRENT_PHASES
        drawing: dict[int, tuple[float, float, float]] = {}
        for charger_id in self.topology.ev_charger_ids:
            component = components.get(charger_id)
            if component is None:
                continue
            metrics = component.metrics
            l1 = _amps(metrics.get(phase_1))
            l2 = _amps(metrics.get(phase_2))
            l3 = _amps(metrics.get(phase_3))
            if (
                max(l1, l2, l3) > DRAWING_THRESHOLD_A
                and mode_of(charger_id) in _AT_ONCE_MODES
            ):
                drawing[charger_id] = (l1, l2, l3)
        return drawing

    @callback
    def _on_snapshot(self) -> None:
        """Re-plan when a car charging at once (fast, boost) changes its draw.

        A car plugged in draws only once its charger lets it, after the
        plug-in's re-plan, and ramps up; a full one stops drawing with its car
        still there. Each changes what the plan must hold for it; a current
        that moves less than `DRAW_STEP_A` does not, and one that does re-plans
        at most every `DRAW_REPLAN_MIN_S`.
        """
        drawing = frozenset(
            (charger_id, round(max(currents) / DRAW_STEP_A))
            for charger_id, currents in self._drawing_at_once().items()
        )
        seen = self._drawing_seen
        if drawing == seen:
            return
        now = time.monotonic()
        if {cid for cid, _ in drawing} == {cid for cid, _ in seen} and (
            now - self._draw_replanned_at < DRAW_REPLAN_MIN_S
        ):
            return  # only currents moved, and lately: told on a later snapshot
        self._drawing_seen = drawing
        self._draw_replanned_at = now
        self.request()

    def circuits(self) -> list[PlanCircuit]:
        """Every circuit of the tree with its envelope and its other loads.

        The other loads as last measured are expected to go on (the best the hub
        knows of them): the evening's 3 kW of a house are not the cars' to plan.
        """
        limits = self.controller.circuit_limits
        circuits: list[PlanCircuit] = []
        for circuit in limits.tree.circuits:
            status = limits.statuses.get(circuit.circuit_id)
            circuits.append(
                PlanCircuit.of(
                    circuit,
                    limits.envelope(circuit.circuit_id),
                    other_load_w=0.0 if status is None else status.other_load_w,
                )
            )
        return circuits

    async def async_replan(self) -> None:
        """Plan now with the current inputs (in the executor); swap the plan in.

        One at a time (an action's refresh and the debouncer may meet), so an
        older plan never replaces a newer one.
        """
        async with self._planning:
            await self._async_replan()

    async def _async_replan(self) -> None:
        try:
            await self._async_fetch_actions(time.time())
        except Exception:  # forecasts are optional: plan without the fetch
            _LOGGER.exception("Cannot fetch the forecasts for the charging plan")
        now = time.time()
        try:
            needs = self.needs(now)
            unplanned = self.unplanned(now, needs)
            circuits = self.circuits()
        except Exception:  # a bad input must never stop the hub
            _LOGGER.exception("Cannot gather the charging plan's inputs")
            return
        try:
            prices = self.prices()
            surplus = self._surplus(self.pv_forecast())
        except Exception:  # forecasts are optional: plan without them
            _LOGGER.exception("Cannot read the forecasts for the charging plan")
            prices, surplus = TimeSeries(), TimeSeries()
        try:
            plan = await self.hass.async_add_executor_job(
                partial(
                    plan_charging,
                    needs,
                    circuits,
                    now=now,
                    prices=prices,
                    pv_surplus_w=surplus,
                    voltage_v=self.voltage_v,
                    unplanned=unplanned,
                )
            )
        except Exception:  # keep the last plan rather than stop the hub
            _LOGGER.exception("Cannot make the charging plan")
            return
        if self._stopped:
            return
        self.plan = plan
        self.replans += 1
        self.controller.on_tick()
        for listener in list(self._listeners):
            listener()

    async def _async_fetch_actions(self, now: float) -> None:
        """Fetch what Nord Pool's and Forecast.Solar's actions give, at most hourly.

        An empty answer is asked again at the next re-plan (tomorrow's prices
        come in the early afternoon); a full one is kept `ACTION_TTL_S`.
        """
        if self.price_entity is not None and _due(self._nordpool, now):
            prices = await async_nordpool_prices(self.hass, self.price_entity)
            self._nordpool = None if prices is None else (now, prices)
        if self.pv_entity is not None and _due(self._forecast_solar, now):
            watts = await async_forecast_solar_pv(self.hass, self.pv_entity)
            self._forecast_solar = None if watts is None else (now, watts)

    def _delivered_by_booking(self) -> dict[str, float]:
        """What each booking's open session has delivered so far (Wh)."""
        if self.sessions is None:
            return {}
        return {
            session.booking_id: session.energy_wh
            for session in self.sessions.tracker.open.values()
            if session.booking_id is not None
        }

    def _surplus(self, forecast: TimeSeries) -> TimeSeries:
        """The PV forecast less the site's other consumption as last measured."""
        if not forecast:
            return forecast
        other = self._other_consumption_w()
        return TimeSeries.of(
            ForecastPoint(p.start, p.end, max(0.0, p.value - other))
            for p in forecast.points
        )

    def _other_consumption_w(self) -> float:
        """The site's consumers besides its components (the consumer formula)."""
        coordinator = self._coordinator
        snapshot = None if coordinator is None else coordinator.data
        if snapshot is None or not snapshot.reachable:
            return 0.0
        consumers = snapshot.consumer_power_w
        return 0.0 if consumers is None else max(0.0, consumers)


DRAW_STEP_A = 4.0
"""A car charging outside the plan re-plans when its current moved this much."""
DRAW_REPLAN_MIN_S = 30.0
"""Currents moving re-plan at most this often (a car starting or stopping: at once)."""
_AT_ONCE_MODES = frozenset({ChargerMode.FAST, ChargerMode.BOOST})
"""The modes whose cars charge whatever the plan says."""


def _amps(value: float | None) -> float:
    """A measured current, 0 where unknown."""
    return value if value is not None and math.isfinite(value) else 0.0


def seed_demo_bookings(
    reservations: HubReservations,
    simulator: MicrogridSimulator,
    controller: MicrogridController,
) -> int:
    """Book the scenario's bookings into an empty book (a demo's first start).

    Times count from now, as the simulator starts now. Each booked charger is
    put in *smart* mode, so the demo follows its plan from the start. A book
    that already holds bookings (a restart) is left alone; a booking that does
    not fit is logged and skipped. Returns how many were booked.
    """
    if len(reservations.book):
        return 0
    now = time.time()
    booked = 0
    for booking in simulator.scenario.plan_inputs.bookings:
        try:
            reservations.book.reserve(
                booking.charger_id,
                now + booking.start_s,
                now + booking.end_s,
                energy_kwh=booking.energy_kwh,
                vehicle=booking.vehicle,
            )
        except ValueError as err:
            _LOGGER.warning("Demo booking at %s skipped: %s", booking.charger_id, err)
            continue
        booked += 1
        modes = controller.charger_modes
        # Smart for the demo's bookings, unless the user chose another mode
        # (a restart after the bookings ran out books them again).
        if booking.charger_id in modes.charger_ids and (
            modes.mode(booking.charger_id) is DEFAULT_MODE
        ):
            modes.set_mode(booking.charger_id, ChargerMode.SMART)
    return booked


def charger_shape(
    topology: Topology, charger_id: int, voltage_v: float
) -> tuple[float, tuple[int, ...]] | None:
    """A charger's maximum current per phase and its phases, from its rated bounds.

    Per-phase rated currents win where stated (the phases that have one). Else
    the rated power: on three phases unless that gives less than the 6 A a car
    needs to charge at all — a 3.7 kW wallbox is a single-phase 16 A one, not a
    three-phase 5.4 A one that could never be planned. `None`: nothing stated.
    """
    component = topology.components.get(charger_id)
    if component is None:
        return None
    stated = rated_phase_currents_a(component)
    if stated:
        return min(stated.values()), tuple(sorted(stated))
    power_w = rated_charge_power_w(topology, charger_id)
    if power_w <= 0.0:
        return None
    if power_w / (PHASES * voltage_v) >= DEFAULT_MIN_CURRENT_A:
        return power_w / (PHASES * voltage_v), (1, 2, 3)
    return power_w / voltage_v, (1,)


def _due(fetched: tuple[float, TimeSeries] | None, now: float) -> bool:
    """Whether an action's forecast is to be fetched (again) now."""
    return fetched is None or not fetched[1] or now - fetched[0] >= ACTION_TTL_S
