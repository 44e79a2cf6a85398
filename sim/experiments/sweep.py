"""``modu sweep``: replications over full-factorial grids and Latin-hypercube samples of any scenario field.

A field is named by its dotted path in the scenario file, e.g.
``parameters.network_effect`` or ``cities.Hefei.policy.budget`` (a city is
addressed by its name; ``cities[St. Louis].policy.budget`` for names with
dots). Each value is applied to the merged raw scenario
(:func:`sim.scenario.load_raw`) and every point is validated
(:func:`sim.scenario.validate`) before anything runs. A design on the counts
engine that changes numbers only (the fields of
:data:`sim.model.kernel.compile.PATCHABLE`: behavioural parameters, a city's
constant terms, capacity, budget or learning rate) is validated once, at each
range's ends and each listed value; its points are patched into the base
scenario's compiled model (:func:`sim.model.kernel.compile.recompile`) with the
same results as deriving and compiling each (tested draw for draw).

Seeds: replication ``r`` of *every* point draws from
``SeedSequence(seed, spawn_key=(r,))`` — common random numbers across points,
which smooths response surfaces, and the same stream ``modu run`` gives
replication ``r`` — so a point equal to the scenario reproduces ``modu run``.
The root seed is ``--seed`` or each point's scenario ``seed``. Every run's
seed and spawn key are recorded in ``summary.csv``.

Every finished run is committed at once to the folder's store
(:mod:`sim.experiments.store`); the same command resumes a sweep that was interrupted in
any way, computing only what is missing, with the same results.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim._progress import tqdm
from sim.experiments.ensemble import replication_seed
from sim.experiments.errors import ExperimentError
from sim.experiments.executors import Executor, ExecutorSpec, TaskFailure, imap_unordered
from sim.experiments.patching import PatchedDesign, check_ends, patched_design
from sim.experiments.store import FinishedRun, RunStore
from sim.model.engines import simulate_firms
from sim.model.kernel import simulate_batch
from sim.model.kernel.compile import patch_group
from sim.scenario import Scenario, load_raw, validate
from sim.scenario.factors import Factor
from sim.scenario.paths import DigestTemplate, PathError, locations, parse_path, set_path

OUTCOMES = ("hhi", "top1_share", "gini", "entropy")
"""Concentration metrics recorded per step and reported at the end (over the non-pool cities)."""

SEED_RULE = "SeedSequence(seed, spawn_key=(replication,)); common random numbers across points"
"""How each run's random stream is derived (recorded in the manifest)."""

SAMPLERS = ("lhs",)
"""Samplers of ``--sample``: ``lhs`` is scipy's Latin hypercube, seeded by the root seed."""

MAX_RUNS = 1_000_000
"""Largest sweep accepted (points × replications)."""

EXIT_RUNS_FAILED = 1
"""Exit code of a sweep in which some runs failed (the others are kept)."""


