"""One execution layer for every ensemble: replications, comparisons, sweeps, calibration.

``--executor`` takes

- ``serial``: in this process, one task after another;
- ``processes[:N]`` (the default): N local worker processes (default: all cores);
- ``dask[:N | :ADDRESS]``: a Dask cluster (the optional ``dask`` extra; the
  error when it is missing gives the install command). With no argument, or a worker count N, a
  ``distributed.LocalCluster`` of single-threaded worker processes bound to
  127.0.0.1 (one per core by default); with ``tcp://host:port`` (or
  ``host:port``) an existing Dask scheduler, whose workers must have the same
  version of modu installed.

The interface other modules rely on:

- :func:`parse_executor` turns the option's text into an :class:`ExecutorSpec`
  (raising :class:`ExecutorError`, one line, for anything unusable);
- :func:`imap_unordered` runs ``fn(*task)`` for each task and yields
  ``(task index, result)`` as tasks finish, in any order; callers put results
  in order by index;
- :func:`open_executor` keeps one pool or cluster open across many calls
  (calibration, comparisons): ``with open_executor(spec) as ex:`` then pass
  ``ex`` wherever a spec is accepted (:func:`imap_unordered`,
  :func:`sim.experiments.ensemble.run_ensemble`), so a Dask cluster starts once.

``fn`` must be a module-level function and tasks picklable. Because every task
carries its own seed (see :func:`sim.experiments.ensemble.replication_seed`), results do not
depend on the executor, the number of workers or the order of completion.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import multiprocessing.context
import os
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sim._install import install_command

DASK_CONNECT_TIMEOUT_S = 10
"""Seconds to wait for an existing Dask scheduler to answer."""


class ExecutorError(ValueError):
    """An executor specification that cannot be used (one-line message)."""


@dataclass(frozen=True)
class ExecutorSpec:
    """A parsed ``--executor`` value.

    Attributes:
        kind: ``serial``, ``processes`` or ``dask``.
        workers: number of worker processes (1 for serial; for ``dask`` with an
            address, 0: the cluster decides).
        address: the scheduler of an existing Dask cluster, or None.
    """

    kind: str
    workers: int
    address: str | None = None

    def describe(self) -> str:
        """Human-readable form, as recorded in manifests."""
        if self.kind == "serial":
            return "serial"
        return f"{self.kind}:{self.address or self.workers}"


def parse_executor(text: str) -> ExecutorSpec:
    """Parse ``serial``, ``processes[:N]`` or ``dask[:N | :ADDRESS]``.

    Raises:
        ExecutorError: for anything else, and for ``dask`` when the Dask extra is not installed.
    """
    kind, _, arg = text.partition(":")
    if kind == "serial" and not arg:
        return ExecutorSpec("serial", 1)
    if kind in ("processes", "dask"):
        if kind == "dask":
            _require_dask()
        if not arg:
            return ExecutorSpec(kind, os.cpu_count() or 1)
        if arg.isdigit() and int(arg) >= 1:
            return ExecutorSpec(kind, int(arg))
        if kind == "dask" and _looks_like_address(arg):
            return ExecutorSpec(kind, 0, arg if "://" in arg else f"tcp://{arg}")
        what = "dask:N needs a whole number N ≥ 1 or a scheduler address tcp://host:port" if kind == "dask" \
            else "processes:N needs a whole number N ≥ 1"
        raise ExecutorError(f"--executor: {what}, got {arg!r}")
    raise ExecutorError(f"--executor: unknown executor {text!r}; use serial, processes[:N] or dask[:N|:ADDRESS]")


def _looks_like_address(arg: str) -> bool:
    host_port = arg.split("://", 1)[1] if "://" in arg else arg
    host, _, port = host_port.rpartition(":")
    return bool(host) and port.isdigit()


def _require_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ExecutorError("--executor: dask needs the optional Dask extra; install it with "
                            f"{install_command('dask')}") from None


@dataclass(frozen=True)
class TaskFailure:
    """A task that raised, as returned by ``imap_unordered(..., return_exceptions=True)``.

    Attributes:
        error: ``ExceptionType: message`` on one line.
        traceback: the full traceback text (empty when the worker itself died).
    """

    error: str
    traceback: str = ""

    @classmethod
    def of(cls, exc: BaseException) -> TaskFailure:
        """The failure of an exception being handled (its one-line message and the current traceback)."""
        return cls(_one_line(exc), traceback.format_exc())


class Executor:
    """An open executor: nothing (serial), a process pool or a Dask client, reused across calls.

    Create it with :func:`open_executor`; pass it wherever an :class:`ExecutorSpec` is accepted.

    Attributes:
        spec: what was asked for.
        client: the ``distributed.Client`` of a ``dask`` executor (None otherwise), e.g. to scatter data.
    """

    def __init__(self, spec: ExecutorSpec):
        """Start the pool or connect to / start the Dask cluster of ``spec``."""
        self.spec = spec
        self._pool: ProcessPoolExecutor | None = None
        self.client: Any = None
        self._cluster: Any = None
        if spec.kind == "processes" and spec.workers > 1:
            self._pool = ProcessPoolExecutor(max_workers=spec.workers, mp_context=_process_context())
        elif spec.kind == "dask":
            self.client, self._cluster = _dask_client(spec)

    def describe(self) -> str:
        """Human-readable form of the spec, as recorded in manifests."""
        return self.spec.describe()

    def close(self) -> None:
        """Shut the pool or the cluster down (an existing remote cluster is only disconnected from)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def imap_unordered(self, fn: Callable[..., Any], tasks: Iterable[tuple[Any, ...]],
                       return_exceptions: bool = False) -> Iterator[tuple[int, Any]]:
        """See :func:`imap_unordered`."""
        tasks = list(tasks)
        if self.client is not None:
            yield from self._dask_map(fn, tasks, return_exceptions)
        elif self._pool is not None:
            yield from self._pool_map(fn, tasks, return_exceptions)
        else:
            for i, task in enumerate(tasks):
                yield i, _call(fn, task, i, return_exceptions)

    def _pool_map(self, fn: Callable[..., Any], tasks: list[tuple[Any, ...]],
                  return_exceptions: bool) -> Iterator[tuple[int, Any]]:
        pending: dict[Future[Any], int] = {self._pool.submit(_call, fn, task, i, return_exceptions): i  # type: ignore[union-attr]
                                           for i, task in enumerate(tasks)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    i = pending.pop(future)
                    yield i, _outcome(future, return_exceptions)
        finally:
            for future in pending:
                future.cancel()

    def _dask_map(self, fn: Callable[..., Any], tasks: list[tuple[Any, ...]],
                  return_exceptions: bool) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        # pure=False: two identical tasks are two runs, never deduplicated into one.
        futures = [self.client.submit(_call, fn, task, i, return_exceptions, pure=False) for i, task in enumerate(tasks)]
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in as_completed(futures):
                yield index[future.key], _outcome(future, return_exceptions)
        finally:
            self.client.cancel([f for f in futures if not f.done()])


PRELOAD = ["sim.experiments.ensemble"]
"""Modules the fork server imports once, so that worker processes start without importing them again."""


def _process_context() -> multiprocessing.context.BaseContext:
    """Where worker processes come from: a fork server (preloaded with the model) where the platform has one.

    Not plain fork: this process may hold threads (progress bars, a Dask client) that
    fork would copy mid-flight. Not the default either: importing Mesa sets the global
    start method to spawn, which imports everything anew in every worker of every pool.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


@contextmanager
def open_executor(executor: str | ExecutorSpec | Executor) -> Iterator[Executor]:
    """Open an executor for several calls; an already open :class:`Executor` is passed through (and left open).

    Raises:
        ExecutorError: an unusable spec, or a Dask scheduler that cannot be reached.
    """
    if isinstance(executor, Executor):
        yield executor
        return
    with Executor(parse_executor(executor) if isinstance(executor, str) else executor) as opened:
        yield opened


def imap_unordered(executor: ExecutorSpec | Executor, fn: Callable[..., Any], tasks: Iterable[tuple[Any, ...]],
                   return_exceptions: bool = False) -> Iterator[tuple[int, Any]]:
    """Run ``fn(*task)`` for every task; yield ``(task index, result)`` as each finishes.

    Args:
        executor: a parsed spec (a pool or cluster is opened for this call and closed after it)
            or an open :class:`Executor` (reused, left open).
        fn: a module-level function (it is pickled by reference).
        tasks: argument tuples, picklable.
        return_exceptions: if False (the default) the first exception in a task is re-raised
            here, after the pool is shut down, carrying the task index in ``exc.task_index``;
            if True a failed task yields a :class:`TaskFailure` and the others carry on.
    """
    tasks = list(tasks)
    if isinstance(executor, ExecutorSpec) and executor.kind != "dask" and len(tasks) <= 1:
        executor = ExecutorSpec("serial", 1)  # no pool for a single task
    with open_executor(executor) as opened:
        yield from opened.imap_unordered(fn, tasks, return_exceptions)


def mapper(executor: ExecutorSpec | Executor) -> Callable[[Callable[..., Any], list[tuple[Any, ...]]], Iterator[tuple[int, Any]]]:
    """:func:`imap_unordered` bound to ``executor``: the ``imap`` the generic algorithms of :mod:`sim.analysis` take."""
    return functools.partial(imap_unordered, executor)


def _call(fn: Callable[..., Any], task: tuple[Any, ...], index: int, return_exceptions: bool) -> Any:
    try:
        return fn(*task)
    except Exception as exc:
        if return_exceptions:
            return TaskFailure.of(exc)
        exc.task_index = index  # type: ignore[attr-defined]
        raise


def _outcome(future: Any, return_exceptions: bool) -> Any:
    """A finished future's result; a worker that died becomes a TaskFailure when failures are returned."""
    if not return_exceptions:
        return future.result()
    try:
        return future.result()
    except Exception as exc:  # the worker process died (BrokenProcessPool, KilledWorker, ...)
        return TaskFailure(_one_line(exc))


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _dask_client(spec: ExecutorSpec) -> tuple[Any, Any]:
    """A Dask client and, without an address, the LocalCluster it runs on.

    The local cluster has one single-threaded worker process per requested worker
    (pure-Python work would fight over the GIL in threads), listens on 127.0.0.1
    only and has no dashboard.
    """
    from distributed import Client, LocalCluster

    if spec.address is None:
        cluster = LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=logging.ERROR)
        return Client(cluster), cluster
    try:
        client = Client(spec.address, timeout=DASK_CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise ExecutorError(f"--executor: cannot reach the Dask scheduler at {spec.address}: "
                            f"{' '.join(str(exc).split())}") from None
    try:
        _check_workers(client)
    except ExecutorError:
        client.close()
        raise
    return client, None


def _modu_version() -> str:
    try:
        return version("modu")
    except PackageNotFoundError:
        return "not installed"


def _check_workers(client: Any) -> None:
    """Refuse a remote cluster whose workers lack modu or run another version of it."""
    ours = _modu_version()
    theirs = client.run(_modu_version)
    wrong = {worker: v for worker, v in theirs.items() if v != ours}
    if not theirs:
        raise ExecutorError(f"--executor: the Dask cluster at {client.scheduler.address} has no workers")
    if wrong:
        worker, v = next(iter(wrong.items()))
        raise ExecutorError(f"--executor: Dask worker {worker} has modu {v}, this process {ours}; "
                            "install the same version on every worker")
