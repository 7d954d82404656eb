"""Components connected and disconnected while the simulator runs (issue 17 §2)."""

from __future__ import annotations

import asyncio

from frequenz.client.base.exception import EntityNotFound
from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid import MicrogridApiClient
from frequenz.client.microgrid.component import AcEvCharger, BatteryInverter
from frequenz.client.microgrid.metrics import Metric
import pytest

from custom_components.frequenz_microgrid.simulator import MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.cli import apply_command
from custom_components.frequenz_microgrid.simulator.scenario import (
    Kind,
    generated_component,
)
from custom_components.frequenz_microgrid.simulator.streams import Subscription

from .conftest import first_matching

GRID_METER = 2
NEW_INVERTER = 20
NEW_BATTERY = 21


async def _ids(client: MicrogridApiClient) -> set[int]:
    return {int(c.id) for c in await client.list_components()}


async def _wiring(client: MicrogridApiClient) -> set[tuple[int, int]]:
    return {
        (int(c.source), int(c.destination)) for c in await client.list_connections()
    }


async def test_a_component_added_live_is_listed_streamed_and_steerable(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    sim.add_component(
        generated_component(NEW_INVERTER, Kind.BATTERY_INVERTER, GRID_METER)
    )
    sim.add_component(generated_component(NEW_BATTERY, Kind.BATTERY, NEW_INVERTER))

    assert {NEW_INVERTER, NEW_BATTERY} <= await _ids(client)
    assert {(GRID_METER, NEW_INVERTER), (NEW_INVERTER, NEW_BATTERY)} <= await _wiring(
        client
    )
    (inverter,) = await client.list_components(components=[ComponentId(NEW_INVERTER)])
    assert isinstance(inverter, BatteryInverter)
    samples = await first_matching(
        client, NEW_INVERTER, [Metric.AC_POWER_ACTIVE], lambda _: True
    )
    assert int(samples.component_id) == NEW_INVERTER
    await client.set_component_power_active(ComponentId(NEW_INVERTER), 2000.0)
    assert sim.control.requests_by_component[NEW_INVERTER] == 1
    # The grid meter carries the new inverter's power from the next round on.
    sim.tick()
    assert sim.model.component(NEW_INVERTER).phases.total == pytest.approx(2000.0)


async def test_a_component_removed_live_is_gone_everywhere(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    garage = 6
    stream = client.receive_component_data_samples_stream(
        ComponentId(garage), [Metric.AC_POWER_ACTIVE]
    )
    await asyncio.wait_for(stream.receive(), 2.0)

    assert sim.remove_component(garage) == {garage}

    assert garage not in await _ids(client)
    assert all(garage not in pair for pair in await _wiring(client))
    assert garage not in sim.model.components
    with pytest.raises(EntityNotFound):
        await client.set_component_power_active(ComponentId(garage), 1000.0)
    # Its stream ends (the client's re-subscriptions are refused: NOT_FOUND).
    async with asyncio.timeout(2.0):
        while any(sub.component_id == garage for sub in _subscriptions(sim)):  # noqa: ASYNC110 - polls the server
            await asyncio.sleep(0.02)
    sim.tick()  # a round without it does not fail
    chargers = [c for c in await client.list_components() if isinstance(c, AcEvCharger)]
    assert [int(c.id) for c in chargers] == [7]


def _subscriptions(sim: MicrogridSimulator) -> list[Subscription]:
    return [s for group in sim.hub._groups.values() for s in group]


async def test_removing_a_component_takes_everything_behind_it(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    home_inverter, home_battery = 3, 4
    assert sim.remove_component(home_inverter) == {home_inverter, home_battery}
    assert not {home_inverter, home_battery} & await _ids(client)
    with pytest.raises(KeyError):
        sim.remove_component(home_inverter)
    with pytest.raises(ValueError, match="exists already"):
        sim.add_component(generated_component(GRID_METER, Kind.METER, 1))
    with pytest.raises(ValueError, match="unknown parent"):
        sim.add_component(generated_component(30, Kind.BATTERY, 99))


async def test_the_command_line_adds_and_removes_components(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    reply = await apply_command(sim, f"add {NEW_INVERTER} battery_inverter 2")
    assert "added" in reply
    await apply_command(sim, f"add {NEW_BATTERY} battery {NEW_INVERTER}")
    assert {NEW_INVERTER, NEW_BATTERY} <= await _ids(client)
    reply = await apply_command(sim, f"remove {NEW_INVERTER}")
    assert reply == f"removed components {[NEW_INVERTER, NEW_BATTERY]}"
    assert not {NEW_INVERTER, NEW_BATTERY} & await _ids(client)
