"""Offline stand-in for hassfest and the HACS action, which can't run here.

Hassfest needs a Home Assistant core checkout and HACS validation needs GitHub, so the
rules they would enforce on this repository are checked here: manifest keys, order
and pins; `hacs.json`; translation files (format rules, and that every key the code
uses exists); `icons.json`; and `services.yaml` against its translations and icons.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
import json
from pathlib import Path
import re
from typing import Any

from awesomeversion import AwesomeVersion
from homeassistant import const as ha_const
from homeassistant.util.yaml import load_yaml_dict
import pytest

from custom_components.frequenz_microgrid.connection import ConnectionProblem

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "custom_components" / "frequenz_microgrid"
TRANSLATIONS = PACKAGE / "translations"
LANGUAGES = ("en", "de")

# Hassfest's key rule: lower-case snake case (digits and dashes allowed), no leading,
# trailing or doubled separators.
TRANSLATION_KEY = re.compile(r"^(?!.+[_-]{2})(?![_-])[a-z0-9_-]+(?<![_-])$")
HTML_TAG = re.compile(r"<[a-z/][^>]*>", re.IGNORECASE)
PLACEHOLDER = re.compile(r"\{([a-z0-9_]+)\}")
MDI_ICON = re.compile(r"^mdi:[a-z0-9]+(-[a-z0-9]+)*$")


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _translations(language: str) -> dict[str, Any]:
    data: dict[str, Any] = _load_json(TRANSLATIONS / f"{language}.json")
    return data


def _leaves(
    node: Any, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Yield (key path, value) for every non-dict value of a nested mapping."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    else:
        yield path, node


def _keys(
    node: Any, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str]]:
    """Yield (parent path, key) for every key of a nested mapping."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key
            yield from _keys(value, (*path, key))


