"""The charging hub's pieces together, the way a user runs them (issue 15).

Circuits, steering, sessions and occupancy each have their own tests; here the
shipped `depot` scenario runs fast with its own random garage traffic, so several
EVs charge behind the 80 A garage feeder (circuit ``meter_50``) at once, and
everything the hub records is checked against the simulator's own truth.
"""

from __future__ import annotations

from typing import Any

from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, EventStateChangedData, HomeAssistant
import pytest

from custom_components.frequenz_microgrid.simulator import MicrogridSimulator
from custom_components.frequenz_microgrid.simulator.physics.ev_charger import (
    CableState,
)
from custom_components.frequenz_microgrid.simulator.scenario import load_scenario

from .conftest import serving, setup_entry, state_of, wait_for

DEPOT = load_scenario("depot")
DEPOT_ID = str(DEPOT.microgrid_id)
GARAGE_CHARGERS = tuple(range(51, 61))
ALL_CHARGERS = (*range(31, 43), *GARAGE_CHARGERS)
# Simulated seconds per real second: the garage's first three EVs (seed 1)
# arrive at 2 205, 2 464 and 2 541 s, the one at 52 leaves at 5 277 s.
DEPOT_SPEED = 300.0


def plugged(sim: MicrogridSimulator) -> set[int]:
    """Chargers whose cable is in, by the simulator's own state."""
    sim.model.advance_to(sim.clock.now())
    now = sim.clock.now()
    found = set()
    for charger_id in ALL_CHARGERS:
        charger = sim.model.component(charger_id).ev_charger
        assert charger is not None
        if charger.cable_state(now) is not CableState.UNPLUGGED:
            found.add(charger_id)
    return found


def garage_charging(sim: MicrogridSimulator) -> int:
    sim.model.advance_to(sim.clock.now())
    count = 0
    for charger_id in GARAGE_CHARGERS:
        charger = sim.model.component(charger_id).ev_charger
        assert charger is not None
        if charger.current_a > 1.0:
            count += 1
    return count


class EndedSessions:
    """Every `session_ended` event any charger's event entity fires."""

    def __init__(self, hass: HomeAssistant) -> None:
        self.ended: list[dict[str, Any]] = []

        def on_change(event: Event[EventStateChangedData]) -> None:
            new = event.data["new_state"]
            if (
                new is not None
                and new.entity_id.startswith("event.")
                and new.attributes.get("event_type") == "session_ended"
            ):
                old = event.data["old_state"]
                if old is None or old.state != new.state:
                    self.ended.append(dict(new.attributes))

        self.remove = hass.bus.async_listen(EVENT_STATE_CHANGED, on_change)


async def test_the_depot_garage_charges_several_evs_within_its_feeder(
    hass: HomeAssistant,
) -> None:
    """Random garage traffic at speed: no overload, sessions and occupancy true."""
    async with serving(hass, DEPOT, speed=DEPOT_SPEED, sample_period_s=0.05) as sim:
        sessions = EndedSessions(hass)
        await setup_entry(hass, sim.url, unique_id=DEPOT_ID)
        most_at_once = 0

        def three_in_the_garage() -> bool:
            nonlocal most_at_once
            most_at_once = max(most_at_once, garage_charging(sim))
            return most_at_once >= 3

        await wait_for(three_in_the_garage, timeout_s=15, what="3 garage EVs")
        await wait_for(
            lambda: (
                any(
                    r.charger_id in GARAGE_CHARGERS for r in sim.model.finished_sessions
                )
                and len(sessions.ended) >= len(sim.model.finished_sessions)
            ),
            timeout_s=15,
            what="a garage session to end and be recorded",
        )
        await wait_for(
            lambda: (
                int(state_of(hass, f"{DEPOT_ID}_chargers_occupied", ("sensor",)).state)
                == len(plugged(sim))
            ),
            what="occupancy to match the plugged EVs",
        )
        # Each session HA recorded is one the simulator finished, with its energy.
        truth: dict[int, list[float]] = {}
        for finished in sorted(
            sim.model.finished_sessions, key=lambda r: r.plugged_at_s
        ):
            truth.setdefault(finished.charger_id, []).append(finished.charged_wh / 1000)
        assert len(sessions.ended) == len(sim.model.finished_sessions) > 0
        for record in sessions.ended:
            expected = truth[int(record["charger_id"])].pop(0)
            assert float(record["energy_kwh"]) == pytest.approx(expected, abs=1e-3)
        sessions.remove()
        assert sim.unsafe_setpoint_count == 0
    assert sim.overload_ampere_seconds == 0.0