@dataclass(frozen=True)
class Point:
    """One point of a sweep.

    Attributes:
        index: its position in the sweep (grid order, then sample order).
        values: swept path → value.
        scenario: the scenario at this point (validated, or patched from a design validated at its ends).
        digest: the scenario's :meth:`~sim.scenario.Scenario.digest`.
    """

    index: int
    values: dict[str, Any]
    scenario: Scenario
    digest: str

    def label(self) -> str:
        """``path=value, ...`` on one line."""
        return ", ".join(f"{path}={_show(v)}" for path, v in self.values.items()) or "(the scenario as written)"


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: points × replications.

    Attributes:
        source: the scenario file.
        name: the scenario's name.
        paths: the swept paths, ``--set`` ones first, then ``--range`` ones.
        points: every point, validated.
        replications: replications per point.
        seed: the ``--seed`` override, or None (each point's scenario seed).
        options: the command-line options that define the sweep, as given.
        design: how points are patched into one compiled model, or None (each point compiles its scenario).
    """

    source: str
    name: str
    paths: list[str]
    points: list[Point]
    replications: int
    seed: int | None
    options: tuple[str, ...] = ()
    design: PatchedDesign | None = None

    @property
    def n_runs(self) -> int:
        """Points × replications."""
        return len(self.points) * self.replications

    def command(self) -> str:
        """The ``modu sweep`` command line that defines this sweep (without output folder or executor)."""
        return shlex.join(["modu", "sweep", self.source, *self.options])

    def seed_of(self, point: Point) -> int:
        """The root seed of a point's runs."""
        return point.scenario.seed if self.seed is None else self.seed

    def definition(self) -> dict[str, Any]:
        """What identifies the sweep's results (a store refuses any other)."""
        return {"paths": self.paths, "replications": self.replications, "seed": self.seed, "seed_rule": SEED_RULE,
                "points": [{"values": p.values, "scenario_hash": p.digest} for p in self.points]}


@dataclass(frozen=True)
class SweepReport:
    """How a sweep invocation went.

    Attributes:
        runs: points × replications.
        resumed: runs found finished in the store.
        ran: runs computed now.
        failed: runs that failed (recorded; the same command retries them).
        wall_time: seconds spent computing now, the executor's start-up included.
        executor: where the runs went.
        files: the files written, relative to the folder.
    """

    runs: int
    resumed: int
    ran: int
    failed: int
    wall_time: float
    executor: str
    files: list[str]


# --------------------------------------------------------------------------- planning
def plan_sweep(scenario: str | Path, sets: Sequence[str] = (), sample: str | None = None, ranges: Sequence[str] = (),
               replications: int | None = None, seed: int | None = None) -> SweepPlan:
    """Build and validate every point of a sweep.

    Args:
        scenario: the scenario file.
        sets: ``PATH=v1,v2,...`` (YAML values; commas inside ``[]``/``{}`` do not split): a full-factorial grid.
        sample: ``lhs:N``: N Latin-hypercube points over the ``ranges`` (crossed with the grid).
        ranges: ``PATH=lo:hi`` for the sample; integer fields get integer values.
        replications: per point (default: the scenario's).
        seed: root seed of every run and of the sample (default: each point's scenario seed).

    Raises:
        ScenarioError: the scenario file, or a point, is invalid (one line: which, where, why).
        ExperimentError: a malformed option or a path that names nothing.
    """
    source = str(scenario)
    raw = load_raw(scenario)
    base = validate(copy.deepcopy(raw), source)
    grid = [_parse_set(text) for text in sets]
    n_sample, bounds = _parse_sample(sample, ranges)
    paths = [p for p, _, _ in grid] + [f.target for f in bounds]
    tokens = [t for _, t, _ in grid] + [parse_path(f.target) for f in bounds]
    labels = [f"--set {p}" for p, _, _ in grid] + [f"--range {f.target}" for f in bounds]
    for i, t in enumerate(tokens):
        if t in tokens[:i]:
            raise ExperimentError(f"{labels[i]}: the path is swept twice")
    n_points = math.prod(len(v) for _, _, v in grid) * (n_sample or 1)
    replications = base.replications if replications is None else replications
    if n_points * replications > MAX_RUNS:
        raise ExperimentError(f"--set/--sample: {n_points} points × {replications} replications is more than "
                            f"{MAX_RUNS:,} runs")
    design = _latin_hypercube(bounds, n_sample, base, seed if seed is not None else base.seed) if n_sample else [()]
    patched = _patched_design(raw, base, source, grid, bounds, tokens)
    template = DigestTemplate(patched.scenario, patched.paths) if patched else None
    points = []
    for combo in itertools.product(*(values for _, _, values in grid), design):
        *grid_values, sampled = combo
        values = dict(zip(paths, [*grid_values, *sampled], strict=True))
        if patched:
            varied = [float(values[paths[i]]) for i in patched.positions]
            points.append(Point(len(points), values, patched.variant(varied), template.digest(varied)))
            continue
        data = copy.deepcopy(raw)
        for label, t, value in zip(labels, tokens, values.values(), strict=True):
            try:
                set_path(data, t, value)
            except PathError as exc:
                raise ExperimentError(f"{label}: {exc}") from None
        where = f"{source} with " + ", ".join(f"{p}={_show(v)}" for p, v in values.items()) if values else source
        scenario = validate(data, where)
        points.append(Point(len(points), values, scenario, scenario.digest()))
    options = [*(a for text in sets for a in ("--set", text)), *(("--sample", sample) if sample else ()),
               *(a for text in ranges for a in ("--range", text)), "--replications", str(replications),
               *(("--seed", str(seed)) if seed is not None else ())]
    return SweepPlan(source, base.name, paths, points, replications, seed, tuple(options), patched)


def _patched_design(raw: dict[str, Any], base: Scenario, source: str, grid: list[tuple[str, tuple[str, ...], list[Any]]],
                    bounds: list[Factor], tokens: list[tuple[str, ...]]) -> PatchedDesign | None:
    """The design as patches of one compiled model, validated at its ends; None if it needs a scenario per point.

    A ``--set`` of one value is part of the base (``--set engine=counts``); the other fields must be patchable
    (:func:`sim.experiments.patching.patched_design`) and their listed values numbers. Each listed value and each
    range's end is then validated alone, which validates every point.

    Raises:
        ScenarioError: a listed value or a range's end is invalid (one line: which, where, why).
    """
    ranges = [(f"--range {f.target}", t, [f.low, f.high]) for f, t in zip(bounds, tokens[len(grid):], strict=True)]
    varied = [(f"--set {path}", t, values) for path, t, values in grid if len(values) > 1] + ranges
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for _, _, values in varied for v in values)
    if not varied or not numbers or None in [patch_group(t) for _, t, _ in varied]:
        return None
    fixed = [(t, values[0]) for _, t, values in grid if len(values) == 1]
    if fixed:
        data = copy.deepcopy(raw)
        for t, value in fixed:
            set_path(data, t, value)
        base = validate(data, f"{source} with " + ", ".join(f"{'.'.join(t)}={_show(v)}" for t, v in fixed))
    design = patched_design(base, [t for _, t, _ in varied], [tokens.index(t) for _, t, _ in varied])
    if design is not None:
        check_ends(base, [(t, values) for _, t, values in varied], source)
    return design


