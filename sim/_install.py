"""How to add an optional extra (``app``, ``dask``, ``discover``) to the way this Modu was installed."""

from __future__ import annotations

import json
import os
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from urllib.parse import unquote, urlparse


def install_command(extra: str) -> str:
    """The pip command that installs ``extra`` into this installation of Modu.

    * An editable install (a checkout; its ``direct_url.json`` says ``editable``), or a
      source tree that is not installed: ``pip install -e ".[extra]"``, naming the
      checkout's folder when it is not the working directory.
    * A wheel installed from a file or URL: ``pip install "modu[extra] @ URL"`` (pip
      needs the same wheel again to read its extras).
    * Otherwise (a wheel from a package index): ``pip install "modu[extra]"``.

    Args:
        extra: the extra's name in ``pyproject.toml``.

    Returns:
        The command, ready to copy.
    """
    try:
        origin = json.loads(distribution("modu").read_text("direct_url.json") or "{}")
    except PackageNotFoundError:  # run from a source tree (PYTHONPATH): the tree holding this package
        return _editable(Path(__file__).resolve().parent.parent, extra)
    except ValueError:  # an unreadable direct_url.json: the usual install
        origin = {}
    url = origin.get("url", "")
    if origin.get("dir_info", {}).get("editable") and url.startswith("file:"):
        return _editable(Path(unquote(urlparse(url).path)), extra)
    if "archive_info" in origin and url:
        return f'pip install "modu[{extra}] @ {url}"'
    return f'pip install "modu[{extra}]"'


def _editable(checkout: Path, extra: str) -> str:
    here = Path.cwd().resolve()
    where = "." if checkout.resolve() == here else os.fspath(checkout)
    return f'pip install -e "{where}[{extra}]"'
