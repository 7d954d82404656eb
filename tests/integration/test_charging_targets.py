"""Deadline targets through Home Assistant, on the simulator (issue 16 §1).

The `home` microgrid (40 A grid fuse, two 32 A three-phase wallboxes) over real
gRPC: two cars share the fuse, one with an urgent target. The verdicts come from
the setpoints the simulator received and from the entities a user sees; the
simulator's overload counter stays 0 (`serving`) and no setpoint is unsafe.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from homeassistant.core import HomeAssistant, State
from homeassistant.util import dt as dt_util
import pytest

from custom_components.frequenz_microgrid.const import DOMAIN
from custom_components.frequenz_microgrid.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import (
    EvSpec,
    Fault,
    MicrogridSimulator,
    load_scenario,
)
from custom_components.frequenz_microgrid.simulator.scenario import (
    scenario_from_dict,
)
from tests.observations import held_setpoint

from .conftest import entity_id_of, microgrid_entry, serving, wait_for
from .steering_helpers import (
    DRIVEWAY_WALLBOX,
    GARAGE_WALLBOX,
    call_action,
    home_without_arrivals,
    open_session,
    setup_steerable,
)

WATTS_PER_AMP = 3 * 230.0
DOMAINS = ("sensor", "binary_sensor")


def _state(
    hass: HomeAssistant,
    entry: FrequenzMicrogridConfigEntry,
    key: str,
    charger: int | None = None,
) -> State:
    middle = "" if charger is None else f"{charger}_"
    found = hass.states.get(
        entity_id_of(hass, f"{entry.unique_id}_{middle}{key}", DOMAINS)
    )
    assert found is not None
    return found


def _target(
    entry: FrequenzMicrogridConfigEntry, charger: int, kwh: float, hours: float
) -> dict[str, Any]:
    return {
        "config_entry_id": entry.entry_id,
        "charger": charger,
        "energy_kwh": kwh,
        "departure": (dt_util.now() + timedelta(hours=hours)).isoformat(),
    }


def _amps(sim: MicrogridSimulator, charger: int) -> float:
    return (held_setpoint(sim, charger) or 0.0) / WATTS_PER_AMP


async def _home(hass: HomeAssistant) -> Any:
    return serving(hass, scenario_from_dict(home_without_arrivals()))


async def test_the_urgent_car_gets_more_of_the_shared_fuse(
    hass: HomeAssistant,
) -> None:
    """Two cars on a 40 A fuse: fair 50/50 until one has a tight departure."""
    async with await _home(hass) as sim:
        entry = await setup_steerable(hass, sim, GARAGE_WALLBOX, DRIVEWAY_WALLBOX)
        sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))
        sim.plug_ev(DRIVEWAY_WALLBOX, EvSpec(max_current_a=32.0))
        await wait_for(
            lambda: (
                _amps(sim, GARAGE_WALLBOX) > 12.0
                and _amps(sim, DRIVEWAY_WALLBOX) > 12.0
            ),
            timeout_s=20.0,
            what="both cars to share the fuse",
        )
        assert abs(_amps(sim, GARAGE_WALLBOX) - _amps(sim, DRIVEWAY_WALLBOX)) <= 2.0
        # The steering reads the charger's plug state at once; the session opens
        # with the next snapshot (up to a tick later on a busy machine).
        await open_session(entry, GARAGE_WALLBOX)
        # As if the targets' snapshot listener were still a chunk behind (a large
        # site): the action binds to the tracker's open session all the same.
        targets = entry.runtime_data.engine.controller.charging_targets
        targets.observe_session(GARAGE_WALLBOX, None, 0.0)

        # 20 kWh within 1.5 h: 22 kW take 55 min, so the garage car is urgent.
        response = await call_action(
            hass, "set_charging_target", _target(entry, GARAGE_WALLBOX, 20.0, 1.5)
        )
        assert response["charger"] == GARAGE_WALLBOX
        assert response["energy_kwh"] == 20.0
        assert response["session_id"] is not None  # bound to the plugged car
        assert response["at_risk"] is False
        assert response["expected_completion"] is not None

        await wait_for(
            lambda: (
                _amps(sim, GARAGE_WALLBOX) >= 28.0
                and _amps(sim, DRIVEWAY_WALLBOX) <= 10.0
            ),
            timeout_s=20.0,
            what="the urgent car to take the fuse's rest",
        )
        assert _amps(sim, DRIVEWAY_WALLBOX) >= 6.0 - 1e-6  # its minimum stays
        assert sim.unsafe_setpoint_count == 0
        target = _state(hass, entry, "charging_target", GARAGE_WALLBOX)
        assert float(target.state) == pytest.approx(20.0)
        assert target.attributes["plugged_in"] is True
        completion = _state(hass, entry, "target_expected_completion", GARAGE_WALLBOX)
        assert completion.state not in ("unknown", "unavailable")
        assert _state(hass, entry, "target_at_risk", GARAGE_WALLBOX).state == "off"

        # Cleared: back to the fair split.
        cleared = await call_action(
            hass,
            "clear_charging_target",
            {"config_entry_id": entry.entry_id, "charger": GARAGE_WALLBOX},
        )
        assert cleared == {"charger": GARAGE_WALLBOX, "cleared": True}
        await wait_for(
            lambda: (
                abs(_amps(sim, GARAGE_WALLBOX) - _amps(sim, DRIVEWAY_WALLBOX)) <= 2.0
            ),
            timeout_s=20.0,
            what="the fair split again",
        )
        assert _state(hass, entry, "charging_target", GARAGE_WALLBOX).state == (
            "unknown"
        )


async def test_at_risk_is_raised_as_soon_as_the_car_plugs_in(
    hass: HomeAssistant,
) -> None:
    """60 kWh in an hour cannot pass a 22 kW charger: at risk on plug-in."""
    async with await _home(hass) as sim:
        entry = await setup_steerable(hass, sim, DRIVEWAY_WALLBOX)
        response = await call_action(
            hass, "set_charging_target", _target(entry, DRIVEWAY_WALLBOX, 60.0, 1.0)
        )
        # No car yet: the target waits for it, nothing is forecast.
        assert response["session_id"] is None
        assert response["at_risk"] is False
        assert _state(hass, entry, "target_at_risk", DRIVEWAY_WALLBOX).state == "off"

        sim.plug_ev(DRIVEWAY_WALLBOX, EvSpec(max_current_a=32.0))
        await wait_for(
            lambda: (
                _state(hass, entry, "target_at_risk", DRIVEWAY_WALLBOX).state == "on"
            ),
            timeout_s=15.0,
            what="the target to be at risk once the car is in",
        )
        unmet = float(_state(hass, entry, "target_unmet_energy").state)
        hub = (await async_get_config_entry_diagnostics(hass, entry))["charging_hub"]
        shown = hub["targets"][str(DRIVEWAY_WALLBOX)]
        assert shown["at_risk"] is True
        assert shown["energy_wh"] == 60_000.0
        assert 60.0 - 22.1 <= unmet <= 60.0 - 20.0
        risk = _state(hass, entry, "target_at_risk", DRIVEWAY_WALLBOX)
        assert risk.attributes["unmet_kwh"] == pytest.approx(unmet, abs=0.01)
        completion = _state(hass, entry, "target_expected_completion", DRIVEWAY_WALLBOX)
        assert completion.state == "unknown"
        # Steered flat out: the least laxity there is.
        await wait_for(
            lambda: _amps(sim, DRIVEWAY_WALLBOX) >= 31.0,
            timeout_s=15.0,
            what="full power for the late car",
        )

        # A 5 kW limit: still at risk, with more missing; the sensor says how much.
        start = (dt_util.utcnow() - timedelta(minutes=1)).isoformat()
        await call_action(
            hass,
            "set_power_limits",
            {
                "config_entry_id": entry.entry_id,
                "circuit": "grid",
                "steps": [{"start": start, "upper": 5000}],
            },
        )
        targets = entry.runtime_data.engine.controller.charging_targets

        def shown_unmet_kwh() -> float:
            risk = _state(hass, entry, "target_at_risk", DRIVEWAY_WALLBOX)
            return float(risk.attributes["unmet_kwh"])

        await wait_for(
            lambda: shown_unmet_kwh() > 60.0 - 10.0,
            timeout_s=15.0,
            what="the larger shortfall shown",
        )
        state = targets.state(DRIVEWAY_WALLBOX)
        assert state is not None
        assert state.unmet_wh is not None
        assert shown_unmet_kwh() == pytest.approx(state.unmet_wh / 1000.0, abs=0.05)
        assert _state(hass, entry, "target_at_risk", DRIVEWAY_WALLBOX).state == "on"


async def test_a_new_limit_is_forecast_at_once_not_at_the_next_periodic_run(
    hass: HomeAssistant,
) -> None:
    """An envelope set or cleared re-runs the forecast within a snapshot or two.

    The forecast otherwise runs at most every `FORECAST_MAX_AGE_S` (60 s): the
    verdict must come well before that.
    """
    async with await _home(hass) as sim:
        entry = await setup_steerable(hass, sim, DRIVEWAY_WALLBOX)
        sim.plug_ev(DRIVEWAY_WALLBOX, EvSpec(max_current_a=32.0))
        await call_action(
            hass, "set_charging_target", _target(entry, DRIVEWAY_WALLBOX, 10.0, 2.0)
        )

        def at_risk() -> bool:
            return _state(hass, entry, "target_at_risk", DRIVEWAY_WALLBOX).state == "on"

        await wait_for(
            lambda: (
                _state(
                    hass, entry, "target_expected_completion", DRIVEWAY_WALLBOX
                ).state
                not in {"unknown", "unavailable"}
            ),
            timeout_s=15.0,
            what="an expected completion for the plugged-in car",
        )
        assert not at_risk()
        # 1 kW for the next three hours: below the car's minimum, nothing flows.
        limit = {"config_entry_id": entry.entry_id, "circuit": "grid"}
        start = (dt_util.utcnow() - timedelta(minutes=1)).isoformat()
        await call_action(
            hass,
            "set_power_limits",
            {**limit, "steps": [{"start": start, "upper": 1000}]},
        )
        await wait_for(at_risk, timeout_s=10.0, what="at risk under the new limit")
        await call_action(hass, "clear_power_limits", limit)
        await wait_for(lambda: not at_risk(), timeout_s=10.0, what="no longer at risk")


async def test_a_target_survives_a_restart_and_ends_with_its_session(
    hass: HomeAssistant,
) -> None:
    async with await _home(hass) as sim:
        entry = await setup_steerable(hass, sim, GARAGE_WALLBOX)
        sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))
        await wait_for(
            lambda: _amps(sim, GARAGE_WALLBOX) > 0.0, what="the car to charge"
        )
        await wait_for(
            lambda: (
                entry.runtime_data.sessions is not None
                and GARAGE_WALLBOX in entry.runtime_data.sessions.tracker.open
            ),
            what="the session to open",
        )
        set_response = await call_action(
            hass, "set_charging_target", _target(entry, GARAGE_WALLBOX, 30.0, 5.0)
        )
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()

        targets = entry.runtime_data.engine.controller.charging_targets
        kept = targets.get(GARAGE_WALLBOX)
        assert kept is not None
        assert kept.session_id == set_response["session_id"]
        assert kept.energy_wh == pytest.approx(30_000.0)
        await wait_for(
            lambda: (
                _state(hass, entry, "charging_target", GARAGE_WALLBOX).state == "30.0"
            ),
            what="the target shown again",
        )

        sim.unplug_ev(GARAGE_WALLBOX)
        await wait_for(
            lambda: targets.get(GARAGE_WALLBOX) is None,
            timeout_s=15.0,
            what="the target to end with its session",
        )


async def test_a_booking_with_an_energy_becomes_the_sessions_target(
    hass: HomeAssistant,
) -> None:
    async with await _home(hass) as sim:
        entry = await setup_steerable(hass, sim, GARAGE_WALLBOX)
        now = dt_util.now()
        booked = await _book_the_garage(hass, entry, starts_in_s=-60.0)
        sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))
        targets = entry.runtime_data.engine.controller.charging_targets
        await wait_for(
            lambda: targets.get(GARAGE_WALLBOX) is not None,
            timeout_s=15.0,
            what="the booking's target",
        )
        target = targets.get(GARAGE_WALLBOX)
        assert target is not None
        assert target.booking_id == booked["reservation_id"]
        assert target.energy_wh == pytest.approx(15_000.0)
        assert target.departure.timestamp() == pytest.approx(
            (now + timedelta(hours=2)).timestamp(), abs=1.0
        )
        await wait_for(
            lambda: (
                _state(hass, entry, "charging_target", GARAGE_WALLBOX).attributes.get(
                    "booking_id"
                )
                == booked["reservation_id"]
            ),
            what="the booking named on the target sensor",
        )


async def _book_the_garage(
    hass: HomeAssistant, entry: FrequenzMicrogridConfigEntry, *, starts_in_s: float
) -> dict[str, Any]:
    """Book the garage wallbox for 15 kWh from `starts_in_s` to two hours on."""
    now = dt_util.now()
    return await call_action(
        hass,
        "reserve_charger",
        {
            "config_entry_id": entry.entry_id,
            "charger": GARAGE_WALLBOX,
            "start": (now + timedelta(seconds=starts_in_s)).isoformat(),
            "end": (now + timedelta(hours=2)).isoformat(),
            "energy_kwh": 15.0,
        },
    )


async def test_a_car_plugged_in_before_its_booking_is_the_bookings_once_it_begins(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Drivers come early: the booking takes over the session, energy and target."""
    async with await _home(hass) as sim:
        entry = await setup_steerable(hass, sim, GARAGE_WALLBOX)
        sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))
        session = await open_session(entry, GARAGE_WALLBOX)
        assert session.booking_id is None  # no booking when it plugged in
        booked = await _book_the_garage(hass, entry, starts_in_s=2.0)
        targets = entry.runtime_data.engine.controller.charging_targets
        await wait_for(
            lambda: (
                (target := targets.get(GARAGE_WALLBOX)) is not None
                and target.booking_id == booked["reservation_id"]
            ),
            timeout_s=15.0,
            what="the booking to take over the car's session and give its target",
        )
        assert session.booking_id == booked["reservation_id"]
        target = targets.get(GARAGE_WALLBOX)
        assert target is not None
        assert target.session_id == session.session_id
        assert target.energy_wh == pytest.approx(15_000.0)
        # Its car is here: never released as a no-show.
        reservations = entry.runtime_data.reservations
        assert reservations is not None
        assert reservations.book.get(booked["reservation_id"]) is not None
        # Stored soon (not with the next progress save, minutes later): a restart
        # keeps the session the booking's.
        key = f"{DOMAIN}.{entry.entry_id}.sessions"

        def stored_booking_id() -> object:
            stored = hass_storage.get(key, {}).get("data", {}).get("open", [])
            return next((s.get("booking_id") for s in stored), None)

        await wait_for(
            lambda: stored_booking_id() == booked["reservation_id"],
            timeout_s=5.0,
            what="the taken-over session to be stored",
        )


