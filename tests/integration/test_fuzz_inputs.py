"""Bad input, fuzzed: every action and the config and options flows (issue 18, §3).

Hypothesis generates payloads (wrong types, out-of-range and huge numbers, NaN and
infinities, numeric strings, missing and extra keys, unknown entries and
components, unicode) and sends them through Home Assistant's own entry points to
one simulator over real gRPC. Only translated errors may come back: Home
Assistant's schema error (`vol.Invalid`, as `async_call` and flows raise it) or a
`ServiceValidationError` naming its translation. Anything else escapes the check
and hypothesis shrinks it to the smallest failing payload.

A refused action must change nothing: no request reaches the simulator and the
steering (its proposals and targets) is as before. An action the fuzzer happened to
make valid is undone, so the next payload starts from the same quiet microgrid.

Hypothesis drives a synchronous test function, so it runs in Home Assistant's
executor and hands every call to the event loop: shrinking and the example
database work as in any property test, on one simulator and one loaded entry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import timedelta
import json
from pathlib import Path
from typing import Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
from hypothesis import HealthCheck, given, settings, strategies as st
import probatio as vol
import pytest
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
from custom_components.frequenz_microgrid.runtime import (
    FrequenzMicrogridConfigEntry,
)
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator

from .conftest import HOME_MICROGRID_ID, microgrid_entry
from .steering_helpers import (
    BATTERY,
    BATTERY_INVERTER,
    DRIVEWAY_WALLBOX,
    GARAGE_WALLBOX,
    GRID_METER,
    HOUSEHOLD,
    PV_INVERTER,
    setup_steerable,
)

TRANSLATIONS = json.loads(
    (
        Path(__file__).parents[2]
        / "custom_components"
        / DOMAIN
        / "translations"
        / "en.json"
    ).read_text(encoding="utf-8")
)
"""The integration's English translations: every error key we raise must be in it."""

pytestmark = pytest.mark.filterwarnings(
    # Home Assistant's loop thread uses `random` while hypothesis draws in the
    # executor; hypothesis takes that for a strategy using `random`.
    "ignore:Do not use the `random` module"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
"""Per action or flow step; fixed seed, so a run is reproducible on any machine."""

CALL_TIMEOUT_S = 30.0
"""Generous: one call that hangs must fail the test, not the whole session."""


# --- values ------------------------------------------------------------------------

_NUMERIC_STRINGS = st.sampled_from(
    ["1e400", "-1e400", "nan", "NaN", "inf", "-inf", "Infinity", " 12 ", "0x10",
     "1_000", "１２", "٣", "-0", "1e-400", "3.5", "", " "]
) | st.integers(300, 400).map(lambda digits: "9" * digits)  # fmt: skip
"""Strings `float()`/`int()` parse into something surprising (or not at all)."""

_NUMBERS = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.integers(),
    st.sampled_from([2**63, 2**64, -(2**63) - 1, 2**32]),
    st.integers(309, 400).map(lambda exponent: -(10**exponent)),
    st.integers(309, 400).map(lambda exponent: 10**exponent),
    st.floats(),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, -0.0]),
    _NUMERIC_STRINGS,
)
"""Numbers of every size and kind, including those no float or int can hold."""

_TEXT = st.text(max_size=30).filter(lambda text: "//" not in text)
"""Any text but a URL with a host: no generated value may lead off this machine."""
_SCALARS = st.one_of(_NUMBERS, st.booleans(), st.none(), _TEXT, st.binary(max_size=8))
_ANYTHING = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=3)
    ),
    max_leaves=6,
)
"""Any value a YAML script, a template or the websocket API could hand over."""

_COMPONENT_IDS = st.one_of(
    st.sampled_from(
        [
            GRID_METER,
            BATTERY_INVERTER,
            BATTERY,
            PV_INVERTER,
            GARAGE_WALLBOX,
            DRIVEWAY_WALLBOX,
            HOUSEHOLD,
            0,
            1,
            999,
            -1,
        ]
    ),
    _NUMBERS,
)
"""The scenario's components, unknown ones, and numbers that are no id at all."""

_POOL_MEMBERS = st.sampled_from(
    [BATTERY_INVERTER, PV_INVERTER, GARAGE_WALLBOX, DRIVEWAY_WALLBOX]
)
"""Components of some pool (not necessarily the one a proposal names)."""


@dataclass(frozen=True)
class Field:
    """What a payload's field may hold: a valid value, or an odd one of its kind."""

    valid: st.SearchStrategy[Any]
    odd: st.SearchStrategy[Any]


def _mostly(valid: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> Field:
    return Field(valid, odd)


@st.composite
def _payload(draw: st.DrawFn, fields: Mapping[str, Field]) -> dict[str, Any]:
    """Draw a valid payload of `fields` (some maybe missing), then break it a bit.

    Up to three mutations, each one of: a field given an odd value of its kind
    (NaN, a huge number, an unknown id), a field given any value at all, a field
    removed, or an unknown key added. Hypothesis favours extremes when it picks
    among alternatives, so a payload of only odd values would rarely get past
    Home Assistant's schema into the integration's own checks.
    """
    payload = {
        key: draw(field.valid)
        for key, field in fields.items()
        if draw(st.booleans()) or draw(st.booleans()) or draw(st.booleans())
    }
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(list(fields)))
        match draw(st.sampled_from(["odd", "odd", "any", "drop", "extra"])):
            case "odd":
                payload[key] = draw(fields[key].odd)
            case "any":
                payload[key] = draw(_ANYTHING)
            case "drop":
                payload.pop(key, None)
            case _:
                payload[draw(st.text(max_size=10))] = draw(_SCALARS)
    return payload


