"""Compiling the kernel with numba: once per machine, cached on disk, and said so when it happens.

Every kernel function is compiled by :func:`jit`, applied by assignment after
its definition (``f = jit(f)``) rather than as a decorator, so that mutation
testing, which leaves decorated functions alone, reaches the kernel too
(docs/mutation.md). With ``NUMBA_DISABLE_JIT=1`` the functions stay plain Python.

The on-disk cache. Numba stamps a cached function with its own source file
only, so a function calling into another module of the kernel would go on
running stale code after that module changed. Here every kernel function is
stamped with the digest of all the kernel's source files (:func:`sources_digest`):
a change anywhere in the package recompiles the whole kernel. The cache goes,
in order of preference, where ``NUMBA_CACHE_DIR`` says, next to the sources
(``__pycache__``), in the user's cache folder (a read-only install), and, when
none of these is writable (a read-only install with a read-only home), in a
folder under the system's temporary directory.

The first run in a fresh environment compiles the kernel (about 30 s). The
first time a process really compiles a kernel function (not a load from the
cache), it says so once on stderr (:data:`COMPILING`, through numba's
``numba:compile`` event). Processes compile one at a time (a lock file in the
temporary directory), so the workers of a parallel ensemble started on a cold
cache do not all compile the same code: the first compiles, the others then
load its cache.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sys
import tempfile
import threading
from pathlib import Path

from numba.core import caching, config, event
from numba.core.registry import CPUDispatcher

try:
    import fcntl
except ImportError:  # Windows: no lock between processes
    fcntl = None

PACKAGE = Path(__file__).resolve().parent
"""The kernel's folder: every ``*.py`` in it stamps every kernel function's cache."""

COMPILING = "compiling the simulation kernel (once, about 30 s)…"
"""What a process prints on stderr when it first compiles a kernel function."""


@functools.cache
def sources_digest() -> str:
    """SHA-256 of the kernel's source files (names and contents), read once per process."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def temporary_cache_dir() -> str:
    """The last-resort cache folder: under the system's temporary directory, one per user."""
    user = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join(tempfile.gettempdir(), f"modu-numba-cache-{user}")


class _WholeKernelStamp:
    """Locator mixin: a kernel function's source stamp is the digest of the whole kernel."""

    def get_source_stamp(self) -> str:
        return sources_digest()


class _UserProvided(_WholeKernelStamp, caching.UserProvidedCacheLocator):
    """``NUMBA_CACHE_DIR``, when the user sets it."""


class _InTree(_WholeKernelStamp, caching.InTreeCacheLocator):
    """``__pycache__`` next to the sources, when writable."""


class _UserWide(_WholeKernelStamp, caching.UserWideCacheLocator):
    """The user's cache folder (e.g. ``~/.cache/numba``), for a read-only install."""


class _Temporary(_WholeKernelStamp, caching.InTreeCacheLocator):
    """:func:`temporary_cache_dir`, when nothing else is writable."""

    def __init__(self, py_func, py_file):
        super().__init__(py_func, py_file)
        self._cache_path = os.path.join(temporary_cache_dir(), self.get_suitable_cache_subpath(py_file))


class _CacheImpl(caching.CompileResultCacheImpl):
    _locator_classes = [_UserProvided, _InTree, _UserWide, _Temporary]


class _Cache(caching.FunctionCache):
    """Numba's per-function disk cache, with the kernel's locators."""

    _impl_class = _CacheImpl


class KernelDispatcher(CPUDispatcher):
    """Numba's CPU dispatcher, compiling (or loading from the cache) under the kernel's lock between processes."""

    def compile(self, sig):
        """Compile (or load) the specialisation ``sig``, one process at a time."""
        with _one_process_compiles():
            return super().compile(sig)


_lock = threading.RLock()
_depth = [0]


@contextlib.contextmanager
def _one_process_compiles():
    """Hold the lock file while this process compiles or loads kernel functions (re-entrant: callees nest)."""
    with _lock:
        handle = None
        if _depth[0] == 0 and fcntl is not None:
            with contextlib.suppress(OSError):  # no lock then, as on a system without fcntl
                handle = open(os.path.join(tempfile.gettempdir(), f"modu-numba-compile-{_user()}.lock"), "a")
                fcntl.flock(handle, fcntl.LOCK_EX)
        _depth[0] += 1
        try:
            yield
        finally:
            _depth[0] -= 1
            if handle is not None:
                handle.close()  # releases the lock


def _user() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else "user"


class _CompileNotice(event.Listener):
    """Says :data:`COMPILING` on stderr the first time this process compiles a kernel function (a cache miss)."""

    said = False

    def on_start(self, ev):
        if not self.said and isinstance(ev.data.get("dispatcher"), KernelDispatcher):
            type(self).said = True
            print(COMPILING, file=sys.stderr, flush=True)

    def on_end(self, ev):
        pass


event.register("numba:compile", _CompileNotice())


def jit(function, inline: bool = False):
    """``function`` compiled in nopython mode, releasing the GIL, cached on disk (see the module's docstring).

    ``inline``: compiled into each caller rather than called. A call passes the compiled scenario and the
    state (dozens of arrays, each reference-counted), about a microsecond each time, so the phases are
    inlined into the step (and remain callable on their own, as the agents engine calls some of them).
    """
    if config.DISABLE_JIT:
        return function
    options = {"nopython": True, "nogil": True, **({"inline": "always"} if inline else {})}
    compiled = KernelDispatcher(py_func=function, locals={}, targetoptions=options)
    compiled._cache = _Cache(function)  # what Dispatcher.enable_caching does, with the kernel's cache class
    return compiled
