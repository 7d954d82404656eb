"""What a user sees: `scripts/develop`'s Home Assistant and its dashboard, in Chromium.

Starts the newest Home Assistant (`.venv-develop`, the one `scripts/develop` serves)
with its frontend in a throw-away copy of `scripts/develop`'s configuration on a free
port, lets `scripts/develop_bootstrap.py` finish onboarding and add the built-in demo
microgrid through the config flow (as `scripts/develop` does, no clicks), waits until
the dashboard's entities show live numbers, and takes a screenshot of the dashboard
with Debian's Chromium (headless). Run from the repository root::

    scripts/setup develop browser
    scripts/python -m benchmarks.dashboard [--png dashboard.png]

Prints one line::

    dashboard ha_version=<x> startup_s=<s> entities=<n> measured=<n> live=<n>
    missing_entities=<n> cards=<shown>/<n> png=<path> png_bytes=<n> ink=<fraction>

and exits non-zero if Home Assistant does not come up, an entity the dashboard shows
does not exist or shows no value, a card of the dashboard is not on the rendered
page (its title, read through the shadow roots), or the screenshot is (nearly)
blank — as it is while the frontend still says "Loading…". `ink` is the fraction of
pixels that differ from the page background: text, cards and graphs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
from collections.abc import Iterator
from contextlib import contextmanager
import itertools
import json
import os
from pathlib import Path
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any, Final
from urllib import error, request
import zlib

import aiohttp

from scripts import develop_bootstrap, develop_config

REPO = Path(__file__).resolve().parent.parent
DEVELOP_PYTHON = REPO / ".venv-develop" / "bin" / "python"
DASHBOARD = REPO / "scripts" / "develop_dashboard.json"
STARTUP_TIMEOUT_S = 600.0
LIVE_TIMEOUT_S = 120.0
RENDER_TIMEOUT_S = 90.0
MIN_INK = 0.02
"""A dashboard with its cards and text covers far more; "Loading…" covers less."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _card_titles() -> list[str]:
    """The titles of the dashboard's cards: text the rendered page must show."""
    views = json.loads(DASHBOARD.read_text())["views"]
    return [card["title"] for view in views for card in view["cards"]]


CARD_TITLES = _card_titles()
STEERING_CARD = "Steering"


UNKNOWN_UNTIL_IT_HAPPENS: Final = (
    "_charging_session",  # event: no state before the first session event
    "_session_energy",  # no session yet at that charger
    "_session_duration",
    "_limit_in_force",  # no power limit set
)
"""Entity id endings whose state is rightly unknown on a fresh demo."""


def _dashboard_entities(*, measured_only: bool = False) -> list[str]:
    """Every entity id the default dashboard of `scripts/develop` shows.

    `measured_only` leaves out the steering card (its numbers, buttons and results
    are rightly unknown until someone steers) and `UNKNOWN_UNTIL_IT_HAPPENS`.
    """
    views = json.loads(DASHBOARD.read_text())["views"]
    shown = sorted(
        {
            item["entity"]
            for view in views
            for card in view["cards"]
            if not (measured_only and card.get("title") == STEERING_CARD)
            for item in card.get("entities", [])
            if isinstance(item, dict)
        }
        | {
            item
            for view in views
            for card in view["cards"]
            for item in card.get("entities", [])
            if isinstance(item, str)
        }
    )
    if not measured_only:
        return shown
    return [e for e in shown if not e.endswith(UNKNOWN_UNTIL_IT_HAPPENS)]


