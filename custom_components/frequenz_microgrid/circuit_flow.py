"""User-defined circuits as config subentries (subentry type ``circuit``, issue 15).

A circuit the topology does not state – a garage feeder whose meter reports no
rating, or a group of wallboxes on one breaker – is added here: a name, the
chargers behind it, a fuse in A per phase and/or a limit in kW, optionally the
meter that measures it. The entry reloads when its circuits change, and the
steering holds every circuit from the first tick (`engine.hub.circuits`).

The circuit's id (used by the `set_power_limits` action and in unique ids) is
the slug of its name, fixed when it is added.
"""

from __future__ import annotations

from collections.abc import Mapping
import itertools
import math
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigSubentry,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)
from homeassistant.util import slugify
import probatio as vol

from .const import LOGGER
from .engine.graph import Topology
from .engine.hub.circuits import ROOT_CIRCUIT_ID, Circuit

SUBENTRY_CIRCUIT = "circuit"
CONF_NAME = "name"
CONF_CHARGERS = "chargers"
CONF_FUSE_A = "fuse_a"
CONF_POWER_LIMIT_KW = "power_limit_kw"
CONF_METER = "meter"
CONF_CIRCUIT_ID = "circuit_id"

MAX_FUSE_A = 10_000
MAX_POWER_LIMIT_KW = 100_000


def user_circuits(entry: ConfigEntry[Any], *, log: bool = True) -> list[Circuit]:
    """The circuits the entry's ``circuit`` subentries define, in creation order.

    A subentry whose data does not read (edited by hand: no id, a fuse that is
    not a positive number) defines no circuit: it is skipped, logged as an
    error (`log`), so the entry still sets up; reconfiguring it repairs it.
    """
    circuits: list[Circuit] = []
    for subentry in entry.subentries.values():
        if subentry.subentry_type != SUBENTRY_CIRCUIT:
            continue
        try:
            circuits.append(circuit_of(subentry))
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            if log:
                LOGGER.error(
                    "The circuit %r of %s is damaged and not steered: %s. "
                    "Reconfigure it (or delete and add it again) to repair it",
                    subentry.title,
                    entry.title,
                    err,
                )
    return circuits


def circuit_subentries(entry: ConfigEntry[Any]) -> dict[str, str]:
    """The id of the subentry defining each user-defined circuit, by circuit id.

    A circuit's device and entities belong to its subentry, so Home Assistant
    lists them with it and removes them with it. A damaged subentry
    (`user_circuits`) defines none.
    """
    found: dict[str, str] = {}
    for subentry in entry.subentries.values():
        if subentry.subentry_type != SUBENTRY_CIRCUIT:
            continue
        try:
            circuit = circuit_of(subentry)
        except KeyError, TypeError, ValueError, OverflowError:
            continue  # logged by `user_circuits`
        found[circuit.circuit_id] = subentry.subentry_id
    return found


def circuit_of(subentry: ConfigSubentry) -> Circuit:
    """The circuit one subentry defines.

    Raises:
        KeyError, TypeError, ValueError: the data does not define one (no id;
            a charger, meter, fuse or limit that is not a number; a fuse or
            limit that is negative or not finite).
    """
    data = subentry.data
    fuse = _limit(data.get(CONF_FUSE_A), CONF_FUSE_A)
    power_kw = _limit(data.get(CONF_POWER_LIMIT_KW), CONF_POWER_LIMIT_KW)
    meter = data.get(CONF_METER)
    circuit_id = data[CONF_CIRCUIT_ID]
    if isinstance(circuit_id, bool) or not isinstance(circuit_id, str | int):
        raise TypeError(f"circuit id {circuit_id!r} is not a name")
    if not str(circuit_id):
        raise ValueError("the circuit id is empty")
    return Circuit(
        circuit_id=str(circuit_id),
        name=subentry.title,
        charger_ids=frozenset(int(c) for c in data.get(CONF_CHARGERS) or []),
        phase_limit_a=fuse,
        power_limit_w=None if power_kw is None else power_kw * 1000.0,
        meter_id=None if meter is None else int(meter),
        origin="user",
    )


