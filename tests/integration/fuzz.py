"""The fuzzing harness the bad-input tests share (issue 18, §3).

Hypothesis generates payloads (wrong types, out-of-range and huge numbers, NaN and
infinities, numeric strings, missing and extra keys, unknown entries and
components, unicode) for Home Assistant's own entry points, on one simulator over
real gRPC. Only translated errors may come back: Home Assistant's schema error
(`vol.Invalid`, as `async_call` and flows raise it) or a `ServiceValidationError`
naming its translation. Anything else escapes the check and hypothesis shrinks it
to the smallest failing payload.

Hypothesis drives a synchronous test function, so it runs in Home Assistant's
executor and hands every call to the event loop (`run_property`): shrinking and
the example database work as in any property test, on one simulator and one
loaded entry. `fuzz_actions` is the check of an action: a refused call changes
nothing, an accepted one is undone.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
import json
from pathlib import Path
import re
from typing import Any

from homeassistant.core import HomeAssistant, ServiceResponse
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
from hypothesis import HealthCheck, given, settings, strategies as st
import probatio as vol
import pytest

from custom_components.frequenz_microgrid.const import DOMAIN
from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator

from .steering_helpers import (
    BATTERY,
    BATTERY_INVERTER,
    DRIVEWAY_WALLBOX,
    GARAGE_WALLBOX,
    GRID_METER,
    HOUSEHOLD,
    PV_INVERTER,
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

FUZZ_WARNINGS = pytest.mark.filterwarnings(
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

NUMBERS = st.one_of(
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

TEXT = st.text(max_size=30).filter(lambda text: "//" not in text)
"""Any text but a URL with a host: no generated value may lead off this machine."""
SCALARS = st.one_of(NUMBERS, st.booleans(), st.none(), TEXT, st.binary(max_size=8))
ANYTHING = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=3)
    ),
    max_leaves=6,
)
"""Any value a YAML script, a template or the websocket API could hand over."""

COMPONENT_IDS = st.one_of(
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
    NUMBERS,
)
"""The scenario's components, unknown ones, and numbers that are no id at all."""


@dataclass(frozen=True)
class Field:
    """What a payload's field may hold: a valid value, or an odd one of its kind."""

    valid: st.SearchStrategy[Any]
    odd: st.SearchStrategy[Any]


def mostly(valid: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> Field:
    """A field that is mostly `valid`; `payloads` breaks it with `odd` values."""
    return Field(valid, odd)


@st.composite
def payloads(draw: st.DrawFn, fields: Mapping[str, Field]) -> dict[str, Any]:
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
                payload[key] = draw(ANYTHING)
            case "drop":
                payload.pop(key, None)
            case _:
                payload[draw(st.text(max_size=10))] = draw(SCALARS)
    return payload


def times_from_now(minutes: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    """ISO times `minutes` from now, in Home Assistant's time zone."""
    return st.builds(
        lambda offset: (dt_util.now() + timedelta(minutes=offset)).isoformat(),
        minutes,
    )


def urls(port: int) -> Field:
    """The simulator's URL, or URLs that lead to loopback ports or nowhere at all.

    Never another host: either a loopback address with junk around it, or text
    without `//`, which has no host a client could contact.
    """
    junk = TEXT.filter(lambda s: "@" not in s)
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


async def send_explicit[T](
    outcomes: Mapping[str, int],
    check: Callable[[T], Coroutine[Any, Any, None]],
    examples: Iterable[tuple[T, str]],
) -> None:
    """Run `check` on each example, before any fuzzing; each counts its one outcome.

    As hypothesis's ``@example`` would: the outcomes a test counts on are reached
    whatever the fuzzer draws (its draws differ between a run alone and one in
    the xdist suite). `check` counts into `outcomes`; an example that counts
    anything but exactly its expected outcome is a wrong example and fails here.
    """
    for example, expected in examples:
        before = Counter(outcomes)
        await check(example)
        added = Counter(outcomes) - before
        assert added == Counter({expected: 1}), (example, expected, added)


def assert_translated(err: ServiceValidationError) -> None:
    """The error names a translation; ours must exist in `en.json`."""
    assert err.translation_domain is not None, repr(err)
    assert err.translation_key is not None, repr(err)
    if err.translation_domain == DOMAIN:
        assert err.translation_key in TRANSLATIONS["exceptions"], err.translation_key
        message = TRANSLATIONS["exceptions"][err.translation_key]["message"]
        # Exactly the placeholders the message shows: a missing one shows as
        # "{name}", an extra one is a value the user never sees.
        assert set(err.translation_placeholders or {}) == set(
            re.findall(r"{(\w+)}", message)
        ), (err.translation_key, err.translation_placeholders)


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


type Undo = Callable[[str, dict[str, Any], ServiceResponse], Coroutine[Any, Any, None]]
"""Undo an accepted call: its service, its payload and its response."""

type Explicit = tuple[str, dict[str, Any], str]
"""A call sent before the fuzzing: its service, its payload, its expected outcome."""


async def fuzz_actions(
    hass: HomeAssistant,
    calls: Sequence[tuple[str, st.SearchStrategy[dict[str, Any]]]],
    *,
    state: Callable[[], object],
    undo: Undo,
    fuzz: settings = FUZZ,
    explicit: Sequence[Explicit] = (),
) -> tuple[int, Counter[str]]:
    """Call each service with its payloads; return the examples and the outcomes.

    Every call is refused with a translated error (outcome: ``schema`` or its
    translation key), leaving `state()` as it was, or accepted (outcome:
    ``<service> accepted``) and undone before the next payload. The `explicit`
    calls go first through the same check (`send_explicit`), each asserted to
    have its expected outcome: each outcome a test counts on is then reached
    whatever the fuzzer draws on a machine.
    """
    outcomes: Counter[str] = Counter()

    async def call(service: str, payload: dict[str, Any]) -> None:
        before = state()
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
            outcomes[f"{service} accepted"] += 1
            await undo(service, payload, response)
            await hass.async_block_till_done()
            return
        outcomes[outcome] += 1
        assert state() == before, (service, payload)

    async def call_explicit(sent: tuple[str, dict[str, Any]]) -> None:
        await call(*sent)

    await send_explicit(
        outcomes,
        call_explicit,
        [((service, payload), outcome) for service, payload, outcome in explicit],
    )
    examples = 0
    for service, strategy in calls:

        async def check(payload: dict[str, Any], service: str = service) -> None:
            await call(service, payload)

        examples += await run_property(hass, strategy, check, fuzz)
    return examples, outcomes
