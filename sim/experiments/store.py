"""An embedded store of finished runs (SQLite, standard library), so that a long ensemble can resume.

Runs are committed the moment they come back from the executor (one
transaction per executor task, which may hold several runs), so a process
killed at any moment — even by SIGKILL — loses at most the runs that were
still computing. The store records the ensemble's *definition* (every
point's scenario hash, the seed, the number of replications) and refuses to
be reused for a different one, so results of two definitions are never mixed.
While an ensemble writes into a folder it holds an exclusive lock on
``sweep.lock`` (released by the operating system however the process ends),
so two processes never fill the same store.

Tables: ``meta`` (key, value), ``points`` (point, values, scenario hash) and
``runs`` (point, replication, seed, spawn key, status ``ok``/``failed``, the
outcome as JSON — for a sweep, the city names, pools and firms per step and city — or
the error, the session that computed it, when).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.experiments.errors import StoreError

STORE_FILE = "sweep.sqlite"
"""The store's file inside the output folder."""

LOCK_FILE = "sweep.lock"
"""Held (flock) by the process writing into the folder."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    point INTEGER PRIMARY KEY, values_json TEXT NOT NULL, scenario_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    point INTEGER NOT NULL, replication INTEGER NOT NULL, seed INTEGER NOT NULL, spawn_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')), outcome TEXT, error TEXT, traceback TEXT,
    session INTEGER NOT NULL, finished_utc TEXT NOT NULL, PRIMARY KEY (point, replication));
"""


@dataclass(frozen=True)
class StoredRun:
    """One stored run.

    Attributes:
        point: the point's index in the definition.
        replication: the replication index.
        seed: the root seed.
        spawn_key: the run's spawn key under the root seed.
        status: ``ok`` or ``failed``.
        outcome: the run's outcome (parsed JSON) when ok.
        error: ``Type: message`` when failed.
        session: which invocation computed it (1 for the first, +1 per resume).
    """

    point: int
    replication: int
    seed: int
    spawn_key: list[int]
    status: str
    outcome: dict[str, Any] | None
    error: str | None
    session: int


def definition_hash(definition: dict[str, Any]) -> str:
    """SHA-256 of a definition (canonical JSON)."""
    return hashlib.sha256(json.dumps(definition, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class FinishedRun:
    """A run to store: its identity, and its outcome JSON or its error (one line) and traceback."""

    point: int
    replication: int
    seed: int
    spawn_key: list[int]
    outcome: str | None = None
    error: str | None = None
    traceback: str | None = None


class RunStore:
    """The store of one ensemble in an output folder; use as a context manager.

    Args:
        folder: the output folder (created if needed).
        definition: what identifies the ensemble; must contain ``points``, a list of
            ``{"values": ..., "scenario_hash": ...}``.
        command: the command line that created it (recorded, quoted in refusals).
        ignore: names of files that may already be in a new store's folder (e.g. an in-progress marker).

    Raises:
        StoreError: the folder holds something else, a different definition, or is
            being written by another process (nothing is changed then).
    """

    def __init__(self, folder: Path, definition: dict[str, Any], command: str, ignore: Collection[str] = ()):
        """Open (or create) the store and take the folder's lock."""
        self.folder = folder
        path = folder / STORE_FILE
        if folder.exists() and not folder.is_dir():
            raise StoreError(f"{folder} exists and is not a folder")
        if not path.exists() and folder.is_dir() and any(f.name not in ignore for f in folder.iterdir()):
            raise StoreError(f"{folder} is not empty and holds no sweep; choose a new folder")
        folder.mkdir(parents=True, exist_ok=True)
        self._db: sqlite3.Connection | None = None
        self._lock: int | None = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise StoreError(f"{folder} is being written by another running sweep") from None
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")   # durable against a killed process
            self._db.execute("PRAGMA synchronous=NORMAL")
            self.session = self._open(definition, command)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreError(f"{path} is not a readable sweep store: {' '.join(str(exc).split())}") from None
        except BaseException:
            self.close()
            raise

    def _open(self, definition: dict[str, Any], command: str) -> int:
        wanted = definition_hash(definition)
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self._db.execute(statement)
        meta = dict(self._db.execute("SELECT key, value FROM meta"))
        if meta and meta.get("definition_hash") != wanted:
            raise StoreError(f"{self.folder} holds a different sweep (made by: {meta.get('command', '?')}); "
                                "choose another folder")
        with self._transaction():
            if not meta:
                self._db.executemany("INSERT INTO meta VALUES (?, ?)", [
                    ("definition_hash", wanted), ("definition", json.dumps(definition, sort_keys=True)),
                    ("command", command), ("created_utc", _now()), ("session", "0")])
                self._db.executemany("INSERT INTO points VALUES (?, ?, ?)", [
                    (i, json.dumps(p["values"], sort_keys=True), p["scenario_hash"])
                    for i, p in enumerate(definition["points"])])
            session = int(self._db.execute("SELECT value FROM meta WHERE key = 'session'").fetchone()[0]) + 1
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'session'", (str(session),))
        return session

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def finished(self) -> set[tuple[int, int]]:
        """``(point, replication)`` of every run that finished successfully."""
        return set(self._db.execute("SELECT point, replication FROM runs WHERE status = 'ok'"))

    def record(self, point: int, replication: int, seed: int, spawn_key: list[int], *,
               outcome: str | None = None, error: str | None = None, traceback: str | None = None) -> None:
        """Store one finished run (its outcome JSON, or its error) and commit at once."""
        self.record_many([FinishedRun(point, replication, seed, spawn_key, outcome, error, traceback)])

    def record_many(self, runs: list[FinishedRun]) -> None:
        """Store runs that finished together (one executor task's) in one transaction, committed at once.

        A process killed at any moment loses only runs that had not come back from the executor.
        """
        now = _now()
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                (r.point, r.replication, r.seed, json.dumps(r.spawn_key), "ok" if r.error is None else "failed",
                 r.outcome, r.error, r.traceback, self.session, now) for r in runs])

    def runs(self) -> Iterator[StoredRun]:
        """Every stored run, ordered by point then replication."""
        rows = self._db.execute("SELECT point, replication, seed, spawn_key, status, outcome, error, session "
                                "FROM runs ORDER BY point, replication")
        for point, replication, seed, key, status, outcome, error, session in rows:
            yield StoredRun(point, replication, seed, json.loads(key), status,
                            json.loads(outcome) if outcome is not None else None, error, session)

    def close(self) -> None:
        """Close the database and release the folder's lock."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