def _limit(value: Any, key: str) -> float | None:
    """A stored fuse or limit: `None`, or a finite number ≥ 0 (else raise)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{key} {value!r} is not a number")
    number = float(value)
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{key} {value!r} is not a positive number")
    return number


def circuits_fingerprint(entry: ConfigEntry[Any]) -> tuple[Circuit, ...]:
    """What the steering was built from: reload when this changes."""
    return tuple(user_circuits(entry, log=False))


def _options(topology: Topology, ids: frozenset[int]) -> list[SelectOptionDict]:
    return [
        SelectOptionDict(
            value=str(cid),
            label=f"{topology.components[cid].name or cid} ({cid})",
        )
        for cid in sorted(ids)
    ]


def _number(maximum: float, unit: str) -> NumberSelector:
    return NumberSelector(
        NumberSelectorConfig(
            min=0,
            max=maximum,
            step=0.1,
            mode=NumberSelectorMode.BOX,
            unit_of_measurement=unit,
        )
    )


class CircuitSubentryFlow(ConfigSubentryFlow):
    """Add or change a circuit: name, chargers, fuse and/or kW limit, meter."""

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Show the form; validate and create the circuit."""
        return await self._async_form("user", user_input, None)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a circuit; its id (used by actions and unique ids) stays."""
        return await self._async_form(
            "reconfigure", user_input, self._get_reconfigure_subentry()
        )

    async def _async_form(
        self,
        step_id: str,
        user_input: dict[str, Any] | None,
        subentry: ConfigSubentry | None,
    ) -> SubentryFlowResult:
        entry = self._get_entry()
        if entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="entry_not_loaded")
        topology: Topology = entry.runtime_data.engine.topology
        if not topology.ev_charger_ids:
            return self.async_abort(reason="no_chargers")
        own_id = None if subentry is None else _own_id(subentry)
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _errors(entry, topology, user_input, own_id)
            if not errors and subentry is not None:
                return self.async_update_and_abort(
                    entry,
                    subentry,
                    title=str(user_input[CONF_NAME]).strip(),
                    data=_data(
                        user_input,
                        own_id
                        if own_id is not None
                        else _new_circuit_id(entry, str(user_input[CONF_NAME])),
                    ),
                )
            if not errors:
                circuit_id = _new_circuit_id(entry, str(user_input[CONF_NAME]))
                return self.async_create_entry(
                    title=str(user_input[CONF_NAME]).strip(),
                    data=_data(user_input, circuit_id),
                    unique_id=circuit_id,
                )
        schema = vol.Schema(
            {
                vol.Required(CONF_NAME): TextSelector(),
                vol.Required(CONF_CHARGERS): SelectSelector(
                    SelectSelectorConfig(
                        options=_options(topology, topology.ev_charger_ids),
                        multiple=True,
                        mode=SelectSelectorMode.LIST,
                    )
                ),
                vol.Optional(CONF_FUSE_A): _number(MAX_FUSE_A, "A"),
                vol.Optional(CONF_POWER_LIMIT_KW): _number(MAX_POWER_LIMIT_KW, "kW"),
                vol.Optional(CONF_METER): SelectSelector(
                    SelectSelectorConfig(
                        options=_options(topology, topology.meter_ids),
                        mode=SelectSelectorMode.DROPDOWN,
                    )
                ),
            }
        )
        shown = user_input or ({} if subentry is None else _form_values(subentry))
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(schema, shown),
            errors=errors,
        )


def _own_id(subentry: ConfigSubentry) -> str | None:
    """The id of a circuit being changed; `None` if its data lost it (a new one)."""
    circuit_id = subentry.data.get(CONF_CIRCUIT_ID)
    if isinstance(circuit_id, bool) or not isinstance(circuit_id, str | int):
        return None
    return str(circuit_id) or None


def _form_values(subentry: ConfigSubentry) -> dict[str, Any]:
    """A stored circuit as the form shows it (empty or damaged fields left out)."""
    data = subentry.data
    chargers = data.get(CONF_CHARGERS)
    values: dict[str, Any] = {
        CONF_NAME: subentry.title,
        CONF_CHARGERS: [str(c) for c in chargers] if isinstance(chargers, list) else [],
    }
    for key in (CONF_FUSE_A, CONF_POWER_LIMIT_KW):
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            values[key] = value
    if data.get(CONF_METER) is not None:
        values[CONF_METER] = str(data[CONF_METER])
    return values


def _errors(
    entry: ConfigEntry[Any],
    topology: Topology,
    user_input: Mapping[str, Any],
    own_id: str | None,
) -> dict[str, str]:
    """Form errors (translated keys), empty when the circuit can be stored.

    `own_id`: the id of the circuit being changed (its name may stay). Names
    are compared as shown (slugs of titles); ids need not be (`_new_circuit_id`).
    """
    errors: dict[str, str] = {}
    name = str(user_input.get(CONF_NAME, "")).strip()
    circuit_id = slugify(name)
    taken = {ROOT_CIRCUIT_ID} | {f"meter_{m}" for m in topology.meter_ids}
    taken |= {
        slugify(subentry.title)
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_CIRCUIT and _own_id(subentry) != own_id
    }
    if not any(character.isalnum() for character in name):
        errors[CONF_NAME] = "invalid_name"  # slugify would make it "unknown"
    elif circuit_id in taken:
        errors[CONF_NAME] = "name_taken"
    chargers = user_input.get(CONF_CHARGERS) or []
    if not chargers or not {int(c) for c in chargers} <= topology.ev_charger_ids:
        errors[CONF_CHARGERS] = "no_chargers_chosen"
    fuse = user_input.get(CONF_FUSE_A)
    power = user_input.get(CONF_POWER_LIMIT_KW)
    for key, value in ((CONF_FUSE_A, fuse), (CONF_POWER_LIMIT_KW, power)):
        if value is not None and not (math.isfinite(value) and value > 0):
            errors[key] = "not_a_positive_number"
    if fuse is None and power is None:
        errors["base"] = "no_limit"
    meter = user_input.get(CONF_METER)
    if meter is not None and int(meter) not in topology.meter_ids:
        errors[CONF_METER] = "unknown_meter"
    return errors


def _new_circuit_id(entry: ConfigEntry[Any], name: str) -> str:
    """A new circuit's id: its name's slug, numbered if a renamed circuit has it.

    Ids stay when circuits are renamed (unique ids and actions use them), so
    "Garage" renamed "Shed" keeps ``garage``, and a new "Garage" is ``garage_2``.
    """
    topology: Topology = entry.runtime_data.engine.topology
    ids = {
        _own_id(subentry)
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_CIRCUIT
    } | {ROOT_CIRCUIT_ID}  # damaged circuits too: repaired, they keep theirs
    ids |= {f"meter_{m}" for m in topology.meter_ids}  # the feeders' circuits
    base = slugify(name)
    return next(
        candidate
        for n in itertools.count(1)
        if (candidate := base if n == 1 else f"{base}_{n}") not in ids
    )


def _data(user_input: Mapping[str, Any], circuit_id: str) -> dict[str, Any]:
    """What the subentry keeps (numbers as numbers, ids as ints).

    A changed circuit keeps its id; a new one gets `_new_circuit_id`.
    """
    fuse = user_input.get(CONF_FUSE_A)
    power = user_input.get(CONF_POWER_LIMIT_KW)
    meter = user_input.get(CONF_METER)
    return {
        CONF_CIRCUIT_ID: circuit_id,
        CONF_CHARGERS: sorted(int(c) for c in user_input[CONF_CHARGERS]),
        CONF_FUSE_A: None if fuse is None else float(fuse),
        CONF_POWER_LIMIT_KW: None if power is None else float(power),
        CONF_METER: None if meter is None else int(meter),
    }
