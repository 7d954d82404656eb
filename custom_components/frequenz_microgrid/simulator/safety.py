"""The simulator's own rule for a safe setpoint, on the bounds as it advertises them.

Deliberately independent of the integration's code: if the integration's idea of
"allowed" were wrong, a shared rule would hide it on both sides. Here the rule is
read straight off the API's form — a list of allowed ranges.
"""

from __future__ import annotations

from collections.abc import Iterable
import math
import struct

TOLERANCE_W = 1e-6
"""Rounding a setpoint may carry beyond a range's edge (W)."""


def setpoint_allowed(power_w: float, ranges: Iterable[tuple[float, float]]) -> bool:
    """Whether `power_w` is 0 W (always allowed) or inside one allowed range."""
    if power_w == 0.0:
        return True
    if not math.isfinite(power_w):
        return False
    return any(
        lower - TOLERANCE_W <= power_w <= upper + TOLERANCE_W for lower, upper in ranges
    )


def as_advertised(ranges: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The ranges as telemetry carries them: every edge a 32-bit float.

    The API's bounds (and its setpoints) are protobuf `float`s. A client can only
    know, and only send, such values: a setpoint exactly on an advertised edge is
    what a careful client sends when it clamps to the bounds, even where the
    rounding put that edge a few hundredths of a milliwatt beyond the exact one.
    """
    return [(_float32(lower), _float32(upper)) for lower, upper in ranges]


def _float32(value: float) -> float:
    if not math.isfinite(value):
        return value
    try:
        return float(struct.unpack("f", struct.pack("f", value))[0])
    except OverflowError:  # beyond float32: the wire carries an infinity
        return math.copysign(math.inf, value)
