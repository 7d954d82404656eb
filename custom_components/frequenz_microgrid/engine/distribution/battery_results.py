"""From a battery distribution and what the inverters answered to a `Result`.

The distributor sends one command per inverter (skipping a repeated 0 W) and
learns which ones failed (timeout, API error, rejection). This describes the
outcome the SDK's way: power and battery ids that succeeded, failed, and the
excess that never had a place (spec §2).
"""

from __future__ import annotations

from collections.abc import Collection

from ..results import Error, OutOfBounds, PartialFailure, Request, Result, Success
from .battery import BatteryDistribution, BatteryRefusal


def battery_result(
    request: Request,
    outcome: BatteryDistribution | BatteryRefusal,
    *,
    failed_inverters: Collection[int] = (),
) -> Result:
    """Describe what became of a request, the way the SDK reports it.

    Args:
        request: The request that was distributed.
        outcome: What `distribute_battery_power` returned for it.
        failed_inverters: The inverters whose command failed (the ones that were
            not sent a command count as succeeded).

    Returns:
        `OutOfBounds` or `Error` for a refusal; otherwise `Success`, or
        `PartialFailure` when a command failed. The succeeded power is the request
        minus the excess (unreachable power counts as placed, as in the SDK) minus
        the failed power; components are battery ids.
    """
    if isinstance(outcome, BatteryRefusal):
        if outcome.bounds is not None:
            return OutOfBounds(request=request, bounds=outcome.bounds)
        return Error(request=request, msg=outcome.msg)

    failed = set(failed_inverters)
    all_batteries: set[int] = set()
    failed_batteries: set[int] = set()
    failed_power = 0.0
    for pair in outcome.pairs:
        all_batteries.update(pair.battery_ids)
        if pair.inverter_id in failed:
            failed_batteries.update(pair.battery_ids)
            failed_power += outcome.setpoints[pair.inverter_id]
    placed_power = outcome.request_power - outcome.excess_power
    setpoints = dict(outcome.setpoints)
    if not failed_batteries:
        return Success(
            request=request,
            succeeded_power=placed_power,
            succeeded_components=frozenset(all_batteries),
            excess_power=outcome.excess_power,
            setpoints=setpoints,
        )
    return PartialFailure(
        request=request,
        succeeded_power=placed_power - failed_power,
        succeeded_components=frozenset(all_batteries - failed_batteries),
        excess_power=outcome.excess_power,
        failed_power=failed_power,
        failed_components=frozenset(failed_batteries),
        setpoints=setpoints,
    )
