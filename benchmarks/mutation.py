"""Mutation score of the model core and the scenario loader, per file (mutmut 3).

mutmut (configured in pyproject.toml, ``[tool.mutmut]``) copies the package to
``mutants/``, makes every small change it knows (an operator, a constant, a
comparison, a deleted call, ...) in the files listed there, and runs the fast test
selection against each: a mutant that some test fails on is *killed*; one that
every test passes is a *survivor*, i.e. a rule no test pins. The score of a file
is killed (timeouts included) over the non-equivalent mutants checked.
Equivalent mutants (changes that cannot alter behaviour) are listed with a reason
in docs/mutation.md, in its table under "Equivalent mutants"; they leave the
denominator.

Usage, from the repository root::

    python benchmarks/mutation.py                      # run every mutant (long: see docs/mutation.md), then report
    python benchmarks/mutation.py --only sim.model.agents   # the mutants of one module
    python benchmarks/mutation.py --report             # report on the last run without running
    python benchmarks/mutation.py --report --survivors # ... and list the survivors
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ("sim/model/utility.py", "sim/model/firms.py", "sim/model/model.py", "sim/model/agents.py",
         "sim/scenario/loading.py", "sim/scenario/reading.py")
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


def results(root: Path = ROOT) -> dict[str, dict[str, str]]:
    """Per mutated file, mutant name → verdict, read from mutmut's ``mutants/**/*.meta``."""
    out = {}
    for file in FILES:
        meta = root / "mutants" / (file + ".meta")
        if meta.exists():
            codes = json.loads(meta.read_text())["exit_code_by_key"]
            out[file] = {name: status(code) for name, code in codes.items()}
    return out


def report(verdicts: dict[str, dict[str, str]], equivalent: dict[str, str], survivors: bool = False) -> str:
    """A table: per file, mutants, checked, killed, survived, equivalent and the score."""
    lines = [f"{'file':<26}{'mutants':>8}{'checked':>8}{'killed':>8}{'survived':>9}{'equiv.':>7}{'score':>8}"]
    for file, by_name in verdicts.items():
        counts = Counter(by_name.values())
        checked = len(by_name) - counts["not checked"]
        eq = sum(1 for name, v in by_name.items() if name in equivalent and v != "not checked")
        killed = counts["killed"] + counts["timeout"] + counts["crashed"]
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
    parser.add_argument("--max-children", type=int, default=2, help="parallel test runs (default 2)")
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout mutmut runs in (default: this one)")
    args = parser.parse_args()
    if not args.report:
        names = [f"{args.only}.*"] if args.only else []
        subprocess.run(["mutmut", "run", "--max-children", str(args.max_children), *names], cwd=args.root, check=True)
    verdicts = results(args.root)
    if not verdicts:
        sys.exit("no mutmut results under mutants/: run without --report first")
    print(report(verdicts, equivalent_mutants(), survivors=args.survivors))


if __name__ == "__main__":
    main()