async def test_a_cancelled_booking_takes_its_target_along_and_frees_the_car(
    hass: HomeAssistant,
) -> None:
    """Cancelled: no target of it is steered on, and the next booking takes over."""
    async with await _home(hass) as sim:
        entry = await setup_steerable(hass, sim, GARAGE_WALLBOX)
        sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))
        session = await open_session(entry, GARAGE_WALLBOX)
        first = await _book_the_garage(hass, entry, starts_in_s=1.0)
        targets = entry.runtime_data.engine.controller.charging_targets

        def target_of(booking: dict[str, Any]) -> bool:
            target = targets.get(GARAGE_WALLBOX)
            return (
                target is not None
                and target.booking_id == booking["reservation_id"] == session.booking_id
            )

        await wait_for(
            lambda: target_of(first), timeout_s=15.0, what="the first takeover"
        )
        await call_action(
            hass,
            "cancel_reservation",
            {
                "config_entry_id": entry.entry_id,
                "reservation_id": first["reservation_id"],
            },
        )
        assert targets.get(GARAGE_WALLBOX) is None
        assert session.booking_id is None
        assert entry.runtime_data.sessions is not None
        assert entry.runtime_data.sessions.tracker.open[GARAGE_WALLBOX] is session

        second = await _book_the_garage(hass, entry, starts_in_s=1.0)
        await wait_for(
            lambda: target_of(second), timeout_s=15.0, what="the second takeover"
        )
        assert sim.unsafe_setpoint_count == 0


