"""Errors of the input layer: one line naming the file, the field's path and the reason."""

from __future__ import annotations

from typing import Any

MAX_MESSAGE_CHARS = 500
"""Longest refusal message; longer ones (a huge key or name quoted back) are cut."""


class ScenarioError(ValueError):
    """An invalid scenario; ``str(error)`` is one line: ``file: field.path: reason``.

    Whatever the message quotes (keys with line breaks, city names, file
    names), it is collapsed onto one line and cut to :data:`MAX_MESSAGE_CHARS`.
    """

    def __init__(self, message: str):
        """Keep ``message`` as one line of at most :data:`MAX_MESSAGE_CHARS` characters."""
        line = " ".join(str(message).split())
        if len(line) > MAX_MESSAGE_CHARS:
            line = line[: MAX_MESSAGE_CHARS - 1] + "…"
        super().__init__(line)


class ScenarioWarning(UserWarning):
    """A scenario that loads but may not do what its author meant; ``str(warning)`` is one line naming the file.

    The ``modu`` commands print it as ``modu: warning: ...`` on stderr; in
    Python, ``warnings.filterwarnings`` selects it by class.
    """


class ShippedFileWarning(ScenarioWarning):
    """A relative ``extends:`` or ``calibration:`` path that names no file was read from the shipped files instead.

    The path, read from the shipped scenarios' folder, names a shipped file: a
    copy of a shipped scenario keeps working wherever it is.
    """


class LookAlikeCityWarning(ScenarioWarning):
    """A child scenario adds a city whose name differs from a parent's only in case, spaces or punctuation.

    ``ShenZhen`` beside the parent's ``Shenzhen`` is a second city, where changing the parent's was likely meant.
    """


class UncalibratedWarning(ScenarioWarning):
    """A scenario names no calibration and sets no city's ``attractiveness``: it runs on the code defaults."""


class LocatedError(ValueError):
    """A validation failure at a field path inside the data (``loc``), raised by validators."""

    def __init__(self, loc: tuple[Any, ...], msg: str):
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def located(loc: tuple[Any, ...], msg: str) -> LocatedError:
    """A :class:`LocatedError` at ``loc`` (to raise from a model validator)."""
    return LocatedError(loc, msg)


def format_loc(loc: tuple[Any, ...], data: Any) -> str:
    """Dotted path; list indices of named items (cities) become ``cities[Name]``; odd keys are quoted."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            name = node[key].get("name") if isinstance(node, list) and key < len(node) and isinstance(node[key], dict) else None
            label = f"[{quoted(name)}]" if isinstance(name, str) else f"[{key}]"
            parts[-1:] = [(parts[-1] if parts else "") + label]
        else:
            parts.append(quoted(str(key)))
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts) or "(top level)"


def quoted(key: str) -> str:
    """A key or name as written in a field path; quoted (``repr``) unless plain.

    Empty keys, colons, line breaks and other unprintable characters, leading or
    trailing spaces would make the ``file: field: reason`` line ambiguous.
    """
    plain = key and key.isprintable() and key.strip() == key and ":" not in key and len(key) <= 80
    return key if plain else repr(key[:80] + ("…" if len(key) > 80 else ""))


def one_line(text: str) -> str:
    """``text`` with every run of white space (line breaks included) folded to one space."""
    return " ".join(str(text).split())

