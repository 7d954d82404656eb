"""Bad input, fuzzed, for the charging-hub actions and flows (issue 18, §3).

The harness of `fuzz` (one simulator over real gRPC, hypothesis derandomized in
the executor) for what came later: `set_power_limits`,
`clear_power_limits`, `set_charger_mode`, the circuit subentry flow (add and
change) and the main entry's reconfigure and reauth flows.

A refused call comes back as Home Assistant's schema error or a translated
`ServiceValidationError` / form error, sends nothing to the simulator and leaves
the envelopes, the charger modes, the subentries and the entry's data as they
were. A payload the fuzzer happened to make valid is undone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigFlowContext,
    SubentryFlowContext,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.util import dt as dt_util
from hypothesis import settings, strategies as st
import probatio as vol
import pytest

from custom_components.frequenz_microgrid.circuit_flow import (
    CONF_CHARGERS,
    CONF_FUSE_A,
    CONF_METER,
    CONF_NAME,
    CONF_POWER_LIMIT_KW,
    SUBENTRY_CIRCUIT,
)
from custom_components.frequenz_microgrid.const import (
    CONF_API_KEY,
    CONF_ASSETS_URL,
    CONF_SIGNING_SECRET,
    CONF_URL,
    DOMAIN,
)
from custom_components.frequenz_microgrid.engine.hub.modes import ChargerMode
from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator

from .conftest import HOME_MICROGRID_ID, microgrid_entry
from .fuzz import (
    ANYTHING,
    COMPONENT_IDS,
    FUZZ,
    FUZZ_WARNINGS,
    NUMBERS,
    SCALARS,
    TEXT,
    TRANSLATIONS,
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
    DRIVEWAY_WALLBOX,
    GARAGE_WALLBOX,
    GRID_METER,
    setup_steerable,
)

pytestmark = FUZZ_WARNINGS

HUB_FUZZ = settings(FUZZ, max_examples=400)
"""Per action: 1,200 payloads in all, a few seconds."""

_CIRCUITS = mostly(
    st.sampled_from(["grid", f"meter_{GRID_METER}"]),
    st.sampled_from(["", " grid", "GRID", "meter_0", "unknown"]) | TEXT | NUMBERS,
)
"""Circuits of the home scenario, and ids or values that are none."""

_EDGE_DATES = st.sampled_from(
    [
        "0001-01-01T00:00:00",
        "9999-12-31T23:59:59",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-12:00",
    ]
)
"""Valid ISO dates at the ends of the calendar (no UTC time for some of them)."""
_WHEN = mostly(
    times_from_now(st.integers(-600, 3 * 24 * 60)) | _EDGE_DATES,
    st.one_of(TEXT, NUMBERS, st.just("2026-02-30T25:00:00")),
)
_WATTS = mostly(st.integers(-50_000, 50_000) | st.floats(-5e4, 5e4), NUMBERS)


@st.composite
def _steps(draw: st.DrawFn) -> list[Any]:
    step = payloads({"start": _WHEN, "lower": _WATTS, "upper": _WATTS})
    return draw(st.lists(step, min_size=0, max_size=4))


def hub_state(
    sim: MicrogridSimulator, entry: FrequenzMicrogridConfigEntry
) -> tuple[Any, ...]:
    """What a refused call must leave alone, besides the steering itself."""
    controller = entry.runtime_data.engine.controller
    return (
        steering_state(sim, entry),
        dict(controller.circuit_limits.envelopes),
        controller.charger_modes.states(),
        {
            subentry_id: (subentry.title, dict(subentry.data))
            for subentry_id, subentry in entry.subentries.items()
        },
        dict(entry.data),
        dict(entry.options),
    )


async def test_hub_actions_refuse_bad_input_with_translated_errors(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """≥ 1,000 payloads to the hub actions: translated refusals that change nothing."""
    entry = await setup_steerable(hass, simulator)
    other_id = "not-an-entry"
    entry_field = mostly(st.just(entry.entry_id), st.just(other_id) | TEXT)
    chargers = mostly(
        st.sampled_from([GARAGE_WALLBOX, DRIVEWAY_WALLBOX, str(GARAGE_WALLBOX)]),
        COMPONENT_IDS,
    )
    strategies = {
        "set_power_limits": payloads(
            {
                "config_entry_id": entry_field,
                "circuit": _CIRCUITS,
                "steps": mostly(_steps(), ANYTHING),
                "tolerance": mostly(st.floats(0, 500), NUMBERS),
            }
        ),
        "clear_power_limits": payloads(
            {"config_entry_id": entry_field, "circuit": _CIRCUITS}
        ),
        "set_charger_mode": payloads(
            {
                "config_entry_id": entry_field,
                "charger": chargers,
                "mode": mostly(
                    st.sampled_from(
                        [ChargerMode.BOOST.value] + [mode.value for mode in ChargerMode]
                    ),
                    st.sampled_from(["BOOST", "auto", "", " fast"]) | TEXT,
                ),
                "boost_minutes": mostly(
                    st.floats(0.5, 24 * 60)
                    | st.integers(1, 24 * 60)
                    | st.sampled_from([0, -1, 1441, 1e6]),
                    NUMBERS,
                ),
            }
        ),
        "get_charging_plan": payloads(
            {
                "config_entry_id": entry_field,
                "charger": chargers,
                "start": _WHEN,
                "end": _WHEN,
                "refresh": mostly(st.booleans(), ANYTHING),
            }
        ),
    }

    async def undo_call(*_: Any) -> None:
        undo(entry)

    soon = dt_util.now().isoformat()
    in_an_hour = (dt_util.now() + timedelta(hours=1)).isoformat()
    an_hour_ago = (dt_util.now() - timedelta(hours=1)).isoformat()
    explicit: list[tuple[str, dict[str, Any], str]] = [
        (
            "set_power_limits",
            {"steps": [{"start": soon, "upper": 50_000}]},
            "set_power_limits accepted",
        ),
        ("clear_power_limits", {}, "clear_power_limits accepted"),
        (
            "set_charger_mode",
            {"charger": GARAGE_WALLBOX, "mode": "fast"},
            "set_charger_mode accepted",
        ),
        (
            "set_power_limits",
            {"circuit": "unknown", "steps": [{"start": soon, "upper": 50_000}]},
            "unknown_circuit",
        ),
        ("set_charger_mode", {"charger": 999, "mode": "fast"}, "unknown_charger"),
        (
            "set_power_limits",
            {"steps": [{"start": soon, "lower": 1000, "upper": -1000}]},
            "envelope_lower_above_upper",
        ),
        (
            "set_charger_mode",
            {"charger": GARAGE_WALLBOX, "mode": "boost", "boost_minutes": 0},
            "invalid_boost_duration",
        ),
        ("get_charging_plan", {"refresh": True}, "get_charging_plan accepted"),
        ("get_charging_plan", {"charger": 999}, "plan_unknown_charger"),
        (
            "get_charging_plan",
            {"start": in_an_hour, "end": soon},
            "plan_end_not_after_start",
        ),
        ("get_charging_plan", {"end": an_hour_ago}, "plan_in_the_past"),
    ]
    examples, outcomes = await fuzz_actions(
        hass,
        list(strategies.items()),
        state=lambda: hub_state(simulator, entry),
        undo=undo_call,
        fuzz=HUB_FUZZ,
        explicit=[
            (service, {"config_entry_id": entry.entry_id} | payload, outcome)
            for service, payload, outcome in explicit
        ],
    )

    print("OUTCOMES", examples, outcomes)
    assert examples >= 1000, outcomes
    reached = {
        "set_power_limits accepted",
        "clear_power_limits accepted",
        "set_charger_mode accepted",
        "unknown_circuit",
        "unknown_charger",
        "envelope_lower_above_upper",
        "invalid_boost_duration",
        "get_charging_plan accepted",
        "plan_unknown_charger",
        "plan_end_not_after_start",
        "plan_in_the_past",
    }
    assert reached <= outcomes.keys(), outcomes


def undo(entry: FrequenzMicrogridConfigEntry) -> None:
    """Back to a quiet hub: no envelopes, every charger in its default mode."""
    controller = entry.runtime_data.engine.controller
    for circuit_id in list(controller.circuit_limits.envelopes):
        controller.circuit_limits.clear(circuit_id)
    for charger_id in list(controller.charger_modes.states()):
        controller.charger_modes.set_mode(charger_id, ChargerMode.FAST)
        controller.charger_modes.set_solar_min_current(charger_id, False)
    assert controller.charger_modes.states() == {}, controller.charger_modes.states()


async def test_a_limit_step_at_the_end_of_the_calendar_is_a_schema_error(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """A start with no UTC time (year 9999 west of UTC) is refused, not a crash.

    Found by the fuzzer: `as_utc` raised `OverflowError` past the schema.
    """
    entry = await setup_steerable(hass, simulator)
    before = hub_state(simulator, entry)
    for start in ("9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"):
        payload = {
            "config_entry_id": entry.entry_id,
            "steps": [{"start": start, "upper": 1000}],
        }
        with pytest.raises(vol.Invalid):
            await hass.services.async_call(
                DOMAIN, "set_power_limits", payload, blocking=True, return_response=True
            )
    assert hub_state(simulator, entry) == before


FLOW_FUZZ = settings(FUZZ, max_examples=60)
"""Per flow step: a valid payload reloads the entry, so fewer than for actions."""


async def test_circuit_flow_refuses_bad_input_with_translated_errors(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """Adding and changing circuits: form errors in translations, nothing changed."""
    entry = await setup_steerable(hass, simulator)
    translations = TRANSLATIONS["config_subentries"][SUBENTRY_CIRCUIT]
    outcomes: dict[str, int] = {}

    def count(outcome: str) -> None:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    async def configure(
        context: SubentryFlowContext, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Submit `payload`; the result if the flow accepted it, else None."""
        before = hub_state(simulator, entry)
        flow = await hass.config_entries.subentries.async_init(
            (entry.entry_id, SUBENTRY_CIRCUIT), context=context
        )
        assert flow["type"] is FlowResultType.FORM, flow
        try:
            result = dict(
                await hass.config_entries.subentries.async_configure(
                    flow["flow_id"], dict(payload)
                )
            )
        except vol.Invalid:
            count("schema")
            hass.config_entries.subentries.async_abort(flow["flow_id"])
            assert hub_state(simulator, entry) == before, payload
            return None
        if result["type"] is FlowResultType.FORM:
            hass.config_entries.subentries.async_abort(flow["flow_id"])
            assert result["errors"], payload
            form_errors = cast(dict[str, str], result["errors"])
            for error in form_errors.values():
                assert error in translations["error"], (error, payload)
                count(error)
            assert hub_state(simulator, entry) == before, payload
            return None
        count(f"{context['source']} accepted")
        await hass.async_block_till_done()
        return result

    name = mostly(
        st.sampled_from(["Garage bays", "Carport", "Bays 2"]),
        st.sampled_from(["grid", "GRID", f"Meter {GRID_METER}", "!!!", " ", "Ω"])
        | TEXT,
    )
    chargers = mostly(
        st.lists(
            st.sampled_from([str(GARAGE_WALLBOX), str(DRIVEWAY_WALLBOX)]),
            min_size=1,
            max_size=2,
            unique=True,
        ),
        st.lists(st.sampled_from(["999", "", "x", str(GRID_METER)]), max_size=3)
        | ANYTHING,
    )
    limit = mostly(st.floats(1, 500) | st.just(0.0), NUMBERS)
    form = payloads(
        {
            CONF_NAME: name,
            CONF_CHARGERS: chargers,
            CONF_FUSE_A: limit,
            CONF_POWER_LIMIT_KW: limit,
            CONF_METER: mostly(
                st.just(str(GRID_METER)), st.sampled_from(["999", "", "-1"]) | SCALARS
            ),
        }
    )

    async def add(payload: dict[str, Any]) -> None:
        if await configure({"source": "user"}, payload) is None:
            return
        for subentry_id in list(entry.subentries):
            hass.config_entries.async_remove_subentry(entry, subentry_id)
        await hass.async_block_till_done()

    # Each refusal the test counts on once for sure, whatever the fuzzer draws
    # on this machine (as hypothesis's @example would).
    garage = [str(GARAGE_WALLBOX)]
    refusals: list[tuple[dict[str, Any], str]] = [
        ({CONF_NAME: "grid", CONF_CHARGERS: garage, CONF_FUSE_A: 16.0}, "name_taken"),
        ({CONF_NAME: "Carport", CONF_CHARGERS: garage}, "no_limit"),
        (
            {CONF_NAME: "Carport", CONF_CHARGERS: garage, CONF_FUSE_A: 0.0},
            "not_a_positive_number",
        ),
    ]
    await send_explicit(outcomes, add, refusals)
    examples = await run_property(hass, form, add, FLOW_FUZZ)

    original = {
        CONF_NAME: "Garage bays",
        CONF_CHARGERS: [str(GARAGE_WALLBOX)],
        CONF_FUSE_A: 16.0,
    }
    assert await configure({"source": "user"}, original) is not None
    (subentry_id,) = entry.subentries

    async def change(payload: dict[str, Any]) -> None:
        context: SubentryFlowContext = {
            "source": SOURCE_RECONFIGURE,
            "subentry_id": subentry_id,
        }
        if await configure(context, payload) is None:
            return
        assert await configure(context, original) is not None

    await change(original)
    examples += await run_property(hass, form, change, FLOW_FUZZ)

    assert examples >= 120, outcomes
    reached = {"user accepted", "reconfigure accepted", "no_limit"}
    reached |= {"name_taken", "not_a_positive_number"}
    assert reached <= outcomes.keys(), outcomes


