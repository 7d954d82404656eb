"""The cluster report and its CSV / XLSX export (engine.hub)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
import io
from pathlib import Path
import xml.etree.ElementTree as ET
import zipfile

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.frequenz_microgrid.engine.hub.export import (
    csv_bytes,
    path_inside,
    report_sheets,
    safe_file_name,
    session_table,
    xlsx_bytes,
)
from custom_components.frequenz_microgrid.engine.hub.reports import (
    MAX_REPORT_STEPS,
    ReportRequestError,
    build_cluster_report,
)
from custom_components.frequenz_microgrid.engine.hub.sessions import (
    ChargingSession,
    ProfileSlot,
)

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)
S0 = int(T0.timestamp())


def session() -> ChargingSession:
    """Charger 6 from 08:00:30 to 08:03:00: 60 Wh, 120 Wh and 30 Wh by minute."""
    return ChargingSession(
        charger_id=6,
        profile_slot_s=60,
        started_at=T0 + timedelta(seconds=30),
        last_seen_connected=T0 + timedelta(minutes=3),
        ended_at=T0 + timedelta(minutes=3),
        solar_wh=40.0,
        battery_wh=20.0,
        grid_wh=150.0,
        profile={
            S0: ProfileSlot(energy_wh=60.0, solar_wh=40.0),
            S0 + 60: ProfileSlot(energy_wh=120.0, battery_wh=20.0),
            S0 + 120: ProfileSlot(energy_wh=30.0),
        },
    )


def test_profiles_and_totals_follow_the_sessions() -> None:
    report = build_cluster_report(
        [session()], [6, 7], T0, T0 + timedelta(minutes=4), timedelta(minutes=2), LATER
    )
    assert report.times == [T0, T0 + timedelta(minutes=2)]
    # 180 Wh in the first 2 min = 5.4 kW; 30 Wh in the next 2 min = 0.9 kW.
    assert report.consumption_kw[6] == pytest.approx([5.4, 0.9])
    assert report.consumption_kw[7] == [0.0, 0.0]
    # Plugged 90 of the first 120 s, 60 of the next.
    assert report.occupation[6] == pytest.approx([0.75, 0.5])
    assert report.totals["net_consumption_kwh"] == pytest.approx(0.21)
    assert report.totals["solar_kwh"] == pytest.approx(0.04)
    assert report.totals["battery_kwh"] == pytest.approx(0.02)
    assert report.totals["grid_kwh"] == pytest.approx(0.15)
    assert report.totals["sessions"] == 1
    assert report.totals["occupied_hours"] == pytest.approx(150 / 3600, abs=1e-6)
    # 150 s of 2 chargers × 240 s.
    assert report.totals["utilisation"] == pytest.approx(150 / 480, abs=1e-6)
    response = report.as_dict()
    assert response["consumption_kw"]["total"] == pytest.approx([5.4, 0.9])
    assert response["sessions"][0]["energy_kwh"] == pytest.approx(0.21)


def test_a_step_shorter_than_a_profile_slot_gets_its_share() -> None:
    report = build_cluster_report(
        [session()],
        [6],
        T0 + timedelta(minutes=1),
        T0 + timedelta(seconds=90),
        timedelta(seconds=30),
        LATER,
    )
    # Half of the second minute's 120 Wh in 30 s = 7.2 kW.
    assert report.consumption_kw[6] == pytest.approx([7.2])
    assert report.totals["net_consumption_kwh"] == pytest.approx(0.06)


def test_a_report_of_the_whole_session_has_all_its_energy_in_its_own_time() -> None:
    """The session starts 30 s into its first slot: no energy before it started."""
    report = build_cluster_report(
        [session()],
        [6],
        T0 + timedelta(seconds=30),
        T0 + timedelta(minutes=3),
        timedelta(seconds=30),
        LATER,
    )
    assert report.totals["net_consumption_kwh"] == pytest.approx(0.21)
    # The first minute's 60 Wh flowed in its last 30 s (the car came at 08:00:30).
    assert report.consumption_kw[6][0] == pytest.approx(60 / 1000 / (30 / 3600))
    before = build_cluster_report(
        [session()], [6], T0, T0 + timedelta(seconds=30), timedelta(seconds=30), LATER
    )
    assert before.consumption_kw[6] == [0.0]


@pytest.mark.parametrize(
    ("start", "end", "step", "key"),
    [
        (T0, T0, timedelta(minutes=1), "report_empty_period"),
        (T0 + timedelta(1), T0, timedelta(minutes=1), "report_empty_period"),
        (T0, T0 + timedelta(1), timedelta(0), "report_invalid_step"),
        (T0, T0 + timedelta(1), timedelta(seconds=-5), "report_invalid_step"),
        (
            T0,
            T0 + timedelta(seconds=MAX_REPORT_STEPS + 1),
            timedelta(seconds=1),
            "report_too_many_rows",
        ),
    ],
)
def test_bad_requests_are_refused_before_any_work(
    start: datetime, end: datetime, step: timedelta, key: str
) -> None:
    with pytest.raises(ReportRequestError) as caught:
        build_cluster_report([session()], [6], start, end, step, T0)
    assert caught.value.key == key


def read_xlsx(data: bytes) -> dict[str, list[list[str]]]:
    """An independent reader: sheet name → rows of cell texts."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        workbook = ET.fromstring(archive.read("xl/workbook.xml"))
        names = [s.attrib["name"] for s in workbook.iterfind("m:sheets/m:sheet", ns)]
        sheets = {}
        for number, name in enumerate(names, start=1):
            sheet = ET.fromstring(archive.read(f"xl/worksheets/sheet{number}.xml"))
            sheets[name] = [
                ["".join(cell.itertext()) for cell in row.iterfind("m:c", ns)]
                for row in sheet.iterfind("m:sheetData/m:row", ns)
            ]
        assert "[Content_Types].xml" in archive.namelist()
    return sheets


