"""Charging sessions at depot scale: accounting cost, storage size, report speed.

Run from the repository root: ``scripts/python -m benchmarks.hub_sessions``.
Prints one line::

    hub_sessions chargers=100 sessions=<kept+open> update_ms_p50=… update_ms_p99=…
    store_kb=… store_prep_ms=… report_ms=… xlsx_ms=…

A simulated day of 100 chargers, a snapshot every 10 s: each charger is plugged in
for two hours out of every three (staggered), at 11 kW with its energy counter,
under 50 kW of PV and a 500 kW grid import. `update` is the session tracker's work
per snapshot (what runs in Home Assistant's event loop every second), `store` what
the recorder writes (the kept 500 ended sessions and the open ones, as JSON),
`report` a day's cluster report at 15-minute steps and `xlsx` its four sheets.
Times are this thread's CPU time with the garbage collector off while timing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
import gc
import json
import time

from frequenz.client.microgrid.component import ComponentStateCode

from custom_components.frequenz_microgrid.engine.hub.export import (
    report_sheets,
    xlsx_bytes,
)
from custom_components.frequenz_microgrid.engine.hub.reports import (
    build_cluster_report,
)
from custom_components.frequenz_microgrid.engine.hub.sessions import SessionTracker
from custom_components.frequenz_microgrid.engine.members import (
    AC_POWER,
    ENERGY_CONSUMED,
)
from custom_components.frequenz_microgrid.engine.snapshot import (
    BatteryPoolSnapshot,
    ComponentSnapshot,
    MicrogridSnapshot,
)

CHARGERS = 100
STEP_S = 10
DAY = timedelta(days=1)
START = datetime(2026, 12, 4, tzinfo=UTC)
PLUGGED = frozenset(
    {
        ComponentStateCode.EV_CHARGING_CABLE_LOCKED_AT_EV,
        ComponentStateCode.EV_CHARGING_CABLE_LOCKED_AT_STATION,
    }
)
UNPLUGGED = frozenset({ComponentStateCode.EV_CHARGING_CABLE_UNPLUGGED})


def _snapshot(second: int, counters: dict[int, float]) -> MicrogridSnapshot:
    components = {}
    for index, charger_id in enumerate(counters):
        plugged = (second // 3600 + index) % 3 != 0
        power = 11_000.0 if plugged else 0.0
        counters[charger_id] += power * STEP_S / 3600.0
        components[charger_id] = ComponentSnapshot(
            component_id=charger_id,
            metrics={AC_POWER: power, ENERGY_CONSUMED: counters[charger_id]},
            states=PLUGGED if plugged else UNPLUGGED,
            fresh=True,
        )
    return MicrogridSnapshot(
        taken_at=START + timedelta(seconds=second),
        reachable=True,
        grid_power_w=500_000.0,
        pv_power_w=-50_000.0,
        battery=BatteryPoolSnapshot(power_w=0.0),
        components=components,
    )


def _cpu_ms(action: Callable[[], object]) -> float:
    begin = time.thread_time()
    action()
    return (time.thread_time() - begin) * 1000.0


def main() -> None:
    """Run the day, then store, report and export it; print one line."""
    charger_ids = list(range(100, 100 + CHARGERS))
    tracker = SessionTracker(charger_ids)
    counters = dict.fromkeys(charger_ids, 0.0)
    update_ms: list[float] = []
    gc.disable()
    try:
        for second in range(0, int(DAY.total_seconds()), STEP_S):
            snapshot = _snapshot(second, counters)
            update_ms.append(_cpu_ms(partial(tracker.update, snapshot)))
        stored: list[str] = []
        store_ms = _cpu_ms(lambda: stored.append(json.dumps(tracker.as_stored())))
        reports = []
        report_ms = _cpu_ms(
            lambda: reports.append(
                build_cluster_report(
                    tracker.sessions(),
                    charger_ids,
                    START,
                    START + DAY,
                    timedelta(minutes=15),
                    START + DAY,
                )
            )
        )
        xlsx_ms = _cpu_ms(lambda: xlsx_bytes(report_sheets(reports[0])))
    finally:
        gc.enable()
    update_ms.sort()
    print(
        f"hub_sessions chargers={CHARGERS} "
        f"sessions={len(tracker.ended) + len(tracker.open)} "
        f"update_ms_p50={update_ms[len(update_ms) // 2]:.3f} "
        f"update_ms_p99={update_ms[int(len(update_ms) * 0.99)]:.3f} "
        f"store_kb={len(stored[0]) / 1024:.0f} store_prep_ms={store_ms:.1f} "
        f"report_ms={report_ms:.0f} xlsx_ms={xlsx_ms:.0f}"
    )


if __name__ == "__main__":
    main()
