"""Bad input, fuzzed, for the charging-hub actions and flows (issue 18, §3).

The same harness as `test_fuzz_inputs` (one simulator over real gRPC, hypothesis
derandomized in the executor) for what came later: `set_power_limits`,
`clear_power_limits`, `set_charger_mode`, the circuit subentry flow (add and
change) and the main entry's reconfigure and reauth flows.

A refused call comes back as Home Assistant's schema error or a translated
`ServiceValidationError` / form error, sends nothing to the simulator and leaves
the envelopes, the charger modes, the subentries and the entry's data as they
were. A payload the fuzzer happened to make valid is undone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from homeassistant.config_entries import SOURCE_REAUTH, SOURCE_RECONFIGURE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
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

from .conftest import microgrid_entry
from .steering_helpers import (
    DRIVEWAY_WALLBOX,
    GARAGE_WALLBOX,
    GRID_METER,
    setup_steerable,
)
from .test_fuzz_inputs import (
    pytestmark as pytestmark,
    _ANYTHING,
    _COMPONENT_IDS,
    _NUMBERS,
    _SCALARS,
    _TEXT,
    FUZZ,
    TRANSLATIONS,
    _mostly,
    _payload,
    _urls,
    assert_translated,
    run_property,
    steering_state,
)

HUB_FUZZ = settings(FUZZ, max_examples=400)
"""Per action: 1,200 payloads in all, a few seconds."""

_CIRCUITS = _mostly(
    st.sampled_from(["grid", f"meter_{GRID_METER}"]),
    st.sampled_from(["", " grid", "GRID", "meter_0", "unknown"]) | _TEXT | _NUMBERS,
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
_WHEN = _mostly(
    st.builds(
        lambda minutes: (dt_util.now() + timedelta(minutes=minutes)).isoformat(),
        st.integers(-600, 3 * 24 * 60),
    ),
    st.one_of(_EDGE_DATES, _TEXT, _NUMBERS, st.just("2026-02-30T25:00:00")),
)
_WATTS = _mostly(st.integers(-50_000, 50_000) | st.floats(-5e4, 5e4), _NUMBERS)


@st.composite
def _steps(draw: st.DrawFn) -> list[Any]:
    step = _payload({"start": _WHEN, "lower": _WATTS, "upper": _WATTS})
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
    entry_field = _mostly(st.just(entry.entry_id), st.just(other_id) | _TEXT)
    chargers = _mostly(
        st.sampled_from([GARAGE_WALLBOX, DRIVEWAY_WALLBOX, str(GARAGE_WALLBOX)]),
        _COMPONENT_IDS,
    )
    strategies = {
        "set_power_limits": _payload(
            {
                "config_entry_id": entry_field,
                "circuit": _CIRCUITS,
                "steps": _mostly(_steps(), _ANYTHING),
                "tolerance": _mostly(st.floats(0, 500), _NUMBERS),
            }
        ),
        "clear_power_limits": _payload(
            {"config_entry_id": entry_field, "circuit": _CIRCUITS}
        ),
        "set_charger_mode": _payload(
            {
                "config_entry_id": entry_field,
                "charger": chargers,
                "mode": _mostly(
                    st.sampled_from(
                        [ChargerMode.BOOST.value] + [mode.value for mode in ChargerMode]
                    ),
                    st.sampled_from(["BOOST", "auto", "", " fast"]) | _TEXT,
                ),
                "boost_minutes": _mostly(
                    st.floats(0.5, 24 * 60)
                    | st.integers(1, 24 * 60)
                    | st.sampled_from([0, -1, 1441, 1e6]),
                    _NUMBERS,
                ),
            }
        ),
    }
    outcomes: dict[str, int] = {}

    async def call(service: str, payload: dict[str, Any]) -> None:
        before = hub_state(simulator, entry)
        try:
            await hass.services.async_call(
                DOMAIN, service, dict(payload), blocking=True, return_response=True
            )
        except vol.Invalid:
            outcome = "schema"
        except ServiceValidationError as err:
            assert_translated(err)
            outcome = str(err.translation_key)
        else:
            outcomes[f"{service} accepted"] = outcomes.get(f"{service} accepted", 0) + 1
            undo(entry)
            await hass.async_block_till_done()
            return
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        assert hub_state(simulator, entry) == before, (service, payload)

    examples = 0
    for service, strategy in strategies.items():

        async def check(payload: dict[str, Any], service: str = service) -> None:
            await call(service, payload)

        examples += await run_property(hass, strategy, check, HUB_FUZZ)

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
