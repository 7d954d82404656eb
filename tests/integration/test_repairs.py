"""Repair issues from the simulator's faults: raised after a grace period, cleared.

The grace periods (10 and 5 minutes in production) are shortened so the tests run
in seconds; everything else is the real integration over gRPC.
"""

from __future__ import annotations

import asyncio
import re

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest

from custom_components.frequenz_microgrid import repairs
from custom_components.frequenz_microgrid.const import CONF_FRESHNESS_S, DOMAIN
from custom_components.frequenz_microgrid.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.frequenz_microgrid.runtime import (
    FrequenzMicrogridConfigEntry,
)
from custom_components.frequenz_microgrid.simulator import Fault, MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.scenario import (
    Kind,
    generated_component,
)

from .conftest import setup_entry, wait_for
from .steering_helpers import PV_INVERTER, wait_until_working

GRID_METER = 2

GRACE_S = 1.0


@pytest.fixture(autouse=True)
def short_grace_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    """Raise issues after a second instead of minutes."""
    monkeypatch.setattr(repairs, "BROKEN_ISSUE_AFTER_S", GRACE_S)
    monkeypatch.setattr(repairs, "UNREACHABLE_ISSUE_AFTER_S", GRACE_S)
    monkeypatch.setattr(repairs, "GRID_BLIND_ISSUE_AFTER_S", GRACE_S)


async def _set_up(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> FrequenzMicrogridConfigEntry:
    # The shortest freshness window, so an outage is noticed within seconds.
    return await setup_entry(hass, simulator.url, options={CONF_FRESHNESS_S: 2.0})


def _issue(hass: HomeAssistant, issue_id: str) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id)


def _placeholders(hass: HomeAssistant, issue_id: str) -> dict[str, str]:
    issue = _issue(hass, issue_id)
    return {} if issue is None else dict(issue.translation_placeholders or {})


def _our_issues(hass: HomeAssistant) -> list[str]:
    return sorted(
        issue_id for (domain, issue_id) in ir.async_get(hass).issues if domain == DOMAIN
    )


