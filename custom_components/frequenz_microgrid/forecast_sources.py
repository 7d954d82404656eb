"""Price and PV forecasts from Home Assistant entities, as the planner's series.

The options flow may name a price entity and a PV forecast entity; whatever
integration provides them, their forecasts sit in a state's attributes in one of
a few common forms, each read here into an engine `TimeSeries`:

Prices (per kWh; a unit of ``…/MWh`` is divided by 1000, Nord Pool's
``price_in_cents`` by 100):

- **Nord Pool** (HACS ``nordpool``): ``raw_today`` and ``raw_tomorrow``, lists of
  ``{start, end, value}``.
- **Rows with a time and a price** in ``forecast``, ``prices``, ``data`` or
  ``rates``: ``start``/``start_time``/``startsAt``/``from``/``time``/``datetime``,
  optionally ``end``/``end_time``/``endsAt``/``to``/``till``, and
  ``value``/``price``/``price_per_kwh``/``value_inc_vat``/``total``. A row
  without an end lasts until the next one (the last as long as the one before
  it). This covers EPEX Spot, Tibber-like and Octopus-like sensors and a
  template sensor a user writes from Nord Pool's ``nordpool.get_prices_for_date``
  action (Home Assistant's own Nord Pool integration has prices only through
  that action, not in attributes).

PV (mean power in W over each period):

- **Forecast.Solar / Open-Meteo Solar Forecast**: ``wh_period``, a mapping of
  period start → Wh in the period (each period until the next start), or
  ``watts``, start → W.
- **Solcast** (HACS ``solcast_solar``): ``detailedForecast`` (or
  ``detailed_forecast``), rows of ``period_start`` and ``pv_estimate`` in kW over
  30 minutes.
- The generic rows above with a ``value``/``power``/``watts`` in W.

Home Assistant's own **Nord Pool** integration keeps only the current price in its
sensors; the rest is behind its ``nordpool.get_prices_for_date`` action. When the
chosen price entity is one of its sensors, `async_nordpool_prices` calls that
action for today and tomorrow (prices per MWh, divided by 1000) for the
sensor's area. Likewise Home Assistant's Forecast.Solar sensors carry no series:
`async_forecast_solar_pv` asks its `get_forecast` action.

A state that is missing, unavailable or has no usable rows gives an empty
series: the planner then plans without it (never with invented values).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
import itertools
import math
from typing import Any

from homeassistant.const import ATTR_UNIT_OF_MEASUREMENT, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.selector import EntitySelector, EntitySelectorConfig
from homeassistant.util import dt as dt_util
import probatio as vol

from .const import CONF_PRICE_ENTITY, CONF_PV_FORECAST_ENTITY, FORECAST_SETTINGS
from .engine.hub.forecast import ForecastPoint, TimeSeries

START_KEYS = ("start", "start_time", "startsAt", "from", "period_start", "time")
START_KEYS_LAST = ("datetime", "hour", "date")
END_KEYS = ("end", "end_time", "endsAt", "to", "till", "period_end")
PRICE_KEYS = ("value", "price", "price_per_kwh", "value_inc_vat", "total")
POWER_KEYS = ("value", "power", "watts", "pv_w")
PRICE_ROW_ATTRIBUTES = ("forecast", "prices", "data", "rates")
PV_ROW_ATTRIBUTES = ("forecast", "data")
SOLCAST_ATTRIBUTES = ("detailedForecast", "detailed_forecast")
FORECAST_FIELDS: dict[Any, Any] = {
    vol.Optional(CONF_PRICE_ENTITY): EntitySelector(
        EntitySelectorConfig(domain="sensor")
    ),
    vol.Optional(CONF_PV_FORECAST_ENTITY): EntitySelector(
        EntitySelectorConfig(domain="sensor")
    ),
}
"""The options flow's optional forecast entities (empty: plan without)."""


def forecast_options(user_input: Mapping[str, Any]) -> dict[str, str]:
    """The chosen forecast entities to store (a cleared field is left out)."""
    return {
        key: str(user_input[key]) for key in FORECAST_SETTINGS if user_input.get(key)
    }


NORDPOOL = "nordpool"
NORDPOOL_GET_PRICES = "get_prices_for_date"
FORECAST_SOLAR = "forecast_solar"
FORECAST_SOLAR_GET_FORECAST = "get_forecast"

