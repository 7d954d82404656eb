"""The hub's charging planner: PV, then cheapest, then deadline, within every limit."""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
import json
import math

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.frequenz_microgrid.engine.hub.envelope import (
    LimitEnvelope,
    LimitStep,
)
from custom_components.frequenz_microgrid.engine.hub.forecast import (
    ForecastPoint,
    TimeSeries,
)
from custom_components.frequenz_microgrid.engine.hub.modes import ChargerMode
from custom_components.frequenz_microgrid.engine.hub.plan_needs import (
    needs_from_reservations,
    needs_from_targets,
)
from custom_components.frequenz_microgrid.engine.hub.planner import (
    SLOT_S,
    ChargingNeed,
    ChargingPlan,
    NeedRun,
    PlanCircuit,
    SlotSource,
    UnplannedDraw,
    envelope_upper_w,
    need_run,
    plan_charging,
    slot_uppers_w,
)
from custom_components.frequenz_microgrid.engine.hub.reservations import Reservation

NOW = 1_800_000_000.0
"""A slot boundary (2027-01-15 08:00 UTC)."""
HOUR = 3600.0
V = 230.0
FULL_16A_W = 16 * 3 * V
"""A three-phase 16 A charger at full power (11,040 W)."""


def need(
    charger_id: int = 1,
    energy_kwh: float = 11.04,
    start_h: float = 0.0,
    end_h: float = 8.0,
    **kwargs: object,
) -> ChargingNeed:
    return ChargingNeed(
        charger_id=charger_id,
        energy_wh=energy_kwh * 1000.0,
        earliest_start=NOW + start_h * HOUR,
        departure=NOW + end_h * HOUR,
        **kwargs,  # type: ignore[arg-type]
    )


def series(values: list[float], start: float = NOW) -> TimeSeries:
    """One value per 15-minute slot from `start`."""
    return TimeSeries.of(
        ForecastPoint(start + i * SLOT_S, start + (i + 1) * SLOT_S, v)
        for i, v in enumerate(values)
    )


ROOT = PlanCircuit(circuit_id="grid", charger_ids=frozenset(range(1, 11)))


