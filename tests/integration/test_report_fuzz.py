"""Fuzzing the report actions: every payload is answered, refused or schema-rejected.

A refusal is a translated `ServiceValidationError`; an accepted export writes one
file, inside `<config>/frequenz_microgrid/exports/`, and nowhere else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from hypothesis import strategies as st
import probatio as vol
import pytest

from custom_components.frequenz_microgrid.const import DOMAIN
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator

from .conftest import setup_entry
from .fuzz import assert_translated, run_property, send_explicit

FAR_TIMES = ("9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00")
"""Valid times with no UTC equivalent (converting them overflows)."""

_TIMES = st.one_of(
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.just(UTC),
    ).map(datetime.isoformat),
    st.datetimes(min_value=datetime(2026, 12, 1), max_value=datetime(2026, 12, 8)).map(
        datetime.isoformat
    ),
    st.sampled_from(["", "yesterday", "2026-13-01T00:00:00", "0", "NaN", *FAR_TIMES]),
    st.integers(),
    st.none(),
)
_STEPS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from(["900", "nan", "inf", "-1", "", "1e400", "ten"]),
    st.none(),
)
_FORMATS = st.one_of(
    st.sampled_from(["csv", "xlsx", "CSV", " xlsx ", "pdf", "../x", "csv/../../x"]),
    st.text(max_size=20),
    st.integers(),
)


@pytest.mark.parametrize("field", ["start", "end"])
@pytest.mark.parametrize("far", FAR_TIMES)
async def test_a_time_without_a_utc_equivalent_is_a_schema_error_in_every_action(
    hass: HomeAssistant, simulator: MicrogridSimulator, field: str, far: str
) -> None:
    """Not an `OverflowError` ("Unknown error"): reports, exports, limits, bookings."""
    entry = await setup_entry(hass, simulator.url)
    period = {"start": "2026-12-01T00:00:00+00:00", "end": "2026-12-02T00:00:00+00:00"}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("get_cluster_report", {**period, field: far}),
        ("export_sessions", {**period, field: far, "format": "csv"}),
        ("reserve_charger", {**period, field: far}),
        ("find_available_chargers", {**period, field: far}),
        ("set_power_limits", {"steps": [{"start": far, "upper": 1000.0}]}),
    ]
    for service, data in calls:
        with pytest.raises(vol.Invalid, match="out of range"):
            await hass.services.async_call(
                DOMAIN,
                service,
                {"config_entry_id": entry.entry_id, **data},
                blocking=True,
                return_response=True,
            )


def _payload(entry_id: str, *, export: bool) -> st.SearchStrategy[dict[str, Any]]:
    keys: dict[str, st.SearchStrategy[Any]] = {
        "start": _TIMES,
        "end": _TIMES,
        "step": _STEPS,
    }
    if export:
        keys["format"] = _FORMATS
    return st.fixed_dictionaries(
        {"config_entry_id": st.just(entry_id)},
        optional=keys,
    ).map(lambda payload: {k: v for k, v in payload.items() if v is not None})


async def test_report_actions_answer_or_refuse_every_payload(
    hass: HomeAssistant, simulator: MicrogridSimulator, tmp_path: Path
) -> None:
    hass.config.config_dir = str(tmp_path)
    exports = tmp_path / "frequenz_microgrid" / "exports"
    entry = await setup_entry(hass, simulator.url)
    outcomes: dict[str, int] = {}

    async def call(service: str, payload: dict[str, Any]) -> None:
        try:
            response = await hass.services.async_call(
                DOMAIN, service, dict(payload), blocking=True, return_response=True
            )
        except vol.Invalid:
            outcomes["schema"] = outcomes.get("schema", 0) + 1
            return
        except ServiceValidationError as err:
            assert_translated(err)
            key = str(err.translation_key)
            outcomes[key] = outcomes.get(key, 0) + 1
            return
        outcomes["accepted"] = outcomes.get("accepted", 0) + 1
        assert response is not None
        if service == "export_sessions":
            assert Path(str(response["path"])).parent == exports

    async def call_explicit(sent: tuple[str, dict[str, Any]]) -> None:
        service, payload = sent
        await call(service, {"config_entry_id": entry.entry_id} | payload)

    # The outcomes the test counts on, once for sure (as hypothesis's @example).
    day = {"start": "2026-12-01T00:00:00+00:00", "end": "2026-12-02T00:00:00+00:00"}
    explicit: list[tuple[tuple[str, dict[str, Any]], str]] = [
        (("get_cluster_report", {**day, "step": 900}), "accepted"),
        (("export_sessions", {**day, "format": "csv"}), "accepted"),
        (
            ("get_cluster_report", {**day, "end": day["start"], "step": 900}),
            "report_empty_period",
        ),
        (("get_cluster_report", {**day, "step": 0}), "report_invalid_step"),
        (("get_cluster_report", {**day, "step": "nan"}), "not_finite"),
    ]
    await send_explicit(outcomes, call_explicit, explicit)
    examples = 0
    for service in ("get_cluster_report", "export_sessions"):
        strategy = _payload(entry.entry_id, export=service == "export_sessions")

        async def check(payload: dict[str, Any], service: str = service) -> None:
            await call(service, payload)

        examples += await run_property(hass, strategy, check)

    assert examples >= 300
    files = await hass.async_add_executor_job(
        lambda: [p for p in tmp_path.rglob("*") if not p.is_dir()]
    )
    assert files
    assert [p for p in files if p.parent != exports] == []
    # Past the schema into each check, and sometimes valid.
    reached = {"accepted", "report_empty_period", "report_invalid_step", "not_finite"}
    assert reached <= outcomes.keys(), outcomes
