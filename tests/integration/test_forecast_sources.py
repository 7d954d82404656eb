"""Price and PV forecasts read from entity attributes, one test per attribute form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import math
from typing import Any

from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    State,
    SupportsResponse,
)
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from hypothesis import given, settings, strategies as st
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.frequenz_microgrid.forecast_sources import (
    async_forecast_solar_pv,
    async_nordpool_prices,
    price_series,
    pv_series,
    state_series,
)

T0 = datetime(2027, 1, 15, 0, 0, tzinfo=UTC)
TS0 = T0.timestamp()
QUARTER = timedelta(minutes=15)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_nordpool_raw_today_and_tomorrow_with_datetimes() -> None:
    """HACS Nord Pool: rows of start, end, value; tomorrow appended; per kWh."""
    today = [
        {"start": at(15 * i), "end": at(15 * (i + 1)), "value": 0.10 + i / 100}
        for i in range(4)
    ]
    tomorrow = [
        {"start": at(1440 + 15 * i), "end": at(1440 + 15 * (i + 1)), "value": 0.3}
        for i in range(2)
    ]
    series = price_series({"raw_today": today, "raw_tomorrow": tomorrow, "unit": "kWh"})
    assert len(series.points) == 6
    assert series.mean(TS0, TS0 + 900) == pytest.approx(0.10)
    assert series.mean(TS0 + 2700, TS0 + 3600) == pytest.approx(0.13)
    assert series.mean(TS0 + 86400, TS0 + 86400 + 900) == pytest.approx(0.3)
    # Between today and tomorrow nothing is known: no invented price.
    assert series.mean(TS0 + 7200, TS0 + 8100) is None


def test_nordpool_iso_strings_in_mwh_and_cents() -> None:
    """Restored attributes are ISO strings; MWh and cents become per kWh."""
    rows = [{"start": at(0).isoformat(), "end": at(60).isoformat(), "value": 120.0}]
    assert price_series({"raw_today": rows, "unit": "EUR/MWh"}).mean(
        TS0, TS0 + 900
    ) == pytest.approx(0.12)
    assert price_series(
        {"raw_today": [{**rows[0], "value": 25.0}], "price_in_cents": True}
    ).mean(TS0, TS0 + 900) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("attribute", "start_key", "value_key"),
    [
        ("forecast", "start", "price"),
        ("prices", "startsAt", "total"),
        ("data", "start_time", "price_per_kwh"),
        ("rates", "from", "value_inc_vat"),
    ],
)
def test_generic_price_rows_without_end_last_until_the_next_row(
    attribute: str, start_key: str, value_key: str
) -> None:
    rows = [
        {start_key: at(0).isoformat(), value_key: 0.2},
        {start_key: at(60).isoformat(), value_key: 0.4},
    ]
    series = price_series({attribute: rows})
    assert series.mean(TS0, TS0 + 3600) == pytest.approx(0.2)
    assert series.mean(TS0 + 3600, TS0 + 7200) == pytest.approx(0.4)
    # The last row lasts as long as the one before it.
    assert series.mean(TS0 + 7200, TS0 + 7300) is None


def test_bad_price_rows_are_skipped_not_fatal() -> None:
    rows = [
        {"start": "not a time", "value": 0.1},
        {"start": at(0).isoformat(), "value": "NaN"},
        {"start": at(15).isoformat(), "end": at(30).isoformat(), "value": "0.2"},
        "junk",
        {"start": at(30).isoformat(), "end": at(30).isoformat(), "value": 0.3},
        {"start": at(45).isoformat(), "end": at(60).isoformat(), "value": math.inf},
    ]
    series = price_series({"forecast": rows})
    assert [(p.start, p.value) for p in series.points] == [(TS0 + 900, 0.2)]
    assert not price_series({"forecast": "text"})
    assert not price_series({})
    # A sensor whose Nord Pool-style attributes are not lists: no prices.
    for odd in (0.3, True, "text", {"start": 0}, None):
        assert not price_series({"raw_today": odd, "raw_tomorrow": odd}), odd


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "raw_today",
                "raw_tomorrow",
                "forecast",
                "prices",
                "wh_period",
                "watts",
                "detailedForecast",
                "unit",
                "price_in_cents",
                "unit_of_measurement",
            ]
        ),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=8), inner, max_size=4)
            ),
            max_leaves=12,
        ),
    )
)
def test_no_attributes_make_a_forecast_source_raise(attributes: dict[str, Any]) -> None:
    """Whatever another integration puts in its attributes: a series, no error."""
    for series in (price_series(attributes), pv_series(attributes)):
        assert all(math.isfinite(p.value) for p in series.points)


def test_forecast_solar_wh_period_becomes_mean_watts() -> None:
    """Forecast.Solar / Open-Meteo: Wh per period (period = until the next key)."""
    wh_period = {
        at(0).isoformat(): 500.0,  # 500 Wh in 30 min → 1000 W
        at(30).isoformat(): 1500.0,  # 1500 Wh in 30 min → 3000 W
        at(60).isoformat(): 0.0,
    }
    series = pv_series({"wh_period": wh_period})
    assert series.mean(TS0, TS0 + 900) == pytest.approx(1000.0)
    assert series.mean(TS0 + 1800, TS0 + 2700) == pytest.approx(3000.0)
    assert series.mean(TS0 + 3600, TS0 + 4500) == pytest.approx(0.0)


def test_watts_mapping() -> None:
    series = pv_series({"watts": {at(0): 800.0, at(15): 1200.0}})
    assert series.mean(TS0, TS0 + 900) == pytest.approx(800.0)
    assert series.mean(TS0 + 900, TS0 + 1800) == pytest.approx(1200.0)


@pytest.mark.parametrize("attribute", ["detailedForecast", "detailed_forecast"])
def test_solcast_detailed_forecast_in_kw(attribute: str) -> None:
    rows = [
        {"period_start": at(0), "pv_estimate": 1.2, "pv_estimate10": 0.5},
        {"period_start": at(30), "pv_estimate": 2.5, "pv_estimate10": 1.0},
    ]
    series = pv_series({attribute: rows})
    assert series.mean(TS0, TS0 + 1800) == pytest.approx(1200.0)
    assert series.mean(TS0 + 1800, TS0 + 3600) == pytest.approx(2500.0)


def test_generic_pv_rows_in_watts() -> None:
    rows = [{"start": at(0), "end": at(15), "power": 4000.0}]
    assert pv_series({"forecast": rows}).mean(TS0, TS0 + 900) == pytest.approx(4000)


def test_missing_or_unavailable_state_gives_no_forecast() -> None:
    assert not state_series(None, pv=False)
    assert not state_series(State("sensor.price", "unavailable"), pv=False)
    rows = [{"start": at(0), "end": at(15), "value": 0.2}]
    state = State("sensor.price", "0.2", {"raw_today": rows})
    assert state_series(state, pv=False).mean(TS0, TS0 + 900) == pytest.approx(0.2)
    assert not state_series(state, pv=True)


async def test_home_assistant_nord_pool_prices_come_through_its_action(
    hass: HomeAssistant,
) -> None:
    """A core Nord Pool sensor: its action's rows for its area, per MWh → per kWh."""
    nordpool = MockConfigEntry(domain="nordpool", data={"areas": ["SE3", "SE4"]})
    nordpool.add_to_hass(hass)
    registry = er.async_get(hass)
    sensor = registry.async_get_or_create(
        "sensor",
        "nordpool",
        "SE3-current_price",
        config_entry=nordpool,
        suggested_object_id="nord_pool_se3_current_price",
    )
    other = registry.async_get_or_create("sensor", "other", "price")
    asked: list[dict[str, Any]] = []
    today = dt_util.now().replace(hour=0, minute=0, second=0, microsecond=0)

    async def get_prices(call: ServiceCall) -> ServiceResponse:
        asked.append(dict(call.data))
        day = today if call.data["date"] == today.date().isoformat() else None
        if day is None:
            return {"SE3": [], "SE4": []}
        return {
            "SE3": [
                {
                    "start": (day + timedelta(minutes=15 * i)).isoformat(),
                    "end": (day + timedelta(minutes=15 * (i + 1))).isoformat(),
                    "price": 100.0 + i,
                }
                for i in range(96)
            ],
            "SE4": [
                {
                    "start": day.isoformat(),
                    "end": (day + timedelta(minutes=15)).isoformat(),
                    "price": 999.0,
                }
            ],
        }

    hass.services.async_register(
        "nordpool",
        "get_prices_for_date",
        get_prices,
        supports_response=SupportsResponse.ONLY,
    )

    series = await async_nordpool_prices(hass, sensor.entity_id)
    assert series is not None
    start = today.timestamp()
    assert series.mean(start, start + 900) == pytest.approx(0.100)
    assert series.mean(start + 900, start + 1800) == pytest.approx(0.101)
    assert len(series.points) == 96
    assert [a["config_entry"] for a in asked] == [nordpool.entry_id] * 2
    assert await async_nordpool_prices(hass, other.entity_id) is None
    assert await async_nordpool_prices(hass, "sensor.not_registered") is None


