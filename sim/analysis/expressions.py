"""Boolean expressions over the columns of a table: a small, safe query language.

Generic: any :class:`pandas.DataFrame`. A user states which rows count (the runs with
an outcome of interest, the candidates meeting a constraint) as text, for example::

    leader == 'Hefei'
    firms_Hefei > 20000
    hhi > 0.3 and not (leader == "Beijing" or top1_share >= 0.5)
    `cities.Hefei.policy.budget` >= 1e6

The text is tokenised and parsed by a hand-written recursive-descent parser into a small
AST (:class:`Column`, :class:`Constant`, :class:`Compare`, :class:`Not`, :class:`And`,
:class:`Or`), which is then evaluated column-wise on a :class:`pandas.DataFrame` to a
boolean :class:`pandas.Series`. Nothing is ever handed to ``eval``/``exec`` or to
pandas' ``query``/``eval``: the only operations performed are the six comparisons and
the three boolean connectives, on columns named in the text.

Grammar (precedence ``not`` > ``and`` > ``or``)::

    expression := conjunct ("or" conjunct)*
    conjunct   := negation ("and" negation)*
    negation   := "not" negation | primary
    primary    := "(" expression ")" | value [comparator value]
    value      := column | number | string | "true" | "false"
    column     := identifier | `any text but a backquote`
    comparator := "==" | "!=" | "<" | "<=" | ">" | ">="

A bare value (no comparator) must be a boolean column or ``true``/``false``. Numbers
may carry a sign and scientific notation (``-1.5e3``); strings use single or double
quotes with backslash escapes. Keywords are lower case (``True``/``False`` are also
accepted); a column whose name is a keyword is written in backquotes.

Missing values (NaN/None) make a comparison False, whatever the operator (``!=``
included), so ``not (x > 1)`` holds on rows where ``x`` is missing.

Every problem raises :class:`ExpressionError` (a :class:`ValueError`) with one line naming
the problem and its 0-based character position in the text.

One module on purpose (about 550 lines): the tokenizer, the recursive-descent parser and
the evaluator implement one grammar, written out above, and read best side by side.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "And",
    "Column",
    "Compare",
    "Constant",
    "Not",
    "Or",
    "Expression",
    "ExpressionError",
    "evaluate_expression",
    "expression_columns",
    "parse_expression",
]

MAX_LENGTH = 10_000
"""Longest expression accepted (characters)."""
MAX_DEPTH = 100
"""Deepest nesting of parentheses and ``not`` accepted."""

_COMPARATORS: dict[str, Callable] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_KEYWORDS = {"and", "or", "not", "true", "false", "True", "False"}


class ExpressionError(ValueError):
    """An expression that cannot be parsed or evaluated (one line, with a position)."""


# ----------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class _Token:
    kind: str  # NAME, NUMBER, STRING, BOOL, AND, OR, NOT, OP, LPAREN, RPAREN, END
    value: object
    pos: int
    text: str


def _is_ident_start(ch: str) -> bool:
    return ch == "_" or ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _is_ident_char(ch: str) -> bool:
    return _is_ident_start(ch) or ("0" <= ch <= "9")


def _scan_number(text: str, i: int) -> int:
    """Return the end of a number literal starting at ``i`` (digits, '.', exponent), or ``i`` if none."""
    n = len(text)
    j = i
    while j < n and text[j].isascii() and text[j].isdigit():
        j += 1
    if j < n and text[j] == ".":
        j += 1
        while j < n and text[j].isascii() and text[j].isdigit():
            j += 1
    if j == i or text[i:j] == ".":
        return i
    if j < n and text[j] in "eE":
        k = j + 1
        if k < n and text[k] in "+-":
            k += 1
        if k < n and text[k].isascii() and text[k].isdigit():
            while k < n and text[k].isascii() and text[k].isdigit():
                k += 1
            j = k
        else:
            raise ExpressionError(f"expression: malformed number {text[i:k]!r} at position {i} (exponent has no digits)")
    return j


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch == "(":
            tokens.append(_Token("LPAREN", ch, i, ch))
            i += 1
        elif ch == ")":
            tokens.append(_Token("RPAREN", ch, i, ch))
            i += 1
        elif ch in "=!<>":
            two = text[i : i + 2]
            if two in _COMPARATORS:
                tokens.append(_Token("OP", two, i, two))
                i += 2
            elif ch in "<>":
                tokens.append(_Token("OP", ch, i, ch))
                i += 1
            elif ch == "=":
                raise ExpressionError(f"expression: single '=' at position {i} (write '==' to compare)")
            else:
                raise ExpressionError(f"expression: '!' at position {i} must be followed by '=' (use 'not' to negate)")
        elif ch in "'\"":
            j, chars = i + 1, []
            while j < n and text[j] != ch:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                chars.append(text[j])
                j += 1
            if j >= n:
                raise ExpressionError(f"expression: unterminated string starting at position {i}")
            tokens.append(_Token("STRING", "".join(chars), i, text[i : j + 1]))
            i = j + 1
        elif ch == "`":
            j = text.find("`", i + 1)
            if j < 0:
                raise ExpressionError(f"expression: unterminated backquoted column name starting at position {i}")
            if j == i + 1:
                raise ExpressionError(f"expression: empty backquoted column name at position {i}")
            tokens.append(_Token("NAME", text[i + 1 : j], i, text[i : j + 1]))
            i = j + 1
        elif (ch.isascii() and ch.isdigit()) or ch == "." or (
            ch in "+-" and i + 1 < n and (text[i + 1].isascii() and text[i + 1].isdigit() or text[i + 1] == ".")
        ):
            start = i + 1 if ch in "+-" else i
            end = _scan_number(text, start)
            if end == start:
                raise ExpressionError(f"expression: unexpected character {ch!r} at position {i}")
            if end < n and (_is_ident_char(text[end]) or text[end] == "."):
                raise ExpressionError(f"expression: malformed number {text[i : end + 1]!r} at position {i}")
            literal = text[start:end]
            is_int = all(c.isdigit() for c in literal)
            value: float | int = int(literal) if is_int else float(literal)
            if ch == "-":
                value = -value
            tokens.append(_Token("NUMBER", value, i, text[i:end]))
            i = end
        elif _is_ident_start(ch):
            j = i + 1
            while j < n and _is_ident_char(text[j]):
                j += 1
            word = text[i:j]
            if word in ("and", "or", "not"):
                tokens.append(_Token(word.upper(), word, i, word))
            elif word in ("true", "True", "false", "False"):
                tokens.append(_Token("BOOL", word.lower() == "true", i, word))
            else:
                tokens.append(_Token("NAME", word, i, word))
            i = j
        else:
            raise ExpressionError(f"expression: unexpected character {ch!r} at position {i}")
    tokens.append(_Token("END", None, n, "end of text"))
    return tokens


# ----------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Column:
    """A column of the results table, by exact name.

    Attributes:
        name: column name as written (backquotes removed).
        pos: 0-based character position in the expression.
    """

    name: str
    pos: int = 0


@dataclass(frozen=True)
class Constant:
    """A literal: a number (int or float), a string, or a boolean.

    Attributes:
        value: the literal's value.
        pos: 0-based character position in the expression.
    """

    value: object
    pos: int = 0


@dataclass(frozen=True)
class Compare:
    """A comparison ``left op right``.

    Attributes:
        op: one of ``== != < <= > >=``.
        left: a :class:`Column` or :class:`Constant`.
        right: a :class:`Column` or :class:`Constant`.
        pos: position of the operator.
    """

    op: str
    left: Column | Constant
    right: Column | Constant
    pos: int = 0


@dataclass(frozen=True)
class Not:
    """Logical negation of ``operand``."""

    operand: Node
    pos: int = 0


@dataclass(frozen=True)
class And:
    """Logical conjunction of two or more ``operands``."""

    operands: tuple[Node, ...]
    pos: int = 0


@dataclass(frozen=True)
class Or:
    """Logical disjunction of two or more ``operands``."""

    operands: tuple[Node, ...]
    pos: int = 0


Node = Column | Constant | Compare | Not | And | Or


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node:
        if self.tok.kind == "END":
            raise ExpressionError("expression: empty expression at position 0")
        node = self.expression()
        if self.tok.kind != "END":
            tok = self.tok
            if tok.kind == "RPAREN":
                raise ExpressionError(f"expression: unmatched ')' at position {tok.pos}")
            raise ExpressionError(
                f"expression: expected 'and', 'or' or the end after the condition, got {tok.text!r} at position {tok.pos}"
            )
        return node

    def _enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"expression: nesting deeper than {MAX_DEPTH} levels at position {pos}")

    def expression(self) -> Node:
        pos = self.tok.pos
        operands = [self.conjunct()]
        while self.tok.kind == "OR":
            self.advance()
            operands.append(self.conjunct())
        return operands[0] if len(operands) == 1 else Or(tuple(operands), pos)

    def conjunct(self) -> Node:
        pos = self.tok.pos
        operands = [self.negation()]
        while self.tok.kind == "AND":
            self.advance()
            operands.append(self.negation())
        return operands[0] if len(operands) == 1 else And(tuple(operands), pos)

    def negation(self) -> Node:
        if self.tok.kind == "NOT":
            tok = self.advance()
            self._enter(tok.pos)
            if self.tok.kind == "END":
                raise ExpressionError(f"expression: expected a condition after 'not' at position {tok.pos}")
            node = Not(self.negation(), tok.pos)
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind == "LPAREN":
            self.advance()
            self._enter(tok.pos)
            if self.tok.kind == "RPAREN":
                raise ExpressionError(f"expression: empty parentheses at position {tok.pos}")
            node = self.expression()
            if self.tok.kind != "RPAREN":
                found = self.tok
                raise ExpressionError(
                    f"expression: '(' at position {tok.pos} is never closed (found {found.text!r} at position {found.pos})"
                )
            self.advance()
            self.depth -= 1
            return node
        left = self.value(after=None)
        if self.tok.kind == "OP":
            op = self.advance()
            right = self.value(after=op)
            if self.tok.kind == "OP":
                raise ExpressionError(
                    f"expression: chained comparison at position {self.tok.pos} (write 'a < b and b < c')"
                )
            return Compare(op.value, left, right, op.pos)
        return left

    def value(self, after: _Token | None) -> Column | Constant:
        tok = self.tok
        if tok.kind == "NAME":
            self.advance()
            return Column(tok.value, tok.pos)
        if tok.kind in ("NUMBER", "STRING", "BOOL"):
            self.advance()
            return Constant(tok.value, tok.pos)
        where = f"after {after.text!r}" if after is not None else "here"
        found = "the end of the text" if tok.kind == "END" else repr(tok.text)
        if after is not None:
            raise ExpressionError(f"expression: expected a value {where} at position {tok.pos}, found {found}")
        raise ExpressionError(f"expression: expected a column, a value or '(' at position {tok.pos}, found {found}")


# ----------------------------------------------------------------------------- evaluation


def _walk(node: Node) -> Iterable[Node]:
    yield node
    if isinstance(node, Compare):
        yield from _walk(node.left)
        yield from _walk(node.right)
    elif isinstance(node, Not):
        yield from _walk(node.operand)
    elif isinstance(node, And | Or):
        for child in node.operands:
            yield from _walk(child)


def _kind_of_constant(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _kind_of_column(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "number"
    values = series.dropna()
    if len(values) and all(isinstance(v, bool | np.bool_) for v in values):
        return "boolean"
    if len(values) and all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in values):
        return "number"
    return "string"


def _present(values: object, n: int) -> np.ndarray:
    """Boolean array of length ``n``: True where ``values`` (an array or a scalar) is not missing."""
    flat = np.broadcast_to(np.asarray(values, dtype=object), (n,))
    return np.array([not pd.isna(v) for v in flat], dtype=bool)


def _describe(value: Column | Constant) -> str:
    return f"column {value.name!r}" if isinstance(value, Column) else f"constant {value.value!r}"


@dataclass(frozen=True)
class Expression:
    """A parsed expression.

    Attributes:
        text: the expression as written.
        tree: the root of its AST.
        columns: names of every column the expression uses.
    """

    text: str
    tree: Node
    columns: frozenset[str] = field(default_factory=frozenset)

    def check(self, columns: Iterable[str]) -> None:
        """Raise :class:`ExpressionError` if the expression uses a column not among ``columns``."""
        available = [str(c) for c in columns]
        known = set(available)
        for node in _walk(self.tree):
            if isinstance(node, Column) and node.name not in known:
                close = difflib.get_close_matches(node.name, available, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ExpressionError(f"expression: unknown column {node.name!r} at position {node.pos}{hint}")

    def evaluate(self, frame: pd.DataFrame) -> pd.Series:
        """Evaluate on every row of ``frame``.

        Args:
            frame: the results table, one row per run.

        Returns:
            A boolean Series aligned with ``frame.index``, named after the expression.

        Raises:
            ExpressionError: an unknown column, or a comparison of incompatible types.
        """
        self.check(frame.columns)
        result = self._eval(self.tree, frame)
        return pd.Series(np.asarray(result, dtype=bool), index=frame.index, name=self.text)

    def _operand(self, value: Column | Constant, frame: pd.DataFrame) -> tuple[object, str]:
        if isinstance(value, Column):
            series = frame[value.name]
            if isinstance(series, pd.DataFrame):
                raise ExpressionError(f"expression: column {value.name!r} at position {value.pos} is duplicated in the table")
            return series.to_numpy(), _kind_of_column(series)
        return value.value, _kind_of_constant(value.value)

    def _eval(self, node: Node, frame: pd.DataFrame) -> np.ndarray:
        n = len(frame)
        if isinstance(node, Constant):
            if not isinstance(node.value, bool):
                raise ExpressionError(
                    f"expression: {_describe(node)} at position {node.pos} is not a condition (compare it with something)"
                )
            return np.full(n, node.value, dtype=bool)
        if isinstance(node, Column):
            values, kind = self._operand(node, frame)
            if kind != "boolean":
                raise ExpressionError(
                    f"expression: {kind} column {node.name!r} at position {node.pos} is not a condition "
                    "(compare it, e.g. with '>' or '==')"
                )
            return np.asarray(pd.Series(values).fillna(False).to_numpy(), dtype=bool)
        if isinstance(node, Not):
            return ~self._eval(node.operand, frame)
        if isinstance(node, And):
            out = np.ones(n, dtype=bool)
            for child in node.operands:
                out &= self._eval(child, frame)
            return out
        if isinstance(node, Or):
            out = np.zeros(n, dtype=bool)
            for child in node.operands:
                out |= self._eval(child, frame)
            return out
        assert isinstance(node, Compare)
        left, lkind = self._operand(node.left, frame)
        right, rkind = self._operand(node.right, frame)
        if lkind != rkind:
            raise ExpressionError(
                f"expression: cannot compare {lkind} {_describe(node.left)} with {rkind} {_describe(node.right)} "
                f"at position {node.pos}"
            )
        if lkind == "boolean" and node.op not in ("==", "!="):
            raise ExpressionError(f"expression: booleans can only be compared with '==' or '!=' at position {node.pos}")
        valid = _present(left, n) & _present(right, n)
        out = np.zeros(n, dtype=bool)
        if valid.any():
            lv = np.broadcast_to(np.asarray(left, dtype=object if lkind == "string" else None), (n,))[valid]
            rv = np.broadcast_to(np.asarray(right, dtype=object if rkind == "string" else None), (n,))[valid]
            if lkind == "string":
                lv = np.array([str(v) for v in lv], dtype=object)
                rv = np.array([str(v) for v in rv], dtype=object)
            out[valid] = np.asarray(_COMPARATORS[node.op](lv, rv), dtype=bool)
        return out

    def __str__(self) -> str:
        return self.text


def parse_expression(text: str) -> Expression:
    """Parse an expression.

    Args:
        text: the expression, e.g. ``"hhi > 0.3 and leader == 'Hefei'"``.

    Returns:
        The parsed :class:`Expression` (evaluate it with :meth:`Expression.evaluate`).

    Raises:
        ExpressionError: the text is not a valid expression (the message names the position).
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expression: expected text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression: expression longer than {MAX_LENGTH} characters at position {MAX_LENGTH}")
    tree = _Parser(text).parse()
    columns = frozenset(node.name for node in _walk(tree) if isinstance(node, Column))
    return Expression(text=text, tree=tree, columns=columns)


def expression_columns(text: str) -> frozenset[str]:
    """Names of the columns an expression uses (raises :class:`ExpressionError` if invalid)."""
    return parse_expression(text).columns


def evaluate_expression(text: str, frame: pd.DataFrame) -> pd.Series:
    """Parse ``text`` and evaluate it on ``frame`` to a boolean Series (one entry per row)."""
    return parse_expression(text).evaluate(frame)
