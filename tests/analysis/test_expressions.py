"""The expression language (sim/analysis/expressions.py), against hand-evaluated rows."""

from __future__ import annotations

import builtins

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.analysis.expressions import (
    And,
    Column,
    Compare,
    Constant,
    ExpressionError,
    Not,
    Or,
    evaluate_expression,
    expression_columns,
    parse_expression,
)


@pytest.fixture()
def runs() -> pd.DataFrame:
    """Five runs with string, float, integer, boolean and dotted-name columns (and missing values)."""
    return pd.DataFrame(
        {
            "leader": ["Hefei", "Beijing", "Hefei", None, "Shanghai"],
            "hhi": [0.5, 0.2, 0.31, 0.4, np.nan],
            "top1_share": [0.6, 0.3, 0.45, 0.2, 0.1],
            "firms_Hefei": [30_000, 10, 25_000, 2, 20_000],
            "cities.Hefei.policy.budget": [1e6, 2e6, 3e5, 0.0, 5e6],
            "converged": [True, False, True, True, False],
        }
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("leader == 'Hefei'", [True, False, True, False, False]),
        ('leader != "Hefei"', [False, True, False, False, True]),  # missing leader: False for != as well
        ("firms_Hefei > 20000", [True, False, True, False, False]),
        ("firms_Hefei >= 20000", [True, False, True, False, True]),
        ("hhi < 0.31", [False, True, False, False, False]),
        ("hhi <= 0.31", [False, True, True, False, False]),
        ("hhi > 0.3 and not (leader == \"Beijing\" or top1_share >= 0.5)", [False, False, True, True, False]),
        ("`cities.Hefei.policy.budget` >= 1e6", [True, True, False, False, True]),
        ("`cities.Hefei.policy.budget` < 1.5E+6", [True, False, True, True, False]),
        ("converged", [True, False, True, True, False]),
        ("converged == false", [False, True, False, False, True]),
        ("not converged or hhi > 0.45", [True, True, False, False, True]),
        ("hhi > -1e-3", [True, True, True, True, False]),
        ("0.3 < hhi", [True, False, True, True, False]),
        ("true", [True] * 5),
        ("not not converged", [True, False, True, True, False]),
        ("hhi > top1_share", [False, False, False, True, False]),
    ],
)
def test_evaluates_as_by_hand(runs, text, expected):
    """Each expression gives the row-by-row answer worked out by hand."""
    result = evaluate_expression(text, runs)
    assert result.dtype == bool
    assert result.tolist() == expected
    assert list(result.index) == list(runs.index)


def test_precedence_not_over_and_over_or():
    """``a or b and not c`` reads as ``a or (b and (not c))``."""
    tree = parse_expression("a or b and not c").tree
    assert tree == Or((Column("a", 0), And((Column("b", 5), Not(Column("c", 15), 11)), 5)), 0)
    frame = pd.DataFrame({"a": [False, False, True], "b": [True, True, False], "c": [True, False, True]})
    assert evaluate_expression("a or b and not c", frame).tolist() == [False, True, True]
    assert evaluate_expression("(a or b) and not c", frame).tolist() == [False, True, False]


def test_ast_of_a_comparison():
    """The parser builds Compare nodes with column/constant operands and positions."""
    assert parse_expression("x >= 2.5").tree == Compare(">=", Column("x", 0), Constant(2.5, 5), 2)
    assert parse_expression("`a b` == 'q'").tree == Compare("==", Column("a b", 0), Constant("q", 9), 6)
    assert parse_expression("n == 3").tree.right.value == 3 and isinstance(parse_expression("n == 3").tree.right.value, int)


