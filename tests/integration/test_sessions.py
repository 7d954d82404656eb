"""Charging sessions end to end: the simulator's EVs over real gRPC to HA entities.

EVs arrive and leave on the simulator's own schedule (`ev_arrivals`) or by its
control API; the session's energy is compared with the simulator's own energy
counter of the charger, and what Home Assistant shows (event entity, sensors,
report, export files) with the session record.
"""

from __future__ import annotations

import copy
import csv
from datetime import timedelta
import io
import json
from pathlib import Path
from typing import Any
import xml.etree.ElementTree as ET
import zipfile

from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_component import DATA_INSTANCES
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.frequenz_microgrid.const import CONF_FRESHNESS_S, DOMAIN
from custom_components.frequenz_microgrid.engine.hub import (
    sessions as sessions_module,
)
from custom_components.frequenz_microgrid.simulator import (
    Fault,
    MicrogridSimulator,
)
from custom_components.frequenz_microgrid.simulator.scenario import (
    Scenario,
    scenario_from_dict,
)

from .conftest import (
    HOME_MICROGRID_ID,
    entity_id_of,
    microgrid_entry,
    serving,
    setup_entry,
    state_of,
    wait_for,
)
from .steering_helpers import EventLog

GARAGE = 6
DRIVEWAY = 7
HOME_FILE = (
    Path(__file__).parents[2]
    / "custom_components/frequenz_microgrid/simulator/scenarios/home.json"
)


def home_with(arrivals: list[dict[str, Any]]) -> Scenario:
    """The `home` scenario with its EV arrivals replaced."""
    data = copy.deepcopy(json.loads(HOME_FILE.read_text()))
    data["ev_arrivals"] = arrivals
    return scenario_from_dict(data)


def ev(charger: int, arrive_s: float, depart_s: float) -> dict[str, Any]:
    return {
        "charger": charger,
        "arrive_s": arrive_s,
        "depart_s": depart_s,
        "capacity_wh": 60000,
        "soc_pct": 30,
        "phases": 3,
        "max_current_a": 16,
    }


def uid(key: str, component: int | None = None) -> str:
    return (
        f"{HOME_MICROGRID_ID}_{key}"
        if component is None
        else f"{HOME_MICROGRID_ID}_{component}_{key}"
    )


def event_state(hass: HomeAssistant, charger: int) -> State:
    return state_of(hass, uid("session", charger), ("event",))


def sensor(hass: HomeAssistant, key: str, charger: int | None = None) -> State:
    return state_of(hass, uid(key, charger), ("sensor",))


def session_kwh(hass: HomeAssistant, charger: int) -> float:
    """The session energy sensor's value; 0 while it shows none yet."""
    state = sensor(hass, "session_energy", charger).state
    return 0.0 if state in ("unknown", "unavailable") else float(state)


def charger_counter_kwh(sim: MicrogridSimulator, charger: int) -> float:
    """The simulator's own energy counter of the charger (everything it delivered)."""
    return sim.model.component(charger).energy.consumed_wh / 1000.0


