"""Keeps each circuit's power limit envelope across restarts (a Home Assistant `Store`).

Written after every `set_power_limits` / `clear_power_limits`, read once at set-up
before the steering starts, so the first tick already holds the limits. Steps that
ended before the restart are pruned (the step in force stays); an envelope of a
circuit that no longer exists (its subentry was deleted), or one that no longer
validates, is dropped with a warning rather than failing the set-up, and for good:
a circuit added later under the same name starts without limits.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .const import DOMAIN
from .engine.hub.envelope import InvalidEnvelopeError, LimitEnvelope
from .engine.hub.limits import CircuitLimits
from .stored_data import async_load_stored

_LOGGER = logging.getLogger(__name__)

STORAGE_VERSION = 1


class CircuitLimitsStore:
    """The stored envelopes of one config entry's circuits."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Use the store file of `entry_id` (one per entry)."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.circuit_limits.{entry_id}"
        )

    async def async_restore(self, limits: CircuitLimits) -> None:
        """Set the stored envelopes on `limits`, pruned to now."""
        data = await async_load_stored(self._store, "circuit power limits")
        if not data:
            return
        envelopes = data.get("envelopes")
        if not isinstance(envelopes, dict):
            # A damaged file must not keep the microgrid from loading.
            if envelopes is not None:
                _LOGGER.warning("Ignoring damaged stored power limits: %.200r", data)
            return
        now = time.time()
        dropped = False
        for circuit_id, raw in envelopes.items():
            if limits.circuit(circuit_id) is None:
                _LOGGER.warning(
                    "Dropping the stored power limits of circuit %s: it no longer "
                    "exists",
                    circuit_id,
                )
                dropped = True
                continue
            try:
                envelope = LimitEnvelope.from_dict(raw).pruned(now)
            except (InvalidEnvelopeError, KeyError, TypeError, ValueError) as err:
                _LOGGER.warning(
                    "Dropping the stored power limits of circuit %s: %s",
                    circuit_id,
                    err,
                )
                dropped = True
                continue
            limits.set(circuit_id, envelope)
        if dropped:
            # For good: a new circuit of the same name must not inherit them.
            await self.async_save(limits)

    async def async_save(self, limits: CircuitLimits) -> None:
        """Write every envelope now set."""
        await self._store.async_save(
            {
                "envelopes": {
                    circuit_id: envelope.as_dict()
                    for circuit_id, envelope in limits.envelopes.items()
                }
            }
        )

    async def async_remove(self) -> None:
        """Delete the file (the entry was removed)."""
        await self._store.async_remove()