async def test_a_booking_takes_over_no_session_whose_car_left_unseen(
    hass: HomeAssistant,
) -> None:
    """A session still open only because nobody saw the car leave is not taken.

    The charger's data goes stale, the car leaves meanwhile and a booking of the
    charger begins: the tracker still holds the session open (a gap is no
    unplug), but no snapshot shows a car, so the booking does not take it over;
    once data is back the session ends, under no booking.
    """
    async with await _home(hass) as sim:
        entry = await setup_steerable(hass, sim, GARAGE_WALLBOX)
        sim.plug_ev(GARAGE_WALLBOX, EvSpec(max_current_a=32.0))
        session = await open_session(entry, GARAGE_WALLBOX)
        sim.inject_fault(GARAGE_WALLBOX, Fault.STOP_DATA)
        coordinator = entry.runtime_data.coordinator

        def stale() -> bool:
            data = coordinator.data.component(GARAGE_WALLBOX)
            return data is None or not data.fresh

        await wait_for(stale, timeout_s=15.0, what="the charger's data to go stale")
        sim.unplug_ev(GARAGE_WALLBOX)
        booked = await _book_the_garage(hass, entry, starts_in_s=1.0)
        reservations = entry.runtime_data.reservations
        assert reservations is not None
        await wait_for(
            lambda: reservations.book.in_force(GARAGE_WALLBOX) is not None,
            what="the booking to begin",
        )
        sessions = entry.runtime_data.sessions
        assert sessions is not None
        # Several snapshots with the booking in force, the session still open.
        for _ in range(3):
            before = coordinator.data

            def next_one(before: object = before) -> bool:
                return coordinator.data is not before

            await wait_for(next_one, what="the next snapshot")
        assert stale()
        assert sessions.tracker.open.get(GARAGE_WALLBOX) is session
        assert session.booking_id is None

        sim.clear_fault(GARAGE_WALLBOX)
        await wait_for(
            lambda: GARAGE_WALLBOX not in sessions.tracker.open,
            timeout_s=15.0,
            what="the session to end once the charger reports again",
        )
        assert session.booking_id is None
        target = entry.runtime_data.engine.controller.charging_targets.get(
            GARAGE_WALLBOX
        )
        assert target is None or target.session_id != session.session_id
        assert reservations.book.get(booked["reservation_id"]) is not None


