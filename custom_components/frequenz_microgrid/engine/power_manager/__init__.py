"""Power manager (spec §1): arbitration between the actors that steer a pool.

Actors send `Proposal`s (priority, preferred power, bounds); a `PowerManager` per
pool kind combines them with `Matryoshka` (EV chargers, PV) or `ShiftingMatryoshka`
(batteries) into one target power per component set, and reports per priority what
is still available.
"""

from .algorithms import Algorithm, Matryoshka, ShiftingMatryoshka
from .manager import (
    MAX_PROPOSAL_AGE,
    DefaultPower,
    PowerManager,
    Report,
)
from .proposal import Proposal
from .refusal import ProposalRefusedError, RefusalReason

__all__ = [
    "MAX_PROPOSAL_AGE",
    "Algorithm",
    "DefaultPower",
    "Matryoshka",
    "PowerManager",
    "Proposal",
    "ProposalRefusedError",
    "RefusalReason",
    "Report",
    "ShiftingMatryoshka",
]
