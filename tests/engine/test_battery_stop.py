"""A battery that can no longer be steered gets 0 W once, and only then is let go.

The real `BatteryPoolSteering` and `Distributor` on a hand-moved clock, with a
client that records what it is sent (the cases need a keep-alive refresh due,
or a slow inverter, at an exact moment). Found by review: a refresh withheld
before the tick forgot the running inverter and no stop followed; the stop held
up the rest of the set; a topology change orphaned every battery setpoint (kept
alive for good, no pool commanding it); a battery behind a retired inverter was
still steered through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable
import math

from frequenz.client.microgrid.component import ComponentStateCode as State

from custom_components.frequenz_microgrid.engine import members
from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.engine.control.battery_pool import (
    BatteryPoolSteering,
)
from custom_components.frequenz_microgrid.engine.control.grid_fuse import FuseBudget
from custom_components.frequenz_microgrid.engine.control.inputs import (
    feed_health,
    register_components,
)
from custom_components.frequenz_microgrid.engine.control.steering import (
    SteeringContext,
)
from custom_components.frequenz_microgrid.engine.distributor import Distributor
from custom_components.frequenz_microgrid.engine.graph import build_topology
from custom_components.frequenz_microgrid.engine.health import HealthTracker
from custom_components.frequenz_microgrid.engine.power_manager import PowerManager
from custom_components.frequenz_microgrid.engine.telemetry import TelemetryStore
from tests.engine.test_distributor import FakeSetPowerClient
from tests.engine.topologies import (
    BATTERY_A,
    BATTERY_B,
    HOME_WIRING,
    INVERTER_A,
    INVERTER_B,
    connections,
    home_components,
    home_topology,
    info,
)
from tests.observations import ManualClock, record, record_state

POOL = frozenset({BATTERY_A, BATTERY_B})
SOC_WINDOW = PowerBounds(10.0, 90.0)


class RecordingClient(FakeSetPowerClient):
    """Accepts every setpoint, after `delay_s` for the inverters in `slow`."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float]] = []
        self.slow: set[int] = set()
        self.delay_s = 3.0

    async def handle(self, component_id: int, power: float) -> None:
        self.calls.append((component_id, power))
        if component_id in self.slow:
            await asyncio.sleep(self.delay_s)


def good(store: TelemetryStore, inverter: int, battery: int) -> None:
    record_state(store, battery, {State.READY, State.RELAY_CLOSED})
    record_state(store, inverter, {State.READY})
    record(store, battery, members.CAPACITY, 10_000.0)
    record(store, battery, members.SOC, 50.0, SOC_WINDOW)
    record(store, battery, members.DC_POWER, 0.0, PowerBounds(-5000.0, 5000.0))
    record(store, inverter, members.AC_POWER, 0.0, PowerBounds(-5000.0, 5000.0))


