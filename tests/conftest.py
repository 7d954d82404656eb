"""Fixtures shared by every test: the gRPC poller thread and the repository path."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
import sys

import grpc
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(scope="session", autouse=True)
def grpc_poller_thread() -> Iterator[None]:
    """Start gRPC's poller thread once, before any test.

    The first `grpc.aio` channel or server starts a native poller thread that lives
    until the last one is garbage-collected. Home Assistant's test harness fails a
    test that leaves a new thread behind, so we create one unstarted server inside a
    throwaway event loop and keep it for the whole session: the thread then exists
    before every test.
    """
    loop = asyncio.new_event_loop()

    async def _make() -> grpc.aio.Server:
        return grpc.aio.server()

    server = loop.run_until_complete(_make())
    yield
    del server
    loop.close()
