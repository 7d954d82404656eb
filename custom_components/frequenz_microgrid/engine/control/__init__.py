"""Steering: proposals → targets → setpoints for batteries, EV chargers and PV.

`MicrogridController` is the one object the Home Assistant side talks to; the
modules behind it each steer one pool (`battery_pool`, `ev_pool`, `pv_pool`) from
the power manager's targets, the health tracker and the latest telemetry.
"""

from .controller import MicrogridController
from .status import (
    ComponentSetStatus,
    ControllerStatus,
    Pool,
    PoolStatus,
    ProposalOutcome,
    ProposalStatus,
)

__all__ = [
    "ComponentSetStatus",
    "ControllerStatus",
    "MicrogridController",
    "Pool",
    "PoolStatus",
    "ProposalOutcome",
    "ProposalStatus",
]
