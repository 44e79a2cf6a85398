"""Mutation score of the model core (the compiled kernel included) and the scenario loader, per file (mutmut 3).

mutmut (configured in pyproject.toml, ``[tool.mutmut]``) copies the package to
``mutants/``, makes every small change it knows (an operator, a constant, a
comparison, a deleted call, ...) in the files listed there, and runs the fast test
selection against each: a mutant that some test fails on is *killed*; one that
every test passes is a *survivor*, i.e. a rule no test pins. The score of a file
is killed (timeouts included) over the non-equivalent mutants checked.
Equivalent mutants (changes that cannot alter behaviour) are listed with a reason
in docs/mutation.md, in its table under "Equivalent mutants"; they leave the
denominator. The mutants run with ``NUMBA_DISABLE_JIT=1``: the kernel's functions
as plain Python (numba's draws are numpy's, so the runs are the same,
``tests/test_kernel.py``), since mutmut's switches between mutants cannot be compiled.

Usage, from the repository root::

    python benchmarks/mutation.py                      # run every mutant (long: see docs/mutation.md), then report
    python benchmarks/mutation.py --only sim.model.agents   # the mutants of one module
    python benchmarks/mutation.py --since origin/main  # only the files changed since that commit (before a push)
    python benchmarks/mutation.py --report             # report on the last run without running
    python benchmarks/mutation.py --report --survivors # ... and list the survivors
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = tuple(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"])
"""The mutated files, as pyproject.toml's ``[tool.mutmut]`` lists them."""
KILLED = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout",
          37: "killed", -11: "crashed", -9: "crashed"}
"""mutmut's exit codes of a mutant's test run that count as a kill (mutmut.stats.status_by_exit_code)."""


def equivalent_mutants(doc: Path = ROOT / "docs" / "mutation.md") -> dict[str, str]:
    """Mutant name → reason, from the table under "Equivalent mutants" in docs/mutation.md."""
    if not doc.exists():
        return {}
    section = doc.read_text().split("## Equivalent mutants", 1)[-1].split("\n## ", 1)[0]
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\| `([^`]+)` \| (.+?) \|$", section, re.MULTILINE)}


def status(exit_code: int | None) -> str:
    """The verdict on one mutant from its exit code."""
    if exit_code is None:
        return "not checked"
    if exit_code == 0:
        return "survived"
    if exit_code in (5, 33):
        return "no tests"
    return KILLED.get(exit_code, "suspicious")


def module(file: str) -> str:
    """The module of a mutated file, as mutmut names its mutants: ``sim/model/agents.py`` → ``sim.model.agents``."""
    return file.removesuffix(".py").replace("/", ".")


def changed_since(commit: str, root: Path = ROOT) -> list[str]:
    """The mutated files that differ between ``commit`` and the working tree (uncommitted changes included).

    Raises:
        SystemExit: if git does not know the commit.
    """
    done = subprocess.run(["git", "diff", "--name-only", commit, "--", *FILES], cwd=root, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"--since {commit}: {done.stderr.strip()}")
    changed = set(done.stdout.split())
    return [file for file in FILES if file in changed]


def results(root: Path = ROOT, files: tuple[str, ...] | list[str] = FILES) -> dict[str, dict[str, str]]:
    """Per mutated file, mutant name → verdict, read from mutmut's ``mutants/**/*.meta``."""
    out = {}
    for file in files:
        meta = root / "mutants" / (file + ".meta")
        if meta.exists():
            codes = json.loads(meta.read_text())["exit_code_by_key"]
            out[file] = {name: status(code) for name, code in codes.items()}
    return out


def report(verdicts: dict[str, dict[str, str]], equivalent: dict[str, str], survivors: bool = False) -> str:
    """A table: per file, mutants, checked, killed, survived, equivalent and the score."""
    lines = [f"{'file':<26}{'mutants':>8}{'checked':>8}{'killed':>8}{'survived':>9}{'equiv.':>7}{'score':>8}"]
    for file, by_name in verdicts.items():
        checked = sum(1 for v in by_name.values() if v != "not checked")
        eq = sum(1 for name, v in by_name.items() if name in equivalent and v != "not checked")
        killed = sum(1 for name, v in by_name.items() if v in ("killed", "timeout", "crashed") and name not in equivalent)
        alive = [n for n, v in by_name.items() if v in ("survived", "no tests", "suspicious") and n not in equivalent]
        score = killed / (checked - eq) if checked > eq else float("nan")
        lines.append(f"{file:<26}{len(by_name):>8}{checked:>8}{killed:>8}{len(alive):>9}{eq:>7}{score:>8.1%}")
        if survivors:
            lines += [f"    {n}  ({by_name[n]})" for n in sorted(alive)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--report", action="store_true", help="report on the last run only")
    parser.add_argument("--only", help="run the mutants of one module, e.g. sim.model.agents")
    parser.add_argument("--since", metavar="COMMIT",
                        help="run only the mutants of the mutated files changed since COMMIT (e.g. origin/main)")
    parser.add_argument("--max-children", type=int, default=2, help="parallel test runs (default 2)")
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout mutmut runs in (default: this one)")
    args = parser.parse_args()
    files = list(FILES)
    if args.since:
        files = changed_since(args.since, args.root)
        print(f"mutated files changed since {args.since}: {', '.join(files) or 'none'}")
        if not files:
            return
    if args.only:
        files = [file for file in files if module(file) == args.only]
    if not args.report:
        names = [f"{module(file)}.*" for file in files] if (args.since or args.only) else []
        subprocess.run(["mutmut", "run", "--max-children", str(args.max_children), *names], cwd=args.root, check=True,
                       env={**os.environ, "NUMBA_DISABLE_JIT": "1"})
    verdicts = results(args.root, files)
    if not verdicts:
        sys.exit("no mutmut results under mutants/: run without --report first")
    print(report(verdicts, equivalent_mutants(), survivors=args.survivors))


if __name__ == "__main__":
    main()
