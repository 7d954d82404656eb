"""Write a cluster report as CSV or XLSX, with the standard library only.

XLSX carries datafev's four sheets (`ClusterDataset`: the session table,
`UnitConsumption` and `UnitOccupation`: the profiles with a `Total` column,
`Overall`: the totals). CSV holds one table, so it is the session table.

Why no spreadsheet library: Home Assistant does not ship one (openpyxl is not in
its package constraints), and a manifest requirement would make every installation
download a package to write four plain sheets. An XLSX file is a zip of a few XML
parts; `xlsx_bytes` writes the minimal valid set (inline strings, numbers as
numbers, times as ISO 8601 text so no time-zone conversion can go wrong).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import csv
import io
import math
from pathlib import Path
import re
from typing import Final
from xml.sax.saxutils import escape
import zipfile

from .reports import ClusterReport

type Cell = str | int | float | bool | None
type Table = list[list[Cell]]

SESSION_COLUMNS: Final = (
    "session_id",
    "charger_id",
    "started_at",
    "ended_at",
    "duration_s",
    "energy_kwh",
    "solar_kwh",
    "battery_kwh",
    "grid_kwh",
    "peak_power_kw",
    "energy_source",
    "target_energy_kwh",
    "target_time",
    "booking_id",
)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def session_table(report: ClusterReport) -> Table:
    """The session table, header first (sheet `ClusterDataset`)."""
    rows: Table = [list(SESSION_COLUMNS)]
    rows.extend(
        [record.get(column) for column in SESSION_COLUMNS] for record in report.sessions
    )
    return rows


def profile_table(report: ClusterReport, profile: dict[int, list[float]]) -> Table:
    """A profile with a time column, one column per charger and a `Total`."""
    rows: Table = [["time", *(str(cid) for cid in report.charger_ids), "Total"]]
    totals = report.total_row(profile)
    for index, time in enumerate(report.times):
        rows.append(
            [
                time.isoformat(),
                *(round(profile[cid][index], 6) for cid in report.charger_ids),
                round(totals[index], 6),
            ]
        )
    return rows


def overall_table(report: ClusterReport) -> Table:
    """The totals as name / value rows (sheet `Overall`)."""
    rows: Table = [["name", "value"]]
    rows.extend([name, value] for name, value in report.totals.items())
    return rows


def report_sheets(report: ClusterReport) -> list[tuple[str, Table]]:
    """The sheets of datafev's `export_results_to_excel`, in its order."""
    return [
        ("ClusterDataset", session_table(report)),
        ("UnitConsumption", profile_table(report, report.consumption_kw)),
        ("UnitOccupation", profile_table(report, report.occupation)),
        ("Overall", overall_table(report)),
    ]


def csv_bytes(rows: Table) -> bytes:
    """One table as UTF-8 CSV (empty cells for `None`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(["" if cell is None else cell for cell in row] for row in rows)
    return buffer.getvalue().encode()


def xlsx_bytes(sheets: Sequence[tuple[str, Table]]) -> bytes:
    """A workbook with one worksheet per `(name, rows)` (SpreadsheetML, OOXML)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _content_types(len(sheets)))
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr("xl/workbook.xml", _workbook(name for name, _ in sheets))
        archive.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(len(sheets)))
        for number, (_, rows) in enumerate(sheets, start=1):
            archive.writestr(f"xl/worksheets/sheet{number}.xml", _worksheet(rows))
    return buffer.getvalue()


def safe_file_name(*parts: str, suffix: str) -> str:
    """A file name of letters, digits, `_`, `.` and `-` only (no path separators)."""
    stem = "_".join(_SAFE_NAME.sub("-", part).strip("-.") for part in parts if part)
    return f"{stem or 'export'}.{suffix}"


def path_inside(base: Path, name: str) -> Path:
    """`base / name`, refusing any name that would leave `base`."""
    if name != Path(name).name or name in {"", ".", ".."}:
        raise ValueError(f"not a plain file name: {name!r}")
    path = (base / name).resolve()
    if not path.is_relative_to(base.resolve()):
        raise ValueError(f"{name!r} leaves {base}")
    return path


_NS = "http://schemas.openxmlformats.org"
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    f'<Relationships xmlns="{_NS}/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_NS}/officeDocument/2006/relationships/'
    'officeDocument" Target="xl/workbook.xml"/></Relationships>'
)


def _content_types(sheet_count: int) -> str:
    sheets = "".join(
        f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for n in range(1, sheet_count + 1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<Types xmlns="{_NS}/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        f"{sheets}</Types>"
    )


def _workbook(names: Iterable[str]) -> str:
    sheets = "".join(
        f'<sheet name="{escape(name[:31])}" sheetId="{n}" r:id="rId{n}"/>'
        for n, name in enumerate(names, start=1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<workbook xmlns="{_NS}/spreadsheetml/2006/main" '
        f'xmlns:r="{_NS}/officeDocument/2006/relationships">'
        f"<sheets>{sheets}</sheets></workbook>"
    )


def _workbook_rels(sheet_count: int) -> str:
    rels = "".join(
        f'<Relationship Id="rId{n}" Type="{_NS}/officeDocument/2006/relationships/'
        f'worksheet" Target="worksheets/sheet{n}.xml"/>'
        for n in range(1, sheet_count + 1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<Relationships xmlns="{_NS}/package/2006/relationships">{rels}'
        "</Relationships>"
    )


def _worksheet(rows: Table) -> str:
    body = "".join(
        f'<row r="{r}">'
        + "".join(
            _cell(f"{_column(c)}{r}", value)
            for c, value in enumerate(row)
            if value is not None
        )
        + "</row>"
        for r, row in enumerate(rows, start=1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<worksheet xmlns="{_NS}/spreadsheetml/2006/main">'
        f"<sheetData>{body}</sheetData></worksheet>"
    )


def _cell(ref: str, value: Cell) -> str:
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | float) and math.isfinite(value):
        return f'<c r="{ref}"><v>{value!r}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(value))}</t></is></c>'


def _column(index: int) -> str:
    """Spreadsheet column letters of a 0-based index (0 → A, 26 → AA)."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters
