"""Catch Home Assistant reporting that this integration calls something deprecated.

Home Assistant's `frame` helper logs "Detected that custom integration
'frequenz_microgrid' …" (a deprecated parameter, a deprecated helper, a call from
the wrong thread) and keeps going: in production it is only a log line, until the
release that removes the old way breaks the integration. The integration tests turn
every such report into a failure.
"""

from __future__ import annotations

import logging

from custom_components.frequenz_microgrid.const import DOMAIN

FRAME_LOGGER = "homeassistant.helpers.frame"
"""The logger Home Assistant's `frame` helper reports usage problems on."""


class DeprecationWatch(logging.Handler):
    """Collects the `frame` helper's reports about this integration."""

    def __init__(self) -> None:
        """Collect nothing yet."""
        super().__init__(level=logging.DEBUG)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep a report if it names this integration."""
        message = record.getMessage()
        if f"integration '{DOMAIN}'" in message:
            self.reports.append(message)

    def __enter__(self) -> DeprecationWatch:
        """Start listening on the `frame` helper's logger."""
        logging.getLogger(FRAME_LOGGER).addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        """Stop listening."""
        logging.getLogger(FRAME_LOGGER).removeHandler(self)
