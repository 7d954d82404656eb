"""Enum members read on hot paths, looked up once.

Every attribute of a `frequenz.core` enum class (`Metric.DC_POWER`,
`ComponentStateCode.ERROR`) goes through a Python-level metaclass hook; code that
runs per component on every tick or proposal uses these constants instead.
"""

from __future__ import annotations

from typing import Final

from frequenz.client.microgrid.component import ComponentErrorCode, ComponentStateCode
from frequenz.client.microgrid.metrics import Metric

AC_POWER: Final = Metric.AC_POWER_ACTIVE
DC_POWER: Final = Metric.DC_POWER
SOC: Final = Metric.BATTERY_SOC_PCT
CAPACITY: Final = Metric.BATTERY_CAPACITY
ENERGY_CONSUMED: Final = Metric.AC_ENERGY_ACTIVE_CONSUMED
ENERGY_DELIVERED: Final = Metric.AC_ENERGY_ACTIVE_DELIVERED

ERROR_STATE: Final = ComponentStateCode.ERROR
RELAY_CLOSED: Final = ComponentStateCode.RELAY_CLOSED
UNAUTHORIZED: Final = ComponentErrorCode.UNAUTHORIZED
