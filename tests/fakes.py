"""Fakes for the planner's seams: a runner that "builds" any node in-process, a
reporter that records what it was told, an in-memory file system and a clock.

    runner = FakeRunner()
    record_build(root, runner=runner)        # every stale node "built", lock written
    assert runner.ran == ["steps.a", "steps.b"]
    assert not plan_of(root).has_changes
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlmake.building.seams import Done, Outputs
from mlmake.core.kind import Task
from mlmake.core.spec import is_address
from mlmake.planning.plan import Decision
from mlmake.state.hashing import ABSENT, CodeDigest, Digest, canonical, hash_bytes
from mlmake.state.lock import Entry
from mlmake.state.runcache import Hit

FAKE_FILE = "part-0"  # what FakeRunner writes inside a folder output


def read_tree(path: str) -> bytes:
    """The bytes of a file, or of every file in a folder (names included), in a stable order."""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return f.read()
    if not os.path.isdir(path):
        return b"<absent>"
    chunks: list[bytes] = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            chunks.append(os.path.relpath(full, path).encode() + b"\0" + read_tree(full))
    return b"\1".join(chunks)


def task_inputs(task: Task) -> list[str]:
    """The project-relative files and folders a task reads: its own file deps and upstream outputs."""
    config = task.config
    own = [d for d in config.get("deps", []) if not is_address(d)]
    if isinstance(config.get("path"), str):
        own.append(config["path"])
    ups = [out for address in sorted(task.upstream) for out in task.upstream[address]]
    return sorted(set(own)) + ups


def fake_content(task: Task, output: str) -> bytes:
    """Deterministic bytes for one output: config + inputs, never the project's absolute path."""
    parts = [task.address, output, canonical(task.config)]
    parts += [f"{rel}={hash_bytes(read_tree(os.path.join(task.root, rel)))}" for rel in task_inputs(task)]
    return ("\n".join(parts) + "\n").encode()


def _is_folder(task: Task, output: str) -> bool:
    # built-in kinds stage into a folder; a cmd output without a suffix is treated as a folder
    return task.kind != "cmd" or not Path(output).suffix


def _passing(rules: dict[str, str], baseline: dict[str, float]) -> dict[str, float]:
    """Metrics that pass a node's gates (the build judges what a recipe reports)."""
    from mlmake.core.gates import parse_gate

    out = {}
    for metric, rule in rules.items():
        gate = parse_gate(metric, rule)
        threshold = gate.value + (baseline.get(metric, 0.0) if gate.relative else 0.0)
        out[metric] = threshold + {">": 1.0, "<": -1.0, "!=": 1.0}.get(gate.op, 0.0)
    return out


class FakeRunner:
    """A Runner that writes every declared output itself and records what ran.

    `content` overrides the bytes per address (e.g. a constant, to test early cutoff);
    `fail` lists addresses that report failure instead of writing anything;
    `metrics` what each address reports (none by default)."""

    def __init__(self, content: dict[str, Callable[[Task, str], bytes]] | None = None,
                 fail: Iterable[str] = (), metrics: dict[str, dict[str, Any]] | None = None) -> None:
        self.content = content or {}
        self.fail = set(fail)
        self.metrics = metrics or {}
        self.ran: list[str] = []
        self.tasks: list[Task] = []

    def submit(self, task: Task) -> Future[Done]:
        self.ran.append(task.address)
        self.tasks.append(task)
        future: Future[Done] = Future()
        if task.address in self.fail:
            future.set_result(Done(ok=False, error=f"{task.address} failed on purpose"))
            return future
        make = self.content.get(task.address, fake_content)
        for output, staged in task.staging.items():
            self._write(task, output, staged, make(task, output))
        metrics = self.metrics.get(task.address, _passing(task.config.get("gates") or {}, task.baseline))
        future.set_result(Done(ok=True, metrics=dict(metrics)))
        return future

    def _write(self, task: Task, output: str, staged: str, data: bytes) -> None:
        target = os.path.join(staged, FAKE_FILE) if _is_folder(task, output) else staged
        if _is_folder(task, output) and os.path.isfile(staged):
            os.remove(staged)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)

    def shutdown(self, cancel: bool) -> None:
        pass


