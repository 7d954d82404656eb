"""The telemetry decode benchmark on a tiny microgrid, so it cannot rot."""

from __future__ import annotations

import argparse
import re

from benchmarks import telemetry_decode

LINE = re.compile(
    r"telemetry_decode metrics=(\w+) kind=(\w+) values=(\d+\.\d) bytes=(\d+) "
    r"us_per_message=(\d+\.\d\d)( cpu_pct_per_1000_messages_s=\d+\.\d\d)?"
)


async def test_both_metric_sets_are_measured_per_kind() -> None:
    args = argparse.Namespace(components=10, messages=3, rounds=1)
    lines = await telemetry_decode.run(args)

    values: dict[tuple[str, str], float] = {}
    for line in lines:
        match = LINE.fullmatch(line)
        assert match is not None, line
        metrics, kind, count, size, micros, summary = match.groups()
        assert float(micros) > 0.0
        assert int(size) > 0
        assert (summary is not None) == (kind == "all")
        values[(metrics, kind)] = float(count)
    kinds = {"battery", "battery_inverter", "pv_inverter", "ev_charger", "meter"}
    assert {kind for _, kind in values} == kinds | {"all"}
    # The stream filter is what the monitor asks for: an EV charger sends power,
    # three phase currents and its consumed energy; every detail adds to that.
    assert values[("default", "ev_charger")] == 5.0
    for kind in kinds | {"all"}:
        assert values[("all_details", kind)] > values[("default", kind)], kind
