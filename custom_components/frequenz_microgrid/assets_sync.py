"""Keep an entry's Assets API inventory current, without ever holding up telemetry.

The inventory is read once during setup (so devices start with its names and no
component outside its operational lifetime is steered even once), then every
`ASSETS_REFRESH_S`. A failed read changes nothing that works: the last inventory
(or none) stays in use, the telemetry and steering go on, a repair issue says what
is wrong, and the read is retried with back-off (`ASSETS_RETRY_MIN_S` doubling up
to `ASSETS_RETRY_MAX_S`). The first good read removes the issue again. While an
inventory is in use, an outage raises the issue only once it lasted
`ASSETS_ISSUE_AFTER_S`; a wrong key or microgrid, or no inventory yet, at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from frequenz.client.assets import AssetsApiClient
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .assets import (
    AssetsInventory,
    AssetsProblem,
    classify_assets_error,
    open_assets_client,
    read_inventory,
    timezone_of,
)
from .connection import ConnectionProblem
from .const import (
    ASSETS_ISSUE_AFTER_S,
    ASSETS_REFRESH_S,
    ASSETS_RETRY_MAX_S,
    ASSETS_RETRY_MIN_S,
    CONNECT_TIMEOUT_S,
    DOMAIN,
    LOGGER,
)
from .engine.control import MicrogridController

ISSUE_ASSETS_UNAVAILABLE = "assets_unavailable"


def assets_issue_id(entry_id: str) -> str:
    """Return the issue id of an entry whose Assets API cannot be read."""
    return f"{ISSUE_ASSETS_UNAVAILABLE}_{entry_id}"


class AssetsSync:
    """One entry's Assets API client, its latest inventory and its repair issue."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        entry_id: str,
        title: str,
        url: str,
        api_key: str | None,
        signing_secret: str | None,
        microgrid_id: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Prepare the client (it connects on the first call).

        Raises:
            ValueError: the URL is malformed (the config flow refuses such URLs).
        """
        self._hass = hass
        self._entry_id = entry_id
        self._title = title
        self._microgrid_id = microgrid_id
        self._clock = clock
        self._client: AssetsApiClient = open_assets_client(
            url, api_key=api_key, signing_secret=signing_secret
        )
        self._controller: MicrogridController | None = None
        self._on_inventory: list[Callable[[AssetsInventory], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._retry_s = ASSETS_RETRY_MIN_S
        self.inventory: AssetsInventory | None = None
        """The latest good read (`None` until the first one succeeds)."""
        self.last_error: str | None = None
        """Why the latest read failed (`None` after a good one)."""
        self.read_at: datetime | None = None
        """When the latest good read finished."""
        self._failing_since: datetime | None = None
        """When the reads began to fail (`None` after a good one)."""

    async def async_refresh(self) -> bool:
        """Read the inventory once; return whether it worked.

        On success the controller leaves out the components outside their
        operational lifetime, the listeners get the inventory and the repair
        issue goes; on failure the issue is raised (a passing outage with an
        inventory in use: once it lasted `ASSETS_ISSUE_AFTER_S`) and nothing
        else changes.
        """
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                inventory = await read_inventory(self._client, self._microgrid_id)
        except Exception as err:  # an Assets failure must never reach telemetry
            self._failed(err)
            return False
        timezone = await self._hass.async_add_executor_job(
            timezone_of, inventory.microgrid.location
        )
        inventory = replace(inventory, timezone=timezone)
        self.inventory = inventory
        self.read_at = self._clock()
        self.last_error = None
        self._failing_since = None
        self._retry_s = ASSETS_RETRY_MIN_S
        ir.async_delete_issue(self._hass, DOMAIN, assets_issue_id(self._entry_id))
        self._apply(inventory)
        return True

    def steer_within_lifetimes(self, controller: MicrogridController) -> None:
        """Have `controller` leave out components outside their lifetime, from now."""
        self._controller = controller
        if self.inventory is not None:
            controller.set_out_of_service(self.inventory.out_of_service(self._clock()))

    @callback
    def listen(self, on_inventory: Callable[[AssetsInventory], None]) -> None:
        """Call `on_inventory` after every good read."""
        self._on_inventory.append(on_inventory)

    @callback
    def start(self) -> None:
        """Keep reading: periodically, and with back-off after a failure."""
        self._task = self._hass.async_create_background_task(
            self._refresh_forever(), f"{DOMAIN} Assets API {self._entry_id}"
        )

    async def async_close(self) -> None:
        """Stop reading, remove the issue and disconnect."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        ir.async_delete_issue(self._hass, DOMAIN, assets_issue_id(self._entry_id))
        await self._client.disconnect()

    def diagnostics(self) -> dict[str, Any]:
        """What was read and when, and the latest error (no URL or credentials)."""
        inventory = self.inventory
        now = self._clock()
        return {
            "read_at": None if self.read_at is None else self.read_at.isoformat(),
            "timezone": None if inventory is None else inventory.timezone,
            "last_error": self.last_error,
            "microgrid": None if inventory is None else _microgrid(inventory),
            "components": None
            if inventory is None
            else {
                str(component_id): {
                    "name": component.name,
                    "manufacturer": component.manufacturer,
                    "model_name": component.model_name,
                    "operational_lifetime": {
                        "start": _iso(component.operational_lifetime.start),
                        "end": _iso(component.operational_lifetime.end),
                    },
                    "lifetime_state": inventory.lifetime_state(component_id, now),
                }
                for component_id, component in sorted(inventory.components.items())
            },
            "connections": None
            if inventory is None
            else sorted(
                [int(c.source), int(c.destination)] for c in inventory.connections
            ),
        }

    async def _refresh_forever(self) -> None:
        """Read again after the refresh period, or sooner after a failure."""
        while True:
            delay = ASSETS_REFRESH_S if self.last_error is None else self._retry_s
            if (since := self._failing_since) is not None:
                # Retry when the outage's grace ends, to raise the issue on time.
                left = ASSETS_ISSUE_AFTER_S - (self._clock() - since).total_seconds()
                if left > 0.0:
                    delay = min(delay, left)
            await asyncio.sleep(delay)
            if not await self.async_refresh():
                self._retry_s = min(self._retry_s * 2, ASSETS_RETRY_MAX_S)

    def _apply(self, inventory: AssetsInventory) -> None:
        if self._controller is not None:
            self._controller.set_out_of_service(inventory.out_of_service(self._clock()))
        for on_inventory in list(self._on_inventory):
            try:
                on_inventory(inventory)
            except Exception:
                LOGGER.exception("Applying the Assets API inventory failed")

    def _failed(self, err: Exception) -> None:
        problem = classify_assets_error(err)
        self.last_error = (
            "the Assets API has no microgrid with this id"
            if problem is AssetsProblem.MICROGRID_MISMATCH
            else f"{problem.value}: {str(err) or type(err).__name__}"
        )
        LOGGER.warning(
            "Could not read the Assets API of %s (telemetry goes on): %s",
            self._title,
            self.last_error,
        )
        now = self._clock()
        since = self._failing_since = self._failing_since or now
        passing = problem in _PASSING and self.inventory is not None
        if passing and (now - since).total_seconds() < ASSETS_ISSUE_AFTER_S:
            return  # the last inventory serves meanwhile
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            assets_issue_id(self._entry_id),
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_ASSETS_UNAVAILABLE,
            translation_placeholders={"title": self._title, "error": self.last_error},
        )


_PASSING = frozenset({ConnectionProblem.CANNOT_CONNECT, ConnectionProblem.UNKNOWN})
"""Problems that may pass by themselves (not a wrong address, key or microgrid)."""


def _microgrid(inventory: AssetsInventory) -> dict[str, Any]:
    microgrid = inventory.microgrid
    area = microgrid.delivery_area
    location = microgrid.location
    return {
        "id": int(microgrid.id),
        "enterprise_id": int(microgrid.enterprise_id),
        "name": microgrid.name,
        "status": _enum_name(microgrid.status),
        "create_timestamp": _iso(microgrid.create_timestamp),
        "delivery_area": None
        if area is None
        else {"code": area.code, "code_type": _enum_name(area.code_type)},
        "location": None
        if location is None
        else {
            "latitude": location.latitude,
            "longitude": location.longitude,
            "country_code": location.country_code,
        },
    }


def _enum_name(value: object) -> str:
    return str(getattr(value, "name", value)).lower()


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
