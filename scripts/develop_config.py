"""Write a ready-to-use Home Assistant config directory for `scripts/develop`.

Idempotent: files a user changed are left alone, except the integration link and
the HTTP port.

    develop_config.py [CONFIG_DIR] [--port N] [--reset]

With `--port` it first checks that Home Assistant can listen on the port (exit 1
with a one-line reason if not), then makes the config serve on it. `--reset`
empties CONFIG_DIR first (all but `scripts/develop`'s lock file).
"""

from __future__ import annotations

import argparse
import errno
import json
from pathlib import Path
import shutil
import socket
import sys
from typing import Any

REPO = Path(__file__).resolve().parent.parent

DEFAULT_PORT = 8123
"""Home Assistant's port unless `scripts/develop --port` or FREQUENZ_HA_PORT say."""
LOCK_FILE = ".develop.lock"
"""In the config directory: held by the `scripts/develop` using it (flock)."""

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


def port_problem(port: int) -> str | None:
    """Why Home Assistant could not listen on `port` now; None if it can.

    Binds as Home Assistant does (every IPv4 and IPv6 address, address reuse
    on): a port another program listens on fails, one an earlier run left in
    TIME_WAIT does not.
    """
    if not 0 < port < 65536:
        return f"{port} is not a port number (1-65535)"
    for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.bind((host, port))
        except OSError as err:
            if family == socket.AF_INET6 and err.errno in (
                errno.EAFNOSUPPORT,
                errno.EADDRNOTAVAIL,
            ):
                continue  # no IPv6 here: Home Assistant listens on IPv4 only
            if err.errno == errno.EADDRINUSE:
                return (
                    f"port {port} is already in use (by another program, or a "
                    "Home Assistant started elsewhere)"
                )
            return f"cannot listen on port {port}: {err.strerror or err}"
    return None


def free_port_after(port: int, tries: int = 20) -> int | None:
    """The first port after `port` Home Assistant could listen on (to suggest)."""
    return next(
        (
            candidate
            for candidate in range(port + 1, min(port + 1 + tries, 65536))
            if port_problem(candidate) is None
        ),
        None,
    )


def port_error(port: int) -> str | None:
    """The one-line error `scripts/develop` stops with if `port` is unusable."""
    if (problem := port_problem(port)) is None:
        return None
    other = free_port_after(port) if 0 < port < 65536 else None
    example = other or DEFAULT_PORT + 1
    return (
        f"scripts/develop: {problem}; choose another port: "
        f"scripts/develop --port {example} (or FREQUENZ_HA_PORT={example})"
    )


def set_http_port(config_dir: Path, port: int) -> None:
    """Make Home Assistant serve on `port`.

    Home Assistant keeps its HTTP settings in `.storage/http` (a YAML `http:`
    section is only imported once, as a trial reverted after 5 minutes): the
    port is changed there. A new config directory has none yet; there
    `scripts/develop` sets SETUP_PORT, the port Home Assistant stores first.
    """
    store = config_dir / ".storage" / "http"
    if not store.exists():
        return
    content = json.loads(store.read_text())
    changed = False
    for slot in ("stable", "pending"):
        settings = content.get("data", {}).get(slot)
        if isinstance(settings, dict) and settings.get("server_port") != port:
            settings["server_port"] = port
            changed = True
    if changed:
        store.write_text(json.dumps(content, indent=4))


def reset(config_dir: Path) -> None:
    """Empty `config_dir` (.storage, database, ...) but keep the lock file."""
    if not config_dir.is_dir():
        return
    for path in config_dir.iterdir():
        if path.name == LOCK_FILE:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def main(argv: list[str] | None = None) -> None:
    """Check the port, then (re)write the config directory."""
    parser = argparse.ArgumentParser(
        description="Write the Home Assistant config directory of scripts/develop."
    )
    parser.add_argument("config_dir", nargs="?", default="config", type=Path)
    parser.add_argument("--port", type=int, help="check and set the HTTP port")
    parser.add_argument("--reset", action="store_true", help="empty it first")
    args = parser.parse_args(argv)
    if args.port is not None and (message := port_error(args.port)) is not None:
        sys.exit(message)
    if args.reset:
        reset(args.config_dir)
    write_config(args.config_dir)
    if args.port is not None:
        set_http_port(args.config_dir, args.port)


if __name__ == "__main__":
    main()
