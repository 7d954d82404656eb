"""Which lines an inverter's power is on, read from its own phase currents.

The grid fuse is per line. A three-phase inverter spreads its power evenly over
L1–L3; a single-phase one (common in homes) puts all of it on one line, three
times the current there. The Microgrid API does not say which an inverter is,
but its phase currents show it while it carries power.

A reading teaches something only when the currents belong to the power: at
least `LEARN_FROM_A` in all, and an active power of at least half what those
currents would carry at the nominal voltage (a few amperes of standby or
reactive current at 0 W say nothing about where power goes). What is kept is,
per line, the least and the most share ever seen: a single-phase inverter stays
exactly (1, 0, 0), a three-phase one close to a third each, and one odd reading
(a line read as 0 A once) widens the range instead of dropping the line.
Until an inverter has carried power, its shares are unknown: anything from none
to all of its power on each line. One that sends power but no phase currents at
all is taken as three-phase and symmetric, as the Frequenz SDK takes every
inverter; otherwise it would be held to a third of its room for good.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
import math

from .. import members
from ..pools import CURRENT_PHASES
from ..telemetry import TelemetryStore

type Lines = tuple[float, float, float]
"""One value per line: L1, L2, L3."""

LEARN_FROM_A = 1.0
"""The phase currents (|L1| + |L2| + |L3|) a reading must carry to teach shares."""

POWER_MATCH = 0.5
"""The least part of `V · Σ|I|` the active power must be for a reading to teach."""


@dataclass(frozen=True, slots=True)
class PhaseShares:
    """The least and the most of an inverter's power seen on each line (fractions)."""

    least: Lines
    most: Lines

    def widened(self, fractions: Lines) -> PhaseShares:
        """These shares with one more reading's fractions taken in."""
        least = [min(a, b) for a, b in zip(self.least, fractions, strict=True)]
        most = [max(a, b) for a, b in zip(self.most, fractions, strict=True)]
        return PhaseShares((least[0], least[1], least[2]), (most[0], most[1], most[2]))


UNKNOWN = PhaseShares((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
"""Never seen carrying power: any of it may be on any line."""
SYMMETRIC = PhaseShares((1 / 3, 1 / 3, 1 / 3), (1 / 3, 1 / 3, 1 / 3))
"""A three-phase inverter taken as balanced."""


class PhaseShareBook:
    """Learns and remembers the phase shares of the inverters it is asked about."""

    def __init__(self, store: TelemetryStore, voltage_v: float) -> None:
        """Read readings from `store`; currents carry power at `voltage_v`."""
        self._store = store
        self._voltage_v = voltage_v
        self._learned: dict[int, PhaseShares] = {}

    def keep_only(self, inverter_ids: Iterable[int]) -> None:
        """Forget the inverters not among these (a changed topology)."""
        kept = frozenset(inverter_ids)
        self._learned = {i: s for i, s in self._learned.items() if i in kept}

    def of(self, inverter_id: int) -> PhaseShares:
        """The inverter's shares, with its latest reading taken in if it teaches."""
        store = self._store
        currents = [store.value(inverter_id, metric) for metric in CURRENT_PHASES]
        power = store.value(inverter_id, members.AC_POWER)
        known = self._learned.get(inverter_id)
        if power is not None and all(current is not None for current in currents):
            magnitudes = [abs(current or 0.0) for current in currents]
            total = math.fsum(magnitudes)
            if (
                total >= LEARN_FROM_A
                and abs(power) >= POWER_MATCH * self._voltage_v * total
            ):
                l1, l2, l3 = (magnitude / total for magnitude in magnitudes)
                fractions = (l1, l2, l3)
                known = (
                    PhaseShares(fractions, fractions)
                    if known is None
                    else known.widened(fractions)
                )
                self._learned[inverter_id] = known
        if known is not None:
            return known
        if all(store.sends(inverter_id, metric) is False for metric in CURRENT_PHASES):
            return SYMMETRIC
        return UNKNOWN
