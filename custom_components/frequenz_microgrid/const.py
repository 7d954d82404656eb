"""Constants of the Frequenz Microgrid integration."""

from typing import Final

DOMAIN: Final = "frequenz_microgrid"
