"""``modu rerun``'s files: a recorded run's manifest read and checked, and a rerun's files compared with it.

A run's ``manifest.json`` (written by :func:`sim.reporting.run.write_run`) records the
resolved scenario (every parameter, defaults and calibrated values included),
its SHA-256, the root seed, the number of replications and their spawn keys,
the versions of Python, modu and its dependencies, and each file's SHA-256.
:func:`read_manifest` checks all of that; the command (:mod:`sim.cli.rerun`) runs the
recorded scenario again — never the scenario file, which may have changed or moved —
and :func:`check_files` compares every file with the recorded hash.
"""

from __future__ import annotations

import json
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from sim.reporting.files import package_versions
from sim.scenario import Scenario, ScenarioError, digest_of, validate

MAX_MANIFEST_BYTES = 64 * 1024 * 1024
"""Largest manifest read (a manifest of the largest scenario is a few MiB)."""

EXIT_DIFFERENT = 1
"""Exit code of a rerun that did not reproduce every recorded file."""

class ManifestError(ValueError):
    """A manifest that is missing, damaged or edited; the message is one line ``path: field: reason``."""


SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class RecordedRun:
    """What a run's manifest records, checked.

    Attributes:
        path: the manifest file.
        scenario: the recorded resolved scenario, validated.
        seed: the root seed.
        replications: how many replications.
        files: each recorded file (relative to the run's folder) and its SHA-256.
        versions: Python, platform, modu and dependency versions of the recorded run.
        scenario_file: the scenario file the run came from (for the record only).
    """

    path: Path
    scenario: Scenario
    seed: int
    replications: int
    files: dict[str, str]
    versions: dict[str, str]
    scenario_file: str | None

    @property
    def figures(self) -> bool:
        """Whether the recorded run drew its figures."""
        return any(name.startswith("figures/") for name in self.files)


def read_manifest(path: Path) -> RecordedRun:
    """Read and check a run's manifest.

    Raises:
        ManifestError: one line, ``path: field: reason``, for anything that is not the
            complete, untampered manifest of a ``modu run``.
    """
    from sim.experiments.ensemble import SEED_RULE

    def bad(field: str, reason: str) -> ManifestError:
        return ManifestError(" ".join(f"{path}: {field}: {reason}".split()))

    try:
        info = path.stat()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise bad("(file)", f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise bad("(file)", "cannot read: not a regular file")
    if info.st_size > MAX_MANIFEST_BYTES:
        raise bad("(file)", f"{info.st_size} bytes; a manifest may be at most {MAX_MANIFEST_BYTES}")
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, not JSON
        raise bad("(file)", f"cannot read a JSON manifest: {getattr(exc, 'strerror', None) or exc}") from None
    except RecursionError:
        raise bad("(file)", "cannot read a JSON manifest: nested too deeply") from None
    if not isinstance(record, dict):
        raise bad("(top level)", f"a manifest is a JSON object, got {type(record).__name__}")
    if record.get("tool") != "modu":
        raise bad("tool", "not a modu manifest")
    if not isinstance(record.get("scenario"), dict):
        raise bad("scenario", "missing; only the manifest of a modu run (with its resolved scenario) can be rerun")
    if record.get("seed_rule") != SEED_RULE:
        raise bad("seed_rule", f"{record.get('seed_rule')!r} is not this modu's rule {SEED_RULE!r}")
    if record.get("complete") is not True:
        raise bad("complete", "the recorded run did not complete")
    if not isinstance(record.get("scenario_hash"), str) or digest_of(record["scenario"]) != record["scenario_hash"]:
        raise bad("scenario_hash", "does not match the recorded scenario (the manifest was edited or damaged)")
    seed, replications = record.get("seed"), record.get("replications")
    if type(seed) is not int or not 0 <= seed < 2**63:
        raise bad("seed", f"must be a whole number in [0, 2**63), got {seed!r}")
    if type(replications) is not int or not 1 <= replications <= 100_000:
        raise bad("replications", f"must be a whole number in [1, 100000], got {replications!r}")
    if record.get("spawn_keys") != [[r] for r in range(replications)]:
        raise bad("spawn_keys", f"must be [[0], [1], ..., [{replications - 1}]] under {SEED_RULE}")
    files = record.get("files")
    if not isinstance(files, dict) or not files or not all(
            isinstance(k, str) and isinstance(v, str) and SHA256.fullmatch(v) for k, v in files.items()):
        raise bad("files", "must map each file written to its SHA-256")
    versions = record.get("versions")
    if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
        raise bad("versions", "must map each package to its version")
    try:
        scenario = validate(dict(record["scenario"]), f"{path}: scenario")
    except ScenarioError as exc:
        raise ManifestError(str(exc)) from None
    source = record.get("scenario_file")
    return RecordedRun(path=path, scenario=scenario, seed=seed, replications=replications, files=files,
                       versions=versions, scenario_file=source if isinstance(source, str) else None)


def version_differences(recorded: dict[str, str]) -> list[str]:
    """``name now (recorded then)`` for each recorded version that differs from this installation's."""
    now = package_versions()
    return [f"{name} {now.get(name, 'missing')} (recorded {then})" for name, then in sorted(recorded.items())
            if now.get(name) != then]


@dataclass(frozen=True)
class FileCheck:
    """The rerun's files against the record.

    Attributes:
        identical: files whose bytes match the recorded SHA-256.
        different: files whose bytes differ, or that the rerun did not write.
    """

    identical: list[str]
    different: list[str]


def check_files(recorded: RecordedRun, out: Path) -> FileCheck:
    """Compare every file a rerun wrote into ``out`` (its manifest's hashes) with the record."""
    written = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["files"]
    identical = [name for name, digest in sorted(recorded.files.items()) if written.get(name) == digest]
    return FileCheck(identical=identical, different=sorted(set(recorded.files) - set(identical)))
