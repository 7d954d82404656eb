"""Report actions: the charging hub's cluster report, as a response or a file.

* `get_cluster_report(start, end, step)` returns datafev's results of
  `export_results_to_excel` for the period: per-charger consumption and
  occupation profiles, the session table and the totals (`engine.hub.reports`);
* `export_sessions(start?, end?, step?, format)` writes the same as CSV (the
  session table) or XLSX (datafev's four sheets) to
  `<config>/frequenz_microgrid/exports/` and returns the path. File names are
  made by the integration from the entry and the period, never taken from the
  caller, and checked to stay inside that directory.

Everything is checked before any work: a start not before the end, a step that is
not positive and finite, too many rows or an unknown format is a translated
`ServiceValidationError`, and nothing is written.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
import math
from pathlib import Path
from typing import Any, Final

from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util
import probatio as vol

from .action_fields import ENTRY_FIELD, ENTRY_SELECTOR, loaded_entry, utc_datetime
from .const import DOMAIN
from .engine.hub.export import (
    csv_bytes,
    path_inside,
    report_sheets,
    safe_file_name,
    session_table,
    xlsx_bytes,
)
from .engine.hub.reports import (
    ClusterReport,
    ReportRequestError,
    build_cluster_report,
    check_period,
)
from .engine.hub.sessions import ChargingSession
from .identity import entry_key_of
from .runtime import FrequenzMicrogridConfigEntry

SERVICE_GET_CLUSTER_REPORT: Final = "get_cluster_report"
SERVICE_EXPORT_SESSIONS: Final = "export_sessions"

ATTR_START: Final = "start"
ATTR_END: Final = "end"
ATTR_STEP: Final = "step"
ATTR_FORMAT: Final = "format"

EXPORT_FORMATS: Final = ("csv", "xlsx")
DEFAULT_EXPORT_STEP_S: Final = 900.0
"""Profile step of an export that names none (datafev's examples use 15 min)."""
COARSER_EXPORT_STEPS_S: Final = (3600.0, 86400.0, 7 * 86400.0)
"""Steps tried in turn when the default one makes too many rows: an export that
names no step covers every kept session (a year or more on a home) and is
never refused for its length."""
DEFAULT_EXPORT_PERIOD: Final = timedelta(days=1)
"""Period of an export without a start when no session is kept yet."""
EXPORT_DIRECTORY: Final = ("frequenz_microgrid", "exports")
"""Where exports go, under Home Assistant's configuration directory."""


def _seconds(value: Any) -> float:
    """A number of seconds; NaN and infinities pass to the translated check."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError) as err:
        raise vol.Invalid("expected a number of seconds") from err


GET_CLUSTER_REPORT_SCHEMA = vol.Schema(
    {
        ENTRY_FIELD: ENTRY_SELECTOR,
        vol.Required(ATTR_START): utc_datetime,
        vol.Required(ATTR_END): utc_datetime,
        vol.Required(ATTR_STEP): _seconds,
    }
)
EXPORT_SESSIONS_SCHEMA = vol.Schema(
    {
        ENTRY_FIELD: ENTRY_SELECTOR,
        vol.Optional(ATTR_START): utc_datetime,
        vol.Optional(ATTR_END): utc_datetime,
        vol.Optional(ATTR_STEP): _seconds,
        vol.Required(ATTR_FORMAT): cv.string,
    }
)


@callback
def async_setup_report_actions(hass: HomeAssistant) -> None:
    """Register the report actions (once, from `async_setup`)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_CLUSTER_REPORT,
        _async_get_cluster_report,
        schema=GET_CLUSTER_REPORT_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_EXPORT_SESSIONS,
        _async_export_sessions,
        schema=EXPORT_SESSIONS_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )


async def _async_get_cluster_report(call: ServiceCall) -> ServiceResponse:
    entry = loaded_entry(call)
    request = _checked_request(
        entry, call.data[ATTR_START], call.data[ATTR_END], call.data[ATTR_STEP]
    )
    return await call.hass.async_add_executor_job(
        lambda: build_cluster_report(*request).as_dict()
    )


async def _async_export_sessions(call: ServiceCall) -> ServiceResponse:
    entry = loaded_entry(call)
    file_format = call.data[ATTR_FORMAT].strip().lower()
    if file_format not in EXPORT_FORMATS:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_export_format",
            translation_placeholders={
                "format": call.data[ATTR_FORMAT],
                "formats": ", ".join(EXPORT_FORMATS),
            },
        )
    start, end, step_s = _export_period(entry, call.data)
    request = _checked_request(entry, start, end, step_s)
    directory = Path(call.hass.config.path(*EXPORT_DIRECTORY))
    try:
        report, path = await call.hass.async_add_executor_job(
            _export, request, file_format, (entry.title, entry_key_of(entry)), directory
        )
    except (OSError, ValueError) as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="export_failed",
            translation_placeholders={"error": str(err)},
        ) from err
    return {
        "path": str(path),
        "format": file_format,
        "sessions": len(report.sessions),
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
    }


