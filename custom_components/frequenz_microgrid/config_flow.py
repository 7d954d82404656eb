"""Config flow: connect to a microgrid (or the built-in demo), reauth, reconfigure.

The optional Assets API (URL, key, secret) is asked for in the connect and
reconfigure forms and in the options, checked by reading the inventory of the
microgrid the Microgrid API reported (another microgrid is refused), and kept in
the entry's options.

Every path that stores a URL or credentials first proves they work by reading the
microgrid's info and component list over the real API; the microgrid id from that
answer is the entry's unique id, so one microgrid can't be added twice and a
reconfigure can't silently point an entry at another microgrid.
"""

from __future__ import annotations

from collections.abc import Mapping
import math
from typing import Any

from frequenz.client.microgrid import MicrogridInfo
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlowWithReload,
)
from homeassistant.core import callback
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio as vol

from .assets import AssetsProblem, classify_assets_error, probe_assets
from .circuit_flow import SUBENTRY_CIRCUIT, CircuitSubentryFlow
from .connection import (
    ConnectionProblem,
    classify_error,
    is_sendable_key,
    probe_microgrid,
)
from .const import (
    ASSETS_SETTINGS,
    CONF_API_KEY,
    CONF_ASSETS_API_KEY,
    CONF_ASSETS_SIGNING_SECRET,
    CONF_ASSETS_URL,
    CONF_DEFAULT_PRIORITY,
    CONF_DEMO,
    CONF_FRESHNESS_S,
    CONF_REAPPLY_SETPOINTS,
    CONF_RESERVATION_GRACE_MIN,
    CONF_SCENARIO,
    CONF_SIGNING_SECRET,
    CONF_URL,
    CONNECT_TIMEOUT_S,
    DEFAULT_FRESHNESS_S,
    DEFAULT_PRIORITY,
    DEFAULT_REAPPLY_SETPOINTS,
    DEFAULT_RESERVATION_GRACE_MIN,
    DEMO_SCENARIOS,
    DEMO_UNIQUE_ID_PREFIX,
    DOMAIN,
    LOGGER,
    MAX_FRESHNESS_S,
    MAX_PRIORITY,
    MAX_RESERVATION_GRACE_MIN,
    MIN_FRESHNESS_S,
    MIN_PRIORITY,
    MIN_RESERVATION_GRACE_MIN,
)
from .forecast_sources import FORECAST_FIELDS, forecast_options
from .identity import microgrid_id, microgrid_title

URL_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
SECRET_SELECTOR = TextSelector(
    TextSelectorConfig(type=TextSelectorType.PASSWORD, autocomplete="off")
)

EXAMPLE_URL = "grpc://microgrid.example.com:443?ssl=true"
"""Shown in the forms as a placeholder: translations may not contain URLs."""

ERROR_FIELD: Mapping[ConnectionProblem, str] = {
    ConnectionProblem.INVALID_URL: CONF_URL,
    ConnectionProblem.CANNOT_CONNECT: CONF_URL,
    ConnectionProblem.INVALID_AUTH: CONF_API_KEY,
    ConnectionProblem.UNKNOWN: "base",
}
"""Which form field each problem is shown under (the user sees what to fix)."""

ASSETS_ERROR: Mapping[ConnectionProblem | AssetsProblem, tuple[str, str]] = {
    ConnectionProblem.INVALID_URL: (CONF_ASSETS_URL, "assets_invalid_url"),
    ConnectionProblem.CANNOT_CONNECT: (CONF_ASSETS_URL, "assets_cannot_connect"),
    ConnectionProblem.INVALID_AUTH: (CONF_ASSETS_API_KEY, "assets_invalid_auth"),
    ConnectionProblem.UNKNOWN: ("base", "unknown"),
    AssetsProblem.MICROGRID_MISMATCH: ("base", "assets_microgrid_mismatch"),
}
"""The field and message of each Assets API problem."""

ASSETS_FIELDS: dict[vol.Marker, Any] = {
    vol.Optional(CONF_ASSETS_URL): URL_SELECTOR,
    vol.Optional(CONF_ASSETS_API_KEY): SECRET_SELECTOR,
    vol.Optional(CONF_ASSETS_SIGNING_SECRET): SECRET_SELECTOR,
}
"""The optional Assets API fields (empty URL: no Assets API)."""


def _credentials_schema(*, key_required: bool) -> dict[vol.Marker, Any]:
    """Return the API key and signing secret fields of a form."""
    key_marker = vol.Required if key_required else vol.Optional
    return {
        key_marker(CONF_API_KEY): SECRET_SELECTOR,
        vol.Optional(CONF_SIGNING_SECRET): SECRET_SELECTOR,
    }


