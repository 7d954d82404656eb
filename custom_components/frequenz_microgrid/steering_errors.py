"""The errors a steering request raises, for actions and number entities alike.

A proposal stands once the controller took it; what the microgrid did with its
setpoints is reported back. When nothing at all took effect the caller must learn
it, so this error is raised after the fact, translated.
"""

from __future__ import annotations

from homeassistant.exceptions import HomeAssistantError

from .const import DOMAIN
from .engine.results import PartialFailure, Result


def raise_if_nothing_accepted(result: Result | None) -> None:
    """Raise when every setpoint of a distribution failed at the microgrid.

    The proposal stays standing (it is retried as components recover), but the
    caller learns that nothing took effect now. A partial failure is no error.
    """
    if isinstance(result, PartialFailure) and not result.succeeded_components:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="setpoints_failed",
            translation_placeholders={
                "components": ", ".join(
                    str(c) for c in sorted(result.failed_components)
                ),
            },
        )