DEFAULT_PERIOD_S = 3600.0
"""How long a lone row without an end lasts (an hour, the coarsest usual step)."""


def to_timestamp(value: Any) -> float | None:
    """POSIX seconds of a datetime, an ISO string or a number; `None` if not one.

    A time without an offset is Home Assistant's local time (as in its actions
    and templates), not UTC: a naive 18:00 price row in Berlin is 17:00 UTC.
    """
    if isinstance(value, datetime):
        try:
            return dt_util.as_utc(value).timestamp()  # naive: HA's time zone
        except OverflowError:
            return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        parsed = dt_util.parse_datetime(value)
        if parsed is None:
            return None
        return to_timestamp(parsed)
    return None


def to_number(value: Any) -> float | None:
    """A finite float of a number or a numeric string; `None` otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except TypeError, ValueError:
        return None
    return number if math.isfinite(number) else None


def _first(row: Mapping[str, Any], keys: Sequence[str]) -> Any:
    return next((row[key] for key in keys if row.get(key) is not None), None)


def rows_series(rows: Any, value_keys: Sequence[str], scale: float = 1.0) -> TimeSeries:
    """Rows of a start, an optional end and a value (the generic list form)."""
    if not isinstance(rows, list | tuple):
        return TimeSeries()
    parsed: list[tuple[float, float | None, float]] = []
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        start = to_timestamp(_first(row, (*START_KEYS, *START_KEYS_LAST)))
        value = to_number(_first(row, value_keys))
        if start is None or value is None:
            continue
        parsed.append((start, to_timestamp(_first(row, END_KEYS)), value * scale))
    return _series(parsed)


def mapping_series(data: Any, scale_of_period: bool) -> TimeSeries:
    """A mapping of period start → value; each period lasts until the next start.

    `scale_of_period`: the values are energies in the period (Wh) and become
    the period's mean power (W).
    """
    if not isinstance(data, Mapping):
        return TimeSeries()
    starts = sorted(
        (start, number)
        for key, value in data.items()
        if (start := to_timestamp(key)) is not None
        and (number := to_number(value)) is not None
    )
    parsed: list[tuple[float, float | None, float]] = []
    for (start, value), following in itertools.zip_longest(starts, starts[1:]):
        end = following[0] if following is not None else None
        if scale_of_period:
            period = (end - start) if end is not None else _period_before(parsed)
            value = value * 3600.0 / period if period > 0 else math.nan
        parsed.append((start, end, value))
    return _series(parsed)


def _period_before(parsed: Sequence[tuple[float, float | None, float]]) -> float:
    if parsed:
        start, end, _ = parsed[-1]
        if end is not None:
            return end - start
    return DEFAULT_PERIOD_S


def _series(rows: Iterable[tuple[float, float | None, float]]) -> TimeSeries:
    """Points from (start, end or None, value): a missing end is the next start."""
    ordered = sorted(rows, key=lambda row: row[0])
    points: list[ForecastPoint] = []
    for index, (start, end, value) in enumerate(ordered):
        if end is None:
            if index + 1 < len(ordered):
                end = ordered[index + 1][0]
            elif points:
                end = start + (points[-1].end - points[-1].start)
            else:
                end = start + DEFAULT_PERIOD_S
        points.append(ForecastPoint(start, end, value))
    return TimeSeries.of(points)


def price_scale(attributes: Mapping[str, Any]) -> float:
    """The factor that turns the entity's prices into prices per kWh."""
    unit = str(
        attributes.get(ATTR_UNIT_OF_MEASUREMENT) or attributes.get("unit") or ""
    ).lower()
    scale = 1.0
    if unit.endswith("mwh"):
        scale = 1 / 1000.0
    elif unit.endswith("/wh") or unit == "wh":
        scale = 1000.0
    if attributes.get("price_in_cents") is True:
        scale /= 100.0
    return scale


def price_series(attributes: Mapping[str, Any]) -> TimeSeries:
    """The price forecast in a state's attributes (per kWh); empty if none."""
    scale = price_scale(attributes)
    raw = [*_rows(attributes.get("raw_today")), *_rows(attributes.get("raw_tomorrow"))]
    if raw:
        return rows_series(raw, PRICE_KEYS, scale)
    for name in PRICE_ROW_ATTRIBUTES:
        series = rows_series(attributes.get(name), PRICE_KEYS, scale)
        if series:
            return series
    return TimeSeries()