def test_the_xlsx_has_datafevs_sheets_with_the_reports_numbers() -> None:
    report = build_cluster_report(
        [session()], [6, 7], T0, T0 + timedelta(minutes=4), timedelta(minutes=2), LATER
    )
    sheets = read_xlsx(xlsx_bytes(report_sheets(report)))
    assert list(sheets) == [
        "ClusterDataset",
        "UnitConsumption",
        "UnitOccupation",
        "Overall",
    ]
    assert sheets["UnitConsumption"][0] == ["time", "6", "7", "Total"]
    assert [float(v) for v in sheets["UnitConsumption"][1][1:]] == pytest.approx(
        [5.4, 0.0, 5.4]
    )
    assert [float(v) for v in sheets["UnitOccupation"][2][1:]] == pytest.approx(
        [0.5, 0.0, 0.5]
    )
    overall = {row[0]: row[1] for row in sheets["Overall"][1:]}
    assert float(overall["net_consumption_kwh"]) == pytest.approx(0.21)
    dataset = sheets["ClusterDataset"]
    assert dataset[1][dataset[0].index("energy_kwh")] == "0.21"


def test_the_csv_is_the_session_table() -> None:
    report = build_cluster_report(
        [session()], [6], T0, T0 + timedelta(minutes=4), timedelta(minutes=1), LATER
    )
    rows = list(csv.DictReader(io.StringIO(csv_bytes(session_table(report)).decode())))
    assert len(rows) == 1
    assert rows[0]["charger_id"] == "6"
    assert float(rows[0]["solar_kwh"]) == pytest.approx(0.04)
    assert rows[0]["booking_id"] == ""


def test_export_names_stay_inside_their_directory(tmp_path: Path) -> None:
    name = safe_file_name("sessions", "../../etc/passwd", "a b", suffix="csv")
    assert "/" not in name
    assert ".." not in name
    assert path_inside(tmp_path, name).parent == tmp_path.resolve()
    for bad in ("../x.csv", "/etc/passwd", "sub/x.csv", ".."):
        with pytest.raises(ValueError, match=r"plain file name|leaves"):
            path_inside(tmp_path, bad)


@settings(max_examples=60, deadline=None)
@given(
    visits=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=50),  # start minute
            st.integers(min_value=1, max_value=30),  # minutes plugged in
            st.lists(st.floats(min_value=0, max_value=400), min_size=1, max_size=30),
            st.floats(min_value=0, max_value=1),  # solar share
        ),
        max_size=8,
    ),
    step_s=st.integers(min_value=1, max_value=3600),
)
def test_a_report_covering_every_session_conserves_energy_and_time(
    visits: list[tuple[int, int, list[float], float]], step_s: int
) -> None:
    """One visit per charger (a charger's sessions never overlap)."""
    sessions = []
    chargers = [6 + n for n in range(8)]
    for charger_id, (start_min, minutes, slots, solar_share) in zip(
        chargers, visits, strict=False
    ):
        started = T0 + timedelta(minutes=start_min)
        profile = {
            int(started.timestamp()) + 60 * n: ProfileSlot(
                energy_wh=wh, solar_wh=wh * solar_share
            )
            for n, wh in enumerate(slots[:minutes])
        }
        sessions.append(
            ChargingSession(
                charger_id=charger_id,
                profile_slot_s=60,
                started_at=started,
                last_seen_connected=started + timedelta(minutes=minutes),
                ended_at=started + timedelta(minutes=minutes),
                profile=profile,
            )
        )
    step = timedelta(seconds=step_s)
    report = build_cluster_report(
        sessions, chargers, T0, T0 + timedelta(hours=2), step, LATER
    )
    energy_wh = sum(slot.energy_wh for s in sessions for slot in s.profile.values())
    step_h = [
        (min(t + step, report.end) - t) / timedelta(hours=1) for t in report.times
    ]
    profile_wh = sum(
        kw * 1000 * step_h[i]
        for values in report.consumption_kw.values()
        for i, kw in enumerate(values)
    )
    assert profile_wh == pytest.approx(energy_wh, abs=1e-6)
    totals = report.totals
    assert totals["net_consumption_kwh"] == pytest.approx(energy_wh / 1000, abs=1e-5)
    parts = [totals["solar_kwh"], totals["battery_kwh"], totals["grid_kwh"]]
    assert all(isinstance(part, float) and part >= 0 for part in parts)
    assert sum(p for p in parts if isinstance(p, float)) == pytest.approx(
        energy_wh / 1000, abs=1e-5
    )
    occupied_s = sum(
        share * step_h[i] * 3600
        for values in report.occupation.values()
        for i, share in enumerate(values)
    )
    expected_s = sum(s.duration(LATER).total_seconds() for s in sessions)
    assert occupied_s == pytest.approx(expected_s, abs=1e-3)
    assert totals["occupied_hours"] == pytest.approx(expected_s / 3600, abs=1e-5)
    assert all(0.0 <= v <= 1.0 for vs in report.occupation.values() for v in vs)
