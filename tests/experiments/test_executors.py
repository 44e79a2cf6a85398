"""The executor layer: parsing, failures, reuse, and identical results on serial, processes and Dask."""

import math
import os
import re
import sys
from pathlib import Path

import pandas as pd
import psutil
import pytest
from click.testing import CliRunner

from sim._install import install_command
from sim.cli import main
from sim.experiments import executors
from sim.experiments.ensemble import run_ensemble
from sim.experiments.executors import (
    ExecutorError,
    ExecutorSpec,
    TaskFailure,
    imap_unordered,
    open_executor,
    parse_executor,
)
from sim.scenario import load_scenario

SMALL = """\
name: small
time: {start: 2016, end: 2018, steps_per_year: 4}
seed: 3
replications: 4
cities:
  - {name: A, firms: 500, anchors: [{name: Big, sector: downstream}],
     policy: {budget: 5, allocation: {compute: 0.5, data: 0.25, anchor: 0.25}}}
  - {name: B, firms: 400}
  - {name: Rest, firms: 300, pool: true}
"""


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


TASKS = [(x,) for x in (0.0, 1.0, 4.0, -1.0, 16.0, 25.0)]
"""math.sqrt fails on task 3 (a builtin: workers need not import this test module)."""


def test_parse_executor_forms():
    assert parse_executor("serial") == ExecutorSpec("serial", 1)
    assert parse_executor("processes:3") == ExecutorSpec("processes", 3)
    assert parse_executor("processes").workers >= 1
    assert parse_executor("dask:2") == ExecutorSpec("dask", 2)
    assert parse_executor("dask:tcp://10.0.0.5:8786") == ExecutorSpec("dask", 0, "tcp://10.0.0.5:8786")
    assert parse_executor("dask:scheduler.lan:8786").address == "tcp://scheduler.lan:8786"
    assert parse_executor("dask:tcp://10.0.0.5:8786").describe() == "dask:tcp://10.0.0.5:8786"


@pytest.mark.parametrize("text", ["threads", "serial:2", "processes:0", "processes:x", "dask:0", "dask:nowhere"])
def test_parse_executor_refuses_in_one_line(text: str):
    with pytest.raises(ExecutorError) as err:
        parse_executor(text)
    assert str(err.value).startswith("--executor: ") and "\n" not in str(err.value)


