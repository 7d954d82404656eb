"""The engine and the simulator are Home-Assistant-free libraries.

Neither may import `homeassistant`, nor reach into the integration's Home Assistant
layer (coordinator, platforms, `__init__`, ...) by a relative or absolute import of
the integration's own modules: those import Home Assistant themselves.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = (
    Path(__file__).resolve().parents[2] / "custom_components" / "frequenz_microgrid"
)
ROOT = PACKAGE.parents[1]
INTEGRATION = "custom_components.frequenz_microgrid"
HA_FREE_LAYERS = ("engine", "simulator")


def _module_name(path: Path) -> list[str]:
    """Return the dotted parts of the module at `path`, relative to the repository."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imported_modules(path: Path, tree: ast.Module) -> list[str]:
    """Return every module an import in `tree` names, relative ones made absolute.

    `from .. import name` may import a submodule `name`, so when the `from` part is
    the integration's root package, `root.name` is returned for each name instead.
    """
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package[:-1]
    modules: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            if base == INTEGRATION:
                modules.extend(f"{base}.{alias.name}" for alias in node.names)
            else:
                modules.append(base)
    return modules


def _reaches_home_assistant(module: str) -> bool:
    """Whether importing `module` (absolute) pulls in Home Assistant."""
    if module == "homeassistant" or module.startswith("homeassistant."):
        return True
    if module == INTEGRATION:
        return True  # The integration's `__init__` sets up the HA entry.
    if module.startswith(f"{INTEGRATION}."):
        layer = module.removeprefix(f"{INTEGRATION}.").split(".")[0]
        return layer not in HA_FREE_LAYERS
    return False


def _offenders(path: Path, source: str) -> list[str]:
    tree = ast.parse(source, filename=str(path))
    return [
        f"{path.relative_to(PACKAGE)} imports {module}"
        for module in _imported_modules(path, tree)
        if _reaches_home_assistant(module)
    ]


@pytest.mark.parametrize("layer", HA_FREE_LAYERS)
def test_layer_never_imports_home_assistant(layer: str) -> None:
    offenders: list[str] = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        offenders.extend(_offenders(path, path.read_text()))
    assert offenders == []
    assert any((PACKAGE / layer).rglob("*.py")), f"{layer} has no modules"


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("engine/health.py", "import homeassistant.core"),
        ("engine/health.py", "from homeassistant.core import HomeAssistant"),
        ("engine/health.py", "from ..coordinator import MicrogridCoordinator"),
        ("engine/health.py", "from .. import sensor"),
        ("engine/health.py", "from .. import members, runtime"),
        ("engine/control/inputs.py", "from ...entity import MicrogridEntity"),
        ("engine/control/inputs.py", "from ... import const"),
        ("engine/__init__.py", "from .. import repairs"),
        ("engine/health.py", f"from {INTEGRATION}.coordinator import X"),
        ("engine/health.py", f"import {INTEGRATION}"),
        ("simulator/physics/model.py", "from ...actions import async_setup"),
        (
            "engine/health.py",
            "def late() -> None:\n    from ..coordinator import X\n",
        ),
    ],
)
def test_any_import_of_the_home_assistant_layer_is_found(
    module: str, source: str
) -> None:
    """The check itself: each of these imports, planted in a layer, is reported."""
    assert _offenders(PACKAGE / module, source) != []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("engine/control/inputs.py", "from .. import members"),
        ("engine/control/inputs.py", "from ..bounds import PowerBounds"),
        ("engine/__init__.py", "from .health import HealthTracker"),
        ("simulator/physics/model.py", "from ...engine.bounds import PowerBounds"),
        ("simulator/physics/model.py", "from ... import engine"),
        ("engine/health.py", "from frequenz.client.microgrid import Lifetime"),
    ],
)
def test_imports_within_the_ha_free_layers_are_allowed(
    module: str, source: str
) -> None:
    assert _offenders(PACKAGE / module, source) == []