CONNECTION_SCHEMA = vol.Schema(
    {vol.Required(CONF_URL): URL_SELECTOR, **_credentials_schema(key_required=False)}
)
"""The form of a real microgrid: its URL, an optional API key and signing secret."""

CONNECT_SCHEMA = CONNECTION_SCHEMA.extend(ASSETS_FIELDS)
"""The connect and reconfigure form: the microgrid and the optional Assets API."""


def _box(minimum: float, maximum: float, unit: str | None = None) -> NumberSelector:
    """Return a whole-number input box from `minimum` to `maximum`."""
    config = NumberSelectorConfig(
        min=minimum, max=maximum, step=1, mode=NumberSelectorMode.BOX
    )
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


def _connection_data(user_input: Mapping[str, Any]) -> dict[str, str]:
    """Return the entry data for a real microgrid, leaving out empty credentials."""
    data = {CONF_URL: str(user_input[CONF_URL]).strip()}
    for key in (CONF_API_KEY, CONF_SIGNING_SECRET):
        if value := user_input.get(key):
            data[key] = value
    return data


def _with_credentials(
    stored: Mapping[str, Any], user_input: Mapping[str, Any]
) -> dict[str, Any]:
    """The entry data with the form's URL and credentials.

    A key and its signing secret go together: a new key replaces both (an empty
    secret then means the new key has none, so an old one is not sent with
    it); an empty key keeps both as stored.
    """
    data = dict(stored) | _connection_data(user_input)
    if user_input.get(CONF_API_KEY):
        secret = user_input.get(CONF_SIGNING_SECRET)
        if secret:
            data[CONF_SIGNING_SECRET] = secret
        else:
            data.pop(CONF_SIGNING_SECRET, None)
    return data


async def _async_probe(data: Mapping[str, Any]) -> MicrogridInfo | ConnectionProblem:
    """Probe the microgrid described by entry `data`: its info, or what went wrong."""
    try:
        info = await probe_microgrid(
            data[CONF_URL],
            api_key=data.get(CONF_API_KEY),
            signing_secret=data.get(CONF_SIGNING_SECRET),
            timeout_s=CONNECT_TIMEOUT_S,
        )
    except Exception as err:  # every failure becomes a form error
        problem = classify_error(err)
        if problem is ConnectionProblem.UNKNOWN:
            LOGGER.exception("Unexpected error while connecting to the microgrid")
        else:
            LOGGER.debug("Could not reach the microgrid: %s", err)
        return problem
    return info


