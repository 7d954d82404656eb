"""Formula compilation and the missing-value rules (spec §5)."""

from __future__ import annotations

import math

from hypothesis import given, strategies as st
import pytest

from custom_components.frequenz_microgrid.engine.formula import (
    FormulaError,
    compile_formula,
)
from tests.engine import topologies as t

NAN = float("nan")


def test_arithmetic_follows_precedence_and_parentheses() -> None:
    formula = compile_formula("#1 + #2 * #3 - (#4 - #5) / 2")
    values = {1: 10.0, 2: 3.0, 3: 4.0, 4: 9.0, 5: 1.0}
    assert formula.evaluate(values) == 10.0 + 12.0 - 4.0
    assert formula.component_ids == {1, 2, 3, 4, 5}


def test_unary_minus_and_constants() -> None:
    assert compile_formula("-#1 + 2.5").evaluate({1: 1.0}) == 1.5
    assert compile_formula("-(#1 - 3)").evaluate({1: 1.0}) == 2.0
    assert compile_formula("1.5e3").evaluate({}) == 1500.0


@pytest.mark.parametrize("missing", [None, NAN])
def test_missing_or_nan_operand_makes_arithmetic_yield_nothing(
    missing: float | None,
) -> None:
    values = {1: 5.0} if missing is None else {1: 5.0, 2: missing}
    for text in ("#1 + #2", "#1 - #2", "#1 * #2", "#2 / #1", "-#2", "MIN(#1, #2)"):
        assert compile_formula(text).evaluate(values) is None, text


def test_division_by_zero_yields_nothing() -> None:
    assert compile_formula("#1 / #2").evaluate({1: 1.0, 2: 0.0}) is None


def test_coalesce_takes_the_first_argument_with_a_value() -> None:
    formula = compile_formula("COALESCE(#1 + #2, #3, 7.0)")
    assert formula.evaluate({1: 1.0, 2: 2.0, 3: 100.0}) == 3.0
    assert formula.evaluate({1: 1.0, 2: NAN, 3: 100.0}) == 100.0
    assert formula.evaluate({1: 1.0}) == 7.0


def test_a_formula_nobody_reports_to_has_no_value_not_a_fallback_zero() -> None:
    formula = compile_formula("COALESCE(#4, 0.0) + COALESCE(#5, 0.0)")
    assert formula.evaluate({4: -300.0}) == -300.0
    assert formula.evaluate({}) is None
    assert formula.evaluate({4: NAN, 5: NAN}) is None
    # A formula with no component at all is a plain constant.
    assert compile_formula("0.0").evaluate({}) == 0.0


def test_min_and_max() -> None:
    assert compile_formula("MIN(#1, #2, 3)").evaluate({1: 5.0, 2: -1.0}) == -1.0
    assert compile_formula("max(#1, #2)").evaluate({1: 5.0, 2: -1.0}) == 5.0


@pytest.mark.parametrize(
    "text", ["", "#1 +", "(#1", "#1 )", "FOO(#1)", "#1 $ #2", "COALESCE #1", "#"]
)
def test_invalid_formulas_are_rejected(text: str) -> None:
    with pytest.raises(FormulaError):
        compile_formula(text)


def test_home_battery_formula_falls_back_like_the_library_says() -> None:
    topo = t.home_topology()
    assert topo.formulas.battery is not None
    battery = compile_formula(topo.formulas.battery)
    a, b, meter = t.INVERTER_A, t.INVERTER_B, t.BATTERY_METER
    # Both inverters report: their sum (the meter is only the fallback).
    assert battery.evaluate({a: 1000.0, b: -400.0, meter: 650.0}) == 600.0
    # One inverter silent: the battery meter measures the whole branch.
    assert battery.evaluate({a: 1000.0, meter: 650.0}) == 650.0
    # Meter silent too: what is left of the inverters.
    assert battery.evaluate({a: 1000.0}) == 1000.0
    # Nobody: unknown.
    assert battery.evaluate({}) is None


