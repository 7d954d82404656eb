"""Constants of the Frequenz Microgrid integration."""

import logging
from typing import Final

DOMAIN: Final = "frequenz_microgrid"
LOGGER: Final = logging.getLogger(__package__)

# Config entry data. A real microgrid is reached through a URL with an optional API
# key and signing secret; a demo entry instead names a built-in simulator scenario.
CONF_URL: Final = "url"
CONF_API_KEY: Final = "api_key"
CONF_SIGNING_SECRET: Final = "signing_secret"
CONF_DEMO: Final = "demo"
CONF_SCENARIO: Final = "scenario"

DEMO_SCENARIOS: Final = ("home", "depot")
"""Scenarios of the built-in simulator offered by the demo step."""

DEMO_UNIQUE_ID_PREFIX: Final = "demo_"
"""Demo entries are unique per scenario (`demo_home`); real microgrid ids are digits,
so the two can never collide."""

DEMO_HOST: Final = "127.0.0.1"
"""A demo simulator only listens on loopback: it is never reachable from outside."""

# Options.
CONF_FRESHNESS_S: Final = "freshness_s"
"""Seconds after which a component's data counts as stale (entities go unavailable)."""
DEFAULT_FRESHNESS_S: Final = 10.0
MIN_FRESHNESS_S: Final = 2.0
MAX_FRESHNESS_S: Final = 300.0

CONF_DEFAULT_PRIORITY: Final = "default_priority"
"""Priority of the actions' power proposals when the caller gives none."""
DEFAULT_PRIORITY: Final = 0
MIN_PRIORITY: Final = -100
MAX_PRIORITY: Final = 100

CONF_REAPPLY_SETPOINTS: Final = "reapply_setpoints"
"""Re-send setpoints restored after a Home Assistant restart (off: start neutral)."""
DEFAULT_REAPPLY_SETPOINTS: Final = False

CONF_RESERVATION_GRACE_MIN: Final = "reservation_grace_min"
"""Minutes after its start a reservation waits for its car before it is released."""
DEFAULT_RESERVATION_GRACE_MIN: Final = 15.0
MIN_RESERVATION_GRACE_MIN: Final = 0.0
MAX_RESERVATION_GRACE_MIN: Final = 240.0

CONF_PRICE_ENTITY: Final = "price_entity"
"""Optional: a sensor whose attributes forecast the energy price (charging plan)."""
CONF_PV_FORECAST_ENTITY: Final = "pv_forecast_entity"
"""Optional: a sensor whose attributes forecast the PV production (charging plan)."""
FORECAST_SETTINGS: Final = (CONF_PRICE_ENTITY, CONF_PV_FORECAST_ENTITY)
"""The options naming the charging plan's forecast entities (optional, no default)."""

CONNECT_TIMEOUT_S: Final = 15.0
"""How long validation and setup wait for the microgrid to answer.

The client's own call timeout is 60 s, far too long for a form the user is waiting on.
"""

# The optional Assets API (the platform's inventory), kept in the entry's options:
# its URL, API key and signing secret. A demo entry reads its simulator's instead.
CONF_ASSETS_URL: Final = "assets_url"
CONF_ASSETS_API_KEY: Final = "assets_api_key"
CONF_ASSETS_SIGNING_SECRET: Final = "assets_signing_secret"
ASSETS_SETTINGS: Final = (
    CONF_ASSETS_URL,
    CONF_ASSETS_API_KEY,
    CONF_ASSETS_SIGNING_SECRET,
)

ASSETS_REFRESH_S: Final = 900.0
"""How often the inventory is read again (names, lifetimes that begin or end)."""
ASSETS_RETRY_MIN_S: Final = 30.0
"""First retry after a failed Assets API read; each failure doubles it…"""
ASSETS_RETRY_MAX_S: Final = 1800.0
"""…up to this."""
ASSETS_ISSUE_AFTER_S: Final = 600.0
"""A passing outage of the Assets API raises its repair issue only after this.

With an inventory in use nothing is missing for a while (names and lifetimes
change rarely); a wrong key or microgrid, or no inventory yet, raise it at once.
"""