@contextmanager
def _home_assistant(config: Path, port: int, log: Path) -> Iterator[None]:
    """Run the develop Home Assistant on `port` until the block ends."""
    develop_config.write_config(config)
    # The port of a fresh configuration (an `http:` section in YAML is deprecated
    # since 2026.11 and would start a trial the frontend asks to confirm).
    env = {**os.environ, "PYTHONPATH": str(REPO), "SETUP_PORT": str(port)}
    with log.open("w") as out:
        hass = subprocess.Popen(
            [str(DEVELOP_PYTHON), "-m", "homeassistant", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            yield
        finally:
            hass.terminate()
            try:
                hass.wait(timeout=60)
            except subprocess.TimeoutExpired:
                hass.kill()
                hass.wait()


def _states(base: str, token: str) -> dict[str, dict[str, Any]]:
    req = request.Request(
        base + "/api/states", headers={"Authorization": f"Bearer {token}"}
    )
    with request.urlopen(req, timeout=30) as response:
        return {state["entity_id"]: state for state in json.loads(response.read())}


def _wait_for_live_values(
    base: str, token: str, entities: list[str]
) -> dict[str, dict[str, Any]]:
    """Wait until every dashboard entity exists and shows a value."""
    deadline = time.monotonic() + LIVE_TIMEOUT_S
    while True:
        states = _states(base, token)
        shown = [
            e
            for e in entities
            if states.get(e, {}).get("state") not in (None, "unknown", "unavailable")
        ]
        if len(shown) == len(entities) or time.monotonic() > deadline:
            return states
        time.sleep(1.0)


DEEP_TEXT_JS = """
(() => {
  const parts = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) parts.push(node.textContent);
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  walk(document);
  return parts.join(" ").replace(/\\s+/g, " ");
})()
"""
"""The page's text including every shadow root (Home Assistant's cards live there)."""


def _screenshot(url: str, png: Path, expected: list[str]) -> str:
    """Open `url` in headless Chromium, wait for `expected` text, save a PNG.

    Drives Chromium over the DevTools protocol (a screenshot on the command line
    either fires before the frontend has rendered or, with virtual time, never
    ends while the frontend's websocket is open). Returns the page's text.
    """
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("dashboard: no chromium here; run `scripts/setup browser` first")
    port = _free_port()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--remote-debugging-port={port}",
                "--window-size=1400,1800",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            text, picture = asyncio.run(_capture(port, url, expected))
        finally:
            browser.terminate()
            browser.wait(timeout=30)
    png.write_bytes(picture)
    return text


async def _capture(port: int, url: str, expected: list[str]) -> tuple[str, bytes]:
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 60.0
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                    pages = [t for t in await r.json() if t["type"] == "page"]
                if pages:
                    break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                sys.exit("dashboard: Chromium did not start")
            await asyncio.sleep(0.5)
        async with session.ws_connect(
            pages[0]["webSocketDebuggerUrl"], max_msg_size=0
        ) as ws:
            calls = itertools.count(1)

            async def call(method: str, **params: Any) -> dict[str, Any]:
                call_id = next(calls)
                await ws.send_json({"id": call_id, "method": method, "params": params})
                async for message in ws:
                    reply = json.loads(message.data)
                    if reply.get("id") == call_id:
                        return dict(reply.get("result", {}))
                raise ConnectionError("Chromium closed the DevTools connection")

            await call("Page.navigate", url=url)
            text = ""
            deadline = time.monotonic() + RENDER_TIMEOUT_S
            while time.monotonic() < deadline:
                result = await call(
                    "Runtime.evaluate", expression=DEEP_TEXT_JS, returnByValue=True
                )
                text = str(result.get("result", {}).get("value", ""))
                if all(word in text for word in expected):
                    break
                await asyncio.sleep(1.0)
            await asyncio.sleep(2.0)  # the history graph draws last
            shot = await call("Page.captureScreenshot", format="png")
            return text, base64.b64decode(shot["data"])


def _ink(png: Path) -> float:
    """Fraction of pixels unlike the top-left one (the page background).

    Decodes the 8-bit RGB(A) PNG that Chromium writes, without an imaging library.
    """
    data = png.read_bytes()
    pos, idat, width, height, channels = 8, b"", 0, 0, 4
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            if depth != 8 or color not in (2, 6):
                raise ValueError("not an 8-bit RGB(A) PNG")
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    background: bytes | None = None
    differing = 0
    for row in range(height):
        start = row * (stride + 1)
        row_filter = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, up_left = previous[i], previous[i - channels] if i >= channels else 0
            if row_filter == 1:
                line[i] = (line[i] + left) & 0xFF
            elif row_filter == 2:
                line[i] = (line[i] + up) & 0xFF
            elif row_filter == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif row_filter == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                line[i] = (line[i] + pred) & 0xFF
        if background is None:
            background = bytes(line[:3])
        for x in range(0, stride, channels):
            if bytes(line[x : x + 3]) != background:
                differing += 1
        previous = line
    return differing / (width * height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--png", type=Path, default=REPO / "dashboard.png")
    args = parser.parse_args()
    if not DEVELOP_PYTHON.exists():
        sys.exit("dashboard: no .venv-develop; run `scripts/setup develop` first")

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    entities = _dashboard_entities()
    measured = _dashboard_entities(measured_only=True)
    with tempfile.TemporaryDirectory() as tmp:
        config, log = Path(tmp) / "config", Path(tmp) / "home-assistant.log"
        started = time.monotonic()
        try:
            with _home_assistant(config, port, log):
                develop_bootstrap.main(base)
                token = develop_bootstrap.login(base)
                startup_s = time.monotonic() - started
                states = _wait_for_live_values(base, token, measured)
                page_text = ""
                for view in json.loads(DASHBOARD.read_text())["views"]:
                    png = args.png.resolve()
                    if view["path"] != "microgrid":
                        png = png.with_name(f"{png.stem}-{view['path']}{png.suffix}")
                    titles = [card["title"] for card in view["cards"]]
                    page_text += _screenshot(
                        f"{base}/lovelace/{view['path']}", png, titles
                    )
                version = _version(base, token)
        except error.URLError, OSError, subprocess.SubprocessError, SystemExit:
            print(log.read_text()[-4000:], file=sys.stderr)
            raise
        log_tail = log.read_text()[-4000:]
    live = [
        e
        for e in measured
        if states.get(e, {}).get("state") not in (None, "unknown", "unavailable")
    ]
    missing = [e for e in entities if e not in states]
    cards = [title for title in CARD_TITLES if title in page_text]
    ink = _ink(args.png)
    print(
        f"dashboard ha_version={version} startup_s={startup_s:.1f} "
        f"entities={len(entities)} measured={len(measured)} live={len(live)} "
        f"missing_entities={len(missing)} cards={len(cards)}/{len(CARD_TITLES)} "
        f"png={args.png} "
        f"png_bytes={args.png.stat().st_size} ink={ink:.3f}",
        flush=True,
    )
    problems = [f"missing: {', '.join(missing)}"] if missing else []
    if dead := sorted(set(measured) - set(live) - set(missing)):
        problems.append(f"no value: {', '.join(dead)}")
    if len(cards) < len(CARD_TITLES):
        problems.append(f"cards not shown: {set(CARD_TITLES) - set(cards)}")
    if ink < MIN_INK:
        problems.append(f"the screenshot is nearly blank (ink {ink:.3f})")
    if problems:
        print(log_tail, file=sys.stderr)  # Home Assistant's own account of why
        sys.exit("dashboard: " + "; ".join(problems))


def _version(base: str, token: str) -> str:
    req = request.Request(
        base + "/api/config", headers={"Authorization": f"Bearer {token}"}
    )
    with request.urlopen(req, timeout=30) as response:
        return str(json.loads(response.read())["version"])


if __name__ == "__main__":
    main()
