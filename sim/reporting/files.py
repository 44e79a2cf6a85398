"""Writing a run's folder: tidy CSVs, figures and a manifest, all written atomically.

Every file is written under a temporary name (``.NAME.XXXXXXXX.tmp``, left
behind only by a killed process) and renamed into place, so no reader ever
sees a truncated file. While a folder is being written it holds a marker
file ``INCOMPLETE`` — a new folder appears with the marker already inside —;
the manifest is written last and the marker removed after it, so a folder
with ``manifest.json`` and no ``INCOMPLETE`` is complete, whenever the
writing process was killed. A sweep's or an optimisation's folder is also the
store of its runs (:func:`resumable_folder`), so the same command resumes it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from sim.experiments.store import RunStore

INCOMPLETE = "INCOMPLETE"
"""Marker file present while an output folder is being written."""

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: files get the usual permissions, not mkstemp's 0600

DEPENDENCIES = ("mesa", "numpy", "scipy", "pandas", "pydantic", "pyyaml", "matplotlib", "click", "tqdm")


def atomic_write(path: Path, write: Callable[[IO[Any]], None], mode: str = "w") -> None:
    """Write a file through ``write(handle)`` to a temporary name, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (renames) to disk, so they survive a power cut as the files' bytes do."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Write a DataFrame as CSV atomically (no index), byte for byte what ``frame.to_csv(index=False)`` writes.

    Columns of numbers, booleans and text go straight to the standard library's C writer
    (:func:`csv.writer`: about 1.4× faster than pandas on the million-row tables of a large sweep);
    any other column type is written by pandas.
    """
    if frame.columns.is_unique and all(map(_plain, frame.dtypes)):
        def write(handle: IO[str]) -> None:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(frame.columns)
            writer.writerows(zip(*(_cells(frame[column]) for column in frame.columns), strict=True))
    else:
        def write(handle: IO[str]) -> None:
            frame.to_csv(handle, index=False, lineterminator="\n")
    atomic_write(path, write)


def _plain(dtype: Any) -> bool:
    """Whether the csv writer writes this column type as pandas does (numbers, booleans, objects, text)."""
    if isinstance(dtype, np.dtype):
        return dtype.kind in "fiubO"
    return isinstance(dtype, pd.StringDtype) or (pd.api.types.is_extension_array_dtype(dtype) and dtype.kind in "iub")


def _cells(column: pd.Series) -> list[Any]:
    """A column's values for the csv writer: numbers as Python numbers, numpy scalars in objects as text, NA empty.

    The writer writes floats by repr and other values by str, as pandas does.
    """
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "iub":
        return column.to_numpy().tolist()
    cells = column.to_numpy(dtype=object).tolist()
    missing = column.isna().to_numpy()
    if column.dtype == object:
        return [None if gone else str(cell) if isinstance(cell, np.generic) else cell
                for cell, gone in zip(cells, missing, strict=True)]
    return [None if gone else cell for cell, gone in zip(cells, missing, strict=True)] if missing.any() else cells


def run_in_two(jobs: Sequence[Callable[[], object]]) -> None:
    """Run independent jobs that write files, shared with a forked child process when that is safe.

    Writing tables and drawing figures use one core each. When the machine has more than one
    and this process runs no other thread (a forked copy of a threaded process may deadlock),
    a forked child and this process take the jobs one at a time, in order, each the next
    one not yet taken (a pipe of job numbers), so a long job does not leave the other idle;
    what is written is the same either way. Jobs the child took but did not finish (it
    failed) then run here, raising what went wrong.

    Args:
        jobs: functions of no argument; each writes its own files (atomically).
    """
    if len(jobs) < 2 or (os.cpu_count() or 1) < 2 or not _fork_is_safe():
        for job in jobs:
            job()
        return
    todo_r, todo_w = os.pipe()
    done_r, done_w = os.pipe()
    os.write(todo_w, b"".join(i.to_bytes(4, "little") for i in range(len(jobs))))  # < 64 KiB: never blocks
    os.close(todo_w)

    def take() -> Iterator[int]:  # a 4-byte read from a pipe is atomic: each number goes to one process
        while len(number := os.read(todo_r, 4)) == 4:
            yield int.from_bytes(number, "little")

    child = os.fork()
    if child == 0:  # the child: take jobs until none is left, report each finished one, leave without exit handlers
        code = 1
        try:
            for i in take():
                jobs[i]()
                os.write(done_w, i.to_bytes(4, "little"))
            code = 0
        finally:
            os._exit(code)
    os.close(done_w)
    mine = set()
    try:
        for i in take():
            mine.add(i)
            jobs[i]()
    finally:
        os.waitpid(child, 0)
        finished = os.read(done_r, 4 * len(jobs))
        os.close(todo_r)
        os.close(done_r)
    theirs = {int.from_bytes(finished[k:k + 4], "little") for k in range(0, len(finished), 4)}
    for i, job in enumerate(jobs):
        if i not in mine and i not in theirs:
            job()


def _fork_is_safe() -> bool:
    """Whether this process may fork a child that writes files: a POSIX system and no thread but the main one.

    tqdm's monitor thread, which outlives the progress bars, is allowed: it sleeps on an event and
    holds no lock that writing tables or drawing figures takes.
    """
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    return hasattr(os, "fork") and all(t.name == "tqdm_monitor" for t in others)


def write_tables(out: Path, tables: dict[str, pd.DataFrame], names: Iterable[str]) -> list[str]:
    """Write ``tables[name]`` as ``out/<name>.csv`` for each name, atomically; returns the file names."""
    names = list(names)
    for name in names:
        write_csv(out / f"{name}.csv", tables[name])
    return [f"{name}.csv" for name in names]


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically, indented, keys in the order given.

    Not sorted: a manifest's scenario must keep its order of sectors, which
    decides the random stream (``modu rerun`` reads it back).
    """
    atomic_write(path, lambda h: h.write(json.dumps(data, indent=2, default=str) + "\n"))


def sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of Python, modu and its dependencies (for manifests)."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("modu", *DEPENDENCIES):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@contextmanager
def output_folder(path: Path):
    """Mark ``path`` incomplete while the body writes into it; unmark on success.

    A run that is killed leaves the ``INCOMPLETE`` marker behind. A folder that
    does not exist yet is made under a temporary name with the marker inside
    and renamed into place, so it never exists unmarked before it is complete.
    """
    marker = path / INCOMPLETE

    def note(handle: IO[str]) -> None:
        handle.write(f"being written since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} by process {os.getpid()}\n")

    if path.exists():
        atomic_write(marker, note)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        os.chmod(staging, 0o777 & ~_UMASK)
        atomic_write(staging / INCOMPLETE, note)
        try:
            staging.rename(path)
        except OSError:  # the folder appeared meanwhile
            shutil.rmtree(staging, ignore_errors=True)
            atomic_write(marker, note)
        _sync_folder(path.parent)
    (path / "manifest.json").unlink(missing_ok=True)
    yield path
    marker.unlink()


@contextmanager
def resumable_folder(out: Path, definition: dict[str, Any], command: str) -> Iterator[RunStore]:
    """An output folder that is also the store of its runs (:class:`sim.experiments.store.RunStore`), marked
    incomplete while the body computes and writes (:func:`output_folder`).

    A new folder appears already marked; an existing one is checked (it must hold the same
    experiment, unlocked) before it is marked, so a refused folder is left as it was.

    Raises:
        StoreError: ``out`` holds something else, another experiment, or is being written.
    """  # noqa: D205
    with ExitStack() as stack:
        def open_store() -> RunStore:
            return RunStore(out, definition, command, ignore=(INCOMPLETE,))

        if not out.exists():
            stack.enter_context(output_folder(out))
            store = stack.enter_context(open_store())
        else:
            store = stack.enter_context(open_store())
            stack.enter_context(output_folder(out))
        yield store


def finish_folder(out: Path, written: list[str], report: str, **fields: Any) -> list[str]:
    """Write ``report.md`` and then the manifest (``fields`` and every file's hash); returns every file written."""
    atomic_write(out / "report.md", lambda h: h.write(report))
    written = [*written, "report.md"]
    write_json(out / "manifest.json", manifest(out, written, **fields))
    return [*written, "manifest.json"]


def manifest(out: Path, files: list[str], **fields: Any) -> dict[str, Any]:
    """The manifest of an output folder: ``fields`` plus versions and each file's SHA-256."""
    return {
        "tool": "modu",
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": ["modu", *sys.argv[1:]],  # the same command whether run as modu or python -m sim
        "versions": package_versions(),
        **fields,
        "files": {name: sha256(out / name) for name in sorted(files)},
    }
