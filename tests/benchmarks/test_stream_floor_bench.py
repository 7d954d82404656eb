"""The stream floor benchmark on a tiny microgrid, so it cannot rot."""

from __future__ import annotations

import re

from benchmarks import stream_floor

LINE = re.compile(
    r"stream_floor components=20 mode=(\w+) messages_per_s=(\d+) cpu_pct=\d+\.\d "
    r"loop_cpu_pct=\d+\.\d grpc_threads_cpu_pct=-?\d+\.\d us_per_message=(\d+\.\d)"
)


async def test_every_mode_reads_every_stream_once_a_second() -> None:
    lines = await stream_floor.run(20, rounds=1, seconds=2.0)

    modes = []
    for line in lines:
        match = LINE.fullmatch(line)
        assert match is not None, line
        mode, per_s, micros = match.groups()
        modes.append(mode)
        # `generated:20` streams all but its grid connection point, at 1 Hz.
        assert 12 <= int(per_s) <= 24, line
        assert float(micros) > 0.0
    assert modes == ["read", "decode", "store"]
