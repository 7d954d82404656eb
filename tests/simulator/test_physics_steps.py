"""The physics do not depend on how often the model is advanced.

A simulator ticks at whatever rate it is given, and each component's step is split
only at its own events; so advancing in one go or in many small hops through the
same commands must end in the same state. PV output follows the daylight curve
at each step's start, so the scenario runs at night (no PV); batteries and EVs
stay away from the SoC ranges where their power tapers.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses

from hypothesis import example, given, settings, strategies as st
import pytest

from custom_components.frequenz_microgrid.engine.bounds import PowerBounds
from custom_components.frequenz_microgrid.simulator import EvSpec, load_scenario
from custom_components.frequenz_microgrid.simulator.physics.model import (
    ComponentRuntime,
    MicrogridModel,
)
from custom_components.frequenz_microgrid.simulator.scenario import Kind

from .conftest import (
    BATTERY,
    BATTERY_INVERTER,
    EV_CHARGER_1,
    EV_CHARGER_2,
    PV_INVERTER,
)

END_S = 900.0
"""Every run ends here (the home scenario's EV arrives at 1800 s: see below)."""

type Command = Callable[[MicrogridModel], None]


def night_home(arrival_at_s: float) -> MicrogridModel:
    """The home scenario at midnight, its scheduled EV moved to `arrival_at_s`."""
    scenario = load_scenario("home")
    arrivals = tuple(
        dataclasses.replace(a, arrive_at_s=arrival_at_s, depart_at_s=arrival_at_s + 300)
        for a in scenario.ev_arrivals
    )
    return MicrogridModel(
        dataclasses.replace(scenario, ev_arrivals=arrivals, start_time_of_day_s=0.0)
    )


lifetimes = st.floats(10.0, 400.0)
commands: st.SearchStrategy[Command] = st.one_of(
    st.builds(
        lambda cid, power, lifetime: lambda m: m.set_active_power(cid, power, lifetime),
        st.sampled_from([BATTERY_INVERTER, PV_INVERTER]),
        st.floats(-5000.0, 5000.0),
        lifetimes,
    ),
    st.builds(
        lambda cid, power, lifetime: lambda m: m.set_active_power(cid, power, lifetime),
        st.sampled_from([EV_CHARGER_1, EV_CHARGER_2]),
        st.floats(0.0, 22_080.0),
        lifetimes,
    ),
    st.builds(
        lambda var, lifetime: (
            lambda m: m.set_reactive_power(BATTERY_INVERTER, var, lifetime)
        ),
        st.floats(-3000.0, 3000.0),
        lifetimes,
    ),
    st.builds(
        lambda cid, lower, upper, lifetime: (
            lambda m: m.augment_bounds(cid, PowerBounds(lower, upper), lifetime)
        ),
        st.sampled_from([BATTERY_INVERTER, BATTERY, EV_CHARGER_2]),
        st.floats(-4000.0, 0.0),
        st.floats(0.0, 9000.0),
        st.floats(5.0, 200.0),
    ),
    st.builds(
        lambda cid, soc, phases, stay: (
            lambda m: m.plug_ev(
                cid,
                EvSpec(soc_pct=soc, phases=phases),
                None if stay is None else m.now_s + stay,
            )
        ),
        st.sampled_from([EV_CHARGER_1, EV_CHARGER_2]),
        st.floats(10.0, 70.0),
        st.sampled_from([1, 3]),
        st.none() | st.floats(1.0, 400.0),
    ),
    st.builds(
        lambda cid: lambda m: m.unplug_ev(cid),
        st.sampled_from([EV_CHARGER_1, EV_CHARGER_2]),
    ),
)


def state_of(runtime: ComponentRuntime) -> dict[str, float | None]:
    """Everything about a component that its steps change, as named numbers."""
    state: dict[str, float | None] = {
        "reactive": runtime.reactive_power_w,
        "consumed_wh": runtime.energy.consumed_wh,
        "delivered_wh": runtime.energy.delivered_wh,
    }
    state.update(zip(("l1", "l2", "l3"), runtime.phases.as_tuple(), strict=True))
    for name, setpoint in (
        ("setpoint", runtime.active_setpoint),
        ("reactive_setpoint", runtime.reactive_setpoint),
    ):
        state[name] = None if setpoint is None else setpoint.value
        state[f"{name}_until"] = None if setpoint is None else setpoint.expires_at_s
    for i, augmentation in enumerate(runtime.augmentations):
        state[f"augmentation_{i}_until"] = augmentation.expires_at_s
    if (battery := runtime.battery) is not None:
        state["soc_pct"] = battery.soc_pct
        state["dc_power_w"] = battery.dc_power_w
        state["temperature_c"] = battery.temperature_c
    if (charger := runtime.ev_charger) is not None:
        state["current_a"] = charger.current_a
        session = charger.session
        state["plugged_at_s"] = None if session is None else session.plugged_at_s
        state["ev_soc_pct"] = None if session is None else session.soc_pct
    return state


def run(
    model: MicrogridModel,
    timed_commands: list[tuple[float, Command]],
    hops: list[float],
) -> MicrogridModel:
    """Advance through `hops` and the commands' times, then to `END_S`."""
    stops = sorted(
        [(t, i, command) for i, (t, command) in enumerate(timed_commands)]
        + [(t, len(timed_commands) + i, None) for i, t in enumerate(hops)],
        key=lambda stop: (stop[0], stop[1]),
    )
    for at_s, _, command in stops:
        model.advance_to(at_s)
        if command is not None:
            command(model)
    model.advance_to(END_S)
    return model


@settings(max_examples=150, deadline=None)
@given(
    timed_commands=st.lists(
        st.tuples(st.floats(0.0, END_S - 1.0), commands), max_size=10
    ),
    hops=st.lists(st.floats(0.0, END_S), max_size=30),
    arrival_at_s=st.floats(1.0, END_S),
)
# The EV arrives at 1 s + 1 ulp: its lock event (arrival + 2 s) rounds to 3.0 s,
# where arrival + 2 s had not passed by the lock check's own subtraction, so in
# one go the charger stayed unlocked (and idle) until the setpoint lapsed, while
# a hop at 4 s found it locked.
@example(
    timed_commands=[
        (0.0, lambda m: m.set_active_power(EV_CHARGER_1, 4140.0, 10.0)),
    ],
    hops=[4.0],
    arrival_at_s=1.0000000000000002,
)
def test_advancing_in_one_go_or_in_hops_ends_in_the_same_state(
    timed_commands: list[tuple[float, Command]],
    hops: list[float],
    arrival_at_s: float,
) -> None:
    timed_commands.sort(key=lambda tc: tc[0])
    in_one_go = run(night_home(arrival_at_s), timed_commands, [])
    in_hops = run(night_home(arrival_at_s), timed_commands, hops)
    for component_id, runtime in in_one_go.components.items():
        expected = state_of(runtime)
        actual = state_of(in_hops.components[component_id])
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-9), component_id


def test_setpoints_lapsing_apart_split_only_their_own_components() -> None:
    """Several lapses within one advance: each inverter stops at its own lapse."""
    model = MicrogridModel(load_scenario("depot"))
    inverters = [
        cid
        for cid, runtime in model.components.items()
        if runtime.spec.kind is Kind.BATTERY_INVERTER
    ]
    assert len(inverters) >= 2
    for i, cid in enumerate(inverters):
        model.set_active_power(cid, 2000.0 * (i + 1), lifetime_s=10.0 + i)
    model.advance_to(100.0)
    for i, cid in enumerate(inverters):
        runtime = model.component(cid)
        assert runtime.active_setpoint is None
        assert runtime.active_power_w == 0.0
        # It charged for exactly its own lifetime.
        assert runtime.energy.consumed_wh == pytest.approx(
            2000.0 * (i + 1) * (10.0 + i) / 3600.0
        )