def _parse_set(text: str) -> tuple[str, tuple[str, ...], list[Any]]:
    option = f"--set {text}"
    path, sep, values_text = text.partition("=")
    if not sep or not values_text.strip():
        raise ExperimentError(f"{option}: expected PATH=v1,v2,...")
    tokens = _tokens(path.strip(), option)
    values = []
    for piece in _split_top_level(values_text):
        if not piece.strip():
            raise ExperimentError(f"{option}: empty value in the list")
        try:
            values.append(_number_or_value(yaml.safe_load(piece)))
        except yaml.YAMLError as exc:
            raise ExperimentError(f"{option}: {piece.strip()!r} is not a YAML value: "
                                f"{' '.join(str(getattr(exc, 'problem', exc)).split())}") from None
    if len(values) != len({json.dumps(v, sort_keys=True, default=str) for v in values}):
        raise ExperimentError(f"{option}: a value is listed twice")
    return path.strip(), tokens, values


def _tokens(path: str, option: str) -> tuple[str, ...]:
    try:
        return parse_path(path)
    except PathError as exc:
        raise ExperimentError(f"{option}: {exc}") from None


def _parse_sample(sample: str | None, ranges: Sequence[str]) -> tuple[int, list[Factor]]:
    if sample is None:
        if ranges:
            raise ExperimentError("--range: needs --sample lhs:N")
        return 0, []
    kind, _, n = sample.partition(":")
    if kind not in SAMPLERS or not n.isdigit() or not 1 <= int(n) <= MAX_RUNS:
        raise ExperimentError(f"--sample: expected lhs:N with N a whole number ≥ 1, got {sample!r}")
    if not ranges:
        raise ExperimentError("--sample: needs at least one --range PATH=lo:hi")
    return int(n), [parse_range(text) for text in ranges]


def parse_range(text: str) -> Factor:
    """``PATH=lo:hi`` → a uniform :class:`Factor` over [lo, hi] (``--range`` of sweeps and policy commands).

    Raises:
        ExperimentError: malformed text, a malformed path, or lo ≥ hi (one line).
    """
    option = f"--range {text}"
    path, sep, span = text.partition("=")
    lo_text, colon, hi_text = span.partition(":")
    try:
        lo, hi = float(lo_text), float(hi_text)
    except ValueError:
        lo = hi = math.nan
    if not sep or not colon or not (math.isfinite(lo) and math.isfinite(hi)):
        raise ExperimentError(f"{option}: expected PATH=lo:hi with finite numbers")
    if not lo < hi:
        raise ExperimentError(f"{option}: the lower bound must be below the upper one")
    _tokens(path.strip(), option)
    return Factor(target=path.strip(), low=lo, high=hi, why=option)


def _latin_hypercube(bounds: list[Factor], n: int, base: Scenario, seed: int) -> list[tuple[Any, ...]]:
    """N points of a seeded Latin hypercube scaled to the ranges; integer fields get integers, one per stratum."""
    from scipy.stats import qmc  # scipy.stats takes most of a second to import: only sampled sweeps pay for it

    u = qmc.LatinHypercube(d=len(bounds), rng=np.random.default_rng(seed)).random(n)
    resolved = base.resolved()
    columns = []
    for j, factor in enumerate(bounds):
        path, lo, hi = factor.target, factor.low, factor.high
        try:
            container, key = next(locations(resolved, path, create=False))
        except PathError as exc:
            raise ExperimentError(f"--range {path}: {exc}") from None
        current = container.get(key) if isinstance(container, dict) else container[key] if container is not None else None
        if isinstance(current, int) and not isinstance(current, bool):
            if lo != int(lo) or hi != int(hi):
                raise ExperimentError(f"--range {path}={lo:g}:{hi:g}: {path} is a whole number; give whole bounds")
            columns.append([int(lo + np.floor(x * (hi - lo + 1))) for x in u[:, j]])
        else:
            columns.append([float(lo + x * (hi - lo)) for x in u[:, j]])
    return list(zip(*columns, strict=True))


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside ``[]``, ``{}`` and quotes."""
    pieces, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
    return [*pieces, text[start:]]


def _number_or_value(value: Any) -> Any:
    """YAML reads ``1e-3`` as a string; numbers written that way become floats."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


