"""Read a microgrid's inventory from the Assets API (`frequenz-client-assets`).

Frequenz deployments have two APIs: the Microgrid API on site (telemetry and
control) and the platform's Assets API (the inventory: the microgrid's enterprise,
delivery area, location, status and creation time, and per component its name,
maker, model and operational lifetime). The inventory is optional and only ever
adds to what the Microgrid API says; reading it is kept here, once, for the config
flow (which probes it) and the entry (which reads it periodically). This module
does not import Home Assistant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
import enum
import functools
from importlib import resources
import math
import re
from zoneinfo import ZoneInfo

from frequenz.client.assets import AssetsApiClient, Location, Microgrid
from frequenz.client.assets.electrical_component import (
    ComponentConnection,
    ElectricalComponent,
)
from frequenz.client.base.exception import EntityNotFound
from frequenz.client.common.microgrid import MicrogridId

from .connection import ConnectionProblem, classify_error


class LifetimeState(enum.StrEnum):
    """Where a component stands in its operational lifetime (translation keys)."""

    OPERATIONAL = "operational"
    NOT_YET_OPERATIONAL = "not_yet_operational"
    RETIRED = "retired"


class AssetsProblem(enum.StrEnum):
    """Why the Assets API could not be used, beyond a connection problem."""

    MICROGRID_MISMATCH = "assets_microgrid_mismatch"
    """The Assets API knows no microgrid with the Microgrid API's id."""


class MicrogridMismatchError(Exception):
    """The Assets API describes another microgrid than the Microgrid API."""

    def __init__(self, expected: int, found: int | None) -> None:
        """Remember both ids (`found` is `None` when the id is unknown there)."""
        super().__init__(
            f"the Assets API has no microgrid {expected}"
            if found is None
            else f"the Assets API answered for microgrid {found}, not {expected}"
        )
        self.expected = expected
        self.found = found


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What the inventory says a device is called and who made it."""

    name: str | None
    manufacturer: str | None
    model: str | None


@dataclass(frozen=True, slots=True)
class AssetsInventory:
    """One read of the Assets API for one microgrid."""

    microgrid: Microgrid
    components: Mapping[int, ElectricalComponent]
    connections: tuple[ComponentConnection, ...]
    timezone: str | None = None
    """The IANA time zone derived from the location (`timezone_of`), if known."""

    def lifetime_state(self, component_id: int, at: datetime) -> LifetimeState | None:
        """The component's lifetime state at `at` (`None`: not in the inventory)."""
        component = self.components.get(component_id)
        if component is None:
            return None
        lifetime = component.operational_lifetime
        if lifetime.is_operational_at(at):
            return LifetimeState.OPERATIONAL
        if lifetime.start is not None and at < lifetime.start:
            return LifetimeState.NOT_YET_OPERATIONAL
        return LifetimeState.RETIRED

    def out_of_service(self, at: datetime) -> frozenset[int]:
        """The components outside their operational lifetime at `at`: never steered."""
        return frozenset(
            component_id
            for component_id in self.components
            if self.lifetime_state(component_id, at) is not LifetimeState.OPERATIONAL
        )

    def hub_facts(self) -> DeviceFacts:
        """The microgrid's name from the inventory (maker and model stay ours)."""
        return DeviceFacts(self.microgrid.name or None, None, None)

    def component_facts(self, component_id: int) -> DeviceFacts | None:
        """A component's name, maker and model (`None`: not in the inventory)."""
        component = self.components.get(component_id)
        if component is None:
            return None
        return DeviceFacts(
            component.name or None,
            component.manufacturer or None,
            component.model_name or None,
        )


def open_assets_client(
    url: str, *, api_key: str | None = None, signing_secret: str | None = None
) -> AssetsApiClient:
    """Create an Assets API client for `url` with the optional key and secret.

    Raises:
        ValueError: if the URL is malformed.
    """
    client = AssetsApiClient(url, connect=False)
    client.connect(auth_key=api_key or None, sign_secret=signing_secret or None)
    return client


async def read_inventory(client: AssetsApiClient, microgrid_id: int) -> AssetsInventory:
    """Read the microgrid `microgrid_id` and its components and connections.

    Raises:
        MicrogridMismatchError: the Assets API does not know this microgrid, or
            answers for another one.
        ApiClientError: the API failed or refused the credentials.
    """
    wanted = MicrogridId(microgrid_id)
    try:
        microgrid = await client.get_microgrid(wanted)
    except EntityNotFound as err:
        raise MicrogridMismatchError(microgrid_id, None) from err
    if int(microgrid.id) != microgrid_id:
        raise MicrogridMismatchError(microgrid_id, int(microgrid.id))
    components = await client.list_microgrid_electrical_components(wanted)
    connections = await client.list_microgrid_electrical_component_connections(wanted)
    return AssetsInventory(
        microgrid=microgrid,
        components={int(component.id): component for component in components},
        connections=tuple(connections),
    )


