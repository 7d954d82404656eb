"""The engine and the simulator are Home-Assistant-free libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = (
    Path(__file__).resolve().parents[2] / "custom_components" / "frequenz_microgrid"
)


@pytest.mark.parametrize("layer", ["engine", "simulator"])
def test_layer_never_imports_home_assistant(layer: str) -> None:
    offenders: list[str] = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders.extend(
                f"{path.relative_to(PACKAGE)} imports {name}"
                for name in names
                if name == "homeassistant" or name.startswith("homeassistant.")
            )
    assert offenders == []
    assert any((PACKAGE / layer).rglob("*.py")), f"{layer} has no modules"