@dataclass
class RecordingReporter:
    """A Reporter that keeps every call as a tuple, e.g. ("node_skipped", "steps.b", "…")."""

    events: list[tuple[Any, ...]] = field(default_factory=list)

    def build_started(self, total: int) -> None:
        self.events.append(("build_started", total))

    def node_started(self, step: Any) -> None:
        self.events.append(("node_started", step.address, tuple(r.text() for r in step.reasons)))

    def node_finished(self, address: str, seconds: float, metrics: dict[str, Any]) -> None:
        self.events.append(("node_finished", address))

    def node_restored(self, address: str, seconds: float) -> None:
        self.events.append(("node_restored", address))

    def warn(self, message: str) -> None:
        self.events.append(("warn", message))

    def node_skipped(self, address: str, why: str) -> None:
        self.events.append(("node_skipped", address, why))

    def node_failed(self, address: str, message: str, log_tail: list[str]) -> None:
        self.events.append(("node_failed", address, message))

    def build_finished(self, summary: str, ok: bool) -> None:
        self.events.append(("build_finished", summary, ok))

    def of(self, name: str) -> list[tuple[Any, ...]]:
        """The events of one kind, without the name."""
        return [e[1:] for e in self.events if e[0] == name]


class FakeClock:
    """Monotonic file times, so an edit always moves mtime even on a coarse clock (no sleep)."""

    def __init__(self, start_ns: int = 1_700_000_000 * 10**9) -> None:
        self.now_ns = start_ns

    def tick(self) -> int:
        self.now_ns += 1_000_000_000
        return self.now_ns

    def write(self, path: Path, content: str | bytes) -> None:
        """Write a file and give it a new mtime."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        self.touch(path)

    def touch(self, path: Path) -> None:
        """Move a file's mtime without changing its content."""
        t = self.tick()
        os.utime(path, ns=(t, t))


class FakeFiles:
    """The planner's `Files` seam in memory: rel path → Digest; `.dvc` pointers as a second map."""

    def __init__(self, files: dict[str, str] | None = None, pointers: dict[str, str] | None = None) -> None:
        self.files = {p: Digest(h, 1) for p, h in (files or {}).items()}
        self.pointers = {p: Digest(h, 1) for p, h in (pointers or {}).items()}

    def digest(self, rel: str) -> Digest:
        return self.files.get(rel, ABSENT)

    def source_digest(self, rel: str) -> Digest:
        return self.pointers.get(rel) or self.digest(rel)

    def code_digest(self, rel: str) -> CodeDigest:
        return CodeDigest(self.source_digest(rel).hash)


class MemoryStore:
    """The build's DVC store and the cache it decides with, in memory: what a build saves is
    kept as bytes by fingerprint and written back from there; no `.dvc/`, no dvc imported.
    `calls` lists ("save" | "restore", address) in order."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.saved: dict[str, tuple[Hit, list[dict[str, bytes]]]] = {}  # fingerprint → entry, outputs' files
        self.pointers: dict[str, str] = {}  # address → the fingerprint last saved for it
        self.calls: list[tuple[str, str]] = []

    def open(self) -> None:
        pass

    def pull_data(self, paths: list[str]) -> None:
        pass

    def prefetch(self, addresses: list[str]) -> None:
        pass

    def save(self, step: Decision, outputs: Outputs, metrics: dict[str, Any]) -> None:
        self.calls.append(("save", step.address))
        recorded = {p: {**o, "md5": o["hash"]} for p, o in outputs.items()}
        files = [_snapshot(self.root / p) for p in outputs]
        self.saved[step.fingerprint] = (Hit(step.fingerprint, step.address, recorded, metrics, tuple(outputs)), files)
        self.pointers[step.address] = step.fingerprint

    def restore(self, step: Decision, entry: Entry | None) -> Entry | None:
        self.calls.append(("restore", step.address))
        if step.cached is not None and step.fingerprint in self.saved:
            self._write_back(step.fingerprint, list(step.cached.outputs))
            outputs = {p: {"hash": o["hash"], "size": o["size"]} for p, o in step.cached.outputs.items()}
            return Entry(fingerprint=step.fingerprint, kind=step.kind, components=step.components, outputs=outputs,
                         metrics=step.cached.metrics, gates=dict(step.gates))
        pointer = self.pointers.get(step.address)
        if entry is None or not entry.fingerprint == step.fingerprint == pointer:
            return None
        self._write_back(entry.fingerprint, list(entry.outputs))
        return entry

    def failures(self, *, wait: bool = False) -> list[str]:
        return []

    def close(self) -> list[str]:
        return []

    def hit(self, fingerprint: str) -> Hit | None:
        saved = self.saved.get(fingerprint)
        return saved[0] if saved else None

    def restorable(self, address: str) -> bool:
        return address in self.pointers

    def _write_back(self, fingerprint: str, paths: list[str]) -> None:
        for rel, files in zip(paths, self.saved[fingerprint][1], strict=True):
            full = self.root / rel
            if full.is_dir():
                shutil.rmtree(full)
            for name, data in files.items():
                target = full / name if name else full
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)


def _snapshot(path: Path) -> dict[str, bytes]:
    """A file's bytes (under ''), or every file of a folder by its path inside it."""
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# --- whole-project helpers -------------------------------------------------------------


