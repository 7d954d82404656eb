"""Compile the component graph's formula strings once, evaluate them every tick.

The graph library describes each pool as a string such as
``COALESCE(#4 + #5, #3, COALESCE(#4, 0.0) + COALESCE(#5, 0.0))`` where ``#N`` is
component N's value of whatever metric is being aggregated. Parsing that string on
every tick would dominate the cost of a 1,000-component microgrid, so `compile_formula`
parses it once into nested closures; evaluating is then a handful of dict look-ups.

Missing-value rules (spec §5, the SDK's semantics):

- an operand that is missing or NaN makes ``+ - * /`` (and ``MIN``/``MAX``) yield
  no value (`None`); division by zero yields no value too;
- ``COALESCE(a, b, …)`` yields its first argument that has a value;
- a formula whose components all lack a value yields no value, even when a
  ``COALESCE(…, 0.0)`` fallback would give a constant: a pool nobody hears from is
  unknown, never a made-up 0 W.

Grammar (the library's and the SDK's): numbers, ``#N``, unary minus, ``+ - * /``
with the usual precedence, parentheses, and the functions ``COALESCE``, ``MIN``,
``MAX`` (case-insensitive).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
import functools
import math
import re
from typing import NoReturn

type Values = Mapping[int, float]
"""Latest value per component id (components without a value are absent)."""

type _Node = Callable[[Values], float | None]


class FormulaError(ValueError):
    """The formula string is not valid formula syntax."""


_TOKEN = re.compile(
    r"\s*(?:(?P<component>#\d+)|(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)"
    r"|(?P<name>[A-Za-z_]\w*)|(?P<op>[-+*/(),]))"
)


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    stripped_end = len(text.rstrip())
    while position < stripped_end:
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FormulaError(f"Unexpected character at {position} in {text!r}")
        tokens.append(match.group(match.lastgroup or 0))
        position = match.end()
    return tokens


def _has_value(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _component(component_id: int) -> _Node:
    def value_of(values: Values) -> float | None:
        value = values.get(component_id)
        # NaN is the only float that differs from itself: cheaper than math.isnan.
        return None if value is None or value != value else value

    return value_of


def _constant(number: float) -> _Node:
    return lambda _values: number


def _negate(operand: _Node) -> _Node:
    def negate(values: Values) -> float | None:
        value = operand(values)
        return None if value is None else -value

    return negate


def _divide(left: float, right: float) -> float | None:
    return None if right == 0.0 else left / right


_BINARY: dict[str, Callable[[float, float], float | None]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
}


type _Term = tuple[int, float | None]
"""A chain operand that is a component's value: its id, and the constant that
stands in when it has none (``COALESCE(#N, c)``; `None`: plain ``#N``)."""


def _sum(first: _Term, rest: list[tuple[bool, _Term]]) -> _Node:
    """``t + t - t …`` of component terms (`_Term`), in one loop.

    What the pool formulas are (``COALESCE(#3, 0.0) + COALESCE(#7, 0.0) + …``,
    the consumer formula ``#2 - COALESCE(#3, 0.0) - …``), evaluated for every
    pool on every tick: one loop instead of three closure calls per term, with
    the same operations in the same order (the same float result).
    """
    first_id, first_fallback = first
    terms = [(cid, fallback, negative) for negative, (cid, fallback) in rest]

    def linear(values: Values) -> float | None:
        get = values.get
        result = get(first_id)
        if result is None or result != result:  # missing or NaN
            if first_fallback is None:
                return None
            result = first_fallback
        for component_id, fallback, negative in terms:
            value = get(component_id)
            if value is None or value != value:
                if fallback is None:
                    return None
                value = fallback
            if negative:
                result -= value
            else:
                result += value
        return result

    return linear


def _chain(
    first: _Node,
    rest: list[tuple[str, _Node]],
    terms: dict[int, _Term] | None = None,
) -> _Node:
    """``a op b op c …`` left to right, as nested binary operations would.

    One node for the whole chain, not one per operator: the grid formula of a
    site with thousands of components is a sum of thousands of terms, and nested
    closures that deep would exceed Python's recursion limit. `terms`: the
    nodes that are component terms (by `id`); a sum of those only is `_sum`.
    """
    if not rest:
        return first
    if (
        terms is not None
        and (head := terms.get(id(first))) is not None
        and all(operator in "+-" and id(operand) in terms for operator, operand in rest)
    ):
        return _sum(
            head, [(operator == "-", terms[id(operand)]) for operator, operand in rest]
        )
    steps = [(_BINARY[operator], operand) for operator, operand in rest]

    def chain(values: Values) -> float | None:
        result = first(values)
        if result is None:
            return None
        for apply, operand in steps:
            value = operand(values)
            if value is None:
                return None
            result = apply(result, value)
            if result is None:
                return None
        return result

    return chain


def _coalesce(arguments: list[_Node]) -> _Node:
    def coalesce(values: Values) -> float | None:
        for argument in arguments:
            value = argument(values)
            if value is not None:
                return value
        return None

    return coalesce


def _extreme(pick: Callable[[list[float]], float], arguments: list[_Node]) -> _Node:
    def extreme(values: Values) -> float | None:
        results: list[float] = []
        for argument in arguments:
            value = argument(values)
            if value is None:
                return None
            results.append(value)
        return pick(results)

    return extreme


_FUNCTIONS: dict[str, Callable[[list[_Node]], _Node]] = {
    "COALESCE": _coalesce,
    "MIN": lambda arguments: _extreme(min, arguments),
    "MAX": lambda arguments: _extreme(max, arguments),
}


class _Parser:
    """Recursive descent over the token list, building closures as it goes."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = _tokenize(text)
        self._position = 0
        self.component_ids: set[int] = set()
        self._constants: dict[int, float] = {}
        """The constant nodes built, by `id`."""
        self._terms: dict[int, _Term] = {}
        """The component terms built (`_Term`), by `id`, for `_sum`."""
        self._noted: list[_Node] = []
        """Every node noted by `id` above, kept alive while parsing: `_sum`
        drops its operands, and a new node must not take an old one's id."""

    def parse(self) -> _Node:
        node = self._expression()
        if self._position != len(self._tokens):
            self._fail(f"unexpected {self._tokens[self._position]!r}")
        return node

    def _peek(self) -> str | None:
        if self._position < len(self._tokens):
            return self._tokens[self._position]
        return None

    def _next(self) -> str:
        token = self._peek()
        if token is None:
            self._fail("unexpected end")
        self._position += 1
        return token

    def _expect(self, token: str) -> None:
        if self._next() != token:
            self._fail(f"expected {token!r}")

    def _fail(self, reason: str) -> NoReturn:
        raise FormulaError(f"Invalid formula {self._text!r}: {reason}")

    def _expression(self) -> _Node:
        first = self._term()
        rest: list[tuple[str, _Node]] = []
        while (operator := self._peek()) in ("+", "-"):
            self._position += 1
            rest.append((operator, self._term()))
        return _chain(first, rest, self._terms)

    def _term(self) -> _Node:
        first = self._unary()
        rest: list[tuple[str, _Node]] = []
        while (operator := self._peek()) in ("*", "/"):
            self._position += 1
            rest.append((operator, self._unary()))
        return _chain(first, rest)

    def _unary(self) -> _Node:
        if self._peek() == "-":
            self._position += 1
            return _negate(self._unary())
        if self._peek() == "+":
            self._position += 1
            return self._unary()
        return self._primary()

    def _primary(self) -> _Node:
        token = self._next()
        if token == "(":
            node = self._expression()
            self._expect(")")
            return node
        if token.startswith("#"):
            component_id = int(token[1:])
            self.component_ids.add(component_id)
            node = _component(component_id)
            self._terms[id(node)] = (component_id, None)
            self._noted.append(node)
            return node
        if token[0].isdigit() or token[0] == ".":
            number = float(token)
            node = _constant(number)
            self._constants[id(node)] = number
            self._noted.append(node)
            return node
        name = token.upper()
        function = _FUNCTIONS.get(name)
        if function is None:
            self._fail(f"unknown name {token!r}")
        self._expect("(")
        arguments = [self._expression()]
        while self._peek() == ",":
            self._position += 1
            arguments.append(self._expression())
        self._expect(")")
        node = function(arguments)
        if name == "COALESCE" and len(arguments) == 2:
            term = self._terms.get(id(arguments[0]))
            fallback = self._constants.get(id(arguments[1]))
            if term is not None and term[1] is None and fallback is not None:
                self._terms[id(node)] = (term[0], fallback)
                self._noted.append(node)
        return node


@dataclass(frozen=True, slots=True)
class Formula:
    """A compiled formula: evaluate it against the latest value per component."""

    text: str
    component_ids: frozenset[int]
    _root: _Node

    def evaluate(self, values: Values) -> float | None:
        """Return the formula's value, or `None` when it has no value (see module)."""
        if self.component_ids and not any(
            _has_value(values.get(cid)) for cid in self.component_ids
        ):
            return None
        return self._root(values)


@functools.lru_cache(maxsize=32)
def compile_formula(text: str) -> Formula:
    """Parse `text` once into an evaluable `Formula`.

    Remembered per text (a `Formula` is immutable): the pool formulas of a new
    topology are compiled in the executor (`CompiledFormulas`), and what the
    steering compiles of the same strings in the event loop is then at hand.

    Raises:
        FormulaError: `text` is not a valid formula.
    """
    parser = _Parser(text)
    root = parser.parse()
    return Formula(text, frozenset(parser.component_ids), root)
