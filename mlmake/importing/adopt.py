"""DVC's state adopted: a stage `dvc status` calls up to date is recorded in mlproject.lock
as a build would record it (its current fingerprint and output hashes), without running it,
so `mlmake plan` right after the import calls stale exactly what DVC did.

A stage DVC calls stale only because named deps changed is recorded too, with those deps
marked as changed (its outputs' hashes kept, so its readers wait for it and stop there when
it writes the same bytes again, as with `dvc repro`); any other stale stage gets no entry
and is a new node."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlmake.core.graph import build_graph
from mlmake.core.spec import load_project
from mlmake.planning.plan import decide
from mlmake.state.hashing import Hasher, hash_json
from mlmake.state.lock import Entry, Lock, with_entry, write_lock

CHANGED = "changed in the DVC workspace"  # the recorded hash of a dep DVC called changed


@dataclass
class Adoption:
    fresh: list[str] = field(default_factory=list)  # step addresses recorded up to date
    stale: list[str] = field(default_factory=list)  # recorded with DVC's changes, or left new


def adopt(root: Path, names: Mapping[str, str], status: Mapping[str, Any]) -> Adoption:
    """Record each imported stage as DVC sees it; `status` is `dvc status` (stage → its changes)."""
    project = load_project(root)
    graph = build_graph(project)
    hasher = Hasher(root)
    lock, done = Lock(), Adoption()
    by_step = {f"steps.{step}": stage for stage, step in names.items()}
    for address, decl in graph.nodes.items():
        stage = by_step.get(address)
        if stage is None:
            continue
        step = decide(decl, graph, lock, hasher)
        outputs = {o: hasher.digest(o) for o in decl.outputs}
        if not all(d.exists for d in outputs.values()):
            done.stale.append(address)
            continue
        recorded = {o: {"hash": d.hash, "size": d.size} for o, d in outputs.items()}
        components, fingerprint = step.components, step.fingerprint
        if stage in status:
            done.stale.append(address)
            marked = _changed(root, step.components, status[stage])
            if marked is None:
                continue
            components, fingerprint = marked, hash_json(marked)
        else:
            done.fresh.append(address)
        lock = with_entry(lock, address, Entry(fingerprint, decl.kind, components, recorded))
    hasher.save()
    write_lock(root, lock)
    return done


def _changed(root: Path, components: dict[str, Any], changes: Any) -> dict[str, Any] | None:
    """The components with the deps DVC calls changed marked so; None when DVC names anything else."""
    paths: list[str] = []
    for change in changes if isinstance(changes, list) else [changes]:
        if not isinstance(change, dict) or set(change) != {"changed deps"}:
            return None
        paths += [_relative(root, p) for p in change["changed deps"]]
    files = {**components.get("inputs", {}), **components.get("code", {})}
    if not paths or any(p not in files for p in paths):
        return None
    marked = {part: dict(components.get(part, {})) for part in ("inputs", "code")}
    for p in paths:
        marked["inputs" if p in marked["inputs"] else "code"][p] = CHANGED
    return {**components, **marked}


def _relative(root: Path, path: str) -> str:
    full = path if os.path.isabs(path) else os.path.join(root, path)
    return os.path.relpath(full, root).replace(os.sep, "/")