def load(root: Path, params: Iterable[str] = (), env: str | None = None) -> tuple[Any, Any]:
    """The project and graph as the CLI loads them."""
    from mlmake.core.graph import build_graph
    from mlmake.core.resolve import parse_override
    from mlmake.core.spec import load_project

    project = load_project(root, env, tuple(parse_override(p) for p in params))
    return project, build_graph(project)


def plan_of(root: Path, targets: Iterable[str] = (), params: Iterable[str] = (), *,
            force: bool = False, downstream: bool = False) -> Any:
    """What `mlmake plan` computes, as a Plan (the same cache of earlier builds included)."""
    from mlmake.planning.plan import make_plan
    from mlmake.state.hashing import Hasher
    from mlmake.state.lock import read_lock
    from mlmake.state.runcache import LocalCache

    _, graph = load(root, params)
    hasher = Hasher(root)
    plan = make_plan(graph, read_lock(root), hasher, targets, force=force, downstream=downstream,
                     cache=LocalCache(root))
    hasher.save()
    return plan


@dataclass
class Recorded:
    runner: FakeRunner
    reporter: RecordingReporter
    outcome: Any


def record_build(root: Path, targets: Iterable[str] = (), params: Iterable[str] = (), *,
                 runner: FakeRunner | None = None, force: bool = False, keep_going: bool = False,
                 downstream: bool = False) -> Recorded:
    """`mlmake build` through the real Builder, with FakeRunner doing the work."""
    from mlmake.building.options import Options
    from mlmake.building.session import run_build

    project, graph = load(root, params)
    runner = runner or FakeRunner()
    reporter = RecordingReporter()
    options = Options(targets=tuple(targets), force=force, keep_going=keep_going, downstream=downstream,
                      overrides=tuple(params))
    outcome = run_build(project, graph, options, runner, reporter)
    return Recorded(runner, reporter, outcome)


def fake_build(root: Path, targets: Iterable[str] = (), *, runner: FakeRunner | None = None,
               store: MemoryStore | None = None, reporter: RecordingReporter | None = None) -> Recorded:
    """A build with every seam but the project's folders faked: FakeRunner does the work,
    MemoryStore stands in for DVC and decides restores."""
    from mlmake.building.options import Options
    from mlmake.building.seams import Seams
    from mlmake.building.session import build
    from mlmake.building.workspace import LocalWorkspace
    from mlmake.state.hashing import Hasher

    _, graph = load(root)
    runner, reporter, store = runner or FakeRunner(), reporter or RecordingReporter(), store or MemoryStore(root)
    seams = Seams(Hasher(root), store, store, LocalWorkspace(root), runner, reporter)
    return Recorded(runner, reporter, build(graph, Options(targets=tuple(targets)), seams))


def actions(plan: Any) -> dict[str, str]:
    """address → action of every step of a plan."""
    return {s.address: s.action for s in plan.steps}


def reasons(plan: Any) -> dict[str, list[str]]:
    """address → reason texts of every step of a plan that has reasons."""
    return {s.address: [r.text() for r in s.reasons] for s in plan.steps if s.reasons}