async def probe_assets(
    url: str,
    microgrid_id: int,
    *,
    api_key: str | None = None,
    signing_secret: str | None = None,
    timeout_s: float,
) -> AssetsInventory:
    """Read the inventory once with a fresh client, which is disconnected again.

    Raises what `open_assets_client` and `read_inventory` raise, and
    `TimeoutError` after `timeout_s`.
    """
    client = open_assets_client(url, api_key=api_key, signing_secret=signing_secret)
    try:
        async with asyncio.timeout(timeout_s):
            return await read_inventory(client, microgrid_id)
    finally:
        await client.disconnect()


def classify_assets_error(err: BaseException) -> ConnectionProblem | AssetsProblem:
    """Map an exception of reading the inventory to what went wrong."""
    if isinstance(err, MicrogridMismatchError):
        return AssetsProblem.MICROGRID_MISMATCH
    return classify_error(err)


_COORDINATES = re.compile(r"^([+-]\d+)([+-]\d+)$")


def timezone_of(location: Location | None) -> str | None:
    """Return the IANA time zone of a microgrid's location, derived, if certain.

    The Assets API's location has coordinates and a country code but no time zone.
    Of the zones tzdata lists for the country (`zone.tab`), the one whose reference
    city is nearest is taken, but only if it cannot be the wrong clock: every zone
    of the country keeps the same time (Germany), or the nearest zone with another
    time is more than twice as far away (Los Angeles, not Austin, Texas, which lies
    between Denver and Chicago). Of the zones keeping that time the country's main
    one is named (Berlin, not Büsingen). Otherwise `None`, as without a country.
    Reads files (call it off the event loop).
    """
    if location is None or not location.country_code:
        return None
    country = location.country_code.upper()
    zones = [zone for zone in _zone_table() if country in zone[0]]
    latitude, longitude = location.latitude, location.longitude
    if latitude is None or longitude is None:
        latitude, longitude = zones[0][1:3] if len(zones) == 1 else (math.nan,) * 2
    scale = math.cos(math.radians(latitude))
    by_distance = sorted(
        (math.hypot(lat - latitude, (lon - longitude) * scale), name)
        for _, lat, lon, name in zones
    )
    if not by_distance or math.isnan(by_distance[0][0]):
        return None
    nearest_distance, nearest = by_distance[0]
    clock = _clock_of(nearest)
    other_times = [d for d, name in by_distance if _clock_of(name) != clock]
    if other_times and other_times[0] <= 2 * nearest_distance:
        return None
    # Of the zones keeping that time, the country's main one (listed first).
    return next(name for _, _, _, name in zones if _clock_of(name) == clock)


def _clock_of(zone: str) -> tuple[timedelta | None, ...]:
    """A zone's UTC offsets in winter and summer (zones alike keep the same time)."""
    tz = ZoneInfo(zone)
    return tuple(
        datetime(2025, month, 15, 12, tzinfo=tz).utcoffset() for month in (1, 7)
    )


@functools.cache
def _zone_table() -> tuple[tuple[frozenset[str], float, float, str], ...]:
    """The zones of tzdata: (country codes, latitude, longitude, zone name)."""
    text = (
        resources.files("tzdata")
        .joinpath("zoneinfo", "zone.tab")
        .read_text(encoding="utf-8")
    )
    zones = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        codes, coordinates, name, *_ = line.split("\t")
        match = _COORDINATES.match(coordinates)
        if match is None:
            continue
        zones.append(
            (
                frozenset(codes.split(",")),
                _degrees(match.group(1), 2),
                _degrees(match.group(2), 3),
                name,
            )
        )
    return tuple(zones)


def _degrees(text: str, degree_digits: int) -> float:
    """Turn tzdata's ±DDMM[SS] / ±DDDMM[SS] into degrees."""
    sign = -1.0 if text[0] == "-" else 1.0
    digits = text[1:]
    degrees = int(digits[:degree_digits])
    minutes = int(digits[degree_digits : degree_digits + 2])
    seconds = int(digits[degree_digits + 2 :] or 0)
    return sign * (degrees + minutes / 60 + seconds / 3600)
