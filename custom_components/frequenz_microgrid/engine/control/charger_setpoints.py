"""The setpoints recently sent to each EV charger, with their send and reply times.

The fuse estimate (`distribution.ev_fuse`) needs to know which setpoints a
charger may have followed between two sample times, and which ones its newest
reading does not reflect yet. This log keeps just that, for as long as a
reading could still be paired with them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
import dataclasses
import math

from ..distribution.ev_fuse import PhaseCurrents, SentSetpoint, unconfirmed


class ChargerSetpointLog:
    """Per charger, its recent setpoints in sending order."""

    def __init__(self) -> None:
        """Start with no setpoints (a charger without any counts at its reading)."""
        self._sent: dict[int, list[SentSetpoint]] = {}

    def of(self, charger_id: int) -> Sequence[SentSetpoint]:
        """The charger's setpoints that may still matter, oldest first."""
        return self._sent.get(charger_id, [])

    def sending(self, setpoints: Mapping[int, PhaseCurrents], at: float) -> None:
        """Setpoints (their per-phase currents) are being sent from `at` on."""
        for charger_id, currents in setpoints.items():
            self._sent.setdefault(charger_id, []).append(SentSetpoint(currents, at))

    def replied(
        self, charger_ids: Collection[int], at: float, failed: Collection[int]
    ) -> None:
        """The sending of the chargers' setpoints in flight ended at `at`.

        A failed one never reached its charger: it is forgotten, so the one
        before stays in force. One whose sending was cancelled counts as arrived
        (it may have): the next one supersedes it either way.
        """
        for charger_id in charger_ids:
            log = self._sent.get(charger_id, [])
            for index, setpoint in enumerate(log):
                if setpoint.acked_at == math.inf:
                    log[index] = dataclasses.replace(setpoint, acked_at=at)
            if charger_id in failed and log:
                log.pop()

    def forget_before(self, at: float) -> None:
        """Drop setpoints superseded (the next one surely arrived) before `at`."""
        for log in self._sent.values():
            while len(log) > 1 and log[1].acked_at < at:
                log.pop(0)

    def confirmed_limit_a(
        self, charger_id: int, sampled_at: float | None
    ) -> float | None:
        """The current its standing setpoint allows, if a reading confirms it.

        `None` when a reading sampled at `sampled_at` may not reflect the newest
        setpoint yet (or there is no reading); inf when nothing was sent.
        """
        log = self._sent.get(charger_id)
        if not log:
            return math.inf
        if sampled_at is None or unconfirmed(log, sampled_at):
            return None
        return max(log[-1].currents_a)
