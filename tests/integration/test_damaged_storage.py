"""Damaged, foreign or newer storage files never keep the entry from loading.

Every store of an entry (sessions, charging targets, hub settings, bookings,
circuit power limits) is seeded with a file the integration did not write the
way it reads it, over the real simulator: the entry must load, run, and keep
every record that still reads. A file written by a newer version is left as it
is (a later upgrade gets it back).
"""

from __future__ import annotations

import copy
from datetime import timedelta
import logging
from typing import Any, cast

from homeassistant.config_entries import ConfigEntryState, ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.frequenz_microgrid.circuit_flow import (
    CONF_CHARGERS,
    CONF_CIRCUIT_ID,
    CONF_FUSE_A,
    SUBENTRY_CIRCUIT,
)
from custom_components.frequenz_microgrid.const import CONF_URL, DOMAIN
from custom_components.frequenz_microgrid.engine.hub.modes import ChargerMode
from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator

from .conftest import HOME_MICROGRID_ID, microgrid_entry
from .steering_helpers import DRIVEWAY_WALLBOX, GARAGE_WALLBOX

KEYS = {
    "sessions": "{domain}.{entry}.sessions",
    "targets": "{domain}.{entry}.charging_targets",
    "hub": "{domain}.{entry}.charging_hub",
    "reservations": "{domain}.{entry}.reservations",
    "circuits": "{domain}.circuit_limits.{entry}",
}
NAMES = {
    "sessions": "charging sessions",
    "targets": "charging targets",
    "hub": "charging hub settings",
    "reservations": "reservations",
    "circuits": "circuit power limits",
}


def _in(hours: float) -> float:
    return (dt_util.utcnow() + timedelta(hours=hours)).timestamp()


def _iso_in(hours: float) -> str:
    return (dt_util.utcnow() + timedelta(hours=hours)).isoformat()


def _seed(
    hass_storage: dict[str, Any],
    entry: MockConfigEntry,
    store: str,
    data: Any,
    version: int = 1,
) -> str:
    key = KEYS[store].format(domain=DOMAIN, entry=entry.entry_id)
    hass_storage[key] = {"version": version, "minor_version": 1, "key": key}
    hass_storage[key]["data"] = data
    return key


async def _set_up(
    hass: HomeAssistant, entry: MockConfigEntry
) -> FrequenzMicrogridConfigEntry:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    return cast(FrequenzMicrogridConfigEntry, entry)


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.ERROR
    ]


async def _change(store: str, entry: FrequenzMicrogridConfigEntry) -> None:
    """Change what `store` keeps, as a user would (unloading writes the rest)."""
    runtime = entry.runtime_data
    controller = runtime.engine.controller
    if store == "hub":
        controller.charger_modes.set_mode(GARAGE_WALLBOX, ChargerMode.OFF)
    elif store == "reservations":
        assert runtime.reservations is not None
        runtime.reservations.book.reserve(GARAGE_WALLBOX, _in(1), _in(2))
    elif store == "circuits":
        assert runtime.circuit_store is not None
        await runtime.circuit_store.async_save(controller.circuit_limits)
    # sessions and targets are written whenever the entry unloads


@pytest.mark.parametrize("store", list(KEYS))
async def test_a_file_of_a_newer_version_is_left_as_it_is(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    store: str,
) -> None:
    entry = microgrid_entry(simulator.url)
    key = _seed(hass_storage, entry, store, {"from": "the future"}, version=2)
    seeded = copy.deepcopy(hass_storage[key])

    loaded = await _set_up(hass, entry)

    [error] = _errors(caplog)
    assert f"stored {NAMES[store]}" in error
    assert key in error
    assert "newer version of the Frequenz Microgrid integration" in error
    await _change(store, loaded)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert hass_storage[key] == seeded  # an upgrade reads it again


@pytest.mark.parametrize("store", list(KEYS))
async def test_a_file_of_an_unknown_version_is_ignored(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    store: str,
) -> None:
    entry = microgrid_entry(simulator.url)
    key = _seed(hass_storage, entry, store, {"from": "nowhere"}, version=0)

    await _set_up(hass, entry)

    [error] = _errors(caplog)
    assert f"stored {NAMES[store]}" in error
    assert key in error
    assert "storage version no version of the Frequenz Microgrid" in error