def test_dask_without_the_extra_is_a_one_line_error_saying_how_to_install(small: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    with pytest.raises(ExecutorError, match=re.escape(install_command("dask"))):
        parse_executor("dask")
    result = CliRunner().invoke(main, ["run", str(small), "--out", str(tmp_path / "o"), "--executor", "dask"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("modu: error: --executor: ")
    assert install_command("dask") in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("executor", ["serial", "processes:2"])
def test_failures_are_returned_without_losing_the_other_tasks(executor: str):
    results = dict(imap_unordered(parse_executor(executor), math.sqrt, TASKS, return_exceptions=True))
    assert sorted(results) == list(range(6))
    failure = results.pop(3)
    assert isinstance(failure, TaskFailure)
    assert failure.error == "ValueError: math domain error"
    assert failure.traceback.startswith("Traceback") and "ValueError: math domain error" in failure.traceback
    assert results == {0: 0.0, 1: 1.0, 2: 2.0, 4: 4.0, 5: 5.0}


@pytest.mark.parametrize("executor", ["serial", "processes:2"])
def test_a_failure_is_raised_with_its_task_index_by_default(executor: str):
    with pytest.raises(ValueError, match="math domain error") as err:
        list(imap_unordered(parse_executor(executor), math.sqrt, TASKS))
    assert err.value.task_index == 3


def test_an_open_process_pool_is_reused_across_calls(small: Path):
    scenario = load_scenario(small)
    reference = run_ensemble(scenario, executor="serial", progress=False)
    with open_executor("processes:2") as ex:
        pool = ex._pool
        first = run_ensemble(scenario, executor=ex, progress=False)
        second = run_ensemble(scenario, seed=4, executor=ex, progress=False)
        assert ex._pool is pool and first.executor == "processes:2"
    assert ex._pool is None  # closed on leaving the block
    for name, frame in reference.tables.items():
        pd.testing.assert_frame_equal(first.tables[name], frame)
    assert not second.tables["metrics"].equals(first.tables["metrics"])


def test_same_csvs_byte_for_byte_on_serial_processes_and_a_dask_local_cluster(small: Path, tmp_path: Path):
    outs = {}
    for executor in ("serial", "processes:2", "dask:2"):
        out = tmp_path / executor.replace(":", "_")
        result = CliRunner().invoke(main, ["run", str(small), "--out", str(out), "--executor", executor,
                                           "--quiet", "--no-figures"])
        assert result.exit_code == 0, result.stderr
        outs[executor] = out
    for name in ("firms", "cities", "flows", "metrics"):
        reference = (outs["serial"] / f"{name}.csv").read_bytes()
        assert (outs["processes:2"] / f"{name}.csv").read_bytes() == reference
        assert (outs["dask:2"] / f"{name}.csv").read_bytes() == reference


def test_dask_local_cluster_is_loopback_single_threaded_reusable_and_shut_down(small: Path, tmp_path: Path):
    """Robust to a busy machine and to a second copy of the suite running at once: every port is chosen by the
    operating system (port 0), and the worker processes are the cluster's own PIDs."""
    me = psutil.Process()
    scenario = load_scenario(small)
    reference = run_ensemble(scenario, executor="serial", progress=False)
    with open_executor("dask:2") as ex:
        workers = ex.client.scheduler_info()["workers"]
        assert len(workers) == 2 and all(w["nthreads"] == 1 for w in workers.values())
        assert all(address.startswith("tcp://127.0.0.1:") for address in [ex.client.scheduler.address, *workers])
        # The worker processes are found by the PIDs the cluster itself reports, not by their command lines
        # (a process title, a start method or another test's processes can change those): two of this
        # process's own descendants, each listening on loopback only, as is the scheduler in this process.
        pids = set(ex.client.run(os.getpid).values())
        workers_processes = [psutil.Process(pid) for pid in pids]
        assert len(workers_processes) == 2 and pids <= {p.pid for p in me.children(recursive=True)}
        listening = [c.laddr.ip for p in [me, *workers_processes]
                     for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert listening and set(listening) == {"127.0.0.1"}
        for seed in (None, 9):  # one cluster, two ensembles
            ensemble = run_ensemble(scenario, seed=seed, executor=ex, progress=False)
            assert ensemble.executor == "dask:2"
        pd.testing.assert_frame_equal(run_ensemble(scenario, executor=ex, progress=False).tables["metrics"],
                                      reference.tables["metrics"])
        # an existing scheduler, given its address: the sweep on it equals the serial one
        address = ex.client.scheduler.address
        sweep = ["sweep", str(small), "--set", "parameters.network_effect=0.9,1.2", "--replications", "3",
                 "--quiet", "--no-figures"]
        for executor, out in ((f"dask:{address}", "remote"), ("serial", "local")):
            result = CliRunner().invoke(main, [*sweep, "--out", str(tmp_path / out), "--executor", executor])
            assert result.exit_code == 0, result.stderr
        assert (tmp_path / "remote" / "summary.csv").read_bytes() == (tmp_path / "local" / "summary.csv").read_bytes()
    assert ex.client is None
    _, alive = psutil.wait_procs(workers_processes, timeout=60)  # returns as soon as they are gone; a busy machine is slow
    assert not alive, "the LocalCluster's worker processes outlived it"


def test_an_unreachable_scheduler_is_a_one_line_error(small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(executors, "DASK_CONNECT_TIMEOUT_S", 1)
    result = CliRunner().invoke(main, ["run", str(small), "--out", str(tmp_path / "o"), "--quiet",
                                       "--executor", "dask:tcp://127.0.0.1:9"])  # discard port: nothing listens
    assert result.exit_code == 2
    assert result.stderr.startswith("modu: error: --executor: cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert result.stderr.count("\n") == 1