async def test_a_simulated_visit_is_one_session_with_the_chargers_energy(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """Arrive, charge, leave: events, sensors, report and export agree with physics."""
    hass.config.config_dir = str(tmp_path)
    scenario = home_with([ev(GARAGE, 20, 200)])
    async with serving(hass, scenario, speed=20.0, sample_period_s=0.05) as sim:
        entry = await setup_entry(hass, sim.url)
        event_id = entity_id_of(hass, uid("session", GARAGE), ("event",))
        assert event_id == "event.wallbox_garage_charging_session"  # README's example
        log = EventLog(hass, event_id)
        assert sensor(hass, "chargers_occupied").state == "0"
        assert sensor(hass, "chargers_free").state == "2"

        await wait_for(
            lambda: sensor(hass, "chargers_occupied").state == "1",
            what="the EV to plug in",
        )
        assert sensor(hass, "chargers_free").state == "1"
        await wait_for(lambda: log.types() == ["session_started"], what="start event")
        await wait_for(
            lambda: session_kwh(hass, GARAGE) > 0.05,
            what="the session to take energy",
        )
        assert sensor(hass, "session_energy", GARAGE).attributes["session"] == "current"

        await wait_for(
            lambda: log.types() == ["session_started", "session_ended"],
            timeout_s=20,
            what="the EV to leave",
        )
        record = log.fired[-1]
        delivered = charger_counter_kwh(sim, GARAGE)
        # 16 A on 3 phases for most of the 180 simulated seconds: ≈ 0.5 kWh.
        assert delivered > 0.3
        assert record["energy_kwh"] == pytest.approx(delivered, abs=1e-5)
        assert record["solar_kwh"] + record["battery_kwh"] + record["grid_kwh"] == (
            pytest.approx(record["energy_kwh"], abs=1e-5)
        )
        assert min(record["solar_kwh"], record["battery_kwh"], record["grid_kwh"]) >= 0
        # Noon, battery idle: the PV surplus over the 600 W household goes to the
        # EV (16 A × 3 phases), the rest is grid.
        pv_w = -sim.model.component(5).active_power_w
        ev_w = 16 * 230 * 3
        assert record["solar_kwh"] / record["energy_kwh"] == pytest.approx(
            (pv_w - 600) / ev_w, rel=0.05
        )
        assert record["battery_kwh"] == 0.0
        assert record["peak_power_kw"] == pytest.approx(16 * 230 * 3 / 1000, rel=0.01)
        assert record["energy_source"] == "meter"
        assert record["charger_id"] == GARAGE
        assert log.fired[0]["session_id"] == record["session_id"]

        await wait_for(
            lambda: sensor(hass, "chargers_occupied").state == "0",
            what="occupancy after leaving",
        )
        # Both sensors write at most every few seconds: the last value lands.
        await wait_for(
            lambda: (
                sensor(hass, "session_energy", GARAGE).attributes["session"] == "last"
                and sensor(hass, "session_duration", GARAGE).attributes["session"]
                == "last"
            ),
            what="the sensors to show the last session",
        )
        energy = sensor(hass, "session_energy", GARAGE)
        assert float(energy.state) == pytest.approx(delivered, abs=1e-3)
        duration = sensor(hass, "session_duration", GARAGE)
        # Shown in minutes (the suggested unit), kept in whole seconds (cut off:
        # up to 1 s below the record, and minutes × 60 is not exact in floats).
        shown_s = round(float(duration.state) * 60, 6)
        assert shown_s == pytest.approx(record["duration_s"], abs=1)
        # A few simulated minutes are a few hundredths of a per cent of the day:
        # shown with one decimal that is still 0.0 %, and a state is written only
        # when what it shows changes, so ask the sensor for its value.
        utilisation = hass.data[DATA_INSTANCES]["sensor"].get_entity(
            sensor(hass, "utilisation_today").entity_id
        )
        assert utilisation is not None
        assert utilisation.native_value > 0  # type: ignore[attr-defined]
        assert sensor(hass, "session_energy", DRIVEWAY).state == "unknown"

        # The report over the session's minutes: consumption, occupation, totals.
        started = dt_util.parse_datetime(record["started_at"])
        assert started is not None
        # Whole profile slots (5 min), so the period holds all of the session.
        start = dt_util.utc_from_timestamp(started.timestamp() // 300 * 300)
        end = start + timedelta(minutes=10)
        report: dict[str, Any] | None = await hass.services.async_call(
            DOMAIN,
            "get_cluster_report",
            {
                "config_entry_id": entry.entry_id,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "step": 60,
            },
            blocking=True,
            return_response=True,
        )
        assert report is not None
        totals = report["totals"]
        assert totals["net_consumption_kwh"] == pytest.approx(delivered, abs=1e-5)
        assert totals["solar_kwh"] == pytest.approx(record["solar_kwh"], abs=1e-5)
        assert totals["battery_kwh"] == pytest.approx(record["battery_kwh"], abs=1e-5)
        assert totals["grid_kwh"] == pytest.approx(record["grid_kwh"], abs=1e-5)
        assert totals["sessions"] == 1
        assert [s["session_id"] for s in report["sessions"]] == [record["session_id"]]
        assert len(report["times"]) == 10
        garage_kw = report["consumption_kw"][str(GARAGE)]
        # Average kW per one-minute step back to kWh: the session's energy.
        assert sum(garage_kw) / 60 == pytest.approx(delivered, abs=1e-5)
        assert report["consumption_kw"][str(DRIVEWAY)] == [0.0] * 10
        occupied_s = sum(report["occupation"][str(GARAGE)]) * 60
        assert occupied_s == pytest.approx(record["duration_s"], abs=0.01)

        # Export both formats and read them back.
        exported = {}
        for file_format in ("csv", "xlsx"):
            response: dict[str, Any] | None = await hass.services.async_call(
                DOMAIN,
                "export_sessions",
                {
                    "config_entry_id": entry.entry_id,
                    "format": file_format,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "step": 60,
                },
                blocking=True,
                return_response=True,
            )
            assert response is not None
            path = Path(str(response["path"]))
            assert path.parent == tmp_path / "frequenz_microgrid" / "exports"
            assert path.suffix == f".{file_format}"
            # Named after the microgrid's id too: two sites may share a title.
            assert f"_{entry.unique_id}_" in path.name
            exported[file_format] = await hass.async_add_executor_job(path.read_bytes)
        rows = list(csv.DictReader(io.StringIO(exported["csv"].decode())))
        assert [row["session_id"] for row in rows] == [record["session_id"]]
        assert float(rows[0]["energy_kwh"]) == pytest.approx(delivered, abs=1e-5)
        sheets = _read_xlsx(exported["xlsx"])
        assert list(sheets) == [
            "ClusterDataset",
            "UnitConsumption",
            "UnitOccupation",
            "Overall",
        ]
        overall = {row[0]: row[1] for row in sheets["Overall"][1:]}
        assert float(overall["net_consumption_kwh"]) == pytest.approx(
            delivered, abs=1e-5
        )
        consumption = sheets["UnitConsumption"]
        assert consumption[0] == ["time", str(GARAGE), str(DRIVEWAY), "Total"]
        assert sum(float(row[3]) for row in consumption[1:]) / 60 == pytest.approx(
            delivered, abs=1e-5
        )
        # Without a period: from the first kept session's step to now.
        response = await hass.services.async_call(
            DOMAIN,
            "export_sessions",
            {"config_entry_id": entry.entry_id, "format": "CSV"},
            blocking=True,
            return_response=True,
        )
        assert response is not None
        assert response["sessions"] == 1
        log.remove()
    assert sim.unsafe_setpoint_count == 0


async def test_sessions_survive_a_restart_continued_or_closed(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Still plugged after a restart: continued; left meanwhile: closed, not lost."""
    # A real restart takes longer than the unplug gap; this one takes a second.
    monkeypatch.setattr(sessions_module, "MAX_UNPLUG_GAP", timedelta(seconds=0.2))
    scenario = home_with([ev(GARAGE, 5, 1e6), ev(DRIVEWAY, 5, 1e6)])
    async with serving(hass, scenario, speed=10.0, sample_period_s=0.05) as sim:
        entry = await setup_entry(hass, sim.url)
        await wait_for(
            lambda: (
                sensor(hass, "chargers_occupied").state == "2"
                and session_kwh(hass, DRIVEWAY) > 0.01
            ),
            what="both EVs charging",
        )
        garage_before = sensor(hass, "session_energy", GARAGE).attributes
        garage_before_kwh = session_kwh(hass, GARAGE)
        driveway_before = sensor(hass, "session_energy", DRIVEWAY).attributes

        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
        unloaded_at = dt_util.utcnow()
        sim.unplug_ev(DRIVEWAY)  # leaves while Home Assistant is away
        left_with_kwh = charger_counter_kwh(sim, DRIVEWAY)

        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        log = EventLog(hass, entity_id_of(hass, uid("session", DRIVEWAY), ("event",)))
        await wait_for(
            lambda: (
                sensor(hass, "session_energy", DRIVEWAY).attributes.get("session")
                == "last"
            ),
            what="the driveway session to be closed",
        )
        driveway = sensor(hass, "session_energy", DRIVEWAY)
        assert driveway.attributes["session_id"] == driveway_before["session_id"]
        ended_at = dt_util.parse_datetime(driveway.attributes["ended_at"])
        assert ended_at is not None
        assert ended_at <= unloaded_at  # the last time it was seen plugged in
        assert float(driveway.state) == pytest.approx(left_with_kwh, abs=1e-3)
        assert log.types() == ["session_ended"]
        # The garage EV is still plugged in: the same session goes on.
        await wait_for(
            lambda: (
                session_kwh(hass, GARAGE) > garage_before_kwh
                and sensor(hass, "session_energy", GARAGE).attributes["session"]
                == "current"
            ),
            what="the garage session to continue",
        )
        garage = sensor(hass, "session_energy", GARAGE)
        assert garage.attributes["session_id"] == garage_before["session_id"]
        assert garage.attributes["started_at"] == garage_before["started_at"]
        assert sensor(hass, "chargers_occupied").state == "1"
        sim.unplug_ev(GARAGE)
        await wait_for(
            lambda: (
                sensor(hass, "session_energy", GARAGE).attributes["session"] == "last"
            ),
            what="the garage EV to leave",
        )
        # Counted from the charger's counter across the restart: nothing lost.
        assert session_kwh(hass, GARAGE) == pytest.approx(
            charger_counter_kwh(sim, GARAGE), abs=1e-3
        )
        log.remove()


async def test_a_silent_charger_keeps_its_session(hass: HomeAssistant) -> None:
    """A telemetry gap longer than the freshness window is not an unplug."""
    scenario = home_with([ev(GARAGE, 2, 1e6)])
    async with serving(hass, scenario, speed=10.0, sample_period_s=0.05) as sim:
        await setup_entry(hass, sim.url, options={CONF_FRESHNESS_S: 2.0})
        log = EventLog(hass, entity_id_of(hass, uid("session", GARAGE), ("event",)))
        await wait_for(lambda: log.types() == ["session_started"], what="start")
        session_id = log.fired[0]["session_id"]
        sim.inject_fault(GARAGE, Fault.STOP_DATA)
        await wait_for(
            lambda: state_of(hass, uid("ev_connected", GARAGE)).state == "unavailable",
            what="the charger to go silent",
        )
        assert sensor(hass, "chargers_occupied").state == "1"
        sim.clear_fault(GARAGE)
        await wait_for(
            lambda: state_of(hass, uid("ev_connected", GARAGE)).state == "on",
            what="the charger to be heard again",
        )
        energy = sensor(hass, "session_energy", GARAGE)
        assert energy.attributes["session"] == "current"
        assert energy.attributes["session_id"] == session_id
        assert log.types() == ["session_started"]
        log.remove()


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (
            {"start": "2026-12-04T10:00:00+00:00", "end": "2026-12-04T10:00:00+00:00"},
            "report_empty_period",
        ),
        (
            {"start": "2026-12-04T11:00:00+00:00", "end": "2026-12-04T10:00:00+00:00"},
            "report_empty_period",
        ),
        ({"step": 0}, "report_invalid_step"),
        ({"step": -60}, "report_invalid_step"),
        ({"step": float("nan")}, "not_finite"),
        ({"step": float("inf")}, "not_finite"),
        ({"step": 1, "end": "2026-12-31T00:00:00+00:00"}, "report_too_many_rows"),
        ({"step": 1e300}, "report_invalid_step"),
    ],
)
async def test_bad_report_requests_are_refused_with_a_translated_error(
    hass: HomeAssistant, simulator: MicrogridSimulator, data: dict[str, Any], key: str
) -> None:
    entry = await setup_entry(hass, simulator.url)
    request = {
        "config_entry_id": entry.entry_id,
        "start": "2026-12-04T00:00:00+00:00",
        "end": "2026-12-05T00:00:00+00:00",
        "step": 900,
        **data,
    }
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "get_cluster_report", request, blocking=True, return_response=True
        )
    assert caught.value.translation_key == key


async def test_an_unknown_export_format_writes_nothing(
    hass: HomeAssistant, simulator: MicrogridSimulator, tmp_path: Path
) -> None:
    hass.config.config_dir = str(tmp_path)
    entry = await setup_entry(hass, simulator.url)
    for request, key in (
        ({"format": "pdf"}, "unknown_export_format"),
        ({"format": "../../x"}, "unknown_export_format"),
        ({"format": "csv", "step": 0}, "report_invalid_step"),
        (
            {
                "format": "xlsx",
                "start": "2026-12-05T00:00:00+00:00",
                "end": "2026-12-04T00:00:00+00:00",
            },
            "report_empty_period",
        ),
    ):
        with pytest.raises(ServiceValidationError) as caught:
            await hass.services.async_call(
                DOMAIN,
                "export_sessions",
                {"config_entry_id": entry.entry_id, **request},
                blocking=True,
                return_response=True,
            )
        assert caught.value.translation_key == key
    assert await hass.async_add_executor_job(lambda: list(tmp_path.iterdir())) == []


def _read_xlsx(data: bytes) -> dict[str, list[list[str]]]:
    """Sheet name → rows of cell texts, read with the standard library."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        workbook = ET.fromstring(archive.read("xl/workbook.xml"))
        names = [s.attrib["name"] for s in workbook.iterfind("m:sheets/m:sheet", ns)]
        return {
            name: [
                ["".join(cell.itertext()) for cell in row.iterfind("m:c", ns)]
                for row in ET.fromstring(
                    archive.read(f"xl/worksheets/sheet{number}.xml")
                ).iterfind("m:sheetData/m:row", ns)
            ]
            for number, name in enumerate(names, start=1)
        }


async def test_stored_sessions_are_shown_and_malformed_ones_skipped(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A kept session is shown after a restart; a broken record costs only itself."""
    entry = microgrid_entry(simulator.url)
    entry.add_to_hass(hass)
    key = f"{DOMAIN}.{entry.entry_id}.sessions"
    kept = {
        "charger_id": DRIVEWAY,
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
    hass_storage[key] = {
        "version": 1,
        "minor_version": 1,
        "key": key,
        "data": {"ended": [{"charger_id": GARAGE, "solar_wh": "x"}, kept], "open": []},
    }
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    energy = sensor(hass, "session_energy", DRIVEWAY)
    assert float(energy.state) == pytest.approx(7.5)
    assert energy.attributes["session"] == "last"
    assert energy.attributes["battery_kwh"] == pytest.approx(1.5)
    assert sensor(hass, "session_duration", DRIVEWAY).state == "120.0"  # minutes
    assert sensor(hass, "session_energy", GARAGE).state == "unknown"
    assert "Skipped 1 stored charging session" in caplog.text


def _kept_session(charger_id: int, started: str, ended: str) -> dict[str, Any]:
    """A stored (ended) session of 6 kWh from the grid."""
    return {
        "charger_id": charger_id,
        "started_at": started,
        "last_seen_connected": ended,
        "ended_at": ended,
        "solar_wh": 0.0,
        "battery_wh": 0.0,
        "grid_wh": 6000.0,
        "peak_power_w": 7360.0,
        "profile": [],
        "counter": {"total_wh": 6000.0, "last_reading_wh": None},
    }


async def test_an_export_without_a_period_covers_sessions_kept_for_months(
    hass: HomeAssistant,
    simulator: MicrogridSimulator,
    hass_storage: dict[str, Any],
    tmp_path: Path,
) -> None:
    """Only a format: from the first kept session, however old, to now.

    A session 120 days old made 11,521 steps of 15 minutes and the export
    was refused (at most 10,000); the step now coarsens to fit. An `end`
    before every kept session exports the day before it (nothing refused).
    """
    hass.config.config_dir = str(tmp_path)
    entry = microgrid_entry(simulator.url)
    entry.add_to_hass(hass)
    key = f"{DOMAIN}.{entry.entry_id}.sessions"
    old = (dt_util.utcnow() - timedelta(days=120)).replace(microsecond=0)
    recent = (dt_util.utcnow() - timedelta(days=2)).replace(microsecond=0)
    hass_storage[key] = {
        "version": 1,
        "minor_version": 1,
        "key": key,
        "data": {
            "ended": [
                _kept_session(
                    GARAGE, old.isoformat(), (old + timedelta(hours=2)).isoformat()
                ),
                _kept_session(
                    DRIVEWAY,
                    recent.isoformat(),
                    (recent + timedelta(hours=1)).isoformat(),
                ),
            ],
            "open": [],
        },
    }
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    for file_format in ("csv", "xlsx"):
        response = await hass.services.async_call(
            DOMAIN,
            "export_sessions",
            {"config_entry_id": entry.entry_id, "format": file_format},
            blocking=True,
            return_response=True,
        )
        assert response is not None
        assert response["sessions"] == 2
        started = dt_util.parse_datetime(str(response["start"]))
        assert started is not None
        assert started <= old

    before_all = (old - timedelta(days=3)).isoformat()
    response = await hass.services.async_call(
        DOMAIN,
        "export_sessions",
        {"config_entry_id": entry.entry_id, "format": "csv", "end": before_all},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["sessions"] == 0


async def test_diagnostics_show_the_open_sessions(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulator: MicrogridSimulator,
) -> None:
    assert await async_setup_component(hass, "diagnostics", {})
    entry = await setup_entry(hass, simulator.url)
    simulator.plug_ev(GARAGE)
    await wait_for(
        lambda: sensor(hass, "chargers_occupied").state == "1", what="the EV"
    )
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    sessions = diagnostics["sessions"]
    assert sessions["kept"] == 0
    assert [s["charger_id"] for s in sessions["open"]] == [GARAGE]
    assert sessions["open"][0]["ended_at"] is None


async def test_the_readmes_automation_runs_when_a_session_ends(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """The event entity as a trigger, the record in the automation's templates."""
    attributes = "trigger.to_state.attributes"
    await setup_entry(hass, simulator.url)
    event_id = entity_id_of(hass, uid("session", GARAGE), ("event",))
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "alias": "Car left the garage wallbox",
                "triggers": [
                    {
                        "trigger": "state",
                        "entity_id": event_id,
                        "not_from": "unavailable",
                    }
                ],
                "conditions": [
                    {
                        "condition": "state",
                        "entity_id": event_id,
                        "attribute": "event_type",
                        "state": "session_ended",
                    }
                ],
                "actions": [
                    {
                        "event": "car_left",
                        "event_data": {
                            "energy_kwh": f"{{{{ {attributes}.energy_kwh }}}}",
                            "session_id": f"{{{{ {attributes}.session_id }}}}",
                        },
                    }
                ],
            }
        },
    )
    fired: list[dict[str, Any]] = []
    hass.bus.async_listen("car_left", lambda event: fired.append(dict(event.data)))
    simulator.plug_ev(GARAGE)
    await wait_for(
        lambda: session_kwh(hass, GARAGE) > 0,
        timeout_s=20,
        what="the EV to charge",
    )
    await hass.async_block_till_done()
    assert fired == []  # a start is no end
    simulator.unplug_ev(GARAGE)
    await wait_for(lambda: bool(fired), what="the automation")
    record = event_state(hass, GARAGE).attributes
    assert record["energy_kwh"] > 0
    assert fired == [
        {"energy_kwh": record["energy_kwh"], "session_id": record["session_id"]}
    ]


async def test_removing_the_entry_deletes_its_sessions(
    hass: HomeAssistant, simulator: MicrogridSimulator, hass_storage: dict[str, Any]
) -> None:
    entry = await setup_entry(hass, simulator.url)
    key = f"{DOMAIN}.{entry.entry_id}.sessions"
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert key in hass_storage  # kept across an unload (a restart)
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage
