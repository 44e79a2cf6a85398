"""Lazy public names for a package's ``__init__``: imported on first use, so importing the package stays light."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_getattr(package: str, public: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``public[name]`` (a module path) and returns its ``name``."""

    def __getattr__(name: str) -> Any:  # noqa: N807 (the name Python looks up)
        if name in public:
            return getattr(import_module(public[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
