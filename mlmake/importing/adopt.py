"""DVC's state adopted: a stage `dvc status` calls up to date is recorded in mlproject.lock
as a build would record it (its current fingerprint and output hashes), without running it,
so `mlmake plan` right after the import calls stale exactly what DVC did.

A stage DVC calls stale only because named deps or outputs changed is recorded too, with
those marked as changed (its other outputs' hashes kept, so its readers wait for it and stop
there when it writes the same bytes again, as with `dvc repro`); any other stale stage gets
no entry and is a new node."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlmake.core.graph import build_graph
from mlmake.core.plain import Json
from mlmake.core.spec import load_project
from mlmake.planning.plan import decide
from mlmake.state.fingerprint import fingerprint
from mlmake.state.hashing import Hasher
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
        recorded: dict[str, dict[str, Json]] = {o: {"hash": d.hash, "size": d.size} for o, d in outputs.items()}
        entry = Entry(step.fingerprint, decl.kind, step.components, recorded, code_bytes=dict(step.code_bytes))
        if stage in status:
            done.stale.append(address)
            marked = _marked(root, entry, status[stage])
            if marked is None:
                continue
            entry = marked
        else:
            done.fresh.append(address)
        lock = with_entry(lock, address, entry)
    hasher.save()
    write_lock(root, lock)
    return done


def _marked(root: Path, entry: Entry, changes: Any) -> Entry | None:
    """The entry with the deps and outputs DVC calls changed marked so (plan then names them);
    None when DVC names anything else (a changed command, a deleted output, a new stage)."""
    deps: list[str] = []
    outs: list[str] = []
    for change in changes if isinstance(changes, list) else [changes]:
        if not isinstance(change, dict) or not set(change) <= {"changed deps", "changed outs"}:
            return None
        deps += [_relative(root, p) for p in change.get("changed deps", {})]
        if any(v != "modified" for v in change.get("changed outs", {}).values()):
            return None
        outs += [_relative(root, p) for p in change.get("changed outs", {})]
    inputs, code = dict(entry.components.inputs), dict(entry.components.code)
    if any(p not in inputs and p not in code for p in deps) or any(p not in entry.outputs for p in outs):
        return None
    for p in deps:
        (inputs if p in inputs else code)[p] = CHANGED
    outputs = {o: {**info, "hash": CHANGED} if o in outs else info for o, info in entry.outputs.items()}
    components = replace(entry.components, inputs=inputs, code=code)
    return Entry(fingerprint(components) if deps else entry.fingerprint, entry.kind, components, outputs,
                 code_bytes=entry.code_bytes)


def _relative(root: Path, path: str) -> str:
    full = path if os.path.isabs(path) else os.path.join(root, path)
    return os.path.relpath(full, root).replace(os.sep, "/")
