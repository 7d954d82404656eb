"""Which lines an inverter's power is on, learned from its phase currents."""

from __future__ import annotations

from frequenz.client.microgrid.metrics import Metric
import pytest

from custom_components.frequenz_microgrid.engine.control.inputs import FormulaCurrents
from custom_components.frequenz_microgrid.engine.control.phase_shares import (
    SYMMETRIC,
    UNKNOWN,
    PhaseShareBook,
    PhaseShares,
)
from custom_components.frequenz_microgrid.engine.telemetry import TelemetryStore
from tests.observations import ManualClock, record

INVERTER = 3
METER = 2
CURRENTS = (
    Metric.AC_CURRENT_PHASE_1,
    Metric.AC_CURRENT_PHASE_2,
    Metric.AC_CURRENT_PHASE_3,
)


def reading(
    store: TelemetryStore, power_w: float, currents_a: tuple[float, float, float]
) -> None:
    record(store, INVERTER, Metric.AC_POWER_ACTIVE, power_w)
    for metric, amps in zip(CURRENTS, currents_a, strict=True):
        record(store, INVERTER, metric, amps)


def test_unknown_until_it_carries_power_then_remembered() -> None:
    store = TelemetryStore()
    book = PhaseShareBook(store, 230.0)
    assert book.of(INVERTER) is UNKNOWN  # sent nothing yet
    reading(store, 0.0, (0.4, 0.2, 0.2))
    assert book.of(INVERTER) is UNKNOWN  # 0.8 A: too little to tell
    reading(store, -4_600.0, (-20.0, 0.0, 0.0))  # discharging on L1
    assert book.of(INVERTER) == PhaseShares((1.0, 0.0, 0.0), (1.0, 0.0, 0.0))
    reading(store, 0.0, (0.0, 0.0, 0.0))
    assert book.of(INVERTER) == PhaseShares((1.0, 0.0, 0.0), (1.0, 0.0, 0.0))


def test_standby_current_without_power_teaches_nothing() -> None:
    """2.6/0.2/0.2 A at 0 W is standby or reactive current: no line is told."""
    store = TelemetryStore()
    book = PhaseShareBook(store, 230.0)
    reading(store, 0.0, (2.6, 0.2, 0.2))
    assert book.of(INVERTER) is UNKNOWN
    reading(store, 6_900.0, (10.0, 10.0, 10.0))
    book.of(INVERTER)  # read as every round with a target reads it
    reading(store, 10.0, (2.6, 0.2, 0.2))
    assert book.of(INVERTER) == PhaseShares((1 / 3,) * 3, (1 / 3,) * 3)


def test_an_odd_reading_widens_the_shares_instead_of_dropping_a_line() -> None:
    store = TelemetryStore()
    book = PhaseShareBook(store, 230.0)
    reading(store, 6_900.0, (10.0, 10.0, 10.0))
    book.of(INVERTER)
    reading(store, 4_600.0, (10.0, 10.0, 0.0))  # L3 read as 0 A once
    shares = book.of(INVERTER)
    assert shares.least == pytest.approx((1 / 3, 1 / 3, 0.0))
    assert shares.most == pytest.approx((0.5, 0.5, 1 / 3))


def test_an_inverter_without_phase_currents_is_taken_as_three_phase() -> None:
    """Only once it has sent for longer than the freshness window without any."""
    clock = ManualClock()
    store = TelemetryStore(clock=clock)
    book = PhaseShareBook(store, 230.0)
    record(store, INVERTER, Metric.AC_POWER_ACTIVE, -3_000.0)
    assert book.of(INVERTER) is UNKNOWN  # its currents may come in another message
    clock.now += store.freshness_s + 1.0
    assert book.of(INVERTER) is SYMMETRIC
    book.keep_only(())
    assert book.of(INVERTER) is SYMMETRIC


def test_a_grid_meter_without_phase_currents_leaves_the_pools_unbounded() -> None:
    """Nothing to lose: a meter that sends power but no currents is no fuse reading.

    A meter that sent nothing yet, that has just begun to send, or that sent its
    currents once, is one whose currents are unknown now: the pools are held.
    """
    clock = ManualClock()
    store = TelemetryStore(clock=clock)
    grid = FormulaCurrents(f"#{METER}", store)
    assert grid.may_measure(store)  # silent so far
    record(store, METER, Metric.AC_POWER_ACTIVE, 1_000.0)
    assert grid.may_measure(store)  # its currents may come in another message
    clock.now += store.freshness_s + 1.0
    record(store, METER, Metric.AC_POWER_ACTIVE, 1_000.0)
    assert not grid.may_measure(store)
    for metric in CURRENTS:
        record(store, METER, metric, float("nan"))
    assert grid.may_measure(store)
    assert not FormulaCurrents(None, store).may_measure(store)
