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

The first run in a fresh environment compiles the kernel (about 30 s);
:func:`announce_compile` says so once on stderr when the cache is cold.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numba
from numba.core import caching, dispatcher

PACKAGE = Path(__file__).resolve().parent
"""The kernel's folder: every ``*.py`` in it stamps every kernel function's cache."""

COMPILING = "compiling the simulation kernel (once, about 30 s)…"
"""What :func:`announce_compile` prints on stderr before a cold compile."""


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


def jit(function):
    """``function`` compiled in nopython mode, releasing the GIL, cached on disk (see the module's docstring)."""
    compiled = numba.njit(nogil=True)(function)
    if isinstance(compiled, dispatcher.Dispatcher):  # not with NUMBA_DISABLE_JIT=1
        compiled._cache = _Cache(function)  # what Dispatcher.enable_caching does, with our cache class
    return compiled


def is_cold(compiled) -> bool:
    """Whether calling ``compiled`` will compile it: not yet compiled in this process, nor in the disk cache."""
    if not isinstance(compiled, dispatcher.Dispatcher) or compiled.signatures:
        return False
    try:
        return not compiled._cache._cache_file._load_index()
    except Exception:  # an unreadable index: numba will compile
        return True


_announced: list[bool] = []


def announce_compile(*entry_points) -> None:
    """Say on stderr, once per process, that the kernel is being compiled, if calling these will compile it."""
    if not _announced and any(is_cold(f) for f in entry_points):
        _announced.append(True)
        print(COMPILING, file=sys.stderr, flush=True)