class Rig:
    """One battery pool wired as the controller wires it."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        topology = home_topology()
        self.store = TelemetryStore(clock=self.clock)
        self.health = HealthTracker()
        register_components(self.health, topology)
        self.client = RecordingClient()
        self.distributor = Distributor(
            self.client,
            observer=self.health,
            clock=self.clock,
            falls_back_to_zero=topology.battery_inverter_ids,
            on_setpoints_lost=self._lost,
            still_allowed=self._allowed,
        )
        context = SteeringContext(topology, self.store, self.health, self.distributor)
        self.steering = BatteryPoolSteering(context, PowerManager.for_batteries())
        for inverter, battery in ((INVERTER_A, BATTERY_A), (INVERTER_B, BATTERY_B)):
            good(self.store, inverter, battery)

    def _lost(self, component_ids: Collection[int]) -> None:
        self.steering.forget(component_ids)  # as the controller does

    def _allowed(self, component_id: int, power: float) -> bool:
        if self.steering.commands(component_id):
            return self.steering.still_allows(component_id, power)
        return True

    async def steer(
        self, component_ids: Iterable[int], wanted: float, *, force: bool = False
    ) -> None:
        """One round of the set, after the health is fed (as a tick does)."""
        context = self.steering.context
        feed_health(self.health, context.topology, self.store, self.clock.now)
        await self.steering._steer_set(
            frozenset(component_ids),
            wanted,
            FuseBudget(None),
            self.clock.now,
            force=force,
        )

    def sent_to(self, component_id: int) -> list[float]:
        return [power for cid, power in self.client.calls if cid == component_id]


def soc_turns_nan(rig: Rig, battery: int) -> None:
    record(rig.store, battery, members.SOC, math.nan, SOC_WINDOW)


async def a_goes_nan_when_its_refresh_is_due(rig: Rig) -> None:
    await rig.steer(POOL, 6000.0, force=True)
    assert rig.sent_to(INVERTER_A) == [3000.0]
    rig.clock.now += 45.0  # the keep-alive refresh is due (2/3 of 60 s)
    good(rig.store, INVERTER_A, BATTERY_A)
    good(rig.store, INVERTER_B, BATTERY_B)
    soc_turns_nan(rig, BATTERY_A)


async def test_the_next_round_stops_an_inverter_whose_battery_turned_nan() -> None:
    rig = Rig()
    await a_goes_nan_when_its_refresh_is_due(rig)
    await rig.steer(POOL, 6000.0)
    assert rig.sent_to(INVERTER_A) == [3000.0, 0.0]
    await rig.steer(POOL, 6000.0)
    assert rig.sent_to(INVERTER_A) == [3000.0, 0.0], "once"


async def test_a_refresh_withheld_before_the_round_still_leads_to_a_stop() -> None:
    rig = Rig()
    await a_goes_nan_when_its_refresh_is_due(rig)
    report = await rig.distributor.refresh_due()
    assert INVERTER_A in report.withheld  # and forgotten by the pool
    await rig.steer(POOL, 6000.0)
    assert rig.sent_to(INVERTER_A) == [3000.0, 0.0]


async def test_a_slow_stop_does_not_hold_up_the_rest_of_the_set() -> None:
    rig = Rig()
    await rig.steer(POOL, 4000.0, force=True)
    assert rig.sent_to(INVERTER_B) == [2000.0]
    soc_turns_nan(rig, BATTERY_A)
    rig.client.slow.add(INVERTER_A)
    round_ = asyncio.create_task(rig.steer(POOL, 4000.0))
    await asyncio.sleep(0.2)
    try:
        assert rig.sent_to(INVERTER_B) == [2000.0, 4000.0]
        assert rig.sent_to(INVERTER_A) == [2000.0, 0.0]
    finally:
        round_.cancel()


async def test_a_setpoint_stays_owned_through_a_topology_change() -> None:
    """Battery B leaves: A's setpoint is still the pool's, so A can be stopped."""
    rig = Rig()
    rig.steering.manager.set_system_bounds(POOL, PowerBounds(-10_000.0, 10_000.0))
    await rig.steer(POOL, 6000.0, force=True)
    gone = frozenset({INVERTER_B, BATTERY_B})
    topology = build_topology(
        info(),
        [c for c in home_components() if int(c.id) not in gone],
        connections([w for w in HOME_WIRING if not set(w) & gone]),
    )
    await rig.distributor.drop(gone, topology.battery_inverter_ids)
    rig.health.forget(gone)
    context = SteeringContext(topology, rig.store, rig.health, rig.distributor)
    rig.steering.follow_topology(context, topology.battery_ids, gone)
    assert rig.steering.commanded() == {INVERTER_A: 3000.0}

    rig.clock.now += 45.0
    good(rig.store, INVERTER_A, BATTERY_A)
    soc_turns_nan(rig, BATTERY_A)
    await rig.steer({BATTERY_A}, 6000.0)
    await rig.distributor.refresh_due()
    assert rig.sent_to(INVERTER_A) == [3000.0, 0.0]


async def test_a_retired_inverter_gets_nothing_for_its_battery() -> None:
    rig = Rig()
    rig.health.set_out_of_service({INVERTER_A})
    await rig.steer(POOL, 6000.0, force=True)
    assert rig.sent_to(INVERTER_A) == []
    assert rig.sent_to(INVERTER_B) == [5000.0]
