"""Bad input, fuzzed: every action and the config and options flows (issue 18, §3).

Through the harness of `fuzz` (one simulator over real gRPC, hypothesis driven
from the executor): only translated errors come back. A refused action must
change nothing: no request reaches the simulator and the steering (its proposals
and targets) and the reservations are as before. An action the fuzzer happened
to make valid is undone, so the next payload starts from the same quiet
microgrid.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.util import dt as dt_util
from hypothesis import strategies as st
import probatio as vol
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.frequenz_microgrid.const import (
    CONF_API_KEY,
    CONF_DEFAULT_PRIORITY,
    CONF_DEMO,
    CONF_FRESHNESS_S,
    CONF_REAPPLY_SETPOINTS,
    CONF_SCENARIO,
    CONF_SIGNING_SECRET,
    CONF_URL,
    DEMO_SCENARIOS,
    DEMO_UNIQUE_ID_PREFIX,
    DOMAIN,
    MAX_FRESHNESS_S,
    MAX_PRIORITY,
    MIN_FRESHNESS_S,
    MIN_PRIORITY,
)
from custom_components.frequenz_microgrid.engine.control import Pool
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator

from .conftest import HOME_MICROGRID_ID, microgrid_entry, wait_for
from .fuzz import (
    ANYTHING,
    COMPONENT_IDS,
    FUZZ_WARNINGS,
    NUMBERS,
    SCALARS,
    TEXT,
    TRANSLATIONS,
    Field,
    fuzz_actions,
    mostly,
    payloads,
    run_property,
    send_explicit,
    steering_state,
    times_from_now,
    urls,
)
from .steering_helpers import (
    BATTERY,
    BATTERY_INVERTER,
    DRIVEWAY_WALLBOX,
    GARAGE_WALLBOX,
    PV_INVERTER,
    setup_steerable,
)

pytestmark = FUZZ_WARNINGS

_POOL_MEMBERS = st.sampled_from(
    [BATTERY_INVERTER, PV_INVERTER, GARAGE_WALLBOX, DRIVEWAY_WALLBOX]
)
"""Components of some pool (not necessarily the one a proposal names)."""


def _action_payloads(
    entry_id: str, other_ids: list[str]
) -> dict[str, st.SearchStrategy[Any]]:
    """Payload strategies of each action: mostly for `entry_id`, sometimes others."""
    entry = mostly(st.just(entry_id), st.sampled_from(other_ids) | st.text(max_size=40))
    pool = mostly(
        st.sampled_from([pool.value for pool in Pool]),
        st.sampled_from(["grid", "PV", "", "batteries "]),
    )
    watts = mostly(st.integers(-5000, 5000) | st.floats(-5000, 5000), NUMBERS)
    priority = mostly(st.integers(-100, 100), st.integers(-101, 101) | NUMBERS)
    actor = mostly(st.text(min_size=1, max_size=100), st.text(max_size=120))
    return {
        "propose_power": payloads(
            {
                "config_entry_id": entry,
                "pool": pool,
                "power": watts,
                "lower": watts,
                "upper": watts,
                "priority": priority,
                "actor": actor,
                "components": mostly(
                    st.lists(_POOL_MEMBERS, min_size=1, max_size=2),
                    st.one_of(COMPONENT_IDS, st.lists(COMPONENT_IDS, max_size=4)),
                ),
            }
        ),
        "withdraw_proposal": payloads(
            {
                "config_entry_id": entry,
                "pool": pool,
                "actor": actor,
                "priority": priority,
            }
        ),
        "set_component_bounds": payloads(
            {
                "config_entry_id": entry,
                "component": mostly(
                    st.sampled_from([BATTERY_INVERTER, BATTERY, PV_INVERTER]),
                    COMPONENT_IDS,
                ),
                "lower": watts,
                "upper": watts,
                "validity": mostly(
                    st.sampled_from([5, 60, 300, 900, "60"]), st.just(0) | NUMBERS
                ),
            }
        ),
        "set_component_reactive_power": payloads(
            {
                "config_entry_id": entry,
                "component": mostly(
                    st.sampled_from([BATTERY_INVERTER, PV_INVERTER]), COMPONENT_IDS
                ),
                "power": mostly(
                    st.integers(-7000, 7000) | st.floats(-7000, 7000), NUMBERS
                ),
            }
        ),
        "get_power_status": payloads({"config_entry_id": entry}),
        **_reservation_payloads(entry),
    }


def _reservation_payloads(entry: Field) -> dict[str, st.SearchStrategy[Any]]:
    """Payloads of the reservation actions: periods around now, chargers, energies."""
    when = mostly(
        times_from_now(st.integers(-180, 3 * 24 * 60)),
        st.one_of(TEXT, NUMBERS, st.just("2026-02-30T25:00:00")),
    )
    period = {"start": when, "end": when}
    return {
        "reserve_charger": payloads(
            {
                "config_entry_id": entry,
                "charger": mostly(
                    st.sampled_from([GARAGE_WALLBOX, DRIVEWAY_WALLBOX, "any", "ANY"]),
                    COMPONENT_IDS | TEXT,
                ),
                **period,
                "energy_kwh": mostly(st.floats(0, 200), NUMBERS),
                "vehicle": mostly(st.text(max_size=100), st.text(max_size=200)),
            }
        ),
        "cancel_reservation": payloads(
            {"config_entry_id": entry, "reservation_id": mostly(TEXT, SCALARS)}
        ),
        "find_available_chargers": payloads({"config_entry_id": entry, **period}),
    }


# --- actions -------------------------------------------------------------------------


async def test_actions_refuse_bad_input_with_translated_errors(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """≥ 1,000 payloads to the actions: translated refusals that change nothing."""
    entry = await setup_steerable(hass, simulator)
    other = MockConfigEntry(domain=DOMAIN, title="Not loaded", unique_id="other")
    other.add_to_hass(hass)
    wrong_domain = MockConfigEntry(domain="sun", title="Another integration")
    wrong_domain.add_to_hass(hass)
    hub = entry.runtime_data.reservations
    assert hub is not None

    async def undo(service: str, payload: dict[str, Any], response: Any) -> None:
        """Undo what the fuzzer made valid; wait out a proposal's distribution."""
        if service == "reserve_charger" and response is not None:
            hub.book.cancel(str(response["reservation_id"]))
        if service == "propose_power":
            await hass.services.async_call(
                DOMAIN,
                "withdraw_proposal",
                {
                    key: payload[key]
                    for key in ("config_entry_id", "pool", "actor", "priority")
                    if key in payload
                },
                blocking=True,
            )
        if service == "set_component_reactive_power":  # release its keep-alive
            await hass.services.async_call(
                DOMAIN, service, {**payload, "power": 0.0}, blocking=True
            )

    reactive = entry.runtime_data.engine.reactive

    def reactive_bounds_known() -> bool:
        try:
            reactive.check(BATTERY_INVERTER, 0.0)
        except ValueError:
            return False
        return True

    # The explicit out-of-bounds call needs the inverter's reactive bounds.
    await wait_for(reactive_bounds_known, what="the inverter's reactive bounds")
    in_an_hour = (dt_util.now() + timedelta(hours=1)).isoformat()
    explicit: list[tuple[str, dict[str, Any], str]] = [
        ("get_power_status", {}, "get_power_status accepted"),
        ("propose_power", {"pool": "batteries", "power": "nan"}, "not_finite"),
        (
            "propose_power",
            {"pool": "batteries", "lower": 1000, "upper": -1000},
            "lower_above_upper",
        ),
        (
            "propose_power",
            {"pool": "batteries", "power": 0, "components": [PV_INVERTER]},
            "unknown_component",
        ),
        (
            "find_available_chargers",
            {"start": in_an_hour, "end": in_an_hour},
            "reservation_end_not_after_start",
        ),
        ("cancel_reservation", {"reservation_id": "none"}, "unknown_reservation"),
        (
            "set_component_reactive_power",
            {"component": BATTERY_INVERTER, "power": 1e9},
            "reactive_out_of_bounds",
        ),
        (
            "set_component_reactive_power",
            {"component": BATTERY, "power": 0},
            "reactive_not_an_inverter",
        ),
    ]
    examples, outcomes = await fuzz_actions(
        hass,
        list(
            _action_payloads(
                entry.entry_id, [other.entry_id, wrong_domain.entry_id]
            ).items()
        ),
        state=lambda: (steering_state(simulator, entry), list(hub.book)),
        undo=undo,
        explicit=[
            (service, {"config_entry_id": entry.entry_id} | payload, outcome)
            for service, payload, outcome in explicit
        ],
    )

    assert examples >= 1000
    # Past the schema, into each of our checks, and sometimes valid.
    assert any(outcome.endswith(" accepted") for outcome in outcomes), outcomes
    reached = {"not_finite", "lower_above_upper", "unknown_component"}
    reached |= {"reservation_end_not_after_start", "unknown_reservation"}
    reached |= {"reactive_out_of_bounds", "reactive_not_an_inverter"}
    assert reached <= outcomes.keys(), outcomes