def slot_index(start: float) -> int:
    return int((start - NOW) // SLOT_S)


def test_no_forecast_charges_as_early_as_possible_as_deadline() -> None:
    plan = plan_charging([need(energy_kwh=11.04)], [ROOT], now=NOW)

    (planned,) = plan.needs
    assert [slot_index(s.start) for s in planned.slots] == [0, 1, 2, 3]
    assert all(s.source is SlotSource.DEADLINE for s in planned.slots)
    assert all(s.power_w == pytest.approx(FULL_16A_W) for s in planned.slots)
    assert planned.unmet_wh == 0.0
    assert planned.planned_wh == pytest.approx(11_040.0)


def test_cheapest_slots_are_chosen() -> None:
    prices = [0.30] * 32
    for cheap in (5, 9, 20, 31):
        prices[cheap] = 0.10
    plan = plan_charging(
        [need(energy_kwh=11.04)], [ROOT], now=NOW, prices=series(prices)
    )

    (planned,) = plan.needs
    assert [slot_index(s.start) for s in planned.slots] == [5, 9, 20, 31]
    assert all(s.source is SlotSource.CHEAP for s in planned.slots)
    assert planned.cost == pytest.approx(0.10 * 11.04)


def test_pv_first_then_cheapest_then_deadline() -> None:
    """PV covers slot 2, prices are known for 4 slots only, the rest is deadline."""
    pv = [0.0, 0.0, FULL_16A_W, 0.0]
    prices = series([0.40, 0.20, 0.30, 0.10])  # slots 0-3 only
    plan = plan_charging(
        [need(energy_kwh=11.04 * 6 / 4, end_h=4.0)],
        [ROOT],
        now=NOW,
        prices=prices,
        pv_surplus_w=series(pv),
    )

    (planned,) = plan.needs
    sources = {slot_index(s.start): s.source for s in planned.slots}
    assert sources == {
        0: SlotSource.CHEAP,
        1: SlotSource.CHEAP,
        2: SlotSource.PV,
        3: SlotSource.CHEAP,
        4: SlotSource.DEADLINE,
        5: SlotSource.DEADLINE,
    }
    pv_slot = next(s for s in planned.slots if slot_index(s.start) == 2)
    assert pv_slot.cost == pytest.approx(0.0)
    assert planned.unmet_wh == 0.0


def test_pv_surplus_is_shared_not_exceeded() -> None:
    surplus = 8_000.0
    plan = plan_charging(
        [need(1, 2.0, end_h=0.25), need(2, 2.0, end_h=0.25)],
        [ROOT],
        now=NOW,
        pv_surplus_w=series([surplus]),
    )
    pv_total = sum(s.pv_w for n in plan.needs for s in n.slots)
    assert pv_total == pytest.approx(surplus)


def test_envelope_too_low_reports_unmet_energy() -> None:
    envelope = LimitEnvelope.of([LimitStep(NOW, -1e6, 5_000.0)])
    circuit = PlanCircuit(
        circuit_id="grid", charger_ids=frozenset({1}), envelope=envelope
    )
    plan = plan_charging([need(energy_kwh=30.0, end_h=2.0)], [circuit], now=NOW)

    (planned,) = plan.needs
    assert all(s.power_w <= 5_000.0 + 1e-6 for s in planned.slots)
    assert planned.planned_wh == pytest.approx(10_000.0)
    assert planned.unmet_wh == pytest.approx(20_000.0)
    assert plan.unmet_wh == pytest.approx(20_000.0)


def test_charges_before_a_step_down_of_the_envelope() -> None:
    """The plan sees the envelope drop at 1 h and delivers before it."""
    envelope = LimitEnvelope.of(
        [LimitStep(NOW, -1e6, 30_000.0), LimitStep(NOW + HOUR, -1e6, 0.0)]
    )
    circuit = PlanCircuit(
        circuit_id="grid", charger_ids=frozenset({1, 2}), envelope=envelope
    )
    plan = plan_charging(
        [need(1, 11.04, end_h=4.0), need(2, 11.04, end_h=4.0)],
        [circuit],
        now=NOW,
        prices=series([0.1] * 16),
    )
    assert plan.unmet_wh == pytest.approx(0.0, abs=1e-3)
    assert all(s.start < NOW + HOUR for n in plan.needs for s in n.slots)


def test_tighter_departure_is_not_starved_by_a_later_one() -> None:
    """Both need the only cheap hour; the one leaving first gets served."""
    circuit = PlanCircuit(
        circuit_id="grid", charger_ids=frozenset({1, 2}), power_limit_w=FULL_16A_W
    )
    plan = plan_charging(
        [need(2, 11.04, end_h=8.0), need(1, 11.04, end_h=1.0)],
        [circuit],
        now=NOW,
        prices=series([0.1] * 4 + [0.5] * 28),
    )
    first, second = plan.needs
    assert first.need.charger_id == 1
    assert first.unmet_wh == pytest.approx(0.0, abs=1e-3)
    assert second.unmet_wh == pytest.approx(0.0, abs=1e-3)
    assert all(slot_index(s.start) >= 4 for s in second.slots)


def test_a_wider_window_gives_way_to_a_need_that_depends_on_the_slot() -> None:
    """A narrow window's need gets the slot a wider one took first.

    A (leaves at 8 h, plugged since 0 h) first takes the cheap 6-7 h; B (6-9 h)
    needs every hour it has, so A's hour moves back into A's wider window.
    """
    circuit = PlanCircuit(
        circuit_id="grid", charger_ids=frozenset({1, 2}), power_limit_w=FULL_16A_W
    )
    prices = [0.3] * 24 + [0.1] * 8 + [0.3] * 4
    plan = plan_charging(
        [need(1, 11.04, end_h=8.0), need(2, 3 * 11.04, start_h=6.0, end_h=9.0)],
        [circuit],
        now=NOW,
        prices=series(prices),
    )
    a, _b = plan.needs
    assert plan.unmet_wh == pytest.approx(0.0, abs=1e-3)
    assert all(s.start < NOW + 6 * HOUR for s in a.slots)
    assert_within_limits(plan, [circuit])


def test_slot_below_the_minimum_current_is_not_used() -> None:
    circuit = PlanCircuit(
        circuit_id="grid", charger_ids=frozenset({1}), phase_limit_a=5.0
    )
    plan = plan_charging([need(energy_kwh=5.0, end_h=2.0)], [circuit], now=NOW)
    assert plan.needs[0].slots == ()
    assert plan.needs[0].unmet_wh == pytest.approx(5_000.0)


def test_one_phase_ev_uses_its_phase_only() -> None:
    """Two one-phase EVs on L1 share the L1 fuse; a three-phase one would not fit."""
    circuit = PlanCircuit(
        circuit_id="f", charger_ids=frozenset({1, 2}), phase_limit_a=20.0
    )
    plan = plan_charging(
        [
            need(1, 10.0, end_h=8.0, phases=(1,)),
            need(2, 10.0, end_h=8.0, phases=(1,)),
        ],
        [circuit],
        now=NOW,
    )
    assert_within_limits(plan, [circuit])
    for slot in range(32):
        amps = sum(
            s.power_w / V
            for n in plan.needs
            for s in n.slots
            if slot_index(s.start) == slot
        )
        assert amps <= 20.0 + 1e-6


def test_invalid_and_past_needs_are_all_unmet() -> None:
    plan = plan_charging(
        [
            need(1, 5.0, start_h=2.0, end_h=1.0),
            need(2, math.nan),
            need(3, 5.0, start_h=-3.0, end_h=-1.0),
        ],
        [ROOT],
        now=NOW,
    )
    assert [n.slots for n in plan.needs] == [(), (), ()]
    assert [n.unmet_wh for n in plan.needs[::2]] == [5_000.0, 5_000.0]


def test_power_at_follows_the_current_slot() -> None:
    plan = plan_charging(
        [need(energy_kwh=11.04 / 4, start_h=0.0, end_h=2.0)],
        [ROOT],
        now=NOW,
        prices=series([0.3, 0.1, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]),
    )
    assert plan.power_w(1, NOW + 60) == 0.0
    assert plan.power_w(1, NOW + SLOT_S + 60) == pytest.approx(FULL_16A_W)
    assert plan.power_w(1, NOW + 3 * HOUR) is None
    assert plan.power_w(2, NOW) is None


def test_a_need_without_planned_energy_does_not_hold_its_charger() -> None:
    """No slot could be planned: the charger is left to its mode, not held at 0 W.

    Charger 2 can draw only 5 A (below the 6 A minimum); charger 3's circuit is
    full with charger 1 until both leave.
    """
    circuit = PlanCircuit(
        circuit_id="grid", charger_ids=frozenset({1, 3}), power_limit_w=FULL_16A_W
    )
    plan = plan_charging(
        [
            need(1, 11.04, end_h=1.0),
            need(2, 5.0, end_h=1.0, max_current_a=5.0),
            need(3, 5.0, end_h=1.0),
        ],
        [circuit, PlanCircuit(circuit_id="f", charger_ids=frozenset({2}))],
        now=NOW,
    )
    assert [n.slots for n in plan.needs[1:]] == [(), ()]
    assert plan.power_w(1, NOW + 60) == pytest.approx(FULL_16A_W)
    assert plan.power_w(2, NOW + 60) is None
    assert plan.power_w(3, NOW + 60) is None


def test_a_charger_with_two_needs_gets_its_maximum_once() -> None:
    """A booking and a target at once on one 11 kW charger: 11 kW, not 22 kW."""
    plan = plan_charging(
        [need(1, 11.04, end_h=4.0), need(1, 11.04, end_h=4.0, origin="target")],
        [ROOT],
        now=NOW,
    )
    assert plan.unmet_wh == pytest.approx(0.0, abs=1e-3)
    for slot in range(16):
        at = NOW + slot * SLOT_S + 60
        planned = plan.power_w(1, at)
        assert planned is not None
        assert planned <= FULL_16A_W + 1e-6
    assert plan.power_w(1, NOW + 60) == pytest.approx(FULL_16A_W)
    assert plan.power_w(1, NOW + 7 * SLOT_S + 60) == pytest.approx(FULL_16A_W)


def test_a_slot_is_booked_at_the_minimum_current_at_least() -> None:
    """20 A circuit, three chargers: small needs book 6 A for the whole slot.

    The live allocator raises any limit below 6 A to 6 A, so a plan giving
    charger 1 9 A and chargers 2 and 3 1.2 A each in one slot would run 21 A
    on a 20 A fuse. Here charger 3 waits for the next slot instead.
    """
    circuit = PlanCircuit(
        circuit_id="f", charger_ids=frozenset({1, 2, 3}), phase_limit_a=20.0
    )
    nine_amps_one_slot_kwh = 9 * 3 * V * SLOT_S / HOUR / 1000.0
    plan = plan_charging(
        [
            need(1, nine_amps_one_slot_kwh, end_h=1.0),
            need(2, 0.2, end_h=1.0),
            need(3, 0.2, end_h=1.0),
        ],
        [circuit],
        now=NOW,
    )
    min_w = 6 * 3 * V
    assert plan.unmet_wh == pytest.approx(0.0, abs=1e-3)
    for n in plan.needs:
        assert all(s.power_w >= min_w - 1e-6 for s in n.slots)
    assert phase_currents(plan)
    assert max(phase_currents(plan).values()) <= 20.0 + 1e-6
    small = plan.needs[1].slots[0]
    assert small.power_w == pytest.approx(min_w)
    assert small.energy_wh == pytest.approx(200.0)
    assert [slot_index(s.start) for s in plan.needs[2].slots] == [1]
    assert plan.needs[2].cost == 0.0


def test_other_load_leaves_less_for_the_evs_per_phase() -> None:
    """10 A per phase of other load on a 32 A feeder: 22 A per phase for the EVs."""
    other_w = 10 * 3 * V
    needs = [need(1, 40.0, end_h=2.0), need(2, 40.0, end_h=2.0)]

    def feeder(other_load_w: float) -> PlanCircuit:
        return PlanCircuit(
            circuit_id="f",
            charger_ids=frozenset({1, 2}),
            phase_limit_a=32.0,
            other_load_w=other_load_w,
        )

    alone = plan_charging(needs, [feeder(0.0)], now=NOW)
    shared = plan_charging(needs, [feeder(other_w)], now=NOW)

    # every phase of every slot of the two hours is full, with and without
    assert list(phase_currents(alone).values()) == pytest.approx([32.0] * 8 * 3)
    assert list(phase_currents(shared).values()) == pytest.approx([22.0] * 8 * 3)
    assert shared.unmet_wh == pytest.approx(alone.unmet_wh + 10 * 3 * V * 2.0)


def test_other_load_counts_against_the_power_limit() -> None:
    circuit = PlanCircuit(
        circuit_id="f",
        charger_ids=frozenset({1}),
        power_limit_w=12_000.0,
        other_load_w=4_000.0,
    )
    plan = plan_charging([need(1, 40.0, end_h=1.0)], [circuit], now=NOW)
    assert [s.power_w for s in plan.needs[0].slots] == pytest.approx([8_000.0] * 4)


def test_a_slot_already_begun_counts_only_its_rest() -> None:
    now = NOW + SLOT_S / 2
    plan = plan_charging([need(energy_kwh=11.04)], [ROOT], now=now)
    first = plan.needs[0].slots[0]
    assert first.energy_wh == pytest.approx(FULL_16A_W * SLOT_S / 2 / HOUR)


def test_needs_from_reservations() -> None:
    reservations = [
        Reservation(
            reservation_id="a",
            charger_id=3,
            start=NOW,
            end=NOW + HOUR,
            energy_kwh=10.0,
        ),
        Reservation(reservation_id="b", charger_id=4, start=NOW, end=NOW + HOUR),
        Reservation(
            reservation_id="c",
            charger_id=5,
            start=NOW - 2 * HOUR,
            end=NOW - HOUR,
            energy_kwh=5.0,
        ),
    ]
    needs = needs_from_reservations(
        reservations,
        now=NOW,
        delivered_wh={"a": 4_000.0},
        max_current_a={3: 32.0},
    )
    assert needs == [
        ChargingNeed(
            charger_id=3,
            energy_wh=6_000.0,
            earliest_start=NOW,
            departure=NOW + HOUR,
            max_current_a=32.0,
            origin="a",
        )
    ]


@dataclass(frozen=True)
class Target:
    """The shape of issue 16 §1's `ChargingTarget`."""

    charger_id: int
    energy_wh: float | None
    soc_pct: float | None
    departure: datetime


def test_needs_from_targets() -> None:
    leave = datetime.fromtimestamp(NOW + 2 * HOUR, UTC)
    targets = [
        Target(1, 10_000.0, None, leave),
        Target(2, None, 80.0, leave),  # SoC only: not planned here
        Target(3, 5_000.0, None, datetime.fromtimestamp(NOW - 1, UTC)),  # gone
        Target(4, 2_000.0, None, leave),  # already delivered
    ]
    needs = needs_from_targets(targets, now=NOW, delivered_wh={1: 4_000.0, 4: 2_000.0})
    assert needs == [
        ChargingNeed(
            charger_id=1,
            energy_wh=6_000.0,
            earliest_start=NOW,
            departure=NOW + 2 * HOUR,
            origin="target",
        )
    ]


def test_plan_as_dict_is_json_ready() -> None:
    import json

    plan = plan_charging(
        [need(energy_kwh=5.0)], [ROOT], now=NOW, prices=series([0.2] * 32)
    )
    data = json.loads(json.dumps(plan.as_dict()))
    slots = data["chargers"]["1"][0]["slots"]
    assert {s["source"] for s in slots} == {"cheap"}
    assert data["unmet_kwh"] == 0.0


# --- properties -------------------------------------------------------------------


def phase_currents(plan: ChargingPlan) -> dict[tuple[int, int], float]:
    """(slot, phase) → the current every need of the plan draws together."""
    amps: dict[tuple[int, int], float] = {}
    for need_plan in plan.needs:
        phases = need_plan.need.phases
        for slot in need_plan.slots:
            for phase in phases:
                key = (slot_index(slot.start), phase)
                amps[key] = amps.get(key, 0.0) + slot.power_w / (len(phases) * V)
    return amps


def assert_within_limits(
    plan: ChargingPlan,
    circuits: list[PlanCircuit],
    held: Sequence[UnplannedDraw] = (),
) -> None:
    """No circuit above its fuse on any phase or its power limits in any slot.

    Cars drawing outside the plan (`held`) come first: the needs get what they
    leave (nothing where they alone are above a limit).
    """
    load_w: dict[tuple[str, float], float] = {}
    load_a: dict[tuple[str, float, int], float] = {}
    held_w: dict[tuple[str, float], float] = {}
    held_a: dict[tuple[str, float, int], float] = {}
    for car in held:
        for index in range(80):
            slot_start = NOW + index * SLOT_S
            if slot_start >= car.until:
                break
            for circuit in circuits:
                if car.charger_id not in circuit.charger_ids:
                    continue
                key = (circuit.circuit_id, slot_start)
                held_w[key] = held_w.get(key, 0.0) + sum(car.currents_a) * V
                for phase, amps in enumerate(car.currents_a, start=1):
                    pkey = (circuit.circuit_id, slot_start, phase)
                    held_a[pkey] = held_a.get(pkey, 0.0) + amps
    for need_plan in plan.needs:
        phases = need_plan.need.phases
        for slot in need_plan.slots:
            slot_start = math.floor(slot.start / SLOT_S) * SLOT_S
            for circuit in circuits:
                if need_plan.need.charger_id not in circuit.charger_ids:
                    continue
                key = (circuit.circuit_id, slot_start)
                load_w[key] = load_w.get(key, 0.0) + slot.power_w
                for phase in phases:
                    pkey = (circuit.circuit_id, slot_start, phase)
                    load_a[pkey] = load_a.get(pkey, 0.0) + slot.power_w / (
                        len(phases) * V
                    )
    by_id = {c.circuit_id: c for c in circuits}
    for (circuit_id, slot_start), watts in load_w.items():
        circuit = by_id[circuit_id]
        limit = circuit.power_limit_w if circuit.power_limit_w is not None else math.inf
        if circuit.envelope is not None:
            for step in circuit.envelope.steps:
                nxt = circuit.envelope.next_change(step.start)
                ends = math.inf if nxt is None else nxt
                if step.start < slot_start + SLOT_S and ends > slot_start:
                    limit = min(limit, step.upper_w)
        limit -= held_w.get((circuit_id, slot_start), 0.0)
        assert watts <= max(0.0, limit) + 1e-6, (circuit_id, slot_start)
    for (circuit_id, slot_start, phase), amps in load_a.items():
        fuse = by_id[circuit_id].phase_limit_a
        taken = held_a.get((circuit_id, slot_start, phase), 0.0)
        assert fuse is None or amps <= max(0.0, fuse - taken) + 1e-6


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[list[ChargingNeed], list[PlanCircuit], TimeSeries, TimeSeries]:
    chargers = draw(st.integers(1, 8))
    feeder = frozenset(range(1, chargers // 2 + 2))
    steps = draw(
        st.lists(
            st.tuples(st.integers(0, 24), st.floats(0.0, 80_000.0)),
            min_size=1,
            max_size=4,
            unique_by=lambda t: t[0],
        )
    )
    envelope = LimitEnvelope.of(
        LimitStep(NOW + q * SLOT_S, -1e6, upper) for q, upper in sorted(steps)
    )
    circuits = [
        PlanCircuit(
            circuit_id="grid",
            charger_ids=frozenset(range(1, chargers + 1)),
            phase_limit_a=draw(st.sampled_from([None, 40.0, 63.0])),
            envelope=envelope,
        ),
        PlanCircuit(
            circuit_id="feeder",
            charger_ids=feeder,
            phase_limit_a=draw(st.floats(0.0, 50.0)),
            power_limit_w=draw(st.sampled_from([None, 7_000.0, 20_000.0])),
        ),
    ]
    needs = [
        ChargingNeed(
            charger_id=cid,
            energy_wh=draw(st.floats(0.0, 60_000.0)),
            earliest_start=NOW + draw(st.integers(-4, 20)) * SLOT_S,
            departure=NOW + draw(st.integers(21, 40)) * SLOT_S,
            max_current_a=draw(st.sampled_from([16.0, 32.0])),
            phases=draw(st.sampled_from([(1, 2, 3), (1,), (2,), (3,)])),
            runs=draw(st.sampled_from(NeedRun)),
            at_once_until=draw(
                st.one_of(st.none(), st.floats(NOW - SLOT_S, NOW + 45 * SLOT_S))
            ),
        )
        for cid in range(1, chargers + 1)
    ]
    price_count = draw(st.integers(0, 40))
    prices = series(
        draw(st.lists(st.floats(-0.1, 1.0), min_size=price_count, max_size=price_count))
    )
    pv = series(draw(st.lists(st.floats(0.0, 20_000.0), max_size=40)))
    return needs, circuits, prices, pv


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_plan_never_exceeds_a_limit_and_accounts_for_every_need(
    scenario: tuple[list[ChargingNeed], list[PlanCircuit], TimeSeries, TimeSeries],
) -> None:
    needs, circuits, prices, pv = scenario
    plan = plan_charging(needs, circuits, now=NOW, prices=prices, pv_surplus_w=pv)

    assert_within_limits(plan, circuits)
    for need_plan in plan.needs:
        wanted = need_plan.need.energy_wh
        assert need_plan.planned_wh + need_plan.unmet_wh == pytest.approx(
            wanted, abs=1e-3
        )
        for slot in need_plan.slots:
            per_phase = slot.power_w / (len(need_plan.need.phases) * V)
            assert per_phase <= need_plan.need.max_current_a + 1e-9
            # the live allocator runs a charger at its minimum at least
            assert per_phase >= need_plan.need.min_current_a - 1e-9
            delivers_wh = slot.power_w * (slot.end - slot.start) / HOUR
            assert slot.energy_wh <= delivers_wh + 1e-6
            assert need_plan.need.earliest_start <= slot.start < slot.end
            assert slot.end <= need_plan.need.departure
            assert slot.start >= NOW - 1e-9
        if need_plan.need.runs is NeedRun.OFF:  # an off charger charges nothing
            boost_until = need_plan.need.at_once_until  # but through its boost
            assert all(
                boost_until is not None and s.start < boost_until
                for s in need_plan.slots
            )
    for index in range(40):
        start = NOW + index * SLOT_S
        surplus = pv.mean(start, start + SLOT_S) or 0.0
        used = sum(
            s.pv_w
            for n in plan.needs
            for s in n.slots
            if start <= s.start < start + SLOT_S
        )
        assert used <= surplus + 1e-6


@st.composite
def scenarios_with_cars_outside_the_plan(
    draw: st.DrawFn,
) -> tuple[list[ChargingNeed], list[PlanCircuit], list[UnplannedDraw]]:
    """`scenarios`, and two more chargers whose cars charge outside the plan."""
    needs, circuits, _, _ = draw(scenarios())
    outside = (100, 101)
    circuits = [
        dataclasses.replace(
            c,
            charger_ids=c.charger_ids
            | (frozenset(outside) if c.circuit_id == "grid" else {outside[0]}),
        )
        for c in circuits
    ]
    amps = st.floats(0.0, 32.0)
    held = [
        UnplannedDraw(
            charger_id=cid,
            currents_a=(draw(amps), draw(amps), draw(amps)),
            until=draw(
                st.sampled_from([math.inf, NOW, NOW + 3 * SLOT_S, NOW + 25 * SLOT_S])
            ),
        )
        for cid in outside
    ]
    return needs, circuits, held


@settings(max_examples=100, deadline=None)
@given(scenarios_with_cars_outside_the_plan())
def test_the_plan_fits_around_cars_charging_outside_it(
    scenario: tuple[list[ChargingNeed], list[PlanCircuit], list[UnplannedDraw]],
) -> None:
    needs, circuits, held = scenario
    plan = plan_charging(needs, circuits, now=NOW, unplanned=held)

    assert_within_limits(plan, circuits, held)
    for need_plan in plan.needs:
        assert need_plan.planned_wh + need_plan.unmet_wh == pytest.approx(
            need_plan.need.energy_wh, abs=1e-3
        )


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_cars_charging_at_once_are_planned_as_if_the_planned_ones_were_not_there(
    scenario: tuple[list[ChargingNeed], list[PlanCircuit], TimeSeries, TimeSeries],
) -> None:
    """Fast and boosting cars charge at once whatever the plan: they come first.

    The plan's smart cars fit around them, never the other way round. A boost
    only until it ends: its slots before then are those of the same car in
    fast mode with the slots that begin before the boost's end as its window.
    """
    needs, circuits, prices, pv = scenario
    at_once = [
        _at_once_part(need)
        for need in needs
        if need.runs is NeedRun.AT_ONCE or need.at_once_until is not None
    ]
    alone = plan_charging(at_once, circuits, now=NOW, prices=prices, pv_surplus_w=pv)
    together = plan_charging(needs, circuits, now=NOW, prices=prices, pv_surplus_w=pv)

    together_by_charger = {n.need.charger_id: n for n in together.needs}
    for need_plan in alone.needs:
        shared = together_by_charger[need_plan.need.charger_id]
        if shared.need.runs is NeedRun.AT_ONCE:
            assert shared.slots == need_plan.slots
            assert shared.unmet_wh == pytest.approx(need_plan.unmet_wh)
            continue
        # What the boost booked stays; the rest is planned as the mode says.
        boosted = [s for s in shared.slots if s.start < need_plan.need.departure]
        assert [(s.start, s.source) for s in boosted] == [
            (s.start, s.source) for s in need_plan.slots
        ]
        # The same power, up to the last bit (the boost's energy is summed in
        # another order when the rest is planned with it).
        assert [s.power_w for s in boosted] == pytest.approx(
            [s.power_w for s in need_plan.slots], rel=1e-12
        )
        assert shared.unmet_wh <= need_plan.unmet_wh + 1e-6


def _at_once_part(need: ChargingNeed) -> ChargingNeed:
    """The need's part its charger charges at once, as a fast-mode need.

    A boost returning to smart holds its last slot to the slot's end (the car
    then follows the slot's power); to any other mode it ends with the boost.
    """
    if need.at_once_until is None or need.runs is NeedRun.AT_ONCE:
        return dataclasses.replace(need, runs=NeedRun.AT_ONCE, at_once_until=None)
    until = need.at_once_until
    begin = max(need.earliest_start, NOW)
    if begin >= until:
        end = begin  # no part at once: refused alone, nothing together
    elif need.runs is NeedRun.PLANNED:
        end = NOW + math.ceil((until - NOW) / SLOT_S) * SLOT_S
    else:
        end = until
    return dataclasses.replace(
        need,
        runs=NeedRun.AT_ONCE,
        at_once_until=None,
        departure=min(need.departure, end),
    )


@st.composite
def chargers_with_several_needs(
    draw: st.DrawFn,
) -> tuple[list[ChargingNeed], list[PlanCircuit], TimeSeries]:
    """A few chargers, each with one to three needs whose windows overlap."""
    chargers = draw(st.integers(1, 4))
    needs: list[ChargingNeed] = []
    for cid in range(1, chargers + 1):
        max_current_a = draw(st.sampled_from([10.0, 16.0, 32.0]))
        phases = draw(st.sampled_from([(1, 2, 3), (1,), (2,)]))
        runs = draw(st.sampled_from(NeedRun))  # one mode per charger
        for number in range(draw(st.integers(1, 3))):
            begin = draw(st.integers(-2, 12))
            needs.append(
                ChargingNeed(
                    charger_id=cid,
                    energy_wh=draw(st.floats(100.0, 40_000.0)),
                    earliest_start=NOW + begin * SLOT_S,
                    departure=NOW + (begin + draw(st.integers(1, 16))) * SLOT_S,
                    max_current_a=max_current_a,
                    phases=phases,
                    origin=f"need {number}",
                    runs=runs,
                )
            )
    circuits = [
        PlanCircuit(
            circuit_id="grid",
            charger_ids=frozenset(range(1, chargers + 1)),
            phase_limit_a=draw(st.sampled_from([None, 25.0, 40.0])),
            other_load_w=draw(st.sampled_from([0.0, 3_000.0])),
        ),
        PlanCircuit(
            circuit_id="feeder",
            charger_ids=frozenset({1, 2}),
            phase_limit_a=draw(st.floats(0.0, 40.0)),
            power_limit_w=draw(st.sampled_from([None, 9_000.0])),
        ),
    ]
    prices = series(draw(st.lists(st.floats(0.0, 1.0), max_size=30)))
    return needs, circuits, prices


@settings(max_examples=150, deadline=None)
@given(chargers_with_several_needs())
def test_a_charger_never_gets_more_than_its_maximum_over_all_its_needs(
    scenario: tuple[list[ChargingNeed], list[PlanCircuit], TimeSeries],
) -> None:
    """Needs overlapping on one charger share its maximum current in every slot."""
    needs, circuits, prices = scenario
    plan = plan_charging(needs, circuits, now=NOW, prices=prices)

    assert_within_limits(plan, circuits)
    per_charger: dict[tuple[int, int], float] = {}
    for need_plan in plan.needs:
        planned = need_plan.need
        assert need_plan.planned_wh + need_plan.unmet_wh == pytest.approx(
            planned.energy_wh, abs=1e-3
        )
        for slot in need_plan.slots:
            key = (planned.charger_id, slot_index(slot.start))
            amps = slot.power_w / (len(planned.phases) * V)
            assert amps >= planned.min_current_a - 1e-9
            per_charger[key] = per_charger.get(key, 0.0) + amps
    charger_of = {n.charger_id: n for n in needs}
    for (charger_id, _index), amps in per_charger.items():
        assert amps <= charger_of[charger_id].max_current_a + 1e-9
    # what the smart mode reads is the charger's sum over its needs
    for charger_id, any_need in charger_of.items():
        watts_per_amp = len(any_need.phases) * V
        for index in range(30):
            planned_w = plan.power_w(charger_id, NOW + index * SLOT_S + 1.0)
            if planned_w is not None:
                assert planned_w == pytest.approx(
                    per_charger.get((charger_id, index), 0.0) * watts_per_amp
                )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=16, max_size=16),
    st.lists(st.floats(0.0, 12_000.0), min_size=16, max_size=16),
    st.floats(1_000.0, 80_000.0),
    st.integers(4, 16),
)
def test_one_need_takes_pv_then_the_cheapest_priced_then_unpriced_slots(
    prices: list[float], pv: list[float], energy_wh: float, priced: int
) -> None:
    """One need without limits in the way: PV, then cheapest, then unpriced.

    Every priced slot left out is no cheaper than any taken, and an unpriced slot
    is used only once every priced slot is full.
    """
    plan = plan_charging(
        [need(energy_kwh=energy_wh / 1000.0, end_h=4.0)],
        [ROOT],
        now=NOW,
        prices=series(prices[:priced]),
        pv_surplus_w=series(pv),
    )
    (planned,) = plan.needs
    by_slot = {slot_index(s.start): s for s in planned.slots}
    grid_w = {i: s.power_w - s.pv_w for i, s in by_slot.items()}
    room = {
        i: FULL_16A_W - (by_slot[i].pv_w if i in by_slot else 0.0) for i in range(16)
    }
    # PV below the minimum current cannot charge on its own
    min_w = 6 * 3 * V
    pv_possible = sum(min(p, FULL_16A_W) * SLOT_S / HOUR for p in pv if p >= min_w)
    # PV first: all the PV it could take, or everything it needs
    pv_taken = sum(s.energy_wh - s.grid_wh for s in planned.slots)
    assert pv_taken == pytest.approx(min(pv_possible, energy_wh), rel=1e-6, abs=1e-3)
    # cheapest: no priced slot left unused is cheaper than one used
    used = [i for i in range(priced) if grid_w.get(i, 0.0) > 1e-6]
    unused = [j for j in range(priced) if grid_w.get(j, 0.0) <= 1e-6 and room[j] > 1e-6]
    if used and unused:
        assert min(prices[j] for j in unused) >= max(prices[i] for i in used) - 1e-12
    unpriced_used = any(grid_w.get(i, 0.0) > 1e-6 for i in range(priced, 16))
    if unpriced_used:
        # every priced slot where the minimum current fits is full
        assert all(grid_w.get(i, 0.0) >= room[i] - 1e-6 for i in range(priced))
    assert planned.unmet_wh == pytest.approx(
        max(0.0, energy_wh - planned.planned_wh), abs=1e-3
    )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-8, 40), st.floats(-1e5, 1e5)),
        min_size=1,
        max_size=6,
        unique_by=lambda t: t[0],
    ),
    st.integers(0, 30),
)
def test_slot_uppers_walk_agrees_with_the_per_slot_lookup(
    steps: list[tuple[int, float]], count: int
) -> None:
    """The one-walk slot limits equal the lowest upper limit in force per slot."""
    envelope = LimitEnvelope.of(
        LimitStep(NOW + q * SLOT_S / 3, -1e6, max(u, -1e6)) for q, u in sorted(steps)
    )
    walked = slot_uppers_w(envelope, NOW, SLOT_S, count)
    looked_up = [
        envelope_upper_w(envelope, NOW + i * SLOT_S, NOW + (i + 1) * SLOT_S)
        for i in range(count)
    ]
    assert walked == looked_up


