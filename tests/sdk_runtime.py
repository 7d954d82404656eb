"""Shutting down the Frequenz SDK (test-only oracle) inside one event loop.

The SDK has no complete shutdown: it keeps a data pipeline and a connection manager
in module globals and leaves tasks running. Tests and benchmarks that drive it call
`stop_sdk` so nothing lingers into the next test (or keeps a channel open).
"""

from __future__ import annotations

import asyncio
from typing import Any

from frequenz.sdk.microgrid import _data_pipeline, connection_manager


async def stop_sdk(tasks_before: set[asyncio.Task[Any]]) -> None:
    """Stop the SDK's pipeline and connection; cancel the tasks it left running.

    Args:
        tasks_before: `asyncio.all_tasks()` taken before `microgrid.initialize`.
    """
    pipeline = _data_pipeline._DATA_PIPELINE
    if pipeline is not None:
        await pipeline._stop()
    _data_pipeline._DATA_PIPELINE = None
    manager = connection_manager._CONNECTION_MANAGER
    if manager is not None:
        await manager.api_client.disconnect()
    connection_manager._CONNECTION_MANAGER = None
    leftovers = asyncio.all_tasks() - tasks_before - {asyncio.current_task()}
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
