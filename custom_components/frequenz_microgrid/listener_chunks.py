"""Tell thousands of listeners about an update without holding the event loop.

A 1,000-component microgrid has about 5,000 entities, and every snapshot reaches
each of them. Called in one go, that is one callback of ~50 ms per snapshot, and
everything else on Home Assistant's event loop waits that long. Split into chunks
of at most `CHUNK_SIZE` listeners, one chunk per loop iteration, other work runs in
between and the longest stall is a few milliseconds. A chunk also ends once it has
run for `CHUNK_BUDGET_S`: listeners that happen to write their state cost more.

The first chunk runs at once, and a round of at most `CHUNK_SIZE` listeners runs
whole, whatever it costs: a small microgrid is notified exactly as before.
Listeners are looked up when their chunk runs: one removed meanwhile (an entity
being removed) is not called. A newer update restarts the round, since every
listener reads the latest data anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterable
import itertools
import math
import time
from typing import Final

from homeassistant.core import CALLBACK_TYPE, callback

CHUNK_SIZE: Final = 250
"""Listeners called per event-loop iteration, at most."""

CHUNK_BUDGET_S: Final = 0.002
"""How long one chunk may hold the event loop before the rest waits a turn.

Short, because whatever else is due waits that long: a proposal from an
automation should reach the microgrid within a few milliseconds."""


class ChunkedListeners:
    """Listeners told of an update `chunk_size` per event-loop iteration.

    The coordinator and the controller status feed each keep theirs here, so both
    tell thousands of entities the same way.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        chunk_size: int = CHUNK_SIZE,
        budget_s: float = CHUNK_BUDGET_S,
    ) -> None:
        """Start with no listeners on `loop`; nothing runs until `call_all`."""
        self._loop = loop
        self._chunk_size = chunk_size
        self._budget_s = budget_s
        self._listeners: dict[int, CALLBACK_TYPE] = {}
        self._by_key: dict[Hashable, dict[int, None]] = {None: {}}
        """Listener ids per key (`None`: told in every round), in the order added."""
        self._ids = itertools.count()
        self._next_chunk: asyncio.Handle | None = None
        self._round: list[int] = []
        self._round_next = 0
        """The running round's listeners and the index of the next one to call."""

    def __bool__(self) -> bool:
        """Whether anybody listens."""
        return bool(self._listeners)

    @callback
    def add(self, update: CALLBACK_TYPE, key: Hashable = None) -> CALLBACK_TYPE:
        """Call `update` in rounds from now on; return its remover.

        Without a key in every round; with one, in `call_all` rounds and in
        `call_changed` rounds that name its key.
        """
        listener_id = next(self._ids)
        self._listeners[listener_id] = update
        self._by_key.setdefault(key, {})[listener_id] = None

        @callback
        def remove() -> None:
            self._listeners.pop(listener_id, None)
            same_key = self._by_key.get(key)
            if same_key is not None:
                same_key.pop(listener_id, None)
                if not same_key and key is not None:
                    del self._by_key[key]

        return remove

    @callback
    def call_all(self) -> None:
        """Start a round over every listener (restarting a running one)."""
        self.cancel()
        self._call_chunk(list(self._listeners), 0)

    @callback
    def call_changed(self, keys: Iterable[Hashable]) -> None:
        """Start a round over the listeners of `keys` and those without a key.

        Listeners a running round had yet to call are called in this one too:
        what changed for them then has not been told yet.
        """
        by_key = self._by_key
        running = self._next_chunk is not None
        pending = self._round[self._round_next :] if running else []
        self.cancel()
        ids = [*pending, *by_key[None]]
        for key in keys:
            same_key = by_key.get(key)
            if same_key is not None:
                ids.extend(same_key)
        if pending:
            ids = list(dict.fromkeys(ids))
        self._call_chunk(ids, 0)

    @callback
    def cancel(self) -> None:
        """Drop the rest of a running round (e.g. the entry unloads)."""
        if self._next_chunk is not None:
            self._next_chunk.cancel()
            self._next_chunk = None

    def _call_chunk(self, ids: list[int], start: int) -> None:
        """Call listeners from `ids[start]` on, until the chunk is full or over time."""
        self._next_chunk = None
        self._round = ids
        end = min(start + self._chunk_size, len(ids))
        deadline = (
            math.inf
            if len(ids) <= self._chunk_size
            else time.perf_counter() + self._budget_s
        )
        index = start
        try:
            while index < end:
                listener = self._listeners.get(ids[index])
                index += 1
                if listener is not None:
                    listener()
                    if time.perf_counter() > deadline:
                        break
        finally:  # even if a listener raised: the others still hear of it
            self._round_next = index
            if index < len(ids):
                self._next_chunk = self._loop.call_soon(self._call_chunk, ids, index)
