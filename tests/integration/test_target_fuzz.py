"""Bad input, fuzzed, for `set_charging_target` and `clear_charging_target`.

The harness of `test_hub_fuzz` (one simulator over real gRPC, hypothesis
derandomized in the executor). A refused call comes back as Home Assistant's
schema error or a translated `ServiceValidationError`, sends nothing to the
simulator and leaves every target as it was; a payload the fuzzer happened to
make valid is undone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
from hypothesis import settings, strategies as st
import probatio as vol

from custom_components.frequenz_microgrid.const import DOMAIN
from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator

from .steering_helpers import DRIVEWAY_WALLBOX, GARAGE_WALLBOX, setup_steerable
from .test_fuzz_inputs import (
    _COMPONENT_IDS,
    _NUMBERS,
    _TEXT,
    FUZZ,
    _mostly,
    _payload,
    assert_translated,
    pytestmark as pytestmark,
    run_property,
    steering_state,
)

TARGET_FUZZ = settings(FUZZ, max_examples=400)

_WHEN = _mostly(
    st.builds(
        lambda minutes: (dt_util.now() + timedelta(minutes=minutes)).isoformat(),
        st.integers(-600, 9 * 24 * 60),
    ),
    st.one_of(
        _TEXT,
        _NUMBERS,
        st.sampled_from(["2026-02-30T25:00:00", "9999-12-31T23:59:59-12:00"]),
    ),
)
_KWH = _mostly(
    st.floats(0.1, 120.0) | st.integers(1, 120),
    _NUMBERS | st.sampled_from([0, -5, 1e9]),
)


def target_state(
    sim: MicrogridSimulator, entry: FrequenzMicrogridConfigEntry
) -> tuple[Any, ...]:
    """What a refused call must leave alone: the steering and every target."""
    targets = entry.runtime_data.engine.controller.charging_targets
    return steering_state(sim, entry), targets.targets()


async def test_target_actions_refuse_bad_input_with_translated_errors(
    hass: HomeAssistant, simulator: MicrogridSimulator
) -> None:
    """≥ 600 payloads: translated refusals that change nothing."""
    entry = await setup_steerable(hass, simulator)
    targets = entry.runtime_data.engine.controller.charging_targets
    entry_field = _mostly(st.just(entry.entry_id), st.just("not-an-entry") | _TEXT)
    chargers = _mostly(
        st.sampled_from([GARAGE_WALLBOX, DRIVEWAY_WALLBOX, str(GARAGE_WALLBOX)]),
        _COMPONENT_IDS,
    )
    strategies = {
        "set_charging_target": _payload(
            {
                "config_entry_id": entry_field,
                "charger": chargers,
                "energy_kwh": _KWH,
                "departure": _WHEN,
                "vehicle_capacity_kwh": _KWH,
            }
        ),
        "clear_charging_target": _payload(
            {"config_entry_id": entry_field, "charger": chargers}
        ),
    }
    # The SoC field is rarer: most chargers report none, so it is mostly refused.
    strategies["set_charging_target_soc"] = _payload(
        {
            "config_entry_id": entry_field,
            "charger": chargers,
            "soc": _mostly(st.floats(1, 100), _NUMBERS),
            "departure": _WHEN,
        }
    )
    outcomes: dict[str, int] = {}

    async def call(service: str, payload: dict[str, Any]) -> None:
        before = target_state(simulator, entry)
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
            for charger_id in list(targets.targets()):
                targets.clear(charger_id)
            await hass.async_block_till_done()
            return
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        assert target_state(simulator, entry) == before, (service, payload)

    # Each refusal once for sure, whatever the fuzzer draws on this machine.
    hour = dt_util.now() + timedelta(hours=1)
    for payload, expected in (
        ({"charger": 999, "energy_kwh": 5}, "unknown_charger"),
        ({"energy_kwh": 0}, "target_energy_not_positive"),
        (
            {"energy_kwh": 5, "departure": "2020-01-01T00:00:00+00:00"},
            "target_departure_in_past",
        ),
        (
            {"energy_kwh": 5, "departure": (hour + timedelta(days=9)).isoformat()},
            "target_departure_too_far",
        ),
        ({"soc": 80}, "target_soc_not_reported"),
    ):
        await call(
            "set_charging_target",
            {
                "config_entry_id": entry.entry_id,
                "charger": GARAGE_WALLBOX,
                "departure": hour.isoformat(),
                **payload,
            },
        )
        assert outcomes.get(expected) == 1, (payload, outcomes)

    examples = 0
    for name, strategy in strategies.items():
        service = name.removesuffix("_soc")

        async def check(payload: dict[str, Any], service: str = service) -> None:
            await call(service, payload)

        examples += await run_property(hass, strategy, check, TARGET_FUZZ)

    print("OUTCOMES", examples, outcomes)
    assert examples >= 600, outcomes
    # The fuzzer gets past the schema to the steering's own checks, and some
    # of its payloads are valid (undone above).
    reached = {
        "set_charging_target accepted",
        "clear_charging_target accepted",
        "schema",
        "unknown_charger",
        "target_departure_in_past",
        "target_departure_too_far",
        "target_energy_not_positive",
        "target_soc_not_reported",
    }
    assert reached <= outcomes.keys(), outcomes
    assert targets.targets() == {}