async def test_broken_component_issue_raised_after_grace_and_cleared(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await _set_up(hass, simulator)
    issue_id = repairs.component_issue_id(entry.entry_id, PV_INVERTER)
    await wait_until_working(entry, PV_INVERTER)
    # Before the first data every component looked broken for a moment.
    await wait_for(lambda: _our_issues(hass) == [], what="no issue")

    simulator.inject_fault(PV_INVERTER, Fault.ERROR_STATE)
    seconds = await wait_for(
        lambda: _issue(hass, issue_id) is not None,
        what="a broken-component issue",
    )
    assert seconds >= GRACE_S, "not before the grace period"
    issue = _issue(hass, issue_id)
    assert issue is not None
    assert issue.translation_key == "component_broken"
    assert issue.severity is ir.IssueSeverity.WARNING
    assert not issue.is_fixable
    placeholders = issue.translation_placeholders or {}
    assert f"#{PV_INVERTER}" in placeholders["component"]
    assert "ERROR" in placeholders["problem"]
    # Since when, as a local time (not "for N minutes", which goes stale).
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", placeholders["since"])
    # Chargers waiting for an EV are not broken: no issue for them.
    assert _our_issues(hass) == [issue_id]

    # The problem changes (its data stops as well): the open issue says so,
    # once, not again each second as the data's age grows.
    updates: list[str] = []
    hass.bus.async_listen(
        ir.EVENT_REPAIRS_ISSUE_REGISTRY_UPDATED,
        lambda event: (
            updates.append(event.data["action"])
            if event.data["issue_id"] == issue_id
            else None
        ),
    )
    simulator.inject_fault(PV_INVERTER, Fault.ERROR_STATE | Fault.STOP_DATA)
    await wait_for(
        lambda: "old" in _placeholders(hass, issue_id).get("problem", ""),
        what="the issue's problem updated",
    )
    assert _placeholders(hass, issue_id)["since"] == placeholders["since"]
    await asyncio.sleep(3)
    assert updates == ["update"]

    simulator.clear_fault(PV_INVERTER)
    await wait_for(lambda: _issue(hass, issue_id) is None, what="the issue cleared")


async def test_unreachable_microgrid_issue_raised_and_cleared(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await _set_up(hass, simulator)
    issue_id = repairs.unreachable_issue_id(entry.entry_id)
    await wait_for(lambda: entry.runtime_data.engine.monitor.reachable, what="data")
    for spec in simulator.scenario.components:
        simulator.inject_fault(spec.id, Fault.STOP_DATA)

    await wait_for(
        lambda: _issue(hass, issue_id) is not None,
        what="an unreachable issue",
    )
    issue = _issue(hass, issue_id)
    assert issue is not None
    assert issue.translation_key == "microgrid_unreachable"
    assert issue.severity is ir.IssueSeverity.ERROR
    # Every component looks broken while nothing arrives: one issue says it all.
    assert _our_issues(hass) == [issue_id]

    for spec in simulator.scenario.components:
        simulator.clear_fault(spec.id)
    await wait_for(lambda: _issue(hass, issue_id) is None, what="the issue cleared")


async def test_grid_currents_unknown_issue_raised_and_cleared(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """The grid meter sends NaN: the fuse is not watched, and the user is told."""
    entry = await _set_up(hass, simulator)
    issue_id = repairs.grid_currents_issue_id(entry.entry_id)
    await wait_until_working(entry, PV_INVERTER)
    await wait_for(lambda: _our_issues(hass) == [], what="no issue")

    simulator.inject_fault(GRID_METER, Fault.SEND_NAN)
    seconds = await wait_for(
        lambda: _issue(hass, issue_id) is not None,
        what="a grid-currents issue",
    )
    assert seconds >= GRACE_S, "not before the grace period"
    issue = _issue(hass, issue_id)
    assert issue is not None
    assert issue.translation_key == "grid_currents_unknown"
    assert issue.severity is ir.IssueSeverity.WARNING
    assert not issue.is_fixable
    assert (issue.translation_placeholders or {})["title"] == entry.title
    assert _our_issues(hass) == [issue_id]
    assert entry.runtime_data.engine.monitor.reachable
    support = await async_get_config_entry_diagnostics(hass, entry)
    assert support["steering"]["grid_currents_unknown"] is True

    simulator.clear_fault(GRID_METER)
    await wait_for(lambda: _issue(hass, issue_id) is None, what="the issue cleared")


async def test_no_grid_currents_issue_while_unreachable(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """Nothing arrives at all: the unreachable issue says it, not a grid one."""
    entry = await _set_up(hass, simulator)
    await wait_for(lambda: entry.runtime_data.engine.monitor.reachable, what="data")
    for spec in simulator.scenario.components:
        simulator.inject_fault(spec.id, Fault.STOP_DATA)
    unreachable = repairs.unreachable_issue_id(entry.entry_id)
    await wait_for(lambda: _issue(hass, unreachable) is not None, what="unreachable")
    await asyncio.sleep(2 * GRACE_S)
    assert _our_issues(hass) == [unreachable]


async def test_unload_removes_the_entrys_issues(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await _set_up(hass, simulator)
    issue_id = repairs.component_issue_id(entry.entry_id, PV_INVERTER)
    simulator.inject_fault(PV_INVERTER, Fault.ERROR_STATE)
    await wait_for(lambda: _issue(hass, issue_id) is not None, what="an issue")

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert _our_issues(hass) == []


async def test_a_component_connected_live_is_named_and_its_issue_goes_with_it(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    entry = await _set_up(hass, simulator)
    refresh = entry.runtime_data.topology_refresh
    assert refresh is not None
    new_inverter = 20
    simulator.add_component(
        generated_component(new_inverter, Kind.BATTERY_INVERTER, GRID_METER)
    )
    new_battery = 21  # the battery pool's components are its batteries
    simulator.add_component(
        generated_component(new_battery, Kind.BATTERY, new_inverter)
    )
    change = await refresh.async_refresh()
    assert change is not None
    assert new_inverter in change.added
    issue_id = repairs.component_issue_id(entry.entry_id, new_battery)

    await wait_until_working(entry, new_battery)

    simulator.inject_fault(new_inverter, Fault.ERROR_STATE)
    await wait_for(lambda: _issue(hass, issue_id) is not None, what="its issue")
    issue = _issue(hass, issue_id)
    assert issue is not None
    placeholders = issue.translation_placeholders or {}
    assert placeholders["component"] == f"battery {new_battery} (#{new_battery})"

    simulator.remove_component(new_inverter)
    await refresh.async_refresh()
    await wait_for(lambda: _issue(hass, issue_id) is None, what="the issue withdrawn")