# -- needs planned as their chargers will charge ----------------------------------

SHARED_16A = PlanCircuit(
    circuit_id="feeder", charger_ids=frozenset({1, 2}), phase_limit_a=16.0
)
"""Two chargers on one 16 A feeder: one car at full power fills it."""


@pytest.mark.parametrize(
    ("mode", "runs"),
    [
        (ChargerMode.SMART, NeedRun.PLANNED),
        (ChargerMode.FAST, NeedRun.AT_ONCE),
        (ChargerMode.BOOST, NeedRun.AT_ONCE),
        (ChargerMode.SOLAR, NeedRun.SOLAR),
        (ChargerMode.OFF, NeedRun.OFF),
    ],
)
def test_each_mode_has_its_way_of_running(mode: ChargerMode, runs: NeedRun) -> None:
    assert need_run(mode) is runs


def test_a_fast_car_is_planned_at_once_and_the_smart_one_around_it() -> None:
    # The cheap hours are the first two; the fast car charges now regardless.
    prices = series([0.10] * 8 + [0.40] * 24)
    fast = need(1, energy_kwh=22.08, end_h=8.0, runs=NeedRun.AT_ONCE)
    smart = need(2, energy_kwh=11.04, end_h=8.0)

    plan = plan_charging([fast, smart], [ROOT, SHARED_16A], now=NOW, prices=prices)

    by_charger = {n.need.charger_id: n for n in plan.needs}
    fast_slots = [slot_index(s.start) for s in by_charger[1].slots]
    assert fast_slots == list(range(8))  # from now on, at full power
    assert all(s.source is SlotSource.AT_ONCE for s in by_charger[1].slots)
    smart_slots = [slot_index(s.start) for s in by_charger[2].slots]
    # The cheap slots are taken by the car that charges anyway: the smart one
    # goes to the next cheapest (not the same slots: the feeder holds one car).
    assert set(smart_slots).isdisjoint(fast_slots)
    assert by_charger[2].unmet_wh == 0.0
    assert by_charger[1].as_dict()["runs"] == "at_once"


