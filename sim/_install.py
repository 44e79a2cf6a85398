"""How to add an optional extra (``app``, ``dask``, ``discover``) to the way this Modu was installed."""

from __future__ import annotations

import json
import os
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
"""The folder holding the running ``sim`` package: a source checkout if it has Modu's pyproject.toml."""


def _is_checkout(folder: Path) -> bool:
    try:
        text = (folder / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return False
    return 'name = "modu"' in text


def install_command(extra: str) -> str:
    """The pip command that installs ``extra`` into this installation of Modu.

    * Running from a source checkout (an editable install, or the tree on ``PYTHONPATH``):
      ``pip install -e ".[extra]"``, naming the checkout's folder when it is not the
      working directory.
    * A wheel installed from a file or URL (its ``direct_url.json`` names it): ``pip
      install "modu[extra] @ URL"``, as pip needs that wheel again to read its extras.
    * Otherwise (a wheel from a package index): ``pip install "modu[extra]"``.

    Args:
        extra: the extra's name in ``pyproject.toml``.

    Returns:
        The command, ready to copy.
    """
    if _is_checkout(CHECKOUT):
        where = "." if CHECKOUT == Path.cwd().resolve() else os.fspath(CHECKOUT)
        return f'pip install -e "{where}[{extra}]"'
    try:
        origin = json.loads(distribution("modu").read_text("direct_url.json") or "{}")
    except (PackageNotFoundError, ValueError):
        origin = {}
    if "archive_info" in origin and origin.get("url"):
        return f'pip install "modu[{extra}] @ {origin["url"]}"'
    return f'pip install "modu[{extra}]"'
