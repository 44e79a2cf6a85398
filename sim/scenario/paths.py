"""One way to derive a scenario variant: set fields by their dotted path (sweeps, calibration, sensitivity, compare, page).

A path names a field as the scenario file writes it, e.g.
``parameters.network_effect`` or ``cities.Hefei.policy.budget``. A list
entry is addressed by its ``name`` (``cities.Hefei``; ``cities[St. Louis]``
for names with dots or spaces), by index for unnamed entries, or ``*`` for
every entry (``cities.*.policy.budget``).
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import operator
import pickle
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sim.model import overrides
from sim.model.parameters import Parameters
from sim.scenario.errors import ScenarioError
from sim.scenario.reading import validate
from sim.scenario.schema import Scenario, canonical_json, text_digest

if TYPE_CHECKING:
    from sim.scenario.factors import Factor

_PATH = re.compile(r"(?:[^.\[\]]+|\[[^\]]+\])(?:\.[^.\[\]]+|\[[^\]]+\])*")
_TOKEN = re.compile(r"\[([^\]]+)\]|([^.\[\]]+)")

EVERY = "*"
"""The token that stands for every entry of a list."""


class PathError(ScenarioError):
    """A path that is malformed or names nothing in the scenario; the message says which part."""


@functools.lru_cache(maxsize=4096)
def parse_path(path: str) -> tuple[str, ...]:
    """The tokens of a dotted path (``cities[St. Louis].firms`` → ``("cities", "St. Louis", "firms")``).

    Raises:
        PathError: the text is not a dotted path.
    """
    if not _PATH.fullmatch(path):
        raise PathError(f"{path!r} is not a dotted path like parameters.network_effect or cities.Hefei.policy.budget")
    return tuple(bracket or plain for bracket, plain in _TOKEN.findall(path))


def locations(data: Any, path: str | tuple[str, ...], create: bool = True) -> Iterator[tuple[Any, Any]]:
    """Each (container, key) holding the field a path names: one, or one per entry under ``*``.

    Mappings are entered by key (missing ones are created when ``create``); lists
    by the ``name`` of an entry, by index for unnamed entries, or every entry for
    ``*``. Without ``create`` a missing mapping (say, a city without a policy)
    yields ``(None, key)``, or nothing under ``*``.

    Raises:
        PathError: a list has no entry of that name, or a value is not a mapping.
    """
    tokens = parse_path(path) if isinstance(path, str) else path
    yield from _walk(data, tokens, 0, create)


def _walk(node: Any, tokens: tuple[str, ...], depth: int, create: bool) -> Iterator[tuple[Any, Any]]:
    token, last = tokens[depth], depth == len(tokens) - 1
    where = ".".join(tokens[:depth]) or "(top level)"
    if isinstance(node, list) and token == EVERY:
        for i, entry in enumerate(node):
            if last:
                yield node, i
            elif isinstance(entry, dict):
                yield from _walk(entry, tokens, depth + 1, create)
        return
    if isinstance(node, dict):
        key: Any = token
    elif isinstance(node, list):
        key = _list_index(node, token, where)
    elif node is None and not create:
        yield None, tokens[-1]
        return
    else:
        raise PathError(f"{where} is a value, not a mapping")
    if last:
        yield node, key
        return
    if isinstance(node, dict) and node.get(key) is None:
        if not create:
            if EVERY not in tokens[:depth]:
                yield None, tokens[-1]
            return
        node[key] = {}
    yield from _walk(node[key], tokens, depth + 1, create)


def _list_index(items: list[Any], token: str, where: str) -> int:
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if token in names:
        return names.index(token)
    if token.isdigit() and int(token) < len(items) and not any(isinstance(n, str) for n in names):
        return int(token)
    known = ", ".join(str(n) for n in names if n is not None)
    raise PathError(f"no entry named {token!r} in {where}" + (f" ({known})" if known else ""))


def set_path(data: Any, path: str | tuple[str, ...], value: Any | Callable[[Any], Any], create: bool = True) -> None:
    """Set the field(s) a path names in plain scenario data, in place.

    Args:
        data: a scenario as plain data (a raw file's mapping, or :meth:`Scenario.resolved`).
        path: the dotted path.
        value: the new value, or a function of the current value (e.g. ``lambda b: 2 * b`` to scale).
        create: create missing mappings on the way (a city without a policy gets one).

    Raises:
        PathError: the path names nothing in ``data``.
    """
    for container, key in locations(data, path, create=create):
        if container is None:
            continue
        if callable(value):
            current = container[key] if isinstance(container, list) else container.get(key)
            if current is None:
                continue
            container[key] = value(current)
        else:
            container[key] = copy.deepcopy(value)


def derive(base: Scenario | Mapping[str, Any], changes: Mapping[str, Any], source: str | None = None, *,
           factors: Sequence[tuple[Factor, float]] = (), **fields: Any) -> Scenario:
    """A variant of a scenario: ``changes`` (path → value or function) applied to its resolved data, validated.

    Args:
        base: a validated scenario, or plain scenario data (copied, never changed).
        changes: dotted path → new value (or a function of the current value).
        source: how refusals name the variant (default: the base's name and the changes).
        factors: ``(factor, value)`` pairs applied after ``changes``, in order: each factor sets its
            field(s) to the value (:meth:`sim.scenario.factors.Factor.apply`; a calibrated quantity
            may set several fields at once).
        fields: top-level fields to replace as well (e.g. ``name``, ``description``).

    Raises:
        ScenarioError: the variant is invalid (one line naming the field); PathError for a bad path.
    """
    # resolved() is a fresh copy; plain data is copied by pickling, several times faster than copy.deepcopy
    data = base.resolved() if isinstance(base, Scenario) else pickle.loads(pickle.dumps(dict(base)))
    for path, value in changes.items():
        set_path(data, path, value)
    for factor, value in factors:
        factor.apply(data, value)
    data.update(fields)
    label = source or f"{data.get('name', '<scenario>')} with " + ", ".join(
        [*(f"{p}={v!r}" for p, v in changes.items()), *(f"{f.target}={v!r}" for f, v in factors)])
    return validate(data, label)


def patch(base: Scenario, changes: Mapping[tuple[str, ...], Any]) -> Scenario:
    """A variant of a validated scenario with fields set by path, copied without validating it again.

    For designs whose fields were validated at their range's ends (a sweep's
    ``--range``, each ``--set`` value alone): every value between validates too,
    so the variant equals what :func:`derive` would return, at a small share of
    its cost (unchanged parts are shared with ``base``, never changed).

    Raises:
        PathError: a path names nothing in ``base`` (a city it lacks, or a field under a missing policy).
    """
    out = base
    for tokens, value in changes.items():
        out = _patched(out, tokens, value, "")
    return out


def _patched(node: Any, tokens: tuple[str, ...], value: Any, where: str) -> Any:
    if isinstance(node, list):
        names = [getattr(entry, "name", None) for entry in node]
        if tokens[0] != EVERY and tokens[0] not in names:
            raise PathError(f"no entry named {tokens[0]!r} in {where}")
        return [_patched(entry, tokens[1:], value, f"{where}.{name}") if tokens[0] in (EVERY, name) else entry
                for entry, name in zip(node, names, strict=True)]
    field = tokens[0]
    if not hasattr(node, "model_copy") or field not in type(node).model_fields:
        raise PathError(f"{where or '(top level)'} has no field {field!r}")
    if len(tokens) == 1:
        return node.model_copy(update={field: value})
    child = getattr(node, field)
    if child is None:
        raise PathError(f"{where}.{field} is not set")
    return node.model_copy(update={field: _patched(child, tokens[1:], value, f"{where}.{field}".lstrip("."))})


class DigestTemplate:
    """The :meth:`Scenario.digest` of a scenario's variants that differ only in the values at some paths.

    The scenario's canonical JSON is cut where those values stand, so a
    variant's digest is the hash of the pieces joined by its values' JSON: no
    copy, validation or dump of the scenario per variant. Equal to
    ``derive(base, changes).digest()`` for float values of float fields.
    """

    _MARK = "@@modu-value-{}@@"

    def __init__(self, base: Scenario, paths: Sequence[tuple[str, ...]]) -> None:
        data = base.resolved()
        for i, tokens in enumerate(paths):
            set_path(data, tokens, self._MARK.format(i), create=False)
        pieces = re.split(r'"@@modu-value-(\d+)@@"', canonical_json(data))
        self._text, self._slots = pieces[0::2], [int(i) for i in pieces[1::2]]

    def digest(self, values: Sequence[float]) -> str:
        """SHA-256 of the variant with ``values[i]`` at the i-th path (as floats)."""
        shown = [json.dumps(float(values[i])) for i in self._slots]
        text = "".join(itertools.chain.from_iterable(itertools.zip_longest(self._text, shown, fillvalue="")))
        return text_digest(text)


SCALE = "scale:"
"""Prefix of a draw's column that multiplies the fields its path names (``scale:cities.*.policy.budget``)."""


def draw_changes(row: Mapping[str, Any], *before: Mapping[str, Any]) -> dict[str, Any]:
    """The changes one row of a draws table makes, after the changes ``before`` (e.g. a candidate policy's).

    A column ``PATH`` sets the field; a column ``scale:PATH`` multiplies every field ``PATH`` names (a ``*``
    names every city) by its value, after everything else, so that it scales the variant's own values
    (a compared scenario's budgets, a candidate's). NaN entries set nothing.
    """
    out: dict[str, Any] = {}
    for path, value in row.items():
        if not path.startswith(SCALE) and value == value:
            out[path] = float(value)
    for changes in before:
        out.update(changes)
    for path, value in row.items():
        if path.startswith(SCALE) and value == value:
            out[path[len(SCALE):]] = functools.partial(operator.mul, float(value))  # picklable: runs go to workers
    return out


def apply_overrides(base: Scenario, keywords: Mapping[str, Any]) -> Scenario:
    """A variant from keyword overrides, as ``ModuModel(scenario, **keywords)`` and ``mesa.batch_run`` give them.

    Args:
        base: a validated scenario.
        keywords: field → value; a key with a dot is a dotted path (``cities.Beijing.policy.budget``),
            a bare key a behavioural parameter (``network_effect`` → ``parameters.network_effect``)
            or, if no parameter has that name, a top-level field (``seed``, ``engine``).

    Raises:
        ScenarioError: the variant is invalid, or a key names nothing (one line, with a suggestion).
    """
    changes = {key if "." in key or key not in Parameters.model_fields and key in Scenario.model_fields
               else f"parameters.{key}": value for key, value in keywords.items()}
    return derive(base, changes)


overrides.register(apply_overrides)

