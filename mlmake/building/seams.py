"""What a build is handed, as small interfaces the tests fake: the file system it stages and
places outputs in, the hasher, the DVC store, the run cache it decides with, the runner and
the reporter. `mlmake build` wires the real ones (building.session); nothing in the builder
or the commit step builds its own."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlmake.core.kind import Task
from mlmake.planning.plan import Cache, Decision, Files
from mlmake.state.lock import Entry

Outputs = dict[str, dict[str, Any]]  # a node's outputs as the lock records them: path → {hash, size}


@dataclass(frozen=True)
class Done:
    """What a runner reports for one task: plain data, so it crosses a process boundary."""

    ok: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # output → its column record


class Runner(Protocol):
    """Where recipes run (building.runners: in this process, or a pool of processes)."""

    def submit(self, task: Task) -> Future[Done]: ...

    def shutdown(self, cancel: bool) -> None: ...


class Reporter(Protocol):
    """What the user is told while a build goes (outputs.report)."""

    def build_started(self, total: int) -> None: ...
    def node_started(self, step: Decision) -> None: ...
    def node_finished(self, address: str, seconds: float, metrics: dict[str, Any]) -> None: ...
    def node_restored(self, address: str, seconds: float) -> None: ...
    def warn(self, message: str) -> None: ...
    def node_skipped(self, address: str, why: str) -> None: ...
    def node_failed(self, address: str, message: str, log_tail: list[str]) -> None: ...
    def build_finished(self, summary: str, ok: bool) -> None: ...


class Hashes(Files, Protocol):
    """The planner's view of the file system (content hashes), kept between builds (state.hashing)."""

    def save(self) -> None: ...

    def unrecorded_notes(self) -> list[str]: ...


class Store(Protocol):
    """The DVC cache and remote as a build uses them, on a thread of their own
    (remote.restore.StoreThread); saves report their failures later, never raise."""

    def open(self) -> None: ...
    def pull_data(self, paths: list[str]) -> None: ...
    def prefetch(self, addresses: list[str]) -> None: ...
    def restore(self, step: Decision, entry: Entry | None) -> Entry | None: ...
    def save(self, step: Decision, outputs: Outputs, metrics: dict[str, Any]) -> None: ...
    def failures(self, *, wait: bool = False) -> list[str]: ...
    def close(self) -> list[str]: ...


class Workspace(Protocol):
    """The project's folders as a build writes them (building.workspace): staging, logs,
    outputs moved into place, what a failed node left."""

    root: Path

    def clean(self) -> None: ...
    def stage(self, address: str, outputs: tuple[str, ...], *, in_place: bool) -> dict[str, str]: ...
    def start_log(self, address: str, header: str) -> str: ...
    def place(self, staged: str, output: str) -> str: ...
    def discard(self, address: str) -> None: ...
    def keep_failed(self, address: str) -> str: ...
    def log_tail(self, log: str) -> list[str]: ...


@dataclass(frozen=True)
class Seams:
    """Everything outside the build's own logic, handed in."""

    files: Hashes
    store: Store
    cache: Cache
    workspace: Workspace
    runner: Runner
    reporter: Reporter