async def test_reconfigure_and_reauth_refuse_bad_input_with_translated_errors(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """The main entry's reconfigure and reauth: form errors, aborts, data kept."""
    configured = microgrid_entry(simulator.url)
    configured.add_to_hass(hass)
    errors = TRANSLATIONS["config"]["error"]
    aborts = TRANSLATIONS["config"]["abort"]
    outcomes: dict[str, int] = {}

    def count(outcome: str) -> None:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    async def submit(context: ConfigFlowContext, payload: dict[str, Any]) -> None:
        before = (dict(configured.data), dict(configured.options))
        flow = await hass.config_entries.flow.async_init(
            DOMAIN,
            context=context,
            data=dict(configured.data) if context["source"] == SOURCE_REAUTH else None,
        )
        if flow["type"] is not FlowResultType.FORM:
            assert flow["reason"] in aborts, flow
            count(f"init {flow['reason']}")
            return
        try:
            result = await hass.config_entries.flow.async_configure(
                flow["flow_id"], dict(payload)
            )
        except vol.Invalid:
            count("schema")
            hass.config_entries.flow.async_abort(flow["flow_id"])
            assert (dict(configured.data), dict(configured.options)) == before
            return
        if result["type"] is FlowResultType.FORM:
            hass.config_entries.flow.async_abort(flow["flow_id"])
            assert result["errors"], payload
            for error in result["errors"].values():
                assert error in errors, (error, payload)
                assert error != "unknown", payload
                count(error)
            assert (dict(configured.data), dict(configured.options)) == before
            return
        assert result["type"] is FlowResultType.ABORT, result
        assert result["reason"] in aborts, result
        count(result["reason"])
        await hass.async_block_till_done()
        if result["reason"] not in {"reconfigure_successful", "reauth_successful"}:
            assert (dict(configured.data), dict(configured.options)) == before
            return
        # Only ever this machine's simulator (a valid payload cannot lead elsewhere).
        assert "//127.0.0.1:" in configured.data[CONF_URL], configured.data
        hass.config_entries.async_update_entry(configured, data=before[0])

    secret = mostly(st.text(max_size=20), ANYTHING)
    reconfigure = payloads(
        {
            CONF_URL: urls(simulator.port),
            CONF_API_KEY: secret,
            CONF_SIGNING_SECRET: secret,
            CONF_ASSETS_URL: mostly(st.just(""), urls(simulator.port).odd),
        }
    )
    reauth = payloads({CONF_API_KEY: secret, CONF_SIGNING_SECRET: secret})

    async def submit_reconfigure(payload: dict[str, Any]) -> None:
        await submit(
            {"source": SOURCE_RECONFIGURE, "entry_id": configured.entry_id}, payload
        )

    async def submit_reauth(payload: dict[str, Any]) -> None:
        await submit(
            {"source": SOURCE_REAUTH, "entry_id": configured.entry_id}, payload
        )

    # The outcomes the test counts on, once for sure (as hypothesis's @example).
    await send_explicit(
        outcomes,
        submit_reconfigure,
        [
            ({CONF_URL: simulator.url}, "reconfigure_successful"),
            ({CONF_URL: simulator.url, CONF_API_KEY: "clé"}, "invalid_key_characters"),
        ],
    )
    await send_explicit(
        outcomes,
        submit_reauth,
        [
            ({CONF_API_KEY: "another-key"}, "reauth_successful"),
            ({CONF_API_KEY: "key\n"}, "invalid_key_characters"),
        ],
    )
    examples = await run_property(hass, reconfigure, submit_reconfigure, FLOW_FUZZ)
    examples += await run_property(hass, reauth, submit_reauth, FLOW_FUZZ)
    assert examples >= 120, outcomes
    reached = {"reconfigure_successful", "reauth_successful", "invalid_key_characters"}
    assert reached <= outcomes.keys(), outcomes
    assert configured.unique_id == str(HOME_MICROGRID_ID)
