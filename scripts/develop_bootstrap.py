"""Finish onboarding and add the demo microgrid to a running Home Assistant.

Run by `scripts/develop` right after it starts Home Assistant. Uses only the public
HTTP API, so it works the same on any Home Assistant version:

1. wait until the API answers (and stop, naming the port, if something other than
   Home Assistant keeps answering there);
2. create the owner user (the last onboarding step) if onboarding is not done;
3. add a Frequenz Microgrid entry on the built-in demo microgrid through the config
   flow, unless one exists.

    develop_bootstrap.py [http://127.0.0.1:PORT]
"""

from __future__ import annotations

from http import HTTPStatus
import json
import sys
import time
from typing import Any
from urllib import error, parse, request

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


FOREIGN_GRACE_S = 20.0
"""How long answers that are not Home Assistant's are waited out."""


def _wait_for_api(base: str, timeout_s: float = 600.0) -> None:
    """Wait until Home Assistant answers at `base`.

    Home Assistant only serves once its API is set up; before, the port refuses.
    Anything else that answers there (an error page, a 404) is another program.
    """
    start = time.monotonic()
    foreign_since: float | None = None
    while (now := time.monotonic()) < start + timeout_s:
        try:
            _call(base, "/api/onboarding")
        except (error.HTTPError, ValueError) as err:  # ValueError: not JSON
            code = err.code if isinstance(err, error.HTTPError) else None
            # Onboarding finished: its API is gone; the login API tells it is us.
            if code == HTTPStatus.NOT_FOUND and _is_home_assistant(base):
                return
            foreign_since = now if foreign_since is None else foreign_since
            if now - foreign_since > FOREIGN_GRACE_S:
                answer = "not JSON" if code is None else f"HTTP {code}"
                sys.exit(
                    f"Something other than Home Assistant answers at {base} "
                    f"({answer}): another program uses port "
                    f"{parse.urlsplit(base).port}; stop it or choose another "
                    "port: scripts/develop --port N"
                )
        except error.URLError, ConnectionError, TimeoutError:
            foreign_since = None
        else:
            return
        time.sleep(1.0)
    sys.exit(
        f"Home Assistant did not answer at {base} within {timeout_s:.0f} s; "
        "see its log above"
    )


def _is_home_assistant(base: str) -> bool:
    """Whether Home Assistant's login API answers at `base` (onboarding done)."""
    try:
        answer = _call(base, "/auth/providers")
    except error.URLError, ConnectionError, TimeoutError, ValueError:
        return False
    return isinstance(answer, dict) and "providers" in answer


def _onboarding_steps(base: str) -> list[dict[str, Any]] | None:
    """The onboarding steps; None once onboarding is done.

    From the start after onboarding on, Home Assistant no longer serves them.
    """
    try:
        steps: list[dict[str, Any]] = _call(base, "/api/onboarding")
    except error.HTTPError as err:
        if err.code == HTTPStatus.NOT_FOUND:
            return None
        raise
    return steps


def login(base: str) -> str:
    """Return an access token for the demo user (creating it during onboarding)."""
    client_id = f"{base}/"
    steps = _onboarding_steps(base)
    if steps is not None and not any(
        step["step"] == "user" and step["done"] for step in steps
    ):
        created = _call(
            base,
            "/api/onboarding/users",
            {**USER, "client_id": client_id, "language": "en"},
        )
        code = created["auth_code"]
    else:
        flow = _call(
            base,
            "/auth/login_flow",
            {
                "client_id": client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": client_id,
            },
        )
        result = _call(
            base,
            f"/auth/login_flow/{flow['flow_id']}",
            {
                "client_id": client_id,
                "username": USER["username"],
                "password": USER["password"],
            },
        )
        code = result["result"]
    tokens = _call(
        base,
        "/auth/token",
        {"grant_type": "authorization_code", "code": code, "client_id": client_id},
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