def test_had_the_fast_car_followed_the_plan_it_would_have_waited_for_cheap_slots() -> (
    None
):
    """The same need in smart mode: the contrast that shows the mode matters."""
    prices = series([0.40] * 4 + [0.10] * 4 + [0.40] * 24)
    fast = need(1, energy_kwh=11.04, end_h=8.0, runs=NeedRun.AT_ONCE)
    smart = need(1, energy_kwh=11.04, end_h=8.0)

    at_once = plan_charging([fast], [ROOT], now=NOW, prices=prices)
    planned = plan_charging([smart], [ROOT], now=NOW, prices=prices)

    assert [slot_index(s.start) for s in at_once.needs[0].slots] == [0, 1, 2, 3]
    assert [slot_index(s.start) for s in planned.needs[0].slots] == [4, 5, 6, 7]
    assert at_once.cost > planned.cost


def test_a_fast_car_takes_the_pv_surplus_it_draws_before_the_planned_ones() -> None:
    surplus = [FULL_16A_W / 2] * 4 + [0.0] * 28
    fast = need(1, energy_kwh=5.52, end_h=8.0, runs=NeedRun.AT_ONCE)
    smart = need(2, energy_kwh=2.76, end_h=8.0)

    plan = plan_charging([fast, smart], [ROOT], now=NOW, pv_surplus_w=series(surplus))

    by_charger = {n.need.charger_id: n for n in plan.needs}
    fast_pv = sum(s.pv_w for s in by_charger[1].slots)
    assert fast_pv == pytest.approx(2 * FULL_16A_W / 2)  # two slots at full power
    smart_pv = sum(s.pv_w * (s.end - s.start) / 3600.0 for s in by_charger[2].slots)
    # What is left of the surplus (two slots of half a car) goes to the smart car.
    assert smart_pv == pytest.approx(2.76 * 1000.0)


