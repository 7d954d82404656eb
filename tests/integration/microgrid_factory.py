"""Hand-built microgrids for entity tests that don't need the simulator.

A small "home" topology built with the engine's own `build_topology` (so pools and
formulas are real), snapshots with chosen values, and a way to run the real sensor
and binary-sensor platforms against a push coordinator the test feeds by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest.mock import PropertyMock, patch

from freezegun.api import FrozenDateTimeFactory
from frequenz.client.common.microgrid import EnterpriseId, MicrogridId
from frequenz.client.microgrid import (
    DeliveryArea,
    EnergyMarketCodeType,
    Location,
    MicrogridApiClient,
    MicrogridInfo,
    MicrogridStatus,
)
from frequenz.client.microgrid.component import (
    AcEvCharger,
    BatteryInverter,
    Component,
    ComponentStateCode,
    GridConnectionPoint,
    LiIonBattery,
    Meter,
    SolarInverter,
)
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockEntityPlatform,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion
from syrupy.location import PyTestLocation

from custom_components.frequenz_microgrid.const import DOMAIN
from custom_components.frequenz_microgrid.coordinator import MicrogridCoordinator
from custom_components.frequenz_microgrid.devices import async_register_devices
from custom_components.frequenz_microgrid.engine.graph import Topology, build_topology
from custom_components.frequenz_microgrid.engine.microgrid import MicrogridEngine
from custom_components.frequenz_microgrid.engine.snapshot import (
    ComponentSnapshot,
    MicrogridSnapshot,
)
from custom_components.frequenz_microgrid.repairs import RepairTracker
from custom_components.frequenz_microgrid.runtime import MicrogridRuntimeData
from custom_components.frequenz_microgrid.status_feed import ControllerStatusFeed
from tests.engine.topologies import component, connections

MICROGRID_ID = 7
ENTRY_KEY = str(MICROGRID_ID)
GRID, GRID_METER, BAT_INV, BATTERY, PV_INV, EV_CHARGER, HOUSE_METER = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
)
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _component(kind: type[Component], cid: int, **kw: Any) -> Component:
    return component(kind, cid, MicrogridId(MICROGRID_ID), **kw)


def home_components() -> list[Component]:
    """Grid → meter → battery inverter + battery, PV inverter, EV charger, house."""
    return [
        _component(GridConnectionPoint, GRID, rated_fuse_current=63),
        _component(Meter, GRID_METER, name="Grid meter"),
        _component(BatteryInverter, BAT_INV, manufacturer="Acme", model_name="BI-5000"),
        _component(LiIonBattery, BATTERY, manufacturer="Acme", model_name="B-10"),
        _component(SolarInverter, PV_INV),
        _component(AcEvCharger, EV_CHARGER),
        _component(Meter, HOUSE_METER),
    ]


HOME_WIRING = (
    (GRID, GRID_METER),
    (GRID_METER, BAT_INV),
    (BAT_INV, BATTERY),
    (GRID_METER, PV_INV),
    (GRID_METER, EV_CHARGER),
    (GRID_METER, HOUSE_METER),
)


def home_info() -> MicrogridInfo:
    """Metadata of the hand-built microgrid."""
    return MicrogridInfo(
        id=MicrogridId(MICROGRID_ID),
        enterprise_id=EnterpriseId(1),
        name="Home",
        delivery_area=DeliveryArea(
            code="10YDE-EON------1", code_type=EnergyMarketCodeType.EUROPE_EIC
        ),
        location=Location(latitude=52.52, longitude=13.40, country_code="DE"),
        status=MicrogridStatus.ACTIVE,
        create_timestamp=datetime(2024, 1, 1, tzinfo=UTC),
    )


def home_topology(
    components: Iterable[Component] | None = None,
    wiring: Iterable[tuple[int, int]] = HOME_WIRING,
) -> Topology:
    """Build the topology of the hand-built home (or of a variant of it)."""
    return build_topology(
        home_info(),
        home_components() if components is None else components,
        connections(wiring),
    )


def snapshot_at(seconds: float = 0.0, **values: Any) -> MicrogridSnapshot:
    """A reachable snapshot taken `seconds` after T0 with the given values."""
    values.setdefault("reachable", True)
    return MicrogridSnapshot(taken_at=T0 + timedelta(seconds=seconds), **values)


def fresh_component(
    cid: int, *states: ComponentStateCode, **fields: Any
) -> ComponentSnapshot:
    """A fresh snapshot of component `cid` in `states`, with the other fields given."""
    return ComponentSnapshot(
        component_id=cid, fresh=True, states=frozenset(states), **fields
    )


async def let_a_second_pass(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """Move the frozen clock on by a second, so rate-limited state writes land."""
    freezer.tick(timedelta(seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


UNUSED_URL = "grpc://127.0.0.1:1"
"""The address of a hand-fed entry's client, which never connects."""