def _action_payloads(
    entry_id: str, other_ids: list[str]
) -> dict[str, st.SearchStrategy[Any]]:
    """Payload strategies of each action: mostly for `entry_id`, sometimes others."""
    entry = _mostly(
        st.just(entry_id), st.sampled_from(other_ids) | st.text(max_size=40)
    )
    pool = _mostly(
        st.sampled_from([pool.value for pool in Pool]),
        st.sampled_from(["grid", "PV", "", "batteries "]),
    )
    watts = _mostly(st.integers(-5000, 5000) | st.floats(-5000, 5000), _NUMBERS)
    priority = _mostly(st.integers(-100, 100), st.integers(-101, 101) | _NUMBERS)
    actor = _mostly(st.text(min_size=1, max_size=100), st.text(max_size=120))
    return {
        "propose_power": _payload(
            {
                "config_entry_id": entry,
                "pool": pool,
                "power": watts,
                "lower": watts,
                "upper": watts,
                "priority": priority,
                "actor": actor,
                "components": _mostly(
                    st.lists(_POOL_MEMBERS, min_size=1, max_size=2),
                    st.one_of(_COMPONENT_IDS, st.lists(_COMPONENT_IDS, max_size=4)),
                ),
            }
        ),
        "withdraw_proposal": _payload(
            {
                "config_entry_id": entry,
                "pool": pool,
                "actor": actor,
                "priority": priority,
            }
        ),
        "set_component_bounds": _payload(
            {
                "config_entry_id": entry,
                "component": _mostly(
                    st.sampled_from([BATTERY_INVERTER, BATTERY, PV_INVERTER]),
                    _COMPONENT_IDS,
                ),
                "lower": watts,
                "upper": watts,
                "validity": _mostly(
                    st.sampled_from([5, 60, 300, 900, "60"]), st.just(0) | _NUMBERS
                ),
            }
        ),
        "set_component_reactive_power": _payload(
            {
                "config_entry_id": entry,
                "component": _mostly(
                    st.sampled_from([BATTERY_INVERTER, PV_INVERTER]), _COMPONENT_IDS
                ),
                "power": _mostly(
                    st.integers(-7000, 7000) | st.floats(-7000, 7000), _NUMBERS
                ),
            }
        ),
        "get_power_status": _payload({"config_entry_id": entry}),
        **_reservation_payloads(entry),
    }


def _reservation_payloads(entry: Field) -> dict[str, st.SearchStrategy[Any]]:
    """Payloads of the reservation actions: periods around now, chargers, energies."""
    when = _mostly(
        st.builds(
            lambda minutes: (dt_util.now() + timedelta(minutes=minutes)).isoformat(),
            st.integers(-180, 3 * 24 * 60),
        ),
        st.one_of(_TEXT, _NUMBERS, st.just("2026-02-30T25:00:00")),
    )
    period = {"start": when, "end": when}
    return {
        "reserve_charger": _payload(
            {
                "config_entry_id": entry,
                "charger": _mostly(
                    st.sampled_from([GARAGE_WALLBOX, DRIVEWAY_WALLBOX, "any", "ANY"]),
                    _COMPONENT_IDS | _TEXT,
                ),
                **period,
                "energy_kwh": _mostly(st.floats(0, 200), _NUMBERS),
                "vehicle": _mostly(st.text(max_size=100), st.text(max_size=200)),
            }
        ),
        "cancel_reservation": _payload(
            {"config_entry_id": entry, "reservation_id": _mostly(_TEXT, _SCALARS)}
        ),
        "find_available_chargers": _payload({"config_entry_id": entry, **period}),
    }


# --- driving hypothesis from the event loop ------------------------------------------


async def run_property[T](
    hass: HomeAssistant,
    strategy: st.SearchStrategy[T],
    check: Callable[[T], Coroutine[Any, Any, None]],
    fuzz: settings = FUZZ,
) -> int:
    """Run `check` on examples of `strategy` until hypothesis is done; count them.

    The property runs in the executor and waits for each check on the event loop,
    so hypothesis can shrink a failure as usual while the simulator keeps serving.
    """
    loop = hass.loop
    examples = 0

    @fuzz
    @given(strategy)
    def prop(example: T) -> None:
        nonlocal examples
        examples += 1
        asyncio.run_coroutine_threadsafe(check(example), loop).result(CALL_TIMEOUT_S)

    await hass.async_add_executor_job(prop)
    return examples


def assert_translated(err: ServiceValidationError) -> None:
    """The error names a translation; ours must exist in `en.json`."""
    assert err.translation_domain is not None, repr(err)
    assert err.translation_key is not None, repr(err)
    if err.translation_domain == DOMAIN:
        assert err.translation_key in TRANSLATIONS["exceptions"], err.translation_key