def _url_only(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the URLs of earlier input: the only values a form is pre-filled with.

    Keys and secrets are never sent back to the browser.
    """
    return (
        {key: values[key] for key in (CONF_URL, CONF_ASSETS_URL) if key in values}
        if values
        else {}
    )


def _assets_settings(
    user_input: Mapping[str, Any], stored: Mapping[str, Any]
) -> dict[str, str]:
    """Return the Assets API options of a form: none when its URL is left empty.

    Empty key and secret fields keep the stored ones.
    """
    url = str(user_input.get(CONF_ASSETS_URL) or "").strip()
    if not url:
        return {}
    settings = {CONF_ASSETS_URL: url}
    for key in (CONF_ASSETS_API_KEY, CONF_ASSETS_SIGNING_SECRET):
        if value := user_input.get(key) or stored.get(key):
            settings[key] = value
    return settings


def _stored_assets(options: Mapping[str, Any]) -> dict[str, Any]:
    """Return the stored Assets API settings.

    Unchanged settings are not probed again: an Assets API outage must not keep
    the user from changing anything else.
    """
    return {key: options[key] for key in ASSETS_SETTINGS if key in options}


def _without_assets(options: Mapping[str, Any]) -> dict[str, Any]:
    """Return the options other than the Assets API settings."""
    return {key: value for key, value in options.items() if key not in ASSETS_SETTINGS}


async def _async_check_assets(
    settings: Mapping[str, str], microgrid: str | None
) -> dict[str, str]:
    """Read the inventory of `microgrid` with `settings`; return the form errors.

    No settings (no Assets API) is fine. The Assets API must know the very
    microgrid the Microgrid API reported, or the entry would mix two sites.
    """
    if not settings or microgrid is None:
        return {}
    if not is_sendable_key(settings.get(CONF_ASSETS_API_KEY, "")):
        return {CONF_ASSETS_API_KEY: "invalid_key_characters"}
    try:
        await probe_assets(
            settings[CONF_ASSETS_URL],
            int(microgrid),
            api_key=settings.get(CONF_ASSETS_API_KEY),
            signing_secret=settings.get(CONF_ASSETS_SIGNING_SECRET),
            timeout_s=CONNECT_TIMEOUT_S,
        )
    except Exception as err:  # every failure becomes a form error
        problem = classify_assets_error(err)
        if problem is ConnectionProblem.UNKNOWN:
            LOGGER.exception("Unexpected error while reading the Assets API")
        else:
            LOGGER.debug("Could not read the Assets API: %s", err)
        field, message = ASSETS_ERROR[problem]
        return {field: message}
    return {}


class FrequenzMicrogridConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a Frequenz microgrid, or the built-in demo microgrid."""

    VERSION = 1

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """User-defined circuits (issue 15) are subentries of the microgrid."""
        return {SUBENTRY_CIRCUIT: CircuitSubentryFlow}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> MicrogridOptionsFlow:
        """Return the options flow."""
        return MicrogridOptionsFlow()

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Let the user choose between a real microgrid and the demo."""
        return self.async_show_menu(step_id="user", menu_options=["connect", "demo"])

    async def _async_claim_microgrid(
        self, data: Mapping[str, Any]
    ) -> MicrogridInfo | dict[str, str]:
        """Probe the microgrid of `data` and take its id as this flow's unique id.

        Returns its info, or the form errors that say what to fix.
        """
        if not is_sendable_key(data.get(CONF_API_KEY, "")):
            return {CONF_API_KEY: "invalid_key_characters"}
        info = await _async_probe(data)
        if isinstance(info, ConnectionProblem):
            return {ERROR_FIELD[info]: info.value}
        await self.async_set_unique_id(microgrid_id(info))
        return info

    def _show_connection_form(
        self,
        step_id: str,
        prefill: Mapping[str, Any] | None,
        errors: dict[str, str],
    ) -> ConfigFlowResult:
        """Show the URL and credentials form, pre-filled with the URL only."""
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(
                CONNECT_SCHEMA, _url_only(prefill)
            ),
            description_placeholders={"example_url": EXAMPLE_URL},
            errors=errors,
        )

    async def async_step_connect(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Connect to a microgrid by URL, with an optional key and secret."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _connection_data(user_input)
            claimed = await self._async_claim_microgrid(data)
            if isinstance(claimed, MicrogridInfo):
                self._abort_if_unique_id_configured()
                assets = _assets_settings(user_input, {})
                errors = await _async_check_assets(assets, microgrid_id(claimed))
                if not errors:
                    return self.async_create_entry(
                        title=microgrid_title(claimed), data=data, options=assets
                    )
            else:
                errors = claimed
        return self._show_connection_form("connect", user_input, errors)

    async def async_step_demo(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Add the built-in demo: a microgrid simulated inside Home Assistant."""
        if user_input is not None:
            scenario = user_input[CONF_SCENARIO]
            await self.async_set_unique_id(f"{DEMO_UNIQUE_ID_PREFIX}{scenario}")
            self._abort_if_unique_id_configured()
            return self.async_create_entry(
                title=f"Demo microgrid ({scenario})",
                data={CONF_DEMO: True, CONF_SCENARIO: scenario},
            )

        return self.async_show_form(
            step_id="demo",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_SCENARIO, default=DEMO_SCENARIOS[0]): (
                        SelectSelector(
                            SelectSelectorConfig(
                                options=list(DEMO_SCENARIOS),
                                mode=SelectSelectorMode.LIST,
                                translation_key=CONF_SCENARIO,
                            )
                        )
                    )
                }
            ),
        )

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """Start re-authentication: the microgrid rejected the stored key."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new API key (and signing secret) and check it."""
        errors: dict[str, str] = {}
        entry = self._get_reauth_entry()
        if user_input is not None:
            data = _with_credentials(
                entry.data, {CONF_URL: entry.data[CONF_URL], **user_input}
            )
            claimed = await self._async_claim_microgrid(data)
            if isinstance(claimed, MicrogridInfo):
                self._abort_if_unique_id_mismatch(reason="wrong_microgrid")
                return self.async_update_reload_and_abort(entry, data=data)
            # The URL is not on this form: its problems show for the whole form.
            shown = (CONF_API_KEY, CONF_SIGNING_SECRET)
            errors = {
                (field if field in shown else "base"): error
                for field, error in claimed.items()
            }

        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema(_credentials_schema(key_required=True)),
            description_placeholders={"name": entry.title},
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Point the entry at a new URL or key; it must stay the same microgrid."""
        errors: dict[str, str] = {}
        entry = self._get_reconfigure_entry()
        if entry.data.get(CONF_DEMO):
            return self.async_abort(reason="demo_not_reconfigurable")
        if user_input is not None:
            # An empty key keeps the stored key and secret.
            data = _with_credentials(entry.data, user_input)
            claimed = await self._async_claim_microgrid(data)
            if isinstance(claimed, MicrogridInfo):
                self._abort_if_unique_id_mismatch(reason="wrong_microgrid")
                assets = _assets_settings(user_input, entry.options)
                if assets != _stored_assets(entry.options):
                    errors = await _async_check_assets(assets, microgrid_id(claimed))
                if not errors:
                    return self.async_update_reload_and_abort(
                        entry,
                        data=data,
                        options=_without_assets(entry.options) | assets,
                    )
            else:
                errors = claimed
        return self._show_connection_form(
            "reconfigure", user_input or {**entry.data, **entry.options}, errors
        )


class MicrogridOptionsFlow(OptionsFlowWithReload):
    """Tune how the integration reads and steers the microgrid (reloads on change)."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show and store the options.

        The number boxes check their range, but NaN compares as inside any range
        (and infinity can't be a priority): such input is refused here, or a NaN
        freshness window would make every component count as fresh forever.
        """
        errors: dict[str, str] = {}
        options = self.config_entry.options
        # A demo entry reads its own simulator's Assets API.
        has_assets_fields = not self.config_entry.data.get(CONF_DEMO)
        if user_input is not None:
            errors = {
                key: "not_a_number"
                for key in (
                    CONF_FRESHNESS_S,
                    CONF_DEFAULT_PRIORITY,
                    CONF_RESERVATION_GRACE_MIN,
                )
                if not math.isfinite(user_input[key])
            }
            assets = _assets_settings(user_input, options)
            if not errors and has_assets_fields and assets != _stored_assets(options):
                errors = await _async_check_assets(assets, self.config_entry.unique_id)
            if not errors:
                return self.async_create_entry(
                    data={
                        CONF_FRESHNESS_S: float(user_input[CONF_FRESHNESS_S]),
                        CONF_DEFAULT_PRIORITY: int(user_input[CONF_DEFAULT_PRIORITY]),
                        CONF_REAPPLY_SETPOINTS: bool(
                            user_input[CONF_REAPPLY_SETPOINTS]
                        ),
                        **assets,
                        CONF_RESERVATION_GRACE_MIN: float(
                            user_input[CONF_RESERVATION_GRACE_MIN]
                        ),
                        **forecast_options(user_input),
                    }
                )

        schema = vol.Schema(
            {
                vol.Required(
                    CONF_FRESHNESS_S,
                    default=options.get(CONF_FRESHNESS_S, DEFAULT_FRESHNESS_S),
                ): _box(MIN_FRESHNESS_S, MAX_FRESHNESS_S, "s"),
                vol.Required(
                    CONF_DEFAULT_PRIORITY,
                    default=options.get(CONF_DEFAULT_PRIORITY, DEFAULT_PRIORITY),
                ): _box(MIN_PRIORITY, MAX_PRIORITY),
                vol.Required(
                    CONF_REAPPLY_SETPOINTS,
                    default=options.get(
                        CONF_REAPPLY_SETPOINTS, DEFAULT_REAPPLY_SETPOINTS
                    ),
                ): BooleanSelector(),
                vol.Required(
                    CONF_RESERVATION_GRACE_MIN,
                    default=options.get(
                        CONF_RESERVATION_GRACE_MIN, DEFAULT_RESERVATION_GRACE_MIN
                    ),
                ): NumberSelector(
                    NumberSelectorConfig(
                        min=MIN_RESERVATION_GRACE_MIN,
                        max=MAX_RESERVATION_GRACE_MIN,
                        step=0.1,
                        mode=NumberSelectorMode.BOX,
                        unit_of_measurement="min",
                    )
                ),
            }
        )
        schema = self.add_suggested_values_to_schema(
            schema.extend(FORECAST_FIELDS), forecast_options(user_input or options)
        )
        if has_assets_fields:
            schema = self.add_suggested_values_to_schema(
                schema.extend(ASSETS_FIELDS), _url_only(user_input or options)
            )
        return self.async_show_form(step_id="init", data_schema=schema, errors=errors)
