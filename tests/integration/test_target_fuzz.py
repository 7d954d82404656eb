"""Bad input, fuzzed, for `set_charging_target` and `clear_charging_target`.

The harness of `fuzz` (one simulator over real gRPC, hypothesis derandomized in
the executor). A refused call comes back as Home Assistant's
schema error or a translated `ServiceValidationError`, sends nothing to the
simulator and leaves every target as it was; a payload the fuzzer happened to
make valid is undone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from hypothesis import settings, strategies as st

from custom_components.frequenz_microgrid.runtime import FrequenzMicrogridConfigEntry
from custom_components.frequenz_microgrid.simulator import MicrogridSimulator

from .fuzz import (
    COMPONENT_IDS,
    FUZZ,
    FUZZ_WARNINGS,
    NUMBERS,
    TEXT,
    fuzz_actions,
    mostly,
    payloads,
    steering_state,
    times_from_now,
)
from .steering_helpers import DRIVEWAY_WALLBOX, GARAGE_WALLBOX, setup_steerable

pytestmark = FUZZ_WARNINGS

TARGET_FUZZ = settings(FUZZ, max_examples=400)

_WHEN = mostly(
    times_from_now(st.integers(-600, 9 * 24 * 60)),
    st.one_of(
        TEXT,
        NUMBERS,
        st.sampled_from(["2026-02-30T25:00:00", "9999-12-31T23:59:59-12:00"]),
    ),
)
_KWH = mostly(
    st.floats(0.1, 120.0) | st.integers(1, 120),
    NUMBERS | st.sampled_from([0, -5, 1e9]),
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
    entry_field = mostly(st.just(entry.entry_id), st.just("not-an-entry") | TEXT)
    chargers = mostly(
        st.sampled_from([GARAGE_WALLBOX, DRIVEWAY_WALLBOX, str(GARAGE_WALLBOX)]),
        COMPONENT_IDS,
    )
    calls = [
        (
            "set_charging_target",
            payloads(
                {
                    "config_entry_id": entry_field,
                    "charger": chargers,
                    "energy_kwh": _KWH,
                    "departure": _WHEN,
                    "vehicle_capacity_kwh": _KWH,
                }
            ),
        ),
        (
            "clear_charging_target",
            payloads({"config_entry_id": entry_field, "charger": chargers}),
        ),
        # The SoC field is rarer: most chargers report none, so it is mostly refused.
        (
            "set_charging_target",
            payloads(
                {
                    "config_entry_id": entry_field,
                    "charger": chargers,
                    "soc": mostly(st.floats(1, 100), NUMBERS),
                    "departure": _WHEN,
                }
            ),
        ),
    ]

    async def undo(*_: Any) -> None:
        for charger_id in list(targets.targets()):
            targets.clear(charger_id)

    hour = dt_util.now() + timedelta(hours=1)
    base: dict[str, Any] = {
        "config_entry_id": entry.entry_id,
        "charger": GARAGE_WALLBOX,
        "departure": hour.isoformat(),
    }
    refusals: list[tuple[dict[str, Any], str]] = [
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
    ]
    examples, outcomes = await fuzz_actions(
        hass,
        calls,
        state=lambda: target_state(simulator, entry),
        undo=undo,
        fuzz=TARGET_FUZZ,
        explicit=[
            ("set_charging_target", base | payload, outcome)
            for payload, outcome in refusals
        ],
    )

    print("OUTCOMES", examples, outcomes)
    assert examples >= 600, outcomes
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