# --- actions -------------------------------------------------------------------------


def steering_state(
    sim: MicrogridSimulator, entry: FrequenzMicrogridConfigEntry
) -> tuple[Any, ...]:
    """What a refused call must leave alone: requests at the simulator, steering.

    The steering is every pool's component sets with their targets and proposals
    (without their ages, which move with time).
    """
    status = entry.runtime_data.engine.controller.status()
    pools = {
        pool: [
            (
                sorted(component_set.component_ids),
                component_set.target_power,
                [
                    (p.source_id, p.priority, p.power, p.bounds, p.keep_alive)
                    for p in component_set.proposals
                ],
            )
            for component_set in pool_status.component_sets
        ]
        for pool, pool_status in status.pools.items()
    }
    return (sim.control.requests_received, pools)


async def test_actions_refuse_bad_input_with_translated_errors(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """≥ 1,000 payloads to the actions: translated refusals that change nothing."""
    entry = await setup_steerable(hass, simulator)
    other = MockConfigEntry(domain=DOMAIN, title="Not loaded", unique_id="other")
    other.add_to_hass(hass)
    wrong_domain = MockConfigEntry(domain="sun", title="Another integration")
    wrong_domain.add_to_hass(hass)
    outcomes: dict[str, int] = {}

    async def call(service: str, payload: dict[str, Any]) -> None:
        before = steering_state(simulator, entry)
        hub = entry.runtime_data.reservations
        assert hub is not None
        booked = list(hub.book)
        try:
            response = await hass.services.async_call(
                DOMAIN, service, dict(payload), blocking=True, return_response=True
            )
        except vol.Invalid:
            outcome = "schema"  # Home Assistant's, the same for every integration
        except ServiceValidationError as err:
            assert_translated(err)
            outcome = str(err.translation_key)
        else:
            outcomes["accepted"] = outcomes.get("accepted", 0) + 1
            if service == "reserve_charger" and response is not None:
                hub.book.cancel(str(response["reservation_id"]))
            await undo(service, payload)
            return
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        assert steering_state(simulator, entry) == before, (service, payload)
        assert list(hub.book) == booked, (service, payload)

    async def undo(service: str, payload: dict[str, Any]) -> None:
        """Withdraw a proposal the fuzzer made valid; wait out its distribution."""
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
        await hass.async_block_till_done()

    examples = 0
    for service, strategy in _action_payloads(
        entry.entry_id, [other.entry_id, wrong_domain.entry_id]
    ).items():

        async def check(payload: dict[str, Any], service: str = service) -> None:
            await call(service, payload)

        examples += await run_property(hass, strategy, check)

    assert examples >= 1000
    # Past the schema, into each of our checks, and sometimes valid.
    reached = {"accepted", "not_finite", "lower_above_upper", "unknown_component"}
    reached |= {"reservation_end_not_after_start", "unknown_reservation"}
    reached |= {"reactive_out_of_bounds", "reactive_not_an_inverter"}
    assert reached <= outcomes.keys(), outcomes


# --- config and options flows ------------------------------------------------------


def _urls(port: int) -> Field:
    """The simulator's URL, or URLs that lead to loopback ports or nowhere at all.

    Never another host: either a loopback address with junk around it, or text
    without `//`, which has no host a client could contact.
    """
    junk = _TEXT.filter(lambda s: "@" not in s)
    loopback = st.builds(
        lambda scheme, port_part, path, query: (
            f"{scheme}://127.0.0.1{port_part}{path}{query}"
        ),
        st.sampled_from(["grpc", "GRPC", "http", "grpcs"]),
        st.sampled_from([f":{port}", "", ":", ":0", ":99999", ":-1", ":abc"]),
        st.sampled_from(["", "/", "/x"]),
        st.one_of(
            st.sampled_from(["", "?ssl=false", "?ssl=true", "?ssl=maybe", "?x=1"]),
            junk.map(lambda s: "?" + s),
        ),
    )
    valid = st.sampled_from(
        [f"grpc://127.0.0.1:{port}", f"grpc://127.0.0.1:{port}?ssl=false"]
    )
    return Field(valid, st.one_of(loopback, junk))


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

    secret = _mostly(st.text(max_size=20), _ANYTHING)
    connect = _payload(
        {CONF_URL: _urls(simulator.port), CONF_API_KEY: secret}
        | {CONF_SIGNING_SECRET: secret}
    )
    demo = _payload(
        {
            CONF_SCENARIO: _mostly(
                st.sampled_from(DEMO_SCENARIOS), st.sampled_from(["HOME", "x", ""])
            )
        }
    )
    options = _payload(
        {
            CONF_FRESHNESS_S: _mostly(st.floats(2, 300), st.floats(0, 400) | _NUMBERS),
            CONF_DEFAULT_PRIORITY: _mostly(
                st.integers(-100, 100), st.integers(-101, 101) | _NUMBERS
            ),
            CONF_REAPPLY_SETPOINTS: _mostly(st.booleans(), _SCALARS),
        }
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