def test_a_solar_car_takes_pv_then_the_latest_slots_as_its_deadline_forces() -> None:
    surplus = [FULL_16A_W] * 2 + [0.0] * 30
    solar = need(1, energy_kwh=11.04 + 5.52, end_h=8.0, runs=NeedRun.SOLAR)

    plan = plan_charging(
        [solar],
        [ROOT],
        now=NOW,
        pv_surplus_w=series(surplus),
        prices=series([0.1] * 32),
    )

    (planned,) = plan.needs
    sources = {slot_index(s.start): s.source for s in planned.slots}
    assert sources[0] is SlotSource.PV
    assert sources[1] is SlotSource.PV
    # The rest (an hour at full power) at the very end, not in the cheap slots.
    rest = [i for i, src in sources.items() if src is not SlotSource.PV]
    assert rest == [28, 29, 30, 31]
    assert planned.unmet_wh == 0.0


def test_a_charger_that_is_off_charges_nothing_and_says_so() -> None:
    off = need(1, energy_kwh=11.04, runs=NeedRun.OFF)
    smart = need(2, energy_kwh=11.04)

    plan = plan_charging([off, smart], [ROOT, SHARED_16A], now=NOW)

    by_charger = {n.need.charger_id: n for n in plan.needs}
    assert by_charger[1].slots == ()
    assert by_charger[1].unmet_wh == pytest.approx(11_040.0)
    assert [slot_index(s.start) for s in by_charger[2].slots] == [0, 1, 2, 3]
    assert plan.power_w(1, NOW) is None  # the plan holds nobody back for it


