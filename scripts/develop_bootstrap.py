"""Finish onboarding and add the demo microgrid to a running Home Assistant.

Run by `scripts/develop` right after it starts Home Assistant. Uses only the public
HTTP API, so it works the same on any Home Assistant version:

1. wait until the API answers;
2. create the owner user (the last onboarding step) if onboarding is not done;
3. add a Frequenz Microgrid entry on the built-in demo microgrid through the config
   flow, unless one exists.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any
from urllib import error, parse, request

CLIENT_ID = "http://127.0.0.1:8123/"
USER = {"name": "Demo", "username": "demo", "password": "demo-microgrid"}


def _call(
    base: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    form: bool = False,
) -> Any:
    headers = {"Content-Type": "application/json"}
    data: bytes | None = None
    if body is not None:
        if form:
            data = parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = request.Request(base + path, data=data, headers=headers)
    with request.urlopen(req, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _wait_for_api(base: str, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            _call(base, "/api/onboarding")
        except error.URLError, ConnectionError, TimeoutError:
            time.sleep(1.0)
        else:
            return
    sys.exit("Home Assistant did not start in time; see its log above")


def login(base: str) -> str:
    """Return an access token for the demo user (creating it during onboarding)."""
    steps = _call(base, "/api/onboarding")
    if not any(step["step"] == "user" and step["done"] for step in steps):
        created = _call(
            base,
            "/api/onboarding/users",
            {**USER, "client_id": CLIENT_ID, "language": "en"},
        )
        code = created["auth_code"]
    else:
        flow = _call(
            base,
            "/auth/login_flow",
            {
                "client_id": CLIENT_ID,
                "handler": ["homeassistant", None],
                "redirect_uri": CLIENT_ID,
            },
        )
        result = _call(
            base,
            f"/auth/login_flow/{flow['flow_id']}",
            {
                "client_id": CLIENT_ID,
                "username": USER["username"],
                "password": USER["password"],
            },
        )
        code = result["result"]
    tokens = _call(
        base,
        "/auth/token",
        {"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID},
        form=True,
    )
    return str(tokens["access_token"])


def _add_demo_entry(base: str, token: str) -> None:
    entries = _call(base, "/api/config/config_entries/entry", token=token)
    if any(entry["domain"] == "frequenz_microgrid" for entry in entries):
        return
    flow = _call(
        base,
        "/api/config/config_entries/flow",
        {"handler": "frequenz_microgrid", "show_advanced_options": False},
        token=token,
    )
    path = f"/api/config/config_entries/flow/{flow['flow_id']}"
    if flow["type"] == "menu":
        flow = _call(base, path, {"next_step_id": "demo"}, token=token)
    flow = _call(base, path, {"scenario": "home"}, token=token)
    if flow["type"] != "create_entry":
        sys.exit(f"Could not add the demo microgrid: {flow}")
    print(f"Added '{flow['title']}' (built-in demo microgrid)")


def main(base: str) -> None:
    """Bootstrap the Home Assistant at `base`."""
    _wait_for_api(base)
    token = login(base)
    _add_demo_entry(base, token)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8123")
