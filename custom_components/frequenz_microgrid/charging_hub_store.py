"""The charging hub's settings, kept across restarts in a `Store`.

Charger modes (with a boost's end as a wall-clock time, so a boost survives a
restart with the time it had left), the solar minimum-current option per charger,
the boost duration, the solar start and stop delays, and whether the battery may
charge the EVs down to which SoC.
They are loaded into the engine *before* it starts, so a charger set to *off*
never charges for a moment after a restart; every change is saved shortly after.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
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
        """Apply the stored settings (nothing stored: the defaults stay)."""
        data = await self._store.async_load()
        if not data:
            return
        try:
            self._apply(data)
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            # A damaged file must not keep the microgrid from loading.
            _LOGGER.warning("Ignoring damaged charging hub settings: %s", err)

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

    def _apply(self, data: dict[str, Any]) -> None:
        """Check every stored value first, then apply them all (or none)."""
        modes = self.controller.charger_modes
        battery = self.controller.battery_for_evs
        boost_s = float(data.get("boost_s", modes.default_boost_s))
        check_boost_duration(boost_s)
        delays = data.get("solar_delays_s", {})
        start_s = check_delay(float(delays.get("start", modes.solar.start_delay_s)))
        stop_s = check_delay(float(delays.get("stop", modes.solar.stop_delay_s)))
        stored_battery = data.get("battery_for_evs", {})
        allowed = bool(stored_battery.get("allowed", battery.allowed))
        floor = float(stored_battery.get("floor_soc_pct", battery.floor_soc_pct))
        if not 0.0 <= floor <= 100.0:
            raise ValueError(f"floor SoC {floor} outside 0–100 %")
        restored: list[tuple[int, ChargerModeState, float | None]] = []
        for key, stored in dict(data.get("chargers", {})).items():
            until = stored.get("boost_until")
            remaining = (
                None
                if until is None
                else (datetime.fromisoformat(until) - dt_util.utcnow()).total_seconds()
            )
            state = ChargerModeState(
                mode=ChargerMode(stored["mode"]),
                after_boost=ChargerMode(stored.get("after_boost", "fast")),
                solar_min_current=bool(stored.get("solar_min_current", False)),
            )
            restored.append((int(key), state, remaining))
        modes.default_boost_s = boost_s
        modes.solar.start_delay_s, modes.solar.stop_delay_s = start_s, stop_s
        battery.allowed = allowed
        battery.set_floor_soc(floor)
        for charger_id, state, remaining in restored:
            modes.restore(charger_id, state, boost_remaining_s=remaining)