# --------------------------------------------------------------------------- running
@dataclass(frozen=True)
class PatchedPoint:
    """A point of a :class:`~sim.experiments.patching.PatchedDesign`, as a task carries it (pickled once per task)."""

    design: PatchedDesign
    values: tuple[float, ...]

    @classmethod
    def of(cls, design: PatchedDesign, point: Point) -> PatchedPoint:
        """The design's values of a sweep's point."""
        return cls(design, design.varied(list(point.values.values())))


def run_point(point: Scenario | PatchedPoint, replications: Sequence[int], seed: int) -> list[str]:
    """Run replications of one point; return each run's outcome as JSON (what the store keeps).

    An outcome holds the city names, which are pools and the firms per step and
    city; everything the tables report is computed from these when they are written
    (:func:`sweep_tables`). The counts engine runs the replications as one compiled batch.
    """
    seeds = [replication_seed(seed, r) for r in replications]
    if isinstance(point, PatchedPoint):
        scenario, counts = point.design.scenario, simulate_batch(point.design.model_at(point.values), seeds).firms
    else:
        scenario, counts = point, simulate_firms(point, seeds)
    head = {"names": [c.name for c in scenario.cities], "pool": [c.pool for c in scenario.cities]}
    return [json.dumps({**head, "firms_by_city": run.tolist()}) for run in counts]


def run_points(runs: Sequence[tuple[Scenario | PatchedPoint, int, int]]) -> list[str | TaskFailure]:
    """Run several (point, replication, seed) runs in one executor task; a run that fails becomes a TaskFailure.

    Consecutive runs of one point and seed run together (:func:`run_point`); if that fails, each of
    them runs alone, so one failing run does not lose the others.
    """
    out: list[str | TaskFailure] = []
    for (_, seed), group in itertools.groupby(runs, key=lambda run: (id(run[0]), run[2])):
        group = list(group)
        try:
            out += run_point(group[0][0], [r for _, r, _ in group], seed)
        except Exception:  # find which runs fail, keeping the others
            for one, r, _ in group:
                try:
                    out += run_point(one, [r], seed)
                except Exception as exc:
                    out.append(TaskFailure.of(exc))
    return out


MAX_CHUNK = 64
"""Most runs per executor task: enough to amortise the task's overhead, few enough to keep the workers busy."""


def compute_sweep(plan: SweepPlan, store: RunStore, executor: str | ExecutorSpec | Executor = "processes",
                  progress: bool = True) -> tuple[int, int]:
    """Run the runs of ``plan`` that ``store`` does not hold yet, committing them as they come back.

    Runs go to the executor in chunks (a chunk is one task; :data:`MAX_CHUNK` at most, small enough that
    every worker gets several); each chunk is committed in one transaction when it returns. A failed run
    is reported on stderr with its point and seed, recorded, and does not stop the others; the same call
    retries it.

    Args:
        plan: the validated sweep.
        store: the open store of the sweep's folder (:class:`sim.experiments.store.RunStore`).
        executor: where the runs go (see :mod:`sim.experiments.executors`).
        progress: show a progress bar with rate and ETA.

    Returns:
        Runs found finished in the store, runs computed now.
    """
    done = store.finished()
    todo = [(p, r) for p in plan.points for r in range(plan.replications) if (p.index, r) not in done]
    chunk = max(1, min(MAX_CHUNK, len(todo) // 16))
    chunks = [todo[i:i + chunk] for i in range(0, len(todo), chunk)]
    runnable = {p.index: PatchedPoint.of(plan.design, p) if plan.design else p.scenario for p in plan.points}
    tasks = [([(runnable[p.index], r, plan.seed_of(p)) for p, r in part],) for part in chunks]
    with tqdm(total=plan.n_runs, initial=len(done), desc=f"sweep {plan.name}", unit="run",
              disable=not progress or not todo) as bar:
        for i, results in imap_unordered(executor, run_points, tasks, return_exceptions=True):
            if isinstance(results, TaskFailure):  # the worker itself died: every run of the task failed
                results = [results] * len(chunks[i])
            finished = []
            for (point, r), result in zip(chunks[i], results, strict=True):
                seed = plan.seed_of(point)
                if isinstance(result, TaskFailure):
                    finished.append(FinishedRun(point.index, r, seed, [r], error=result.error,
                                                traceback=result.traceback))
                    tqdm.write(f"modu: run failed: point {point.index} ({point.label()}), replication {r}, "
                               f"seed {seed}, spawn key [{r}]: {result.error}", file=sys.stderr)
                else:
                    finished.append(FinishedRun(point.index, r, seed, [r], outcome=result))
            store.record_many(finished)
            bar.update(len(finished))
    return len(done), len(todo)