def test_a_boost_charges_at_once_until_it_ends_then_as_the_mode_it_returns_to() -> None:
    # Expensive now, cheap from hour 4: the boost charges now for its hour,
    # the rest of the car's need waits for the cheap slots (it returns to smart).
    prices = series([0.40] * 16 + [0.10] * 16)
    boosted = need(1, energy_kwh=22.08, end_h=8.0, at_once_until=NOW + 1.0 * HOUR)

    (planned,) = plan_charging([boosted], [ROOT], now=NOW, prices=prices).needs

    sources = {slot_index(s.start): s.source for s in planned.slots}
    assert sources == {
        **dict.fromkeys(range(4), SlotSource.AT_ONCE),
        **dict.fromkeys(range(16, 20), SlotSource.CHEAP),
    }
    assert all(s.power_w == pytest.approx(FULL_16A_W) for s in planned.slots)
    assert planned.unmet_wh == 0.0
    assert planned.as_dict()["boost_until"] == NOW + HOUR


def test_a_boost_ending_inside_a_slot_holds_that_slot_and_lets_the_plan_go_on() -> None:
    # The boost ends 5 minutes into slot 1; slot 1 is booked at once to its end,
    # and a smart car on the same feeder gets the slots from then on.
    boosted = need(1, energy_kwh=22.08, end_h=8.0, at_once_until=NOW + SLOT_S + 300.0)
    smart = need(2, energy_kwh=5.52, end_h=4.0)
    prices = series([0.10] * 4 + [0.40] * 28)

    plan = plan_charging([boosted, smart], [ROOT, SHARED_16A], now=NOW, prices=prices)

    by_charger = {n.need.charger_id: n for n in plan.needs}
    at_once = [
        slot_index(s.start)
        for s in by_charger[1].slots
        if s.source is SlotSource.AT_ONCE
    ]
    assert at_once == [0, 1]
    # The cheap slots 2 and 3 are free again after the boost: the smart car,
    # leaving first, takes them; the boosted car's rest goes to later slots.
    smart_slots = {slot_index(s.start) for s in by_charger[2].slots}
    assert smart_slots == {2, 3}
    rest = [s for s in by_charger[1].slots if s.source is not SlotSource.AT_ONCE]
    assert min(slot_index(s.start) for s in rest) >= 4
    assert by_charger[1].unmet_wh == 0.0
    assert_within_limits(plan, [ROOT, SHARED_16A])