@pytest.mark.parametrize("data", [["x"], "oops", 5])
@pytest.mark.parametrize("store", list(KEYS))
async def test_a_file_that_holds_no_object_is_ignored(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    store: str,
    data: Any,
) -> None:
    entry = microgrid_entry(simulator.url)
    _seed(hass_storage, entry, store, data)

    await _set_up(hass, entry)

    assert not _errors(caplog)
    assert f"Ignoring the stored {NAMES[store]}" in caplog.text


SESSION = {
    "charger_id": DRIVEWAY_WALLBOX,
    "started_at": "2026-12-03T18:00:00+00:00",
    "last_seen_connected": "2026-12-03T20:00:00+00:00",
    "ended_at": "2026-12-03T20:00:00+00:00",
    "solar_wh": 0.0,
    "battery_wh": 1500.0,
    "grid_wh": 6000.0,
    "peak_power_w": 7360.0,
    "profile": [],
    "counter": {"total_wh": 7500.0, "last_reading_wh": 91000.0},
}


@pytest.mark.parametrize(
    "sessions",
    [
        {"open": None, "ended": [SESSION]},
        {"open": 5, "ended": [SESSION]},
        {"open": [], "ended": [{**SESSION, "counter": "x"}]},
        {"open": [], "ended": [{**SESSION, "counter": [1]}]},
        {"open": [], "ended": [{**SESSION, "target_energy_wh": "abc"}]},
        {"open": [], "ended": [{**SESSION, "target_time": 5}]},
        {"open": [], "ended": [{**SESSION, "booking_id": ["b1"]}]},
    ],
    ids=[
        "open-null",
        "open-number",
        "counter-str",
        "counter-list",
        "target-str",
        "target-time-number",
        "booking-list",
    ],
)
async def test_a_damaged_session_costs_only_itself(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    sessions: dict[str, Any],
) -> None:
    entry = microgrid_entry(simulator.url)
    _seed(hass_storage, entry, "sessions", sessions)

    loaded = await _set_up(hass, entry)

    assert loaded.runtime_data.sessions is not None
    [kept] = loaded.runtime_data.sessions.tracker.ended
    assert kept.energy_wh == pytest.approx(7500.0)
    record = kept.record(dt_util.utcnow())  # what the events and reports show
    assert record["target_energy_kwh"] is None
    assert record["booking_id"] is None
    assert not _errors(caplog)


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"energy_wh": "nan"},
        {"energy_wh": -5},
        {"energy_wh": 0},
        {"energy_wh": 5000, "soc_pct": 50},
        {"soc_pct": 80},
    ],
    ids=["no-amount", "nan", "negative", "zero", "both", "soc"],
)
async def test_a_damaged_target_costs_only_itself(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    bad: dict[str, Any],
) -> None:
    entry = microgrid_entry(simulator.url)
    departure = _iso_in(3)
    good = {"charger_id": DRIVEWAY_WALLBOX, "energy_wh": 5000.0}
    _seed(
        hass_storage,
        entry,
        "targets",
        {
            "targets": [
                {"charger_id": GARAGE_WALLBOX, "departure": departure, **bad},
                {**good, "departure": departure},
            ]
        },
    )

    loaded = await _set_up(hass, entry)

    targets = loaded.runtime_data.engine.controller.charging_targets
    assert targets.get(GARAGE_WALLBOX) is None
    kept = targets.get(DRIVEWAY_WALLBOX)
    assert kept is not None
    assert kept.energy_wh == 5000.0
    assert "Ignoring a damaged charging target" in caplog.text
    assert not _errors(caplog)


