"""How a microgrid and its entities are named and told apart.

The microgrid's numeric id is the entry's unique id (one entry per microgrid), its
serial number on the hub device and the prefix of every unique id, so ids stay
stable when the same microgrid is added again. Each of these strings is made here
and nowhere else.
"""

from __future__ import annotations

from typing import Any

from frequenz.client.microgrid import MicrogridInfo
from frequenz.client.microgrid.component import Component
from homeassistant.config_entries import ConfigEntry


def microgrid_id(info: MicrogridInfo) -> str:
    """Return the microgrid's id as text: a real entry's unique id, the serial."""
    return str(int(info.id))


def microgrid_title(info: MicrogridInfo) -> str:
    """Return the microgrid's name, or "Microgrid <id>" if it has none.

    The entry title and the hub device's name.
    """
    return info.name or f"Microgrid {int(info.id)}"


def entry_key_of(entry: ConfigEntry[Any]) -> str:
    """Return the prefix of the entry's unique ids and device identifiers.

    The microgrid id (the entry's unique id) keeps ids stable across re-adding the
    same microgrid; the entry id stands in for entries that have none.
    """
    return entry.unique_id or entry.entry_id


def entity_unique_id(entry_key: str, key: str, component: Component | None) -> str:
    """Return an entity's unique id: `{entry}_{key}`, `{entry}_{component}_{key}`."""
    if component is None:
        return f"{entry_key}_{key}"
    return f"{entry_key}_{int(component.id)}_{key}"