type ReportRequest = tuple[
    list[ChargingSession], tuple[int, ...], datetime, datetime, timedelta, datetime
]
"""`build_cluster_report`'s arguments: sessions, chargers, start, end, step, now."""


def _checked_request(
    entry: FrequenzMicrogridConfigEntry, start: datetime, end: datetime, step_s: float
) -> ReportRequest:
    """Check a request in the event loop (translated refusals), fix its inputs.

    The report itself is built in the executor (a week of a depot at one-minute
    steps is a million values), so it gets copies of the sessions still open:
    the event loop keeps accounting them meanwhile. Ended sessions never change.
    """
    if not math.isfinite(step_s):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="not_finite",
            translation_placeholders={"field": ATTR_STEP, "value": str(step_s)},
        )
    recorder = entry.runtime_data.sessions
    charger_ids = () if recorder is None else recorder.tracker.charger_ids
    try:
        step = timedelta(seconds=step_s)
        check_period(start, end, step, len(charger_ids))
    except ReportRequestError as err:
        raise _refused(err) from err
    except OverflowError as err:  # a step beyond what a timedelta holds
        refused = ReportRequestError("report_invalid_step", step=str(step_s))
        raise _refused(refused) from err
    sessions = (
        []
        if recorder is None
        else [
            copy.deepcopy(session) if session.is_open else session
            for session in recorder.tracker.sessions()
        ]
    )
    return (sessions, charger_ids, start, end, step, dt_util.utcnow())


def _export(
    request: ReportRequest,
    file_format: str,
    microgrid: tuple[str, str],
    directory: Path,
) -> tuple[ClusterReport, Path]:
    """Build the report, render it and write it (in the executor).

    The file is named after the microgrid's title and id: two microgrids may
    share a name, and one's export must not replace the other's.
    """
    report = build_cluster_report(*request)
    if file_format == "csv":
        content = csv_bytes(session_table(report))
    else:
        content = xlsx_bytes(report_sheets(report))
    name = safe_file_name(
        "sessions",
        *microgrid,
        _stamp(report.start),
        _stamp(report.end),
        suffix=file_format,
    )
    return report, _write(directory, name, content)


def _refused(err: ReportRequestError) -> ServiceValidationError:
    """The translated error of a refused report request (literal keys: hassfest)."""
    placeholders = err.placeholders
    match err.key:
        case "report_empty_period":
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="report_empty_period",
                translation_placeholders=placeholders,
            )
        case "report_invalid_step":
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="report_invalid_step",
                translation_placeholders=placeholders,
            )
        case _:  # "report_too_many_rows", the last of `check_period`'s reasons
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="report_too_many_rows",
                translation_placeholders=placeholders,
            )


def _export_period(
    entry: FrequenzMicrogridConfigEntry, data: Any
) -> tuple[datetime, datetime, float]:
    """An export's start, end and step, the defaults filled in.

    Without a step: 15 minutes, or the first coarser step that keeps the
    period within the report's limits.
    """
    end: datetime = data.get(ATTR_END) or dt_util.utcnow()
    given_step: float | None = data.get(ATTR_STEP)
    recorder = entry.runtime_data.sessions
    chargers = 0 if recorder is None else len(recorder.tracker.charger_ids)
    steps = (
        (given_step,)
        if given_step is not None
        else (DEFAULT_EXPORT_STEP_S, *COARSER_EXPORT_STEPS_S)
    )
    for step_s in steps:
        start: datetime = data.get(ATTR_START) or _first_session_start(
            entry, end, step_s
        )
        if given_step is not None or _fits(start, end, step_s, chargers):
            break
    return start, end, step_s


def _fits(start: datetime, end: datetime, step_s: float, chargers: int) -> bool:
    """Whether a period at this step is not refused for its number of rows.

    Any other refusal (an empty period) comes whatever the step.
    """
    try:
        check_period(start, end, timedelta(seconds=step_s), chargers)
    except ReportRequestError as err:
        return err.key != "report_too_many_rows"
    return True


def _first_session_start(
    entry: FrequenzMicrogridConfigEntry, end: datetime, step_s: float
) -> datetime:
    """The earliest kept session's start before `end`, on a step boundary.

    A day before `end` without such a session (none kept, or all after `end`).
    """
    recorder = entry.runtime_data.sessions
    starts = (
        []
        if recorder is None
        else [s.started_at for s in recorder.tracker.sessions() if s.started_at < end]
    )
    if not starts or not math.isfinite(step_s) or step_s <= 0:
        try:
            return end - DEFAULT_EXPORT_PERIOD
        except OverflowError:  # end in year 1: an empty period, refused as such
            return end
    first = min(starts).timestamp()
    return dt_util.utc_from_timestamp(math.floor(first / step_s) * step_s)


def _stamp(time: datetime) -> str:
    return dt_util.as_utc(time).strftime("%Y%m%dT%H%M%SZ")


def _write(directory: Path, name: str, content: bytes) -> Path:
    """Write `content` to `directory/name` (created if needed); never outside it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = path_inside(directory, name)
    path.write_bytes(content)
    return path
