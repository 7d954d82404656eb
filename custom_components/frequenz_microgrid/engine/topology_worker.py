"""The pool formulas of a large microgrid, generated where they cannot stall the loop.

`frequenz-microgrid-component-graph` generates the pool formulas (which meter or
inverter measures which pool, with which fallbacks) in Rust, holding the GIL
throughout: ~0.3–0.6 s for a 1,000-component site. In an executor thread that
still stops Home Assistant's event loop for as long, so a large site's formulas
are generated in a child process instead (`formulas_in_child_process`), which
shares no GIL with it.

The child is this very file run as a script by the same interpreter: it imports
the graph library and the Microgrid client only (about 0.5 s and 50 MB, once per
build, and gone afterwards), not Home Assistant nor the integration. It reads
the API's raw answers on stdin and writes the formulas as JSON on stdout, so
nothing but bytes crosses the pipe and the loop never pickles or decodes 1,000
components. A topology is built at set-up and when it really changed (rare: an
installer connects something), so a process per build costs no memory between.

This module imports nothing of the integration (no relative imports): the child
runs it as `__main__`, with the parent's `sys.path`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
import contextlib
import json
import logging
import os
import struct
import sys
from typing import Final, TypedDict

from frequenz.api.microgrid.v1alpha18 import microgrid_pb2
from frequenz.client.common.microgrid.components import ComponentId
from frequenz.client.microgrid import MicrogridInfo
from frequenz.client.microgrid._microgrid_info_proto import (
    microgrid_info_from_proto,
)
from frequenz.client.microgrid.component import (
    Battery,
    Component,
    ComponentConnection,
    EvCharger,
    SolarInverter,
)
from frequenz.client.microgrid.component._component_proto import (
    component_from_proto,
)
from frequenz.client.microgrid.component._connection_proto import (
    component_connection_from_proto,
)
from frequenz.microgrid_component_graph import (
    ComponentGraph,
    ComponentGraphConfig,
    FormulaGenerationError,
    InvalidGraphError,
)
from google.protobuf.message import Message

type RawTopology = tuple[bytes, bytes, bytes]
"""The metadata, components and connections exactly as the API sent them.

Serialized deterministically (`GetMicrogridResponse`,
`ListElectricalComponentsResponse`, `ListElectricalComponentConnectionsResponse`),
so equal bytes are an unchanged topology.
"""

type Decoded = tuple[MicrogridInfo, list[Component], list[ComponentConnection]]
"""The raw answers as the client's objects."""

POOLS: Final = ("battery", "ev_charger", "pv", "grid", "consumer", "producer")
"""The pools with a formula, in the order `PoolFormulas` has them."""

type FormulaTexts = dict[str, str | None]
"""Per pool (`POOLS`), its formula string, `None` for an empty pool."""

CHILD_NICENESS: Final = 10
"""The child's scheduling priority: below Home Assistant's on a busy small CPU."""

CHILD_TIMEOUT_S: Final = 120.0
"""Longest a child may take (1,000 components take a few seconds on a small CPU)."""


class Generated(TypedDict):
    """The formulas and why some are missing (said by the caller's log)."""

    formulas: FormulaTexts
    problems: list[str]


class WorkerError(Exception):
    """The child process failed: could not start, crashed, timed out, spoke nonsense."""


def decode(raw: RawTopology) -> Decoded:
    """Decode the raw answers into the client's objects, as its calls would.

    Pure Python (no long GIL hold), but ~0.3 s for 1,000 components: run it in
    an executor, not in the event loop.
    """
    return CachingDecoder().decode(raw)


class CachingDecoder:
    """`decode`, re-using the objects of components whose message is unchanged.

    A re-read whose answers differ has, nearly always, a few components come,
    go or change among hundreds that did not: only those few are decoded anew.
    That saves time and the thousands of objects a full decode allocates (work
    for the garbage collector, whose full collections of a large Home
    Assistant hold the event loop for half a second or more).
    """

    def __init__(self) -> None:
        """Start knowing nothing (the first `decode` decodes everything)."""
        self._components: dict[bytes, Component] = {}
        self._connections: dict[bytes, ComponentConnection | None] = {}

    def decode(self, raw: RawTopology) -> Decoded:
        """Decode the raw answers into the client's objects (see `decode`)."""
        info_bytes, components_bytes, connections_bytes = raw
        info = microgrid_pb2.GetMicrogridResponse.FromString(info_bytes)
        components, connections = self.decode_wiring(
            components_bytes, connections_bytes
        )
        return microgrid_info_from_proto(info.microgrid), components, connections

    def decode_wiring(
        self, components_bytes: bytes, connections_bytes: bytes
    ) -> tuple[list[Component], list[ComponentConnection]]:
        """The components and connections alone (what the child process needs)."""
        components, self._components = _reuse(
            microgrid_pb2.ListElectricalComponentsResponse.FromString(
                components_bytes
            ).electrical_components,
            self._components,
            component_from_proto,
        )
        connections, self._connections = _reuse(
            microgrid_pb2.ListElectricalComponentConnectionsResponse.FromString(
                connections_bytes
            ).electrical_component_connections,
            self._connections,
            component_connection_from_proto,
        )
        return components, [c for c in connections if c is not None]


