"""What the simulated Assets API knows about a scenario's microgrid and components.

The Assets API is the platform's inventory: the microgrid's enterprise, delivery
area, location, status and creation time, and per component the name, maker, model
and operational lifetime as recorded there. A scenario file may carry this in an
optional ``assets`` table; every field has a default, so a scenario without one
still gets a complete answer (the component names, makers and models of its
topology table, and lifetimes without bounds):

    "assets": {
      "microgrid": {"name": "Garage site", "enterprise_id": 7,
                    "delivery_area": {"code": "10YDE-EON------1",
                                      "code_type": "europe_eic"},
                    "location": {"latitude": 48.1, "longitude": 11.6,
                                 "country_code": "DE"},
                    "status": "active", "created": "2023-05-01T00:00:00+00:00"},
      "components": {"6": {"name": "Wallbox 1", "manufacturer": "ABL", "model": "eM4",
                           "operational_start": "2023-05-01T00:00:00+00:00",
                           "operational_end": null}}
    }
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
import enum
from typing import Any


class CodeType(enum.StrEnum):
    """How a delivery area's code is to be read (the API's `EnergyMarketCodeType`)."""

    EUROPE_EIC = "europe_eic"
    US_NERC = "us_nerc"


class MicrogridStatus(enum.StrEnum):
    """The microgrid's status in the inventory (the API's `MicrogridStatus`)."""

    ACTIVE = "active"
    INACTIVE = "inactive"


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentAssets:
    """One component's inventory record; `None` falls back to the topology table."""

    name: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    operational_start: datetime | None = None
    """When it went into operation (`None`: always was)."""
    operational_end: datetime | None = None
    """When it was or will be taken out of operation (`None`: not planned)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MicrogridAssets:
    """The microgrid's inventory record and its components' records."""

    name: str | None = None
    """`None`: "Simulated <scenario name>", as the Microgrid API calls it."""
    enterprise_id: int = 1
    delivery_area_code: str = "10Y1001A1001A82H"
    delivery_area_code_type: CodeType = CodeType.EUROPE_EIC
    latitude: float = 52.52
    longitude: float = 13.405
    country_code: str = "DE"
    status: MicrogridStatus = MicrogridStatus.ACTIVE
    created: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    components: Mapping[int, ComponentAssets] = field(default_factory=dict)

    def component(self, component_id: int) -> ComponentAssets:
        """The record of one component (an empty one if the table has none)."""
        return self.components.get(component_id, ComponentAssets())


def assets_from_dict(data: Mapping[str, Any] | None) -> MicrogridAssets:
    """Read a scenario file's optional ``assets`` table (see the module docstring)."""
    if not data:
        return MicrogridAssets()
    grid: Mapping[str, Any] = data.get("microgrid", {})
    area: Mapping[str, Any] = grid.get("delivery_area", {})
    location: Mapping[str, Any] = grid.get("location", {})
    defaults = MicrogridAssets()
    created = _time(grid.get("created"))
    return MicrogridAssets(
        name=grid.get("name"),
        enterprise_id=int(grid.get("enterprise_id", defaults.enterprise_id)),
        delivery_area_code=str(area.get("code", defaults.delivery_area_code)),
        delivery_area_code_type=CodeType(
            area.get("code_type", defaults.delivery_area_code_type)
        ),
        latitude=float(location.get("latitude", defaults.latitude)),
        longitude=float(location.get("longitude", defaults.longitude)),
        country_code=str(location.get("country_code", defaults.country_code)),
        status=MicrogridStatus(grid.get("status", defaults.status)),
        created=defaults.created if created is None else created,
        components={
            int(component_id): ComponentAssets(
                name=row.get("name"),
                manufacturer=row.get("manufacturer"),
                model=row.get("model"),
                operational_start=_time(row.get("operational_start")),
                operational_end=_time(row.get("operational_end")),
            )
            for component_id, row in data.get("components", {}).items()
        },
    )


def _time(text: str | None) -> datetime | None:
    """An ISO 8601 time with its offset (UTC when it has none), or `None`."""
    if text is None:
        return None
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