def test_a_boost_keeps_its_slots_even_when_a_tighter_car_misses_its_departure() -> None:
    # One car fits the feeder; the boosted car charges now whatever the plan, so
    # the smart car leaving in an hour cannot have those slots: it is unmet,
    # not planned into slots the boosting car really takes.
    boosted = need(1, energy_kwh=22.08, end_h=8.0, at_once_until=NOW + HOUR)
    tight = need(2, energy_kwh=2.76, end_h=1.0)

    plan = plan_charging([boosted, tight], [ROOT, SHARED_16A], now=NOW)

    by_charger = {n.need.charger_id: n for n in plan.needs}
    assert [
        slot_index(s.start)
        for s in by_charger[1].slots
        if s.source is SlotSource.AT_ONCE
    ] == [0, 1, 2, 3]
    assert by_charger[2].slots == ()
    assert by_charger[2].unmet_wh == pytest.approx(2760.0)
    assert_within_limits(plan, [ROOT, SHARED_16A])


def test_a_car_charging_outside_the_plan_is_held_and_the_smart_one_planned_around() -> (
    None
):
    # A fast car without a booking or target draws 10 A per phase on the 16 A
    # feeder: a smart car there has 6 A left, and only until the fast car's own
    # booking (from hour 1) takes over; then the booking is planned as a need.
    drawing = UnplannedDraw(
        charger_id=1, currents_a=(10.0, 10.0, 10.0), until=NOW + HOUR
    )
    smart = need(2, energy_kwh=11.04, end_h=8.0)

    plan = plan_charging([smart], [ROOT, SHARED_16A], now=NOW, unplanned=[drawing])

    (planned,) = plan.needs
    per_phase = {slot_index(s.start): s.power_w / (3 * V) for s in planned.slots}
    assert all(per_phase[i] <= 6.0 + 1e-9 for i in range(4) if i in per_phase)
    assert per_phase[4] == pytest.approx(16.0)  # the feeder is whole again
    assert planned.unmet_wh == 0.0
    assert plan.unplanned == (drawing,)
    assert plan.as_dict()["charging_outside_the_plan"] == [
        {"charger": 1, "currents_a": [10.0, 10.0, 10.0], "until": NOW + HOUR}
    ]


def test_a_one_phase_car_outside_the_plan_is_held_on_its_phase_only() -> None:
    drawing = UnplannedDraw(charger_id=1, currents_a=(16.0, 0.0, 0.0))
    on_l1 = need(2, energy_kwh=3.68, end_h=2.0, phases=(1,))
    on_l2 = need(3, energy_kwh=3.68, end_h=2.0, phases=(2,))
    feeder = PlanCircuit(
        circuit_id="feeder", charger_ids=frozenset({1, 2, 3}), phase_limit_a=16.0
    )

    plan = plan_charging([on_l1, on_l2], [ROOT, feeder], now=NOW, unplanned=[drawing])

    by_charger = {n.need.charger_id: n for n in plan.needs}
    assert by_charger[2].slots == ()  # L1 is full for as far as the plan reaches
    assert by_charger[2].unmet_wh == pytest.approx(3680.0)
    assert by_charger[3].unmet_wh == 0.0


def test_a_car_charging_outside_the_plan_takes_the_pv_surplus_first() -> None:
    # It draws 11 kW where the forecast leaves 11 kW of surplus: none is left
    # for the smart car, which is planned from the grid (cheap slots) instead.
    drawing = UnplannedDraw(charger_id=1, currents_a=(16.0, 16.0, 16.0))
    smart = need(2, energy_kwh=2.76, end_h=2.0)
    surplus = series([FULL_16A_W] * 8)

    plan = plan_charging(
        [smart], [ROOT], now=NOW, pv_surplus_w=surplus, unplanned=[drawing]
    )

    (planned,) = plan.needs
    assert planned.slots
    assert sum(s.pv_w for s in planned.slots) == 0.0
    assert planned.unmet_wh == 0.0


def test_a_draw_that_ended_already_holds_nothing() -> None:
    ended = UnplannedDraw(charger_id=1, currents_a=(16.0, 16.0, 16.0), until=NOW - 1.0)
    smart = need(2, energy_kwh=11.04, end_h=1.0)

    plan = plan_charging([smart], [ROOT, SHARED_16A], now=NOW, unplanned=[ended])

    (planned,) = plan.needs
    assert [slot_index(s.start) for s in planned.slots] == [0, 1, 2, 3]
    assert planned.unmet_wh == 0.0


def test_a_boost_returning_to_off_is_planned_only_until_it_ends() -> None:
    # Off after a one-minute boost: a minute at full power, the rest unmet.
    boosted = need(1, energy_kwh=11.04, runs=NeedRun.OFF, at_once_until=NOW + 60.0)

    (planned,) = plan_charging([boosted], [ROOT], now=NOW).needs

    assert planned.planned_wh == pytest.approx(FULL_16A_W * 60.0 / HOUR)
    assert planned.unmet_wh == pytest.approx(11_040.0 - FULL_16A_W * 60.0 / HOUR)


def test_a_need_beginning_after_its_boost_ended_is_not_charged_at_once() -> None:
    # The boost ends 5 minutes into the slot, the booking begins at 10: solar.
    later = need(
        1,
        energy_kwh=2.76,
        start_h=600.0 / HOUR,
        runs=NeedRun.SOLAR,
        at_once_until=NOW + 300.0,
    )

    (planned,) = plan_charging([later], [ROOT], now=NOW).needs

    assert all(s.source is not SlotSource.AT_ONCE for s in planned.slots)


def test_a_draw_ending_inside_a_slot_leaves_its_chargers_next_need_that_slot() -> None:
    # The car draws outside the plan until its booking begins, mid-slot; the
    # booking is the same car going on: it is planned from its start.
    drawing = UnplannedDraw(
        charger_id=1, currents_a=(16.0, 16.0, 16.0), until=NOW + 450.0
    )
    booking = need(1, energy_kwh=11.04, start_h=450.0 / HOUR, runs=NeedRun.AT_ONCE)

    (planned,) = plan_charging([booking], [ROOT], now=NOW, unplanned=[drawing]).needs

    assert planned.slots[0].start == NOW + 450.0