def _reuse[M: Message, T](
    messages: Iterable[M], known: dict[bytes, T], convert: Callable[[M], T]
) -> tuple[list[T], dict[bytes, T]]:
    """Each message converted, or its object of last time; and the new cache."""
    cache: dict[bytes, T] = {}
    converted: list[T] = []
    for message in messages:
        key = message.SerializeToString(deterministic=True)
        value = known[key] if key in known else convert(message)
        cache[key] = value
        converted.append(value)
    return converted, cache


def generate_formulas(
    components: Sequence[Component], connections: Iterable[ComponentConnection]
) -> Generated:
    """Build the component graph and generate every pool's formula string.

    An empty pool has no formula (the library would answer "0.0"): there is
    nothing to measure, so the pool gets no entities rather than a fake 0 W. A
    formula the graph cannot express is `None` and its reason a problem.

    Raises:
        InvalidGraphError: the components and connections are no valid microgrid.
    """
    graph: ComponentGraph[Component, ComponentConnection, ComponentId] = ComponentGraph(
        components, connections, ComponentGraphConfig()
    )

    def has(kind: type[Component]) -> bool:
        return any(isinstance(c, kind) for c in components)

    generators: dict[str, Callable[[], str] | None] = {
        "battery": (lambda: graph.battery_formula(None)) if has(Battery) else None,
        "ev_charger": (lambda: graph.ev_charger_formula(None))
        if has(EvCharger)
        else None,
        "pv": (lambda: graph.pv_formula(None)) if has(SolarInverter) else None,
        "grid": graph.grid_formula,
        "consumer": graph.consumer_formula,
        "producer": graph.producer_formula,
    }
    formulas: FormulaTexts = {}
    problems: list[str] = []
    for pool in POOLS:
        generate = generators[pool]
        formulas[pool] = None
        if generate is None:
            continue
        try:
            formulas[pool] = generate()
        except FormulaGenerationError as err:
            problems.append(f"Cannot build the {pool} formula: {err}")
    return Generated(formulas=formulas, problems=problems)


async def formulas_in_child_process(
    raw: RawTopology, *, timeout_s: float = CHILD_TIMEOUT_S
) -> Generated:
    """Generate the formulas of the raw topology in a child process (see module).

    Everything here is asynchronous: starting the child, writing the request and
    waiting for the answer hold the event loop for a few milliseconds.

    Raises:
        InvalidGraphError: the topology is no valid microgrid (said by the child).
        WorkerError: the child could not deliver; generate in-process instead.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-P",  # not this file's directory first: only the parent's sys.path
            __file__,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
    except OSError as err:
        raise WorkerError(f"cannot start {sys.executable}: {err}") from err
    with contextlib.suppress(OSError):  # Home Assistant's own work goes first
        os.setpriority(os.PRIO_PROCESS, process.pid, CHILD_NICENESS)
    request = b"".join(_frame(part) for part in raw[1:])
    try:
        async with asyncio.timeout(timeout_s):
            out, err_out = await process.communicate(request)
    except TimeoutError as err:
        process.kill()
        await process.wait()
        raise WorkerError(f"no answer within {timeout_s:.0f} s") from err
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        tail = err_out.decode(errors="replace").strip().splitlines()[-1:]
        raise WorkerError(f"exit code {process.returncode}: {' '.join(tail)}")
    return _answer(out)


def _frame(part: bytes) -> bytes:
    return struct.pack(">Q", len(part)) + part


def _unframe(data: bytes, count: int) -> list[bytes]:
    parts: list[bytes] = []
    position = 0
    for _ in range(count):
        (length,) = struct.unpack_from(">Q", data, position)
        position += 8
        parts.append(data[position : position + length])
        position += length
    return parts


def _answer(out: bytes) -> Generated:
    """The child's JSON answer; an invalid graph raised as the library would."""
    try:
        answer = json.loads(out)
        if "invalid" in answer:
            raise InvalidGraphError(str(answer["invalid"]))
        formulas = {pool: answer["formulas"][pool] for pool in POOLS}
        problems = [str(p) for p in answer["problems"]]
    except (ValueError, KeyError, TypeError) as err:
        raise WorkerError(f"unreadable answer: {err}") from err
    if not all(text is None or isinstance(text, str) for text in formulas.values()):
        raise WorkerError("unreadable answer: a formula is not a string")
    return Generated(formulas=formulas, problems=problems)


def _serve() -> None:
    """The child: raw components and connections in, formulas (JSON) out."""
    logging.basicConfig(level=logging.ERROR)  # the parent logs decoding issues
    components_bytes, connections_bytes = _unframe(sys.stdin.buffer.read(), 2)
    components, connections = CachingDecoder().decode_wiring(
        components_bytes, connections_bytes
    )
    try:
        answer: object = generate_formulas(components, connections)
    except InvalidGraphError as err:
        answer = {"invalid": str(err)}
    sys.stdout.write(json.dumps(answer))


if __name__ == "__main__":
    _serve()
