"""One execution layer for every ensemble: replications, comparisons, sweeps, calibration.

``--executor`` takes ``serial`` or ``processes[:N]`` (the default, N = local
cores). Tasks are plain picklable callables' arguments; results come back
with their task index, in any order, and callers put them in order. Because
every task carries its own seed (see :func:`sim.runner.replication_seed`),
results do not depend on the executor, the number of workers or the order
of completion.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any


class ExecutorError(ValueError):
    """An executor specification that cannot be used (one-line message)."""


@dataclass(frozen=True)
class ExecutorSpec:
    """A parsed ``--executor`` value.

    Attributes:
        kind: ``serial`` or ``processes``.
        workers: number of worker processes (1 for serial).
    """

    kind: str
    workers: int

    def describe(self) -> str:
        """Human-readable form, as recorded in manifests."""
        return self.kind if self.kind == "serial" else f"{self.kind}:{self.workers}"


def parse_executor(text: str) -> ExecutorSpec:
    """Parse ``serial`` or ``processes[:N]``.

    Raises:
        ExecutorError: for anything else.
    """
    kind, _, arg = text.partition(":")
    if kind == "serial" and not arg:
        return ExecutorSpec("serial", 1)
    if kind == "processes":
        if not arg:
            return ExecutorSpec("processes", os.cpu_count() or 1)
        if arg.isdigit() and int(arg) >= 1:
            return ExecutorSpec("processes", int(arg))
        raise ExecutorError(f"--executor: processes:N needs a whole number N ≥ 1, got {arg!r}")
    raise ExecutorError(f"--executor: unknown executor {text!r}; use serial or processes[:N]")


def imap_unordered(spec: ExecutorSpec, fn: Callable[..., Any], tasks: Iterable[tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
    """Run ``fn(*task)`` for every task; yield ``(task index, result)`` as each finishes.

    An exception in a task is re-raised here (after the pool is shut down),
    carrying the task index in ``exc.task_index``.
    """
    tasks = list(tasks)
    if spec.kind == "serial" or spec.workers == 1 or len(tasks) <= 1:
        for i, task in enumerate(tasks):
            yield i, _call(fn, task, i)
        return
    with ProcessPoolExecutor(max_workers=min(spec.workers, len(tasks))) as pool:
        pending: dict[Future[Any], int] = {pool.submit(_call, fn, task, i): i for i, task in enumerate(tasks)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield pending.pop(future), future.result()
        finally:
            for future in pending:
                future.cancel()


def _call(fn: Callable[..., Any], task: tuple[Any, ...], index: int) -> Any:
    try:
        return fn(*task)
    except Exception as exc:
        exc.task_index = index  # type: ignore[attr-defined]
        raise