async def test_a_damaged_booking_costs_only_itself(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = microgrid_entry(simulator.url)
    good = {"id": "good", "charger": GARAGE_WALLBOX, "start": _in(1), "end": _in(2)}
    bad = {"id": "bad", "charger": DRIVEWAY_WALLBOX, "start": "tomorrow", "end": 1}
    ended = {**good, "id": "ended", "released_at": _in(-1), "reason": "ended"}
    _seed(
        hass_storage,
        entry,
        "reservations",
        {"reservations": [bad, good], "history": [{"id": "x"}, ended]},
    )

    loaded = await _set_up(hass, entry)

    assert loaded.runtime_data.reservations is not None
    book = loaded.runtime_data.reservations.book
    assert [r.reservation_id for r in book] == ["good"]
    assert [r.reservation.reservation_id for r in book.history] == ["ended"]
    assert not _errors(caplog)


@pytest.mark.parametrize(
    "energy", ["nan", "inf", -3, "lots"], ids=["nan", "inf", "negative", "text"]
)
async def test_a_booking_keeps_its_period_without_a_damaged_energy(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    energy: Any,
) -> None:
    entry = microgrid_entry(simulator.url)
    booking = {
        "id": "b1",
        "charger": GARAGE_WALLBOX,
        "start": _in(-0.1),
        "end": _in(2),
        "energy_kwh": energy,
        "guaranteed_kwh": "nan",
        "max_kwh": "inf",
    }
    _seed(hass_storage, entry, "reservations", {"reservations": [booking]})

    loaded = await _set_up(hass, entry)

    assert loaded.runtime_data.reservations is not None
    kept = loaded.runtime_data.reservations.book.get("b1")
    assert kept is not None
    assert kept.energy_kwh is None
    assert (kept.guaranteed_kwh, kept.max_kwh) == (0.0, 0.0)
    assert "Dropped 3 damaged value(s) of stored reservations" in caplog.text
    assert not _errors(caplog)


@pytest.mark.parametrize(
    ("driveway", "expected"),
    [
        ({"mode": "warp"}, ChargerMode.FAST),
        ("off", ChargerMode.FAST),
        ({"mode": "boost", "boost_until": 5}, ChargerMode.SOLAR),
        (
            {"mode": "off", "after_boost": "warp", "solar_min_current": 1},
            ChargerMode.OFF,
        ),
    ],
    ids=["bad-mode", "not-a-mapping", "bad-boost-end", "bad-options"],
)
async def test_a_damaged_charger_mode_costs_only_itself(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    driveway: Any,
    expected: ChargerMode,
) -> None:
    """A charger set to off stays off, whatever its neighbour's entry holds."""
    entry = microgrid_entry(simulator.url)
    if isinstance(driveway, dict) and driveway["mode"] == "boost":
        driveway = {**driveway, "after_boost": "solar"}
    _seed(
        hass_storage,
        entry,
        "hub",
        {
            "chargers": {str(GARAGE_WALLBOX): {"mode": "off"}, "7": driveway},
            "boost_s": "nan",
            "solar_delays_s": {"start": 120, "stop": -1},
        },
    )

    loaded = await _set_up(hass, entry)

    modes = loaded.runtime_data.engine.controller.charger_modes
    assert modes.mode(GARAGE_WALLBOX) is ChargerMode.OFF
    assert modes.mode(DRIVEWAY_WALLBOX) is expected
    assert modes.default_boost_s == 3600.0  # the default
    assert modes.solar.start_delay_s == 120.0
    assert not _errors(caplog)


@pytest.mark.parametrize(
    "data",
    [
        {CONF_CIRCUIT_ID: "c1", CONF_CHARGERS: [GARAGE_WALLBOX], CONF_FUSE_A: "x"},
        {CONF_CIRCUIT_ID: "c1", CONF_CHARGERS: [GARAGE_WALLBOX], CONF_FUSE_A: -16},
        {CONF_CIRCUIT_ID: "c1", CONF_CHARGERS: 6, CONF_FUSE_A: 16},
        {CONF_CHARGERS: [GARAGE_WALLBOX], CONF_FUSE_A: 16},
    ],
    ids=["fuse-text", "fuse-negative", "chargers-number", "no-id"],
)
async def test_a_damaged_circuit_is_skipped_and_the_entry_loads(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    caplog: pytest.LogCaptureFixture,
    data: dict[str, Any],
) -> None:
    good = {CONF_CIRCUIT_ID: "shed", CONF_CHARGERS: [DRIVEWAY_WALLBOX]}
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Home microgrid",
        unique_id=str(HOME_MICROGRID_ID),
        data={CONF_URL: simulator.url},
        subentries_data=[
            ConfigSubentryData(
                data=data,
                subentry_type=SUBENTRY_CIRCUIT,
                title="Garage",
                unique_id=None,
            ),
            ConfigSubentryData(
                data={**good, CONF_FUSE_A: 16.0},
                subentry_type=SUBENTRY_CIRCUIT,
                title="Shed",
                unique_id="shed",
            ),
        ],
    )

    loaded = await _set_up(hass, entry)

    tree = loaded.runtime_data.engine.controller.circuit_limits.tree
    assert "shed" in tree.ids
    assert "c1" not in tree.ids
    [error] = _errors(caplog)
    assert "The circuit 'Garage' of Home microgrid is damaged" in error