async def test_home_assistant_forecast_solar_comes_through_its_action(
    hass: HomeAssistant,
) -> None:
    """A core Forecast.Solar sensor has no series: its action's wh_period is used."""
    solar = MockConfigEntry(domain="forecast_solar", data={})
    solar.add_to_hass(hass)
    registry = er.async_get(hass)
    sensor = registry.async_get_or_create(
        "sensor", "forecast_solar", "energy_production_today", config_entry=solar
    )
    other = registry.async_get_or_create("sensor", "other", "pv")
    hour = dt_util.now().replace(minute=0, second=0, microsecond=0)
    asked: list[dict[str, Any]] = []

    async def get_forecast(call: ServiceCall) -> ServiceResponse:
        asked.append(dict(call.data))
        return {
            "watts": {},
            "wh_period": {
                (hour + timedelta(hours=i)).isoformat(): 1000 * (i + 1)
                for i in range(3)
            },
        }

    assert await async_forecast_solar_pv(hass, sensor.entity_id) is None  # no action
    hass.services.async_register(
        "forecast_solar",
        "get_forecast",
        get_forecast,
        supports_response=SupportsResponse.ONLY,
    )
    series = await async_forecast_solar_pv(hass, sensor.entity_id)
    assert series is not None
    start = hour.timestamp()
    assert series.mean(start, start + 3600) == pytest.approx(1000.0)
    assert series.mean(start + 3600, start + 7200) == pytest.approx(2000.0)
    assert asked == [{"config_entry": solar.entry_id}]
    assert await async_forecast_solar_pv(hass, other.entity_id) is None


async def test_times_without_an_offset_are_home_assistants_local_time(
    hass: HomeAssistant,
) -> None:
    """A naive 18:00 row in Berlin (winter) starts at 17:00 UTC, as HA reads times."""
    await hass.config.async_set_time_zone("Europe/Berlin")
    rows = [
        {"start": "2027-01-15T18:00:00", "end": "2027-01-15T19:00:00", "price": 0.3},
        {"start": datetime(2027, 1, 15, 19, 0), "price": 0.1},
    ]
    series = price_series({"prices": rows})
    five_pm_utc = datetime(2027, 1, 15, 17, 0, tzinfo=UTC).timestamp()
    assert series.mean(five_pm_utc, five_pm_utc + 3600) == pytest.approx(0.3)
    assert series.mean(five_pm_utc + 3600, five_pm_utc + 7200) == pytest.approx(0.1)