# --- config and options flows ------------------------------------------------------


async def test_flows_refuse_bad_input_with_translated_errors(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """Hundreds of payloads to the flows: a form error, an abort or a schema error.

    The simulator's microgrid and both demo scenarios are configured already (not
    loaded), so a payload that happens to be valid aborts instead of setting up an
    entry; the options flow stores its valid options on an unloaded entry.
    """
    configured = microgrid_entry(simulator.url)
    configured.add_to_hass(hass)
    for scenario in DEMO_SCENARIOS:
        MockConfigEntry(
            domain=DOMAIN,
            unique_id=f"{DEMO_UNIQUE_ID_PREFIX}{scenario}",
            data={CONF_DEMO: True, CONF_SCENARIO: scenario},
        ).add_to_hass(hass)
    errors = TRANSLATIONS["config"]["error"]
    aborts = TRANSLATIONS["config"]["abort"]
    outcomes: dict[str, int] = {}

    def count(outcome: str) -> None:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    async def config_step(step: str, payload: dict[str, Any]) -> None:
        flow = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_USER}
        )
        flow = await hass.config_entries.flow.async_configure(
            flow["flow_id"], {"next_step_id": step}
        )
        try:
            result = await hass.config_entries.flow.async_configure(
                flow["flow_id"], payload
            )
        except vol.Invalid:
            count("schema")
            hass.config_entries.flow.async_abort(flow["flow_id"])
            return
        if result["type"] is FlowResultType.FORM:
            hass.config_entries.flow.async_abort(flow["flow_id"])
            assert result["errors"], payload
            for error in result["errors"].values():
                # "unknown" is an unexpected exception, logged: no bad input.
                assert error in errors, (error, payload)
                assert error != "unknown", payload
                count(error)
        else:
            assert result["type"] is FlowResultType.ABORT, result
            assert result["reason"] in aborts, result
            count(result["reason"])

    async def options_step(payload: dict[str, Any]) -> None:
        flow = await hass.config_entries.options.async_init(configured.entry_id)
        try:
            result = await hass.config_entries.options.async_configure(
                flow["flow_id"], payload
            )
        except vol.Invalid:
            count("options schema")
            hass.config_entries.options.async_abort(flow["flow_id"])
            return
        if result["type"] is FlowResultType.FORM:
            hass.config_entries.options.async_abort(flow["flow_id"])
            assert result["errors"], payload
            for error in result["errors"].values():
                assert error in TRANSLATIONS["options"]["error"], (error, payload)
                count(error)
            return
        assert result["type"] is FlowResultType.CREATE_ENTRY, result
        stored = configured.options
        assert MIN_FRESHNESS_S <= stored[CONF_FRESHNESS_S] <= MAX_FRESHNESS_S, stored
        assert MIN_PRIORITY <= stored[CONF_DEFAULT_PRIORITY] <= MAX_PRIORITY, stored
        count("options stored")

    secret = mostly(st.text(max_size=20), ANYTHING)
    connect = payloads(
        {CONF_URL: urls(simulator.port), CONF_API_KEY: secret}
        | {CONF_SIGNING_SECRET: secret}
    )
    demo = payloads(
        {
            CONF_SCENARIO: mostly(
                st.sampled_from(DEMO_SCENARIOS), st.sampled_from(["HOME", "x", ""])
            )
        }
    )
    options = payloads(
        {
            CONF_FRESHNESS_S: mostly(st.floats(2, 300), st.floats(0, 400) | NUMBERS),
            CONF_DEFAULT_PRIORITY: mostly(
                st.integers(-100, 100), st.integers(-101, 101) | NUMBERS
            ),
            CONF_REAPPLY_SETPOINTS: mostly(st.booleans(), SCALARS),
        }
    )
    # What the fuzzer must reach past the schema, once for sure.
    await send_explicit(
        outcomes,
        lambda payload: config_step("connect", payload),
        [
            ({CONF_URL: simulator.url}, "already_configured"),
            ({CONF_URL: "no url at all"}, "invalid_url"),
        ],
    )
    await send_explicit(
        outcomes,
        options_step,
        [
            (
                {
                    CONF_FRESHNESS_S: 10.0,
                    CONF_DEFAULT_PRIORITY: 0,
                    CONF_REAPPLY_SETPOINTS: True,
                },
                "options stored",
            )
        ],
    )
    examples = await run_property(
        hass, connect, lambda payload: config_step("connect", payload)
    )
    examples += await run_property(
        hass, demo, lambda payload: config_step("demo", payload)
    )
    examples += await run_property(hass, options, options_step)

    assert examples >= 600, outcomes
    # The fuzzer reached past the schema: real connections and stored options.
    assert outcomes.get("already_configured", 0) > 0, outcomes
    assert outcomes.get("invalid_url", 0) > 0, outcomes
    assert outcomes.get("options stored", 0) > 0, outcomes
    assert configured.unique_id == str(HOME_MICROGRID_ID)