def test_columns_used():
    """``expression_columns`` lists exactly the column names in the text, backquoted ones included."""
    text = "hhi > 0.3 and not (leader == 'Beijing' or `cities.Hefei.policy.budget` >= 1)"
    assert expression_columns(text) == {"hhi", "leader", "cities.Hefei.policy.budget"}
    assert parse_expression("'a' == 'a'").columns == frozenset()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("firm_Hefei > 20000", "expression: unknown column 'firm_Hefei' at position 0 (did you mean 'firms_Hefei'?)"),
        ("firms_Hefei > ", "expression: expected a value after '>' at position 14, found the end of the text"),
        ("hhi > 0.3 and >", "expression: expected a column, a value or '(' at position 14, found '>'"),
        ("leader > 3", "expression: cannot compare string column 'leader' with number constant 3 at position 7"),
        ("hhi == 'x'", "expression: cannot compare number column 'hhi' with string constant 'x' at position 4"),
        ("hhi = 0.3", "expression: single '=' at position 4 (write '==' to compare)"),
        ("(hhi > 0.3", "expression: '(' at position 0 is never closed (found 'end of text' at position 10)"),
        ("hhi > 0.3)", "expression: unmatched ')' at position 9"),
        ("0 < hhi < 1", "expression: chained comparison at position 8 (write 'a < b and b < c')"),
        ("", "expression: empty expression at position 0"),
        ("leader == 'Hefei", "expression: unterminated string starting at position 10"),
        ("`hhi > 1", "expression: unterminated backquoted column name starting at position 0"),
        ("hhi", "expression: number column 'hhi' at position 0 is not a condition (compare it, e.g. with '>' or '==')"),
        ("hhi > 1e", "expression: malformed number '1e' at position 6 (exponent has no digits)"),
        ("hhi ; rm -rf /", "expression: unexpected character ';' at position 4"),
        ("converged > true", "expression: booleans can only be compared with '==' or '!=' at position 10"),
        ("hhi > 0.3 hhi", "expression: expected 'and', 'or' or the end after the condition, got 'hhi' at position 10"),
    ],
)
def test_errors_name_problem_and_position(runs, text, message):
    """Every bad expression raises ExpressionError (a ValueError) with one explicit line."""
    with pytest.raises(ExpressionError) as info:
        evaluate_expression(text, runs)
    assert str(info.value) == message
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_deep_nesting_is_refused_not_a_recursion_error():
    """Thousands of parentheses or ``not`` raise ExpressionError rather than RecursionError."""
    with pytest.raises(ExpressionError, match="nesting deeper"):
        parse_expression("(" * 2000 + "a" + ")" * 2000)
    with pytest.raises(ExpressionError, match="nesting deeper"):
        parse_expression("not " * 2000 + "a")


def test_python_is_never_run(runs, monkeypatch):
    """Python-looking text is rejected by the grammar; eval/exec and DataFrame.query/eval are never called."""

    def forbidden(*args, **kwargs):
        raise AssertionError("eval-like function called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(pd.DataFrame, "query", forbidden)
    monkeypatch.setattr(pd.DataFrame, "eval", forbidden)
    monkeypatch.setattr(pd, "eval", forbidden)
    assert evaluate_expression("hhi > 0.3 and leader == 'Hefei'", runs).tolist() == [True, False, True, False, False]
    for text in ["__import__('os').system('echo hi')", "hhi.__class__", "hhi + 1 > 2", "[x for x in hhi]", "lambda: 0"]:
        with pytest.raises(ExpressionError):
            evaluate_expression(text, runs)


_ALPHABET = st.sampled_from(
    list("abhix_ ()=!<>'\"`.-+e0123456789;[]{}:,@#$\\\n\t")
    + ["and ", "or ", "not ", "hhi", "leader", "true", "__import__", "os.system", "==", ">=", "'Hefei'"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_ALPHABET, max_size=30).map("".join))
def test_fuzz_random_text_parses_or_raises_outcome_error(text):
    """Random text either parses (and then evaluates or raises ExpressionError) or raises ExpressionError; nothing else."""
    frame = pd.DataFrame({"hhi": [0.1, 0.5], "leader": ["Hefei", "Beijing"], "a": [True, False], "x": [1, 2]})
    executed = []
    real_eval = builtins.eval
    builtins.eval = lambda *a, **k: executed.append(a)  # noqa: B023 - restored below
    try:
        try:
            outcome = parse_expression(text)
        except ExpressionError:
            return
        try:
            result = outcome.evaluate(frame)
        except ExpressionError:
            return
        assert result.dtype == bool and len(result) == 2
        assert outcome.columns <= set(frame.columns)
    finally:
        builtins.eval = real_eval
    assert executed == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_fuzz_arbitrary_unicode(text):
    """Arbitrary unicode text never raises anything but ExpressionError."""
    try:
        parse_expression(text).evaluate(pd.DataFrame({"a": [True]}))
    except ExpressionError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
def test_fuzz_number_literals_round_trip(value, op):
    """A float written with repr() compares exactly as Python compares it."""
    frame = pd.DataFrame({"v": [value - 1.0, value, value + 1.0, np.nextafter(value, 0.0)]})
    result = evaluate_expression(f"v {op} {value!r}", frame)
    expected = {"==": frame.v == value, "!=": frame.v != value, "<": frame.v < value,
                "<=": frame.v <= value, ">": frame.v > value, ">=": frame.v >= value}[op]
    assert result.tolist() == expected.tolist()
