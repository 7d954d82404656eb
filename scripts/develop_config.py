"""Write a ready-to-use Home Assistant config directory for `scripts/develop`.

Idempotent: files a user changed are left alone, except the integration link.
"""

from __future__ import annotations

import json
from pathlib import Path
import sys
from typing import Any

REPO = Path(__file__).resolve().parent.parent

CONFIGURATION_YAML = """\
# Written by scripts/develop: a small Home Assistant with the Frequenz Microgrid
# integration on the built-in demo microgrid.
homeassistant:
  name: Frequenz demo microgrid
  unit_system: metric
  time_zone: Europe/Berlin
  currency: EUR
  country: DE
  auth_providers:
    # No login from this machine; everyone else needs the password.
    - type: trusted_networks
      trusted_networks:
        - 127.0.0.1/32
        - ::1/128
      allow_bypass_login: true
    - type: homeassistant

frontend:
config:
energy:
history:
logbook:
recorder:
  purge_keep_days: 3
logger:
  default: warning
  logs:
    custom_components.frequenz_microgrid: info
"""


def _storage(key: str, data: dict[str, Any], version: int = 1) -> dict[str, Any]:
    return {"version": version, "minor_version": 1, "key": key, "data": data}


def write_config(config_dir: Path) -> None:
    """Create `config_dir` with configuration, the integration link and seeds."""
    storage = config_dir / ".storage"
    storage.mkdir(parents=True, exist_ok=True)
    configuration = config_dir / "configuration.yaml"
    if not configuration.exists():
        configuration.write_text(CONFIGURATION_YAML)

    components = config_dir / "custom_components"
    components.mkdir(exist_ok=True)
    link = components / "frequenz_microgrid"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(REPO / "custom_components" / "frequenz_microgrid")

    # Onboarding: every step but creating the user is done here; the bootstrap
    # creates the user through the API (which finishes onboarding).
    onboarding = storage / "onboarding"
    if not onboarding.exists():
        onboarding.write_text(
            json.dumps(
                _storage(
                    "onboarding",
                    {"done": ["core_config", "analytics", "integration"]},
                    version=4,
                )
            )
        )

    dashboard = storage / "lovelace"
    if not dashboard.exists():
        views = json.loads((REPO / "scripts" / "develop_dashboard.json").read_text())
        dashboard.write_text(json.dumps(_storage("lovelace", {"config": views})))


if __name__ == "__main__":
    write_config(Path(sys.argv[1] if len(sys.argv) > 1 else "config"))
