"""The charging hub's settings, kept across restarts in a `Store`.

Charger modes (with a boost's end as a wall-clock time, so a boost survives a
restart with the time it had left), the solar minimum-current option per charger,
the boost duration, the solar start and stop delays, and whether the battery may
charge the EVs down to which SoC.
They are loaded into the engine *before* it starts, so a charger set to *off*
never charges for a moment after a restart; every change is saved shortly after.
Each setting and each charger's mode is restored on its own: a damaged value is
logged and keeps its default, never costing the others.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
import logging
from typing import Any, Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .engine.control import MicrogridController
from .engine.hub.modes import ChargerMode, ChargerModeState, check_boost_duration
from .engine.hub.solar import check_delay
from .stored_data import async_load_stored

_LOGGER = logging.getLogger(__name__)

STORAGE_VERSION: Final = 1
SAVE_DELAY_S: Final = 1.0


def _store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.charging_hub")


async def async_remove_charging_hub_settings(
    hass: HomeAssistant, entry_id: str
) -> None:
    """Delete the entry's stored hub settings (the entry was removed)."""
    await _store(hass, entry_id).async_remove()


class ChargingHubSettings:
    """Loads, applies and saves the hub settings of one entry's controller."""

    def __init__(
        self, hass: HomeAssistant, entry_id: str, controller: MicrogridController
    ) -> None:
        """Keep the settings of `controller` in the entry's own store."""
        self._store = _store(hass, entry_id)
        self.controller = controller
        self._pending = False

    async def async_load(self) -> None:
        """Apply the stored settings (nothing stored: the defaults stay).

        A damaged setting or charger is logged and keeps its default; the
        others are applied (a damaged file must not keep the microgrid from
        loading, nor a charger set to off from staying off).
        """
        data = await async_load_stored(self._store, "charging hub settings")
        if data:
            self._apply(data)

    def follow(self) -> Callable[[], Coroutine[Any, Any, None]]:
        """Save after every mode change; return the coroutine function that stops it.

        Stopping writes what is pending at once, so a reload reads the last change.
        """
        unsubscribe = self.controller.charger_modes.listen(self.changed)

        async def stop() -> None:
            unsubscribe()
            if self._pending:
                await self._store.async_save(self._data())

        return stop

    @callback
    def changed(self) -> None:
        """Save the settings shortly (changes in a burst are written once)."""
        self._pending = True
        self._store.async_delay_save(self._saved_data, SAVE_DELAY_S)

    def _saved_data(self) -> dict[str, Any]:
        """The data to write, now that a delayed save runs."""
        self._pending = False
        return self._data()

    def _data(self) -> dict[str, Any]:
        modes = self.controller.charger_modes
        battery = self.controller.battery_for_evs
        chargers: dict[str, Any] = {}
        for charger_id, state in modes.states().items():
            remaining = modes.boost_remaining_s(charger_id)
            chargers[str(charger_id)] = {
                "mode": state.mode.value,
                "after_boost": state.after_boost.value,
                "boost_until": None
                if remaining is None
                else (dt_util.utcnow() + timedelta(seconds=remaining)).isoformat(),
                "solar_min_current": state.solar_min_current,
            }
        return {
            "chargers": chargers,
            "boost_s": modes.default_boost_s,
            "solar_delays_s": {
                "start": modes.solar.start_delay_s,
                "stop": modes.solar.stop_delay_s,
            },
            "battery_for_evs": {
                "allowed": battery.allowed,
                "floor_soc_pct": battery.floor_soc_pct,
            },
        }

    def _apply(self, data: Mapping[str, Any]) -> None:
        """Apply every stored value that reads; log and skip each damaged one."""
        modes = self.controller.charger_modes
        battery = self.controller.battery_for_evs
        solar = modes.solar
        if (boost_s := _setting(data, "boost_s", _boost_duration)) is not None:
            modes.default_boost_s = boost_s
        delays = _section(data, "solar_delays_s")
        if (start_s := _setting(delays, "start", _delay, "solar_delays_s")) is not None:
            solar.start_delay_s = start_s
        if (stop_s := _setting(delays, "stop", _delay, "solar_delays_s")) is not None:
            solar.stop_delay_s = stop_s
        stored_battery = _section(data, "battery_for_evs")
        allowed = _setting(stored_battery, "allowed", _bool, "battery_for_evs")
        if allowed is not None:
            battery.allowed = allowed
        floor = _setting(stored_battery, "floor_soc_pct", _soc, "battery_for_evs")
        if floor is not None:
            battery.set_floor_soc(floor)
        for key, stored in _section(data, "chargers").items():
            try:
                charger_id, state, remaining = _charger_state(key, stored)
            except (AttributeError, KeyError, TypeError, ValueError) as err:
                _LOGGER.warning(
                    "Ignoring the damaged stored mode of charger %s: %s", key, err
                )
                continue
            modes.restore(charger_id, state, boost_remaining_s=remaining)


def _section(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A stored group of settings; empty (logged) when damaged."""
    section = data.get(key)
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        _LOGGER.warning("Ignoring the damaged stored %s: %.80r", key, section)
        return {}
    return section


def _setting[T](
    data: Mapping[str, Any],
    key: str,
    parse: Callable[[Any], T],
    section: str | None = None,
) -> T | None:
    """A stored setting, `None` if absent or damaged (logged: the default stays)."""
    value = data.get(key)
    if value is None:
        return None
    try:
        return parse(value)
    except (TypeError, ValueError, OverflowError) as err:
        name = key if section is None else f"{section}.{key}"
        _LOGGER.warning("Ignoring the damaged stored %s %.80r: %s", name, value, err)
        return None


def _number(value: Any) -> float:
    """A stored number (not a bool, not a string), else `TypeError`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    return float(value)


def _boost_duration(value: Any) -> float:
    duration_s = _number(value)
    check_boost_duration(duration_s)
    return duration_s


def _delay(value: Any) -> float:
    return check_delay(_number(value))


def _soc(value: Any) -> float:
    floor = _number(value)
    if not 0.0 <= floor <= 100.0:
        raise ValueError(f"floor SoC {floor} outside 0–100 %")
    return floor


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("not true or false")
    return value


def _charger_state(key: Any, stored: Any) -> tuple[int, ChargerModeState, float | None]:
    """One charger's stored mode, after-boost mode, option and boost end.

    A damaged mode raises (the charger keeps its default); a damaged
    after-boost mode, option or boost end is logged and takes its default (a
    boost whose end cannot be read ends now), so the mode itself still holds.
    """
    charger_id = int(key)
    if not isinstance(stored, Mapping):
        raise TypeError(f"not a mapping: {stored!r:.80}")
    mode = ChargerMode(stored["mode"])
    name = f"chargers.{key}"
    after_boost = _setting(stored, "after_boost", ChargerMode, name)
    until = _setting(stored, "boost_until", _aware_time, name)
    min_current = _setting(stored, "solar_min_current", _bool, name)
    state = ChargerModeState(
        mode=mode,
        after_boost=ChargerMode.FAST if after_boost is None else after_boost,
        solar_min_current=bool(min_current),
    )
    remaining = None if until is None else (until - dt_util.utcnow()).total_seconds()
    return charger_id, state, remaining


def _aware_time(value: Any) -> datetime:
    """A stored ISO time with its time zone, else `TypeError`/`ValueError`."""
    if not isinstance(value, str):
        raise TypeError("not a time")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("a time without its time zone")
    return parsed