def _rows(value: Any) -> list[Any] | tuple[Any, ...]:
    """A list attribute's rows; nothing for any other value (a number, a text)."""
    return value if isinstance(value, list | tuple) else ()


def pv_series(attributes: Mapping[str, Any]) -> TimeSeries:
    """The PV forecast in a state's attributes (W); empty if none."""
    if series := mapping_series(attributes.get("wh_period"), scale_of_period=True):
        return series
    if series := mapping_series(attributes.get("watts"), scale_of_period=False):
        return series
    for name in SOLCAST_ATTRIBUTES:
        if series := rows_series(attributes.get(name), ("pv_estimate",), 1000.0):
            return series
    for name in PV_ROW_ATTRIBUTES:
        if series := rows_series(attributes.get(name), POWER_KEYS):
            return series
    return TimeSeries()


def state_series(state: State | None, *, pv: bool) -> TimeSeries:
    """The forecast of an entity's state (`pv`: a PV forecast, else prices)."""
    if state is None or state.state == STATE_UNAVAILABLE:
        return TimeSeries()
    return pv_series(state.attributes) if pv else price_series(state.attributes)


async def async_nordpool_prices(
    hass: HomeAssistant, entity_id: str
) -> TimeSeries | None:
    """Today's and tomorrow's prices of a Nord Pool sensor's area (per kWh).

    `None` when the entity is not one of Home Assistant's Nord Pool sensors (or
    its action is not there); an empty series when the action fails or has no
    prices (tomorrow's come in the early afternoon).
    """
    entry = _entry_with_action(hass, entity_id, NORDPOOL, NORDPOOL_GET_PRICES)
    if entry is None or entry.config_entry_id is None:
        return None
    today = dt_util.now().date()
    rows: list[Any] = []
    for day in (today, today + timedelta(days=1)):
        try:
            response = await hass.services.async_call(
                NORDPOOL,
                NORDPOOL_GET_PRICES,
                {"config_entry": entry.config_entry_id, "date": day.isoformat()},
                blocking=True,
                return_response=True,
            )
        except HomeAssistantError:
            continue
        if isinstance(response, Mapping):
            rows.extend(_area_rows(response, entry.unique_id))
    return rows_series(rows, ("price",), scale=1 / 1000.0)


async def async_forecast_solar_pv(
    hass: HomeAssistant, entity_id: str
) -> TimeSeries | None:
    """The PV forecast of a Forecast.Solar sensor's entry, through its action (W).

    Home Assistant's Forecast.Solar sensors carry no series in their attributes;
    its `get_forecast` action returns the entry's `wh_period` and `watts`.
    `None` when the entity is not one of its sensors (or the action is not
    there); an empty series when the action fails.
    """
    entry = _entry_with_action(
        hass, entity_id, FORECAST_SOLAR, FORECAST_SOLAR_GET_FORECAST
    )
    if entry is None or entry.config_entry_id is None:
        return None
    try:
        response = await hass.services.async_call(
            FORECAST_SOLAR,
            FORECAST_SOLAR_GET_FORECAST,
            {"config_entry": entry.config_entry_id},
            blocking=True,
            return_response=True,
        )
    except HomeAssistantError:
        return TimeSeries()
    if not isinstance(response, Mapping):
        return TimeSeries()
    return pv_series(response)


def _entry_with_action(
    hass: HomeAssistant, entity_id: str, domain: str, service: str
) -> er.RegistryEntry | None:
    """The entity's registry entry if `domain` made it and offers `service`."""
    entry = er.async_get(hass).async_get(entity_id)
    if (
        entry is None
        or entry.platform != domain
        or not hass.services.has_service(domain, service)
    ):
        return None
    return entry


def _area_rows(response: Mapping[str, Any], unique_id: str) -> list[Any]:
    """The rows of the sensor's area (its unique id starts with the area)."""
    areas = [area for area in response if unique_id.startswith(f"{area}-")]
    if not areas and len(response) == 1:
        areas = list(response)
    rows = response.get(areas[0]) if areas else None
    return list(rows) if isinstance(rows, list) else []