async def test_on_the_depot_garage_feeder_the_urgent_car_gets_more(
    hass: HomeAssistant,
) -> None:
    """Four cars behind the 80 A garage feeder (meter 50): the deadline wins."""
    depot = load_scenario("depot")
    bays = (51, 52, 53, 54)
    async with serving(hass, depot) as sim:
        entry = await setup_steerable(hass, sim, *bays)
        for bay in bays:
            sim.plug_ev(bay, EvSpec(phases=3, max_current_a=32.0))
        await wait_for(
            lambda: all(_amps(sim, bay) >= 15.0 for bay in bays),
            timeout_s=20.0,
            what="four cars sharing the feeder",
        )
        response = await call_action(
            hass, "set_charging_target", _target(entry, bays[0], 25.0, 1.5)
        )
        assert response["at_risk"] is False
        await wait_for(
            lambda: (
                _amps(sim, bays[0]) >= 30.0
                and all(_amps(sim, bay) <= 17.0 for bay in bays[1:])
            ),
            timeout_s=20.0,
            what="the urgent car to get the most of the feeder",
        )
        assert sum(_amps(sim, bay) for bay in bays) <= 80.0 + 1e-6
        assert sim.unsafe_setpoint_count == 0


async def test_stored_targets_come_back_and_a_damaged_one_costs_only_itself(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = microgrid_entry(simulator.url)
    entry.add_to_hass(hass)
    key = f"{DOMAIN}.{entry.entry_id}.charging_targets"
    departure = (dt_util.utcnow() + timedelta(hours=3)).isoformat()
    hass_storage[key] = {
        "version": 1,
        "minor_version": 1,
        "key": key,
        "data": {
            "targets": [
                {"charger_id": GARAGE_WALLBOX, "energy_wh": 1, "departure": "soon"},
                {
                    "charger_id": DRIVEWAY_WALLBOX,
                    "energy_wh": 12_000.0,
                    "departure": departure,
                },
            ]
        },
    }
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    targets = entry.runtime_data.engine.controller.charging_targets
    assert targets.get(GARAGE_WALLBOX) is None
    kept = targets.get(DRIVEWAY_WALLBOX)
    assert kept is not None
    assert kept.energy_wh == 12_000.0
    assert kept.session_id is None  # no car yet: it waits for the next one
    assert "Ignoring a damaged charging target" in caplog.text
    assert float(_state(hass, entry, "charging_target", DRIVEWAY_WALLBOX).state) == 12.0
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage  # removing the entry deletes its targets
