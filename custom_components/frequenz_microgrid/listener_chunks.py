"""Tell thousands of listeners about an update without holding the event loop.

A 1,000-component microgrid has about 5,000 entities, and every snapshot reaches
each of them. Called in one go, that is one callback of ~50 ms per snapshot, and
everything else on Home Assistant's event loop waits that long. Split into chunks
of `CHUNK_SIZE` listeners, one chunk per loop iteration, other work runs in between
and the longest stall is a few milliseconds.

The first chunk runs at once, so a small microgrid is notified exactly as before.
Listeners are looked up when their chunk runs: one removed meanwhile (an entity
being removed) is not called. A newer update restarts the round, since every
listener reads the latest data anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
import itertools
from typing import Any, Final

from homeassistant.core import CALLBACK_TYPE

CHUNK_SIZE: Final = 250
"""Listeners called per event-loop iteration."""

type Listeners = Mapping[int, tuple[CALLBACK_TYPE, Any]]
"""Listener id → (callback, context), as a `DataUpdateCoordinator` keeps them."""


class ChunkedListenerCalls:
    """Call every listener of a mapping, `chunk_size` per event-loop iteration."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, *, chunk_size: int = CHUNK_SIZE
    ) -> None:
        """Prepare calls on `loop`; nothing runs until `call_all`."""
        self._loop = loop
        self._chunk_size = chunk_size
        self._next_chunk: asyncio.Handle | None = None

    @property
    def in_progress(self) -> bool:
        """Whether a round is still waiting to call some listeners."""
        return self._next_chunk is not None

    def call_all(self, listeners: Listeners) -> None:
        """Start a round over the current listeners (restarting a running one)."""
        self.cancel()
        self._call_chunk(listeners, iter(list(listeners)))

    def cancel(self) -> None:
        """Drop the rest of a running round (e.g. the coordinator shuts down)."""
        if self._next_chunk is not None:
            self._next_chunk.cancel()
            self._next_chunk = None

    def _call_chunk(self, listeners: Listeners, pending: Iterator[int]) -> None:
        self._next_chunk = None
        chunk = list(itertools.islice(pending, self._chunk_size))
        if not chunk:
            return
        # Scheduled first: a listener that raises does not end the round.
        self._next_chunk = self._loop.call_soon(self._call_chunk, listeners, pending)
        for listener_id in chunk:
            listener = listeners.get(listener_id)
            if listener is not None:
                listener[0]()
