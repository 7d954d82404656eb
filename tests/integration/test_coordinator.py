"""The coordinator over real gRPC: stale → unavailable → recovery, and a revoked key.

Real time is used throughout (gRPC doesn't follow Home Assistant's frozen clock), with
a 2 s freshness window so the whole cycle takes a few seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import dataclasses
import logging
from typing import Any

from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
import pytest

from custom_components.frequenz_microgrid.const import (
    CONF_API_KEY,
    CONF_FRESHNESS_S,
    DOMAIN,
)
from custom_components.frequenz_microgrid.engine.control import Pool
from custom_components.frequenz_microgrid.engine.snapshot import MicrogridSnapshot
from custom_components.frequenz_microgrid.listener_chunks import (
    CHUNK_SIZE,
    ChunkedListeners,
)
from custom_components.frequenz_microgrid.runtime import (
    FrequenzMicrogridConfigEntry,
)
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator

from .auth_gateway import AuthGateway
from .conftest import API_KEY, entity_id_of, setup_entry, wait_for

FRESHNESS_S = 2.0
UNREACHABLE = "is unreachable"
BACK = "is reachable again"


async def _set_up(
    hass: HomeAssistant, url: str, data: dict[str, Any] | None = None
) -> FrequenzMicrogridConfigEntry:
    return await setup_entry(
        hass, url, data=data, options={CONF_FRESHNESS_S: FRESHNESS_S}
    )


def _grid_power_state(hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry) -> str:
    state = hass.states.get(entity_id_of(hass, f"{entry.unique_id}_grid_power"))
    return state.state if state else STATE_UNKNOWN


def _has_value(hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry) -> bool:
    return _grid_power_state(hass, entry) not in (STATE_UNAVAILABLE, STATE_UNKNOWN)


@pytest.mark.slow
async def test_unreachable_then_recovers_without_reload(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = await _set_up(hass, simulator.url)
    runtime = entry.runtime_data
    await wait_for(lambda: _has_value(hass, entry), what="grid power")

    await simulator.stop()
    await wait_for(
        lambda: _grid_power_state(hass, entry) == STATE_UNAVAILABLE,
        what="the sensor to go unavailable",
    )
    # The grid meter's data goes stale first; the microgrid counts as unreachable
    # once no component's data is fresh (the last ones came up to a round's
    # spread later).
    await wait_for(
        lambda: not runtime.coordinator.data.reachable, what="no fresh data at all"
    )
    assert runtime.coordinator.data.grid_power_w is None, "stale is no value, never 0"
    await wait_for(lambda: UNREACHABLE in caplog.text, what="the log line")
    await asyncio.sleep(FRESHNESS_S)  # still down: no second line
    assert caplog.text.count(UNREACHABLE) == 1
    # That line is all the log says while it lasts (not every stream's retry,
    # thousands every few seconds on a large site).
    outage_warnings = [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING
        and record.name.startswith("custom_components.frequenz_microgrid")
    ]
    assert outage_warnings == []

    await simulator.restart()  # same port
    await wait_for(
        lambda: _has_value(hass, entry), timeout_s=20, what="the sensor to recover"
    )
    assert entry.runtime_data is runtime, "recovered without a reload"
    assert runtime.client.is_connected
    assert runtime.coordinator.data.reachable
    await wait_for(lambda: BACK in caplog.text, what="the recovery log line")
    assert caplog.text.count(BACK) == 1
    assert caplog.text.count(UNREACHABLE) == 1


async def test_streams_ended_by_the_server_resume(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await _set_up(hass, simulator.url)
    runtime = entry.runtime_data
    await wait_for(lambda: _has_value(hass, entry), what="grid power")

    await simulator.end_all_streams()
    taken_at = runtime.coordinator.data.taken_at
    await wait_for(
        lambda: (
            runtime.coordinator.data.taken_at > taken_at
            and runtime.coordinator.data.grid_power_w is not None
        ),
        what="fresh data after the streams ended",
    )
    assert entry.runtime_data is runtime


@pytest.mark.slow
async def test_revoked_key_starts_reauth_once(
    hass: HomeAssistant, gateway: AuthGateway, caplog: pytest.LogCaptureFixture
) -> None:
    entry = await _set_up(hass, gateway.url, data={CONF_API_KEY: API_KEY})
    await wait_for(lambda: _has_value(hass, entry), what="grid power")
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)

    gateway.accepted_key = "rotated-key"

    def reauth_flows() -> list[Any]:
        return [
            flow
            for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
            if flow["context"]["source"] == SOURCE_REAUTH
        ]

    await wait_for(lambda: bool(reauth_flows()), timeout_s=15, what="a reauth flow")
    await asyncio.sleep(FRESHNESS_S)  # more rejected calls: still one flow, one line
    assert len(reauth_flows()) == 1
    assert reauth_flows()[0]["context"]["entry_id"] == entry.entry_id
    assert caplog.text.count("rejected the API key") == 1
    assert _grid_power_state(hass, entry) == STATE_UNAVAILABLE

    # The key is accepted again (a glitch at the API): back on its own, and the
    # reauth prompt for a key that needs no change is gone.
    gateway.accepted_key = API_KEY
    await wait_for(lambda: _has_value(hass, entry), timeout_s=15, what="grid power")
    await wait_for(lambda: not reauth_flows(), what="the stale reauth flow aborted")
    # A later rejection asks again.
    gateway.accepted_key = "rotated-again"
    await wait_for(lambda: bool(reauth_flows()), timeout_s=15, what="a new reauth flow")


async def test_many_listeners_are_told_a_chunk_per_loop_iteration(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await _set_up(hass, simulator.url)
    coordinator = entry.runtime_data.coordinator
    await wait_for(lambda: _has_value(hass, entry), what="grid power")
    await entry.runtime_data.engine.monitor.stop()  # only this test's updates from here
    told: list[int] = []

    def listener(n: int) -> Callable[[], None]:
        return lambda: told.append(n)

    removers = [coordinator.async_add_listener(listener(n)) for n in range(600)]
    removers[599]()  # removed before its chunk: never called

    coordinator.async_set_updated_data(coordinator.data)
    # At most one chunk at once (the entities' own listeners come first and, on a
    # busy machine, may use up the first chunk's time budget), the rest later.
    assert len(told) <= CHUNK_SIZE, "one chunk at once, the rest later"
    removers[598]()  # removed while the round runs
    iterations = 0
    while len(told) < 598 and iterations < 1000:
        await asyncio.sleep(0)
        iterations += 1
    assert iterations > 0
    assert sorted(told) == list(range(598))

    told.clear()
    coordinator.async_set_updated_data(coordinator.data)
    first_chunk = len(told)
    await coordinator.async_shutdown()  # unloading drops the rest of the round
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(told) == first_chunk < 598


async def test_controller_changes_reach_many_entities_a_chunk_at_a_time(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """A proposal tells every steering entity, without holding the loop for all."""
    entry = await _set_up(hass, simulator.url)
    runtime = entry.runtime_data
    await wait_for(lambda: _has_value(hass, entry), what="grid power")
    await runtime.engine.monitor.stop()  # only this test's updates from here
    feed = runtime.status_feed
    told: list[int] = []

    def listener(n: int) -> Callable[[], None]:
        return lambda: told.append(n)

    for n in range(600):
        feed.async_add_listener(listener(n))
    # Registered after the feed: sees how many were told within the change itself.
    told_at_once: list[int] = []
    runtime.engine.controller.listen(lambda: told_at_once.append(len(told)))

    await runtime.engine.controller.propose(
        Pool.BATTERIES, source_id="test", priority=1, power=0.0
    )

    assert told_at_once
    assert told_at_once[0] <= CHUNK_SIZE, "one chunk at once, the rest later"
    # A second change (the dispatch's own) may restart the round from the first
    # listener: count who was told, not how often.
    await wait_for(lambda: len(set(told)) >= 600, what="every listener told")
    assert sorted(set(told)) == list(range(600))


async def test_a_chunk_ends_when_its_time_is_up() -> None:
    listeners = ChunkedListeners(asyncio.get_running_loop(), chunk_size=2, budget_s=0)
    told: list[int] = []

    def teller(n: int) -> Callable[[], None]:
        return lambda: told.append(n)

    for n in range(3):
        listeners.add(teller(n))
    listeners.call_all()
    assert told == [0], "over time after the first one"
    await asyncio.sleep(0)
    assert told == [0, 1]
    await asyncio.sleep(0)
    assert told == [0, 1, 2]
    await asyncio.sleep(0)
    assert told == [0, 1, 2], "the round is over"


async def test_a_listener_that_raises_does_not_end_the_round() -> None:
    listeners = ChunkedListeners(asyncio.get_running_loop(), chunk_size=1)
    told: list[int] = []

    def broken() -> None:
        raise RuntimeError("broken listener")

    listeners.add(broken)
    listeners.add(lambda: told.append(1))
    with pytest.raises(RuntimeError):
        listeners.call_all()
    await asyncio.sleep(0)
    assert told == [1]


async def test_a_round_of_changes_tells_only_the_changed_keys_and_the_unkeyed() -> None:
    listeners = ChunkedListeners(asyncio.get_running_loop(), chunk_size=10)
    told: list[str] = []

    def teller(name: str) -> Callable[[], None]:
        return lambda: told.append(name)

    listeners.add(teller("every"))
    listeners.add(teller("a1"), key=1)
    listeners.add(teller("a2"), key=1)
    remove_b = listeners.add(teller("b"), key=2)
    listeners.call_changed([1, 3])
    assert sorted(told) == ["a1", "a2", "every"]
    told.clear()
    remove_b()
    listeners.call_changed([2])
    assert told == ["every"], "a removed listener is not told"
    told.clear()
    listeners.call_all()
    assert sorted(told) == ["a1", "a2", "every"]


async def test_a_restarted_round_still_tells_those_the_last_had_not_reached() -> None:
    listeners = ChunkedListeners(asyncio.get_running_loop(), chunk_size=1)
    told: list[str] = []

    def teller(name: str) -> Callable[[], None]:
        return lambda: told.append(name)

    for key in (1, 2, 3):
        listeners.add(teller(f"k{key}"), key=key)
    listeners.call_changed([1, 2, 3])
    assert told == ["k1"], "one chunk at once"
    listeners.call_changed([3])  # k2 changed in the round before: still told
    for _ in range(5):
        await asyncio.sleep(0)
    assert told == ["k1", "k2", "k3"]


async def test_a_components_listeners_hear_only_of_its_changes(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """A listener with a component id as context: told when that one changed.

    Or when reachability changed; listeners without a context every time.
    """
    entry = await _set_up(hass, simulator.url)
    coordinator = entry.runtime_data.coordinator
    await wait_for(lambda: _has_value(hass, entry), what="grid power")
    await entry.runtime_data.engine.monitor.stop()  # only this test's updates from here
    data = coordinator.data
    changing, steady = sorted(data.components)[:2]
    told: list[str] = []
    coordinator.async_add_listener(lambda: told.append("every"))
    coordinator.async_add_listener(lambda: told.append("changing"), changing)
    coordinator.async_add_listener(lambda: told.append("steady"), steady)

    async def publish(snapshot: MicrogridSnapshot) -> list[str]:
        told.clear()
        coordinator.async_set_updated_data(snapshot)
        await hass.async_block_till_done()
        return sorted(told)

    components = dict(data.components)
    components[changing] = dataclasses.replace(components[changing])  # a new object
    changed = dataclasses.replace(data, components=components)
    assert await publish(changed) == ["changing", "every"]
    assert await publish(changed) == ["every"]
    lost = dataclasses.replace(changed, reachable=False)
    assert await publish(lost) == ["changing", "every", "steady"]
    gone = dict(components)
    del gone[steady]  # left the snapshot: its listeners hear of it
    assert await publish(dataclasses.replace(lost, components=gone)) == [
        "every",
        "steady",
    ]
