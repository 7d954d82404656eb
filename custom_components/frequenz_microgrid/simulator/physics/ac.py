"""Three-phase AC quantities: how power splits over phases, what current it draws."""

from __future__ import annotations

from dataclasses import dataclass

NOMINAL_VOLTAGE_V = 230.0
"""Phase-to-neutral voltage of the simulated low-voltage grid."""

NOMINAL_FREQUENCY_HZ = 50.0
"""Grid frequency reported by every AC component."""


@dataclass(frozen=True, slots=True)
class PhasePowers:
    """Active power per phase (W, passive sign convention)."""

    l1: float = 0.0
    l2: float = 0.0
    l3: float = 0.0

    @classmethod
    def balanced(cls, total_w: float) -> PhasePowers:
        """A three-phase device that spreads `total_w` evenly."""
        share = total_w / 3.0
        return cls(share, share, share)

    @classmethod
    def split(
        cls, total_w: float, fractions: tuple[float, float, float]
    ) -> PhasePowers:
        """Spread `total_w` over the phases with the given fractions (summing to 1)."""
        return cls(
            total_w * fractions[0], total_w * fractions[1], total_w * fractions[2]
        )

    @property
    def total(self) -> float:
        """Sum over the three phases."""
        return self.l1 + self.l2 + self.l3

    def as_tuple(self) -> tuple[float, float, float]:
        """The three phase values in L1, L2, L3 order."""
        return (self.l1, self.l2, self.l3)

    def __add__(self, other: PhasePowers) -> PhasePowers:
        """Phase-wise sum (devices in parallel behind one meter)."""
        return PhasePowers(self.l1 + other.l1, self.l2 + other.l2, self.l3 + other.l3)

    def __sub__(self, other: PhasePowers) -> PhasePowers:
        """Phase-wise difference (how a device's power changed)."""
        return PhasePowers(self.l1 - other.l1, self.l2 - other.l2, self.l3 - other.l3)

    def currents(self, voltage_v: float = NOMINAL_VOLTAGE_V) -> tuple[float, ...]:
        """Per-phase current (A) at `voltage_v`, signed like the power (I = P / U)."""
        return tuple(p / voltage_v for p in self.as_tuple())