def test_a_draw_with_unknown_currents_holds_nothing_and_stays_json_ready() -> None:
    drawing = UnplannedDraw(charger_id=1, currents_a=(math.nan, 10.0, -3.0))
    smart = need(2, energy_kwh=2.76, end_h=2.0)

    plan = plan_charging([smart], [ROOT], now=NOW, unplanned=[drawing])

    assert json.loads(json.dumps(plan.as_dict(), allow_nan=False))[
        "charging_outside_the_plan"
    ] == [{"charger": 1, "currents_a": [0.0, 10.0, 0.0], "until": None}]


def test_a_need_without_slack_is_not_starved_by_one_leaving_earlier() -> None:
    """A chain of moves, not one: all three fit, so all three are met.

    30 kW circuit. A (32 A) 25.6 kWh by 1.5 h, B (16 A: 11.04 kW) 27.0 kWh by
    2.5 h (27.6 kWh at full power: 0.6 kWh slack), C (32 A) 14.3 kWh by 5.5 h.
    Earliest departure first, A takes 22.08 kW and B is left 2.52 kWh short;
    with B at (nearly) full power throughout, A has 18.96 kW, 28.44 kWh by its
    departure, and C the room after it: A moves, and C out of A's way.
    """
    circuit = PlanCircuit(
        circuit_id="grid", charger_ids=frozenset({1, 2, 3}), power_limit_w=30_000.0
    )
    needs = [
        need(1, 25.6, end_h=1.5, max_current_a=32.0),
        need(2, 27.0, end_h=2.5),
        need(3, 14.3, end_h=5.5, max_current_a=32.0),
    ]

    plan = plan_charging(needs, [circuit], now=NOW)

    for planned, asked in zip(plan.needs, (25_600.0, 27_000.0, 14_300.0), strict=True):
        assert planned.unmet_wh == 0.0
        assert math.fsum(s.energy_wh for s in planned.slots) == pytest.approx(asked)
    assert_within_limits(plan, [circuit])


def test_a_wide_need_gives_up_the_one_cheap_slot_a_chain_depends_on() -> None:
    """The cheap slot goes where it is needed, through a chain of two moves.

    11.04 kW circuit, slot 9 the only cheap one. A (8 A) 2 kWh in slots 0-9,
    B (16 A) 29 kWh in slots 9-20, C (8 A) 3 kWh in slots 10-20: B and C need
    32 kWh of the 33.12 kWh slots 9-20 hold. A takes the cheap slot first and
    C would end 260 Wh short; B moves into the cheap slot and A to its others.
    """
    circuit = PlanCircuit(
        circuit_id="grid", charger_ids=frozenset({1, 2, 3}), power_limit_w=FULL_16A_W
    )
    slot_h = SLOT_S / HOUR
    needs = [
        need(1, 2.0, end_h=10 * slot_h, max_current_a=8.0, min_current_a=0.0),
        need(2, 29.0, start_h=9 * slot_h, end_h=21 * slot_h, min_current_a=0.0),
        need(
            3,
            3.0,
            start_h=10 * slot_h,
            end_h=21 * slot_h,
            max_current_a=8.0,
            min_current_a=0.0,
        ),
    ]

    plan = plan_charging(
        needs,
        [circuit],
        now=NOW,
        prices=series([0.5] * 9 + [0.25] + [0.5] * 20),
    )

    assert [p.unmet_wh for p in plan.needs] == [0.0, 0.0, 0.0]
    a, b, c = plan.needs
    assert math.fsum(s.energy_wh for s in a.slots) == pytest.approx(2_000.0)
    assert math.fsum(s.energy_wh for s in b.slots) == pytest.approx(29_000.0)
    assert math.fsum(s.energy_wh for s in c.slots) == pytest.approx(3_000.0)
    assert_within_limits(plan, [circuit])


def max_flow_wh(
    windows: Sequence[tuple[int, int, float, float]], limit_w: float
) -> float:
    """The most energy the needs can get: a max-flow over needs and slots.

    Needs (first slot, slots, Wh, most W), one circuit of `limit_w`, whole
    slots (Edmonds-Karp on a dense matrix: source 0, sink 1, needs, slots).
    """
    slots = max(first + count for first, count, _, _ in windows)
    size = 2 + len(windows) + slots
    cap = [[0.0] * size for _ in range(size)]
    slot_h = SLOT_S / HOUR
    for index, (first, count, energy_wh, most_w) in enumerate(windows):
        cap[0][2 + index] = energy_wh
        for slot in range(first, first + count):
            cap[2 + index][2 + len(windows) + slot] = min(most_w, limit_w) * slot_h
    for slot in range(slots):
        cap[2 + len(windows) + slot][1] = limit_w * slot_h
    total = 0.0
    while True:
        parent = [-1] * size
        parent[0] = 0
        queue = [0]
        for node in queue:
            for nxt in range(size):
                if parent[nxt] < 0 and cap[node][nxt] > 1e-9:
                    parent[nxt] = node
                    queue.append(nxt)
        if parent[1] < 0:
            return total
        path: list[tuple[int, int]] = []
        node = 1
        while node != 0:
            path.append((parent[node], node))
            node = parent[node]
        flow = min(cap[u][v] for u, v in path)
        for u, v in path:
            cap[u][v] -= flow
            cap[v][u] += flow
        total += flow


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 12),
            st.integers(1, 12),
            st.floats(500.0, 30_000.0),
            st.sampled_from([8.0, 16.0, 32.0]),
        ),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([5_000.0, 11_040.0, 22_080.0, 30_000.0]),
    st.one_of(
        st.none(),
        st.lists(st.sampled_from([0.1, 0.2, 0.3, 0.4]), min_size=30, max_size=30),
    ),
)
def test_what_is_unmet_is_what_a_max_flow_leaves_unmet(
    raw: list[tuple[int, int, float, float]],
    limit_w: float,
    prices: list[float] | None,
) -> None:
    """The plan leaves no more unmet than the limits force, whatever the prices.

    Small depots on one circuit, no minimum current, whole slots.
    """
    needs = [
        ChargingNeed(
            charger_id=cid,
            energy_wh=energy_wh,
            earliest_start=NOW + first * SLOT_S,
            departure=NOW + (first + count) * SLOT_S,
            max_current_a=max_a,
            min_current_a=0.0,
        )
        for cid, (first, count, energy_wh, max_a) in enumerate(raw, start=1)
    ]
    circuit = PlanCircuit(
        circuit_id="grid",
        charger_ids=frozenset(range(1, len(raw) + 1)),
        power_limit_w=limit_w,
    )

    plan = plan_charging(
        needs, [circuit], now=NOW, prices=None if prices is None else series(prices)
    )

    windows = [(f, c, e, a * 3 * V) for f, c, e, a in raw]
    bound = math.fsum(e for _, _, e, _ in raw) - max_flow_wh(windows, limit_w)
    assert plan.unmet_wh == pytest.approx(bound, abs=1.0)
    assert_within_limits(plan, [circuit])
