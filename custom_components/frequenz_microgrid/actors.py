"""Who proposes power: Home Assistant's own actor per pool, and the actions' actors.

Home Assistant steers every pool as one actor of its own (the number entities, the
release buttons): a fixed source id per pool at the entry's default priority, so a
number and its release button address the same proposal. Actions name their actor
(`action:<actor>`): the prefixes keep the two apart, so an automation can never
replace a number's proposal by picking the same name, nor the other way round.
"""

from __future__ import annotations

from typing import Any, Final

from homeassistant.config_entries import ConfigEntry

from .const import CONF_DEFAULT_PRIORITY, DEFAULT_PRIORITY, DOMAIN
from .engine.control import Pool

HA_ACTOR_PREFIX: Final = "home_assistant"
ACTION_ACTOR_PREFIX: Final = "action"


def ha_source_id(pool: Pool) -> str:
    """Return the source id of Home Assistant's own proposals for `pool`."""
    return f"{HA_ACTOR_PREFIX}:{pool.value}"


def action_source_id(actor: str) -> str:
    """Return the source id of an action's `actor`."""
    return f"{ACTION_ACTOR_PREFIX}:{actor}"


def ha_priority(entry: ConfigEntry[Any]) -> int:
    """Return the entry's default priority (Home Assistant's own, and actions')."""
    return int(entry.options.get(CONF_DEFAULT_PRIORITY, DEFAULT_PRIORITY))


def release_signal(entry_id: str, pool: Pool) -> str:
    """Return the dispatcher signal a release button sends to its pool's number."""
    return f"{DOMAIN}_{entry_id}_{pool.value}_released"