def _python_sources() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(PACKAGE.glob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _string_keyword(node: ast.Call, name: str) -> str | None:
    for keyword in node.keywords:
        if (
            keyword.arg == name
            and isinstance(keyword.value, ast.Constant)
            and isinstance(keyword.value.value, str)
        ):
            return keyword.value.value
    return None


# --- manifest.json -------------------------------------------------------------------


def test_manifest_keys_order_and_values() -> None:
    manifest = _load_json(PACKAGE / "manifest.json")
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"], "domain and name come first"
    assert keys[2:] == sorted(keys[2:]), "the other keys are sorted alphabetically"

    assert manifest["domain"] == PACKAGE.name
    for required in (
        "codeowners",
        "config_flow",
        "documentation",
        "integration_type",
        "iot_class",
        "issue_tracker",
        "requirements",
        "version",
    ):
        assert required in manifest, f"manifest lacks {required}"
    assert manifest["config_flow"] is True
    assert manifest["integration_type"] == "hub"
    assert manifest["iot_class"] == "local_push", "telemetry is streamed, not polled"
    assert manifest["documentation"].startswith("https://")
    assert manifest["issue_tracker"].startswith("https://")
    assert all(owner.startswith("@") for owner in manifest["codeowners"])
    assert AwesomeVersion(manifest["version"]).valid


def test_manifest_requirements_are_pinned_and_match_requirements_txt() -> None:
    manifest = _load_json(PACKAGE / "manifest.json")
    requirements = manifest["requirements"]
    assert requirements, "the integration needs the Frequenz client"
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][^\s,;]*", r) for r in requirements)
    listed = {
        line.strip()
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert set(requirements) == listed


def test_manifest_version_matches_project_version() -> None:
    manifest = _load_json(PACKAGE / "manifest.json")
    project = re.search(
        r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.MULTILINE
    )
    assert project is not None
    assert manifest["version"] == project.group(1)


# --- hacs.json -----------------------------------------------------------------------

HACS_KEYS = {
    "name",
    "content_in_root",
    "filename",
    "hide_default_branch",
    "country",
    "homeassistant",
    "hacs",
    "persistent_directory",
    "render_readme",
    "zip_release",
}


def test_hacs_json() -> None:
    hacs = _load_json(REPO / "hacs.json")
    assert set(hacs) <= HACS_KEYS, f"unknown keys: {set(hacs) - HACS_KEYS}"
    assert hacs["name"]
    # The client's grpcio/protobuf only install under Home Assistant 2026.10's pins.
    assert AwesomeVersion(hacs["homeassistant"]) >= AwesomeVersion("2026.10.0")
    if hacs.get("render_readme"):
        assert (REPO / "README.md").is_file()


def _pinned_home_assistant(lock_file: str) -> str:
    """The Home Assistant release a lock file installs."""
    pin = re.search(
        r"^homeassistant==(\S+)$", (REPO / lock_file).read_text(), re.MULTILINE
    )
    assert pin is not None, f"{lock_file} pins no homeassistant"
    return pin.group(1)


def test_hacs_minimum_is_the_oldest_release_the_suite_runs_on() -> None:
    """What HACS promises users is what scripts/test checks on its second run."""
    minimum = _load_json(REPO / "hacs.json")["homeassistant"]
    assert minimum == _pinned_home_assistant("requirements_test_oldest.txt")
    newest = _pinned_home_assistant("requirements_test.txt")
    assert AwesomeVersion(newest) >= AwesomeVersion(minimum)


def test_this_run_is_on_a_release_the_lock_files_pin() -> None:
    """The suite really runs on one of the two ends of the supported range."""
    tested = {
        _pinned_home_assistant("requirements_test.txt"),
        _pinned_home_assistant("requirements_test_oldest.txt"),
    }
    assert ha_const.__version__ in tested
    minimum = _load_json(REPO / "hacs.json")["homeassistant"]
    assert AwesomeVersion(ha_const.__version__) >= AwesomeVersion(minimum)


def test_brand_icon_when_shipped() -> None:
    brand = PACKAGE / "brand"
    if not any(brand.glob("*")):
        pytest.skip("no brand images yet")
    icon = brand / "icon.png"
    assert icon.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- translations --------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_translation_keys_are_snake_case(language: str) -> None:
    bad = [
        ".".join((*parent, key))
        for parent, key in _keys(_translations(language))
        if not TRANSLATION_KEY.match(key)
    ]
    assert bad == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_translation_values_follow_hassfest_rules(language: str) -> None:
    problems: list[str] = []
    for path, value in _leaves(_translations(language)):
        where = ".".join(path)
        if not isinstance(value, str):
            problems.append(f"{where}: not a string")
            continue
        if not value:
            problems.append(f"{where}: empty")
        if value != value.strip():
            problems.append(f"{where}: leading or trailing whitespace")
        if HTML_TAG.search(value):
            problems.append(f"{where}: HTML")
        if "://" in value or "www." in value:
            problems.append(f"{where}: URL (use a description placeholder)")
        if re.search(r"'\{[^}]*\}'", value):
            problems.append(f"{where}: single-quoted placeholder")
        if "[%key:" in value:
            problems.append(
                f"{where}: reference (custom integrations ship no strings.json)"
            )
    assert problems == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_data_description_keys_are_data_keys(language: str) -> None:
    problems: list[str] = []
    for section in ("config", "options"):
        steps = _translations(language).get(section, {}).get("step", {})
        for step_id, step in steps.items():
            extra = set(step.get("data_description", {})) - set(step.get("data", {}))
            if extra:
                problems.append(f"{section}.step.{step_id}: {sorted(extra)}")
    assert problems == []


def test_languages_have_the_same_keys_and_placeholders() -> None:
    english = dict(_leaves(_translations("en")))
    for language in LANGUAGES[1:]:
        other = dict(_leaves(_translations(language)))
        assert set(other) == set(english), language
        for path, text in english.items():
            assert set(PLACEHOLDER.findall(other[path])) == set(
                PLACEHOLDER.findall(text)
            ), f"{language}: {'.'.join(path)}"


def test_every_exception_translation_key_exists() -> None:
    """Each `translation_domain=…, translation_key="…"` raise has a message."""
    exceptions = _translations("en").get("exceptions", {})
    used: set[str] = set()
    for _, tree in _python_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and any(
                k.arg == "translation_domain" for k in node.keywords
            ):
                key = _string_keyword(node, "translation_key")
                assert key is not None, "exception translation keys must be literals"
                used.add(key)
    assert used, "the integration raises translated exceptions"
    assert sorted(used - set(exceptions)) == []
    for key in used:
        assert exceptions[key]["message"]


def test_every_flow_error_and_abort_reason_is_translated() -> None:
    config = _translations("en")["config"]
    assert {problem.value for problem in ConnectionProblem} <= set(config["error"])
    tree = ast.parse((PACKAGE / "config_flow.py").read_text())
    reasons = {
        reason
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (reason := _string_keyword(node, "reason")) is not None
    }
    # Aborts raised by Home Assistant's own helpers on our behalf.
    reasons |= {"already_configured", "reauth_successful", "reconfigure_successful"}
    assert sorted(reasons - set(config["abort"])) == []


def test_every_flow_step_is_translated() -> None:
    tree = ast.parse((PACKAGE / "config_flow.py").read_text())
    steps = {
        node.name.removeprefix("async_step_")
        for node in ast.walk(tree)
        if isinstance(node, ast.AsyncFunctionDef)
        and node.name.startswith("async_step_")
    }
    translations = _translations("en")
    # `reauth` only forwards to `reauth_confirm`; `init` is the options step.
    config_steps = steps - {"reauth", "init"}
    assert sorted(config_steps - set(translations["config"]["step"])) == []
    assert "init" in translations["options"]["step"]
    assert set(translations["config"]["step"]["user"]["menu_options"]) == {
        "connect",
        "demo",
    }


# --- icons.json and services.yaml ----------------------------------------------------


def _icons() -> dict[str, Any]:
    path = PACKAGE / "icons.json"
    if not path.exists():
        pytest.skip("icons.json not written yet")
    data: dict[str, Any] = _load_json(path)
    return data


def test_icons_json_schema() -> None:
    icons = _icons()
    assert set(icons) <= {"entity", "services"}
    problems: list[str] = []
    for platform, keys in icons.get("entity", {}).items():
        for key, spec in keys.items():
            where = f"entity.{platform}.{key}"
            if not TRANSLATION_KEY.match(key):
                problems.append(f"{where}: key")
            if set(spec) - {"default", "state", "range"} or "default" not in spec:
                problems.append(f"{where}: needs 'default', only state/range besides")
            names = [spec.get("default"), *spec.get("state", {}).values()]
            names += list(spec.get("range", {}).values())
            problems.extend(
                f"{where}: {name!r}" for name in names if not MDI_ICON.match(str(name))
            )
    for service, spec in icons.get("services", {}).items():
        icon = spec if isinstance(spec, str) else spec.get("service")
        if not MDI_ICON.match(str(icon)):
            problems.append(f"services.{service}: {icon!r}")
    assert problems == []


def test_services_are_translated_and_have_icons() -> None:
    path = PACKAGE / "services.yaml"
    if not path.exists():
        pytest.skip("no actions yet")
    services: dict[str, Any] = load_yaml_dict(path)
    translated = _translations("en").get("services", {})
    icons = _icons().get("services", {})
    problems: list[str] = []
    for service, spec in services.items():
        if service not in translated:
            problems.append(f"{service}: no translation")
            continue
        if not translated[service].get("name") or not translated[service].get(
            "description"
        ):
            problems.append(f"{service}: name and description needed")
        for field in (spec or {}).get("fields", {}):
            if field not in translated[service].get("fields", {}):
                problems.append(f"{service}.{field}: no translation")
        if service not in icons:
            problems.append(f"{service}: no icon")
    assert problems == []


# --- quality_scale.yaml --------------------------------------------------------------

QUALITY_SCALE_RULES = {
    # Bronze
    "action-setup", "appropriate-polling", "brands", "common-modules",
    "config-flow-test-coverage", "config-flow", "dependency-transparency",
    "docs-actions", "docs-high-level-description", "docs-installation-instructions",
    "docs-removal-instructions", "entity-event-setup", "entity-unique-id",
    "has-entity-name", "runtime-data", "test-before-configure", "test-before-setup",
    "unique-config-entry",
    # Silver
    "action-exceptions", "config-entry-unloading", "docs-configuration-parameters",
    "docs-installation-parameters", "entity-unavailable", "integration-owner",
    "log-when-unavailable", "parallel-updates", "reauthentication-flow",
    "test-coverage",
    # Gold
    "devices", "diagnostics", "discovery", "discovery-update-info",
    "docs-data-update", "docs-examples", "docs-known-limitations",
    "docs-supported-devices", "docs-supported-functions", "docs-troubleshooting",
    "docs-use-cases", "dynamic-devices", "entity-category", "entity-device-class",
    "entity-disabled-by-default", "entity-translations", "exception-translations",
    "icon-translations", "reconfiguration-flow", "repair-issues", "stale-devices",
    # Platinum
    "async-dependency", "inject-websession", "strict-typing",
}  # fmt: skip


def test_quality_scale_marks_every_rule() -> None:
    rules = load_yaml_dict(PACKAGE / "quality_scale.yaml")["rules"]
    assert set(rules) == QUALITY_SCALE_RULES
    for rule, value in rules.items():
        status = value if isinstance(value, str) else value["status"]
        assert status in {"done", "todo", "exempt"}, rule
        if status != "done":
            assert isinstance(value, dict), f"{rule}: say why it is {status}"
            assert value.get("comment"), f"{rule}: say why it is {status}"


def test_quality_scale_claims_match_the_code() -> None:
    """Spot-check claims that the code can prove."""
    rules = load_yaml_dict(PACKAGE / "quality_scale.yaml")["rules"]

    def done(rule: str) -> bool:
        value = rules[rule]
        return (value if isinstance(value, str) else value["status"]) == "done"

    present = {path.name for path in PACKAGE.iterdir()}
    assert done("diagnostics") == ("diagnostics.py" in present)
    assert done("icon-translations") == ("icons.json" in present)
    assert done("brands") == (PACKAGE / "brand" / "icon.png").is_file()
    flow = (PACKAGE / "config_flow.py").read_text()
    assert done("reauthentication-flow") == ("async_step_reauth_confirm" in flow)
    assert done("reconfiguration-flow") == ("async_step_reconfigure" in flow)
    assert done("action-setup") == ("services.yaml" in present)
    assert done("repair-issues") == ("repairs.py" in present)