def test_home_consumer_formula_subtracts_every_known_non_consumer() -> None:
    topo = t.home_topology()
    assert topo.formulas.consumer is not None
    consumer = compile_formula(topo.formulas.consumer)
    values = {
        t.MAIN_METER: 2000.0,
        t.BATTERY_METER: 1500.0,
        t.INVERTER_A: 800.0,
        t.INVERTER_B: 700.0,
        t.PV_METER: -3100.0,
        t.PV_INVERTER: -3000.0,
        t.EV_CHARGER: 2200.0,
    }
    # Grid minus the branches that are not consumers, each measured at its meter
    # where there is one (battery meter 1500, PV meter -3100) and the EV charger.
    assert consumer.evaluate(values) == pytest.approx(2000.0 - 1500.0 + 3100.0 - 2200.0)
    del values[t.PV_METER]
    assert consumer.evaluate(values) == pytest.approx(2000.0 - 1500.0 + 3000.0 - 2200.0)
    del values[t.MAIN_METER]
    assert consumer.evaluate(values) is None


# --- Property: with every value present, the compiled formula is plain arithmetic.


def _expressions() -> st.SearchStrategy[str]:
    leaves = st.one_of(
        st.integers(min_value=1, max_value=6).map(lambda n: f"#{n}"),
        st.integers(min_value=0, max_value=50).map(str),
    )

    def extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(children, st.sampled_from("+-*"), children).map(
                lambda parts: f"({parts[0]} {parts[1]} {parts[2]})"
            ),
            st.tuples(children, st.sampled_from("+-*"), children).map(
                lambda parts: f"{parts[0]} {parts[1]} {parts[2]}"
            ),
            children.map(lambda child: f"-{child}"),
        )

    return st.recursive(leaves, extend, max_leaves=12)


@given(
    text=_expressions(),
    values=st.lists(
        st.floats(min_value=-1e4, max_value=1e4, allow_nan=False),
        min_size=6,
        max_size=6,
    ),
)
def test_compiled_formula_equals_python_arithmetic(
    text: str, values: list[float]
) -> None:
    lookup = {cid: values[cid - 1] for cid in range(1, 7)}
    python_text = text
    for cid in range(1, 7):
        python_text = python_text.replace(f"#{cid}", f"({lookup[cid]!r})")
    expected = eval(python_text)  # our own generated arithmetic
    assert compile_formula(text).evaluate(lookup) == pytest.approx(
        expected, rel=1e-9, abs=1e-6
    )
    assert not math.isnan(expected)


def test_a_sum_of_thousands_of_components_evaluates() -> None:
    """A 5,000-component site's pool formula: no recursion limit in the way."""
    ids = range(1, 5001)
    formula = compile_formula(" + ".join(f"#{cid}" for cid in ids))
    assert formula.evaluate(dict.fromkeys(ids, 1.0)) == 5000.0
    assert formula.evaluate({cid: 1.0 for cid in ids if cid != 4321}) is None
    mixed = compile_formula(" - ".join(f"#{cid}" for cid in ids))
    assert mixed.evaluate(dict.fromkeys(ids, 1.0)) == 1.0 - 4999.0


_sum_terms = st.lists(
    st.tuples(
        st.sampled_from(["+", "-"]),
        st.integers(min_value=1, max_value=6),
        st.sampled_from([None, 0.0, -1.5, 2.0]),
    ),
    min_size=1,
    max_size=12,
)


@given(
    terms=_sum_terms,
    values=st.dictionaries(
        st.integers(min_value=1, max_value=6),
        st.one_of(st.floats(min_value=-1e4, max_value=1e4), st.just(NAN)),
    ),
)
def test_a_sum_of_component_terms_evaluates_as_the_general_chain(
    terms: list[tuple[str, int, float | None]], values: dict[int, float]
) -> None:
    """Pool formulas (sums of ``#N`` and ``COALESCE(#N, c)``) take a faster path.

    It must give exactly what the general evaluation gives: the same terms
    written so the fast path does not apply (``MIN(#N)``, a three-argument
    ``COALESCE``) mean the same, and go the general way.
    """

    def written(cid: int, fallback: float | None, *, plain: bool) -> str:
        if fallback is None:
            return f"#{cid}" if plain else f"MIN(#{cid})"
        if plain:
            return f"COALESCE(#{cid}, {fallback!r})"
        return f"COALESCE(#{cid}, {fallback!r}, {fallback!r})"

    def text(*, plain: bool) -> str:
        first, *rest = terms
        return written(first[1], first[2], plain=plain) + "".join(
            f" {op} {written(cid, fallback, plain=plain)}" for op, cid, fallback in rest
        )

    fast = compile_formula(text(plain=True)).evaluate(values)
    general = compile_formula(text(plain=False)).evaluate(values)
    assert fast == general
