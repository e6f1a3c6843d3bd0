"""The commit step: what a build records for each node it is done with. A built node's
outputs are moved into place and hashed, then its lock entry and run record are written at
once, so a killed build leaves only finished nodes recorded; its copy in the DVC cache, its
pointer and its run-cache entry follow through the store (on the store's own thread: the
build stands if that fails, only sharing it is lost). Restored nodes, and gates re-judged on
the recorded metrics, are recorded here too."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from mlmake.building.judge import Judge
from mlmake.building.outcome import Finished
from mlmake.building.seams import Done, Outputs, Seams
from mlmake.core.graph import Graph
from mlmake.core.kind import Task
from mlmake.core.plain import Json
from mlmake.outputs.history import configured
from mlmake.planning.plan import Decision, decide
from mlmake.state import records
from mlmake.state.lock import Entry, Lock, with_entry, write_lock

MOVED = "an input changed while the node ran; not recorded as built (run the build again)"


@dataclass(frozen=True)
class RunInfo:
    """What every run record of one build shares."""

    run_id: str
    git_commit: str | None = None
    env: str | None = None
    overrides: tuple[str, ...] = ()


def new_run_id() -> str:
    """A run id that sorts by time: YYYYmmdd-HHMMSS-random."""
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


class Commit:
    """Records the nodes of one build as they finish; holds the build's lock."""

    def __init__(self, graph: Graph, lock: Lock, seams: Seams, judge: Judge, run: RunInfo) -> None:
        self.graph, self.lock, self.seams, self.judge, self.run = graph, lock, seams, judge, run
        self.root = seams.workspace.root

    def ran(self, step: Decision, task: Task, done: Done, started: float) -> Finished:
        """A node whose recipe returned: built and recorded, or failed (what it wrote kept)."""
        seconds = time.time() - started
        outputs, problem = self._accepted(step, task, done)
        if problem:
            return self._failed(step, task, done.metrics, problem, started, seconds)
        self._put(step.address, Entry(fingerprint=step.fingerprint, kind=step.kind, components=step.components,
                                      outputs=outputs, metrics=done.metrics, gates=dict(step.gates),
                                      code_bytes=dict(step.code_bytes)))
        self.seams.store.save(step, outputs, done.metrics)
        for failure in self.seams.store.failures():
            self.seams.reporter.warn(failure)
        self._record(step, "built", started, seconds, done.metrics)
        return Finished("built", seconds=seconds, metrics=done.metrics)

    def restored(self, step: Decision) -> Finished | None:
        """The node's outputs brought back from the cache instead of building it, and recorded;
        None when the store cannot give them back."""
        started = time.time()
        entry = self.seams.store.restore(step, self.lock.get(step.address))
        if entry is None:
            return None
        failed = self.judge.failures(step.address, entry.metrics)
        if failed:  # cached outputs still answer to today's gates and baseline
            self._record(step, "failed", started, time.time() - started, entry.metrics, failed)
            return Finished("failed", failed + " (restored from the cache; not recorded)")
        self._put(step.address, replace(entry, gates=dict(step.gates), code_bytes=dict(step.code_bytes)))
        seconds = time.time() - started
        self._record(step, "restored", started, seconds, entry.metrics)
        return Finished("restored", seconds=seconds, metrics=entry.metrics)

    def rejudged(self, step: Decision) -> Finished | None:
        """Gates that changed, judged on the recorded metrics: how the node ends, or None when
        its outputs must still be brought back."""
        entry = self.lock.get(step.address)
        assert entry is not None  # a CHECK has a lock entry
        failed = self.judge.failures(step.address, entry.metrics)
        if failed:
            failed += " (judged on the recorded metrics)"
            self._record(step, "failed", time.time(), 0.0, entry.metrics, failed)
            return Finished("failed", failed)
        self._put(step.address, replace(entry, gates=dict(step.gates), code_bytes=dict(step.code_bytes)))
        if step.missing:
            return None
        return Finished("fresh", "gates re-checked on the recorded metrics: "
                        + "; ".join(r.text() for r in step.reasons))

    def reformatted(self, step: Decision) -> None:
        """An up-to-date node whose python code changed in form only: its lock entry records the
        new bytes' hashes, as a clean build of the same sources would."""
        entry = self.lock.get(step.address)
        if entry is not None and entry.fingerprint == step.fingerprint and entry.code_bytes != step.code_bytes:
            self._put(step.address, replace(entry, code_bytes=dict(step.code_bytes)))

    def removed(self, addresses: list[str]) -> None:
        """Drop the lock entries of nodes no longer in the project."""
        for address in addresses:
            self.lock = with_entry(self.lock, address, None)
        if addresses:
            write_lock(self.root, self.lock, cache=False)

    def _accepted(self, step: Decision, task: Task, done: Done) -> tuple[Outputs, str]:
        """The outputs of a node that ran, in place and hashed; or why it is not recorded as built."""
        if not done.ok:
            return {}, done.error or "the recipe failed"
        if problem := self._refusal(step, done.metrics):
            return {}, problem
        return self._place(step, task, done.tables)

    def _refusal(self, step: Decision, metrics: dict[str, Any]) -> str:
        """Why a node that ran must not be recorded as built ('' when nothing): an input moved,
        or a gate fails (judged before anything moves into place: the outputs stay for inspection)."""
        again = decide(self.graph.nodes[step.address], self.graph, self.lock, self.seams.files)
        if again.fingerprint != step.fingerprint:
            return MOVED
        return self.judge.failures(step.address, metrics)

    def _place(self, step: Decision, task: Task, tables: Outputs) -> tuple[Outputs, str]:
        """The node's outputs moved into place and hashed, or why they cannot be."""
        decl, workspace = self.graph.nodes[step.address], self.seams.workspace
        outputs: Outputs = {}
        for out in decl.outputs:
            if not decl.in_place and (problem := workspace.place(task.staged(out), out)):
                return {}, problem
            digest = self.seams.files.digest(out)
            if not digest.exists:
                return {}, f"declared output '{out}' was not written"
            outputs[out] = {"hash": digest.hash, "size": digest.size, **tables.get(out, {})}
        workspace.discard(step.address)
        return outputs, ""

    def _failed(self, step: Decision, task: Task, metrics: dict[str, Any], error: str, started: float,
                seconds: float) -> Finished:
        kept = self.seams.workspace.keep_failed(step.address)
        message = error + (f"\n(outputs kept for inspection in {kept})" if kept else "")
        self._record(step, "failed", started, seconds, metrics, message)
        # a kind whose failure message quotes its own output (a command) shows no log tail
        tail = self.seams.workspace.log_tail(task.log) if self.graph.nodes[step.address].log_tail else []
        return Finished("failed", message, seconds, metrics, tail)

    def _put(self, address: str, entry: Entry) -> None:
        """The node's lock entry, written at once (the JSON copy is refreshed once, at the end)."""
        if entry != self.lock.get(address):
            self.lock = with_entry(self.lock, address, entry)
            write_lock(self.root, self.lock, cache=False)

    def _record(self, step: Decision, status: str, started: float, seconds: float, metrics: dict[str, Any],
                message: str = "") -> None:
        config = configured(step.components, step.gates)
        run = self.run
        records.record(self.root, records.Record(
            run_id=run.run_id, node=step.address, kind=step.kind, fingerprint=step.fingerprint, status=status,
            started=started, duration=seconds, reasons=[r.text() for r in step.reasons],
            params=_params(config), metrics=metrics, git_commit=run.git_commit, env=run.env,
            overrides=list(run.overrides), message=message, config=config, inputs=_read(step)))


def _params(config: dict[str, Json]) -> dict[str, Json]:
    """The node's own params (a model's), as its configuration holds them."""
    params = config.get("params")
    return params if isinstance(params, dict) else {}


def _read(step: Decision) -> dict[str, Json]:
    """The data files and upstream outputs a node read, by their hashes."""
    return step.components.sources()
