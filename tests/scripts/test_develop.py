"""`scripts/develop`'s checks, without starting Home Assistant.

The port check and the bootstrap's wait open plain sockets: `socket_enabled`.
"""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
from pathlib import Path
import socket
import threading

import pytest

from scripts import develop_bootstrap, develop_config

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another program listens on, on loopback only."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_free_port_passes_and_a_taken_one_is_named(held_port: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert develop_config.port_problem(free) is None
    problem = develop_config.port_problem(held_port)
    assert problem is not None
    assert problem.startswith(f"port {held_port} is already in use")
    message = develop_config.port_error(held_port)
    assert message is not None
    assert "--port" in message
    assert "FREQUENZ_HA_PORT" in message
    suggested = int(message.split("--port ")[1].split()[0])
    assert develop_config.port_problem(suggested) is None


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_not_a_port(port: int) -> None:
    assert develop_config.port_problem(port) == (
        f"{port} is not a port number (1-65535)"
    )


def test_a_taken_port_stops_before_anything_is_reset(
    tmp_path: Path, held_port: int
) -> None:
    (tmp_path / "home-assistant_v2.db").write_text("kept")
    with pytest.raises(SystemExit, match=f"port {held_port}"):
        develop_config.main([str(tmp_path), "--port", str(held_port), "--reset"])
    assert (tmp_path / "home-assistant_v2.db").read_text() == "kept"
    assert not (tmp_path / "configuration.yaml").exists()


def test_reset_keeps_the_lock_and_the_port_follows(tmp_path: Path) -> None:
    storage = tmp_path / ".storage"
    storage.mkdir()
    (tmp_path / develop_config.LOCK_FILE).write_text("123")
    (tmp_path / "home-assistant_v2.db").write_text("old")
    develop_config.main([str(tmp_path), "--reset"])
    assert (tmp_path / develop_config.LOCK_FILE).read_text() == "123"
    assert not (tmp_path / "home-assistant_v2.db").exists()
    assert (tmp_path / "configuration.yaml").exists()
    assert not (storage / "http").exists()  # a new config: SETUP_PORT sets it

    # Home Assistant's own HTTP settings, as it stores them.
    http = {
        "version": 3,
        "minor_version": 1,
        "key": "http",
        "data": {
            "stable": {"server_port": 8123, "ip_ban_enabled": True},
            "pending": {"server_port": 8123, "error": None},
            "yaml_migration_done": True,
        },
    }
    (storage / "http").write_text(json.dumps(http))
    develop_config.set_http_port(tmp_path, 8124)
    data = json.loads((storage / "http").read_text())["data"]
    assert data["stable"] == {"server_port": 8124, "ip_ban_enabled": True}
    assert data["pending"]["server_port"] == 8124
    assert data["yaml_migration_done"] is True


class _Answers(BaseHTTPRequestHandler):
    """Answers GETs from a table of path: (status, JSON body)."""

    table: dict[str, tuple[int, object]] = {}

    def do_GET(self) -> None:
        status, body = self.table.get(self.path, (404, {"message": "Not Found"}))
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def answering() -> Iterator[tuple[str, dict[str, tuple[int, object]]]]:
    """A local HTTP server and its table of answers (empty: 404 everywhere)."""
    table: dict[str, tuple[int, object]] = {}
    handler = type("Handler", (_Answers,), {"table": table})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", table
    finally:
        server.shutdown()
        server.server_close()


def test_the_bootstrap_names_the_port_another_program_answers_on(
    answering: tuple[str, dict[str, tuple[int, object]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, _ = answering
    monkeypatch.setattr(develop_bootstrap, "FOREIGN_GRACE_S", 0.0)
    port = base.rsplit(":", 1)[1]
    with pytest.raises(SystemExit, match=f"another program uses port {port}"):
        develop_bootstrap._wait_for_api(base, timeout_s=10.0)


def test_the_bootstrap_recognises_an_onboarded_home_assistant(
    answering: tuple[str, dict[str, tuple[int, object]]],
) -> None:
    """Onboarding done: /api/onboarding is gone (404), the login API answers."""
    base, table = answering
    table["/auth/providers"] = (200, {"providers": [], "preselect_remember_me": 0})
    develop_bootstrap._wait_for_api(base, timeout_s=10.0)  # at once, no SystemExit
    assert develop_bootstrap._onboarding_steps(base) is None
    steps = [{"step": "user", "done": False}]
    table["/api/onboarding"] = (200, steps)
    develop_bootstrap._wait_for_api(base, timeout_s=10.0)
    assert develop_bootstrap._onboarding_steps(base) == steps
