"""Which detail metrics to stream: those of the sensors the user enabled.

Phase powers, reactive power, frequency and DC values cost decoding and storing
on every message of every component, yet only (disabled by default) sensors show
them. Their sensors exist for every component whose category fits; enabling or
disabling one makes Home Assistant reload the entry, and set-up reads the entity
registry here and hands the engine, per component, the metrics of its enabled
detail sensors (`MicrogridEngine`'s `detail_metrics`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from frequenz.client.microgrid.metrics import Metric
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from .devices import has_device
from .engine.graph import Topology
from .identity import entity_unique_id, entry_key_of
from .sensor_descriptions import COMPONENT_SENSORS


def enabled_detail_metrics(
    hass: HomeAssistant, entry: ConfigEntry[Any], topology: Topology
) -> dict[int, frozenset[Metric]]:
    """Return, per component id, the on-demand metrics of its enabled sensors."""
    registry = er.async_get(hass)
    enabled = {
        registry_entry.unique_id
        for registry_entry in er.async_entries_for_config_entry(
            registry, entry.entry_id
        )
        if registry_entry.domain == Platform.SENSOR
        and registry_entry.disabled_by is None
    }
    if not enabled:
        return {}
    entry_key = entry_key_of(entry)
    wanted: defaultdict[int, set[Metric]] = defaultdict(set)
    for component in topology.components.values():
        if not has_device(component):
            continue
        for description in COMPONENT_SENSORS:
            metric = description.on_demand_metric
            if (
                metric is not None
                and component.category in description.categories
                and entity_unique_id(entry_key, description.key, component) in enabled
            ):
                wanted[int(component.id)].add(metric)
    return {component_id: frozenset(m) for component_id, m in wanted.items()}
