"""What was built before: mlproject.lock at a git revision (read straight from git,
no checkout) or the metrics and params of a recorded run."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from mlmake.core.errors import MlmakeError
from mlmake.core.plain import Json
from mlmake.outputs.diff import Snapshot
from mlmake.state import records
from mlmake.state.fingerprint import Components
from mlmake.state.lock import LOCK_FILE, Lock, parse_lock, read_lock


def from_lock(lock: Lock, label: str) -> Snapshot:
    return Snapshot(label, {a: e.metrics for a, e in lock.nodes.items()},
                    {a: configured(e.components, e.gates) for a, e in lock.nodes.items()})


def configured(components: Components, gates: Mapping[str, str]) -> dict[str, Json]:
    """A node's configuration as the user wrote it: the fingerprinted part and its gates."""
    return {**components.config, **({"gates": dict(gates)} if gates else {})}


def lock_at(root: Path, rev: str) -> Lock:
    """The project's lock as committed at a git revision (empty when it had none)."""
    return committed_lock(root, rev) or Lock()


def committed_lock(root: Path, rev: str) -> Lock | None:
    """The project's lock as committed at a git revision; None when the revision has none."""
    rel = _lock_path(root, rev)
    if _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}") is None:
        raise MlmakeError(f"unknown git revision '{rev}'")
    shown = subprocess.run(["git", "show", f"{rev}:{rel}"], cwd=root, capture_output=True, timeout=30)
    if shown.returncode != 0:
        return None  # the revision had no lock: nothing built was committed there
    return parse_lock(shown.stdout, f"{LOCK_FILE} at {rev}")


def _lock_path(root: Path, rev: str) -> str:
    """The lock's path in the git repository that holds the project."""
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None:
        raise MlmakeError(f"cannot read revision '{rev}': {root} is not in a git repository")
    return (root.resolve() / LOCK_FILE).relative_to(Path(top).resolve()).as_posix()


def snapshot(root: Path, ref: str) -> Snapshot:
    """A run id of `mlmake runs`, else a git revision."""
    found = records.by_run(root, ref)
    if found:
        return Snapshot(f"run {found[0].run_id}", {r.node: r.metrics for r in found},
                        {r.node: r.config for r in found}, partial=True)
    lock = committed_lock(root, ref)
    if lock is None:
        return Snapshot(ref, note=f"{ref} has no {_lock_path(root, ref)}: nothing built was committed there, so its "
                                  f"side shows '-' (commit {LOCK_FILE} after `mlmake build` to compare with it)")
    return from_lock(lock, ref)


def workspace(root: Path) -> Snapshot:
    """What is built in the workspace, by its lock."""
    if not (root / LOCK_FILE).exists():
        return Snapshot("workspace", note=f"the workspace has no {LOCK_FILE}: nothing is built here yet, so its "
                                          "side shows '-' (run `mlmake build`)")
    return from_lock(read_lock(root), "workspace")


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