class HandFedPlatforms:
    """Runs real platforms' `async_setup_entry` against hand-fed coordinators.

    The entry's runtime data is wired as a loaded entry's, except that its engine
    never starts (its client never connects): the test pushes the snapshots with
    `async_set_updated_data`, and the controller has no telemetry (its components
    count as not working). `close()` removes the entities again (as unloading
    would), so no trailing-write timer outlives a test.
    """

    def __init__(self, hass: HomeAssistant) -> None:
        """Start with no platforms."""
        self.hass = hass
        self.platforms: list[MockEntityPlatform] = []

    def entry(self, unique_id: str = ENTRY_KEY) -> MockConfigEntry:
        """Add a config entry for the hand-built microgrid."""
        entry = MockConfigEntry(domain=DOMAIN, unique_id=unique_id, title="Home")
        entry.add_to_hass(self.hass)
        return entry

    async def setup(
        self,
        platform_module: ModuleType,
        topology: Topology,
        first: MicrogridSnapshot | None,
        entry: MockConfigEntry | None = None,
    ) -> tuple[MockConfigEntry, MicrogridCoordinator]:
        """Set up one platform of `entry` (a new one by default)."""
        entry = entry or self.entry()
        coordinator = MicrogridCoordinator(self.hass, entry)
        if first is not None:
            coordinator.async_set_updated_data(first)
        client = MicrogridApiClient(UNUSED_URL, connect=False)
        engine = MicrogridEngine(
            client, topology, on_snapshot=coordinator.async_set_updated_data
        )
        entry.runtime_data = MicrogridRuntimeData(
            client=client,
            engine=engine,
            coordinator=coordinator,
            status_feed=ControllerStatusFeed(engine.controller, coordinator),
            repairs=RepairTracker(self.hass, entry.entry_id, entry.title, topology),
            devices=async_register_devices(self.hass, entry, topology),
        )
        platform = MockEntityPlatform(
            self.hass,
            domain=platform_module.__name__.rsplit(".", 1)[-1],
            platform_name=DOMAIN,
            platform=platform_module,
        )
        self.platforms.append(platform)
        assert await platform.async_setup_entry(entry)
        await self.hass.async_block_till_done()
        return entry, coordinator

    async def close(self) -> None:
        """Remove every entity the platforms added."""
        for platform in self.platforms:
            await platform.async_reset()
        self.platforms.clear()


class EntitySnapshotExtension(HomeAssistantSnapshotExtension):  # type: ignore[misc]
    """Home Assistant's snapshot format, stored under `snapshots/` next to the test."""

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        """Return the directory of the `.ambr` files."""
        return str(Path(test_location.filepath).parent / "snapshots")


def mask_numbers(*, data: Any, path: Any) -> Any:
    """Replace numeric states (they follow the simulated clock) by a placeholder.

    Text states (enum options, delivery area, "unavailable") stay as they are; the
    numbers are checked against the physics in their own tests.
    """
    if isinstance(data, str) and path and path[-1][0] == "state":
        try:
            float(data)
        except ValueError:
            return data
        return "<number>"
    return data


def entity_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """The `snapshot` fixture with our extension and number masking."""
    return snapshot.with_defaults(
        matcher=mask_numbers, extension_class=EntitySnapshotExtension
    )


@contextmanager
def all_entities_enabled_by_default() -> Iterator[None]:
    """Create every entity enabled, so snapshots cover the disabled-by-default ones."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield
