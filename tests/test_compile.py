"""Compiling the kernel: where its cache goes (a read-only install included), and the notice of a cold compile.

The fast tests ask numba's cache machinery where a kernel function would be
cached, with folders made unwritable by patching the check numba runs on them,
and compile a small function in a folder of their own to see what is said. The
slow one runs a simulation in fresh processes as on a read-only install with a
read-only home: two started together on a cold cache compile once between them
(the other loads the cache), say so once and cache in the temporary folder; a
third loads that cache and says nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest
from numba.core import caching

from sim.model.kernel import cache as kernel_cache
from sim.model.kernel.cache import COMPILING, jit, temporary_cache_dir

ROOT = Path(__file__).resolve().parent.parent


def twice(x):
    """A kernel-style function to compile in the tests' own cache folders."""
    return 2 * x


@pytest.fixture
def only_writable(monkeypatch):
    """``only_writable(folder)``: every cache folder but those under ``folder`` refuses writes (None: every one
    does); ``NUMBA_CACHE_DIR`` unset."""
    original = caching._CacheLocator.ensure_cache_path
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")

    def set_allowed(folder: str | None) -> None:
        def ensure(self):
            if folder is None or not self.get_cache_path().startswith(folder):
                raise PermissionError(self.get_cache_path())
            return original(self)

        monkeypatch.setattr(caching._CacheLocator, "ensure_cache_path", ensure)

    return set_allowed


def cache_path(function) -> str:
    return kernel_cache._Cache(function).cache_path


def test_the_cache_goes_next_to_the_sources_when_writable(only_writable):
    only_writable(str(ROOT))
    assert cache_path(twice) == str(ROOT / "tests" / "__pycache__")


def test_a_read_only_install_caches_in_the_users_cache_folder(only_writable, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    only_writable(str(tmp_path))
    assert cache_path(twice).startswith(str(tmp_path / ".cache" / "numba"))


def test_with_a_read_only_home_too_the_cache_goes_to_a_temporary_folder(only_writable, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", "/nonexistent")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    only_writable(str(tmp_path))
    assert temporary_cache_dir().startswith(str(tmp_path))
    assert cache_path(twice).startswith(temporary_cache_dir())


def test_numba_cache_dir_set_by_the_user_wins(only_writable, tmp_path, monkeypatch):
    only_writable(str(tmp_path))
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "mine"))
    assert cache_path(twice).startswith(str(tmp_path / "mine"))


def test_no_writable_folder_at_all_is_an_error_numba_names(only_writable):
    only_writable(None)
    with pytest.raises(RuntimeError, match="no locator available"):
        cache_path(twice)


def test_every_kernel_function_is_stamped_with_the_whole_kernels_sources(only_writable):
    """A change in any module of the kernel invalidates every cached kernel function (numba alone checks only
    the function's own file, and a caller would keep running a callee's old code)."""
    only_writable(str(ROOT))
    from sim.model.kernel import phases, run

    for function in (run.step, phases.exits, twice):
        stamp = kernel_cache._Cache(getattr(function, "py_func", function))._impl.locator.get_source_stamp()
        assert stamp == kernel_cache.sources_digest()


def test_a_process_says_once_that_it_compiles_and_nothing_when_it_loads(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kernel_cache._CompileNotice, "said", False)
    compiled = jit(twice)
    assert compiled(3) == 6 and compiled(4) == 8
    assert capsys.readouterr().err == COMPILING + "\n"
    monkeypatch.setattr(kernel_cache._CompileNotice, "said", False)
    loaded = jit(twice)                  # a new dispatcher: loads from the disk cache, compiles nothing
    assert loaded(5) == 10 and sum(loaded.stats.cache_hits.values()) == 1
    assert capsys.readouterr().err == ""


COLD_RUN = """
import numpy as np
import numba.core.caching as caching
allowed = {allowed!r}
original = caching._CacheLocator.ensure_cache_path
def only_allowed(self):  # as if every other folder (the package's __pycache__ included) were read-only
    if not self.get_cache_path().startswith(allowed):
        raise PermissionError(self.get_cache_path())
    return original(self)
caching._CacheLocator.ensure_cache_path = only_allowed
from sim.model.kernel import simulate_counts
from sim.scenario import validate
scenario = validate({{"name": "t", "cities": [{{"name": "A", "firms": 50}}, {{"name": "B", "firms": 30}}]}})
print(simulate_counts(scenario, 4).stack("firms").sum())
"""


@pytest.mark.slow
def test_a_read_only_install_compiles_once_says_so_and_then_runs_from_its_cache(tmp_path):
    """About 60 s: one cold compile, by one of two processes started together."""
    env = {**os.environ, "HOME": "/nonexistent", "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("NUMBA_CACHE_DIR", None)
    env.pop("NUMBA_DISABLE_JIT", None)
    command = [sys.executable, "-c", COLD_RUN.format(allowed=str(tmp_path))]
    together = [subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    cold = [process.communicate(timeout=900) + (process.returncode,) for process in together]
    warm = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert [rc for _, _, rc in cold] == [0, 0] and warm.returncode == 0, [err for _, err, _ in cold] + [warm.stderr]
    assert sorted(err for _, err, _ in cold) == ["", COMPILING + "\n"]  # one compiled, the other loaded its cache
    assert warm.stderr == "" and warm.stdout == cold[0][0] == cold[1][0]
    cached = [f for _, _, files in os.walk(tmp_path) for f in files if f.endswith(".nbi")]
    assert len(cached) > 10, cached  # the kernel's functions, under the temporary folder
