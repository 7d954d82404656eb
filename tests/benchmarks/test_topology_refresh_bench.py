"""The topology refresh benchmark on a tiny site, so that it cannot rot."""

from __future__ import annotations

import re

import pytest

from benchmarks import topology_refresh

from .test_reliability import restore_default_time_zone  # noqa: F401 - autouse

LINE = re.compile(
    r"topology_refresh components=40 case=(unchanged|changed) "
    r"loop_ms=\d+\.\d block_ms=\d+\.\d lag_max_ms=\d+\.\d gc_max_ms=\d+\.\d "
    r"entities_changed=(\d+)"
)


@pytest.mark.slow
async def test_the_benchmark_measures_both_cases(
    capsys: pytest.CaptureFixture[str],
) -> None:
    await topology_refresh.run(40, warm_up_s=1.0, follow_on_s=0.5)

    lines = [LINE.fullmatch(line) for line in capsys.readouterr().out.splitlines()]
    assert [m.group(1) for m in lines if m] == ["unchanged", "changed"]
    unchanged, changed = (int(m.group(2)) for m in lines if m)
    assert unchanged == 0
    assert changed > 0  # new and removed components' entities are counted
