"""Runs a plan: ready nodes go to a runner, each node writes into a staging
folder that is renamed into place only on success, and its lock entry is
written right after, so a killed build leaves only finished nodes recorded."""

from __future__ import annotations

import os
import shutil
import time
import traceback
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from mlmake.core import gates
from mlmake.core.errors import BuildError, Interrupted, MlmakeError, NodeError
from mlmake.core.graph import Graph
from mlmake.core.kind import Task
from mlmake.core.paths import writable_output
from mlmake.core.spec import Project
from mlmake.core.workdir import BuildLock, clean_staging, failed_root, log_path, move_into_place, staging_root
from mlmake.outputs.history import configured, lock_at
from mlmake.planning.plan import (
    ABSENT,
    BUILD,
    CHECK,
    FRESH,
    MAYBE,
    NEW,
    REMOVE,
    RESTORE,
    Plan,
    Reason,
    Step,
    decide,
    make_plan,
)
from mlmake.remote.dvcstore import Store
from mlmake.remote.restore import Restorer, StoreThread
from mlmake.remote.transfer import tracked_data
from mlmake.state import runs
from mlmake.state.hashing import Hasher
from mlmake.state.lock import LOCK_FILE, Entry, Lock, cache_lock, read_lock, with_entry, write_lock
from mlmake.state.remotecache import Location, RemoteCache, object_path, pointer_md5s
from mlmake.state.runcache import Hit

TO_RUN = (NEW, BUILD, MAYBE, RESTORE, ABSENT, CHECK)  # actions a build acts on


class Reporter(Protocol):
    def build_started(self, total: int) -> None: ...
    def node_started(self, step: Step) -> None: ...
    def node_finished(self, address: str, seconds: float, metrics: dict[str, Any]) -> None: ...
    def node_restored(self, address: str, seconds: float) -> None: ...
    def warn(self, message: str) -> None: ...
    def node_skipped(self, address: str, why: str) -> None: ...
    def node_failed(self, address: str, message: str, log_tail: list[str]) -> None: ...
    def build_finished(self, summary: str, ok: bool) -> None: ...


class Runner(Protocol):
    def submit(self, task: Task) -> Future[dict[str, Any]]: ...
    def shutdown(self, cancel: bool) -> None: ...


@dataclass(frozen=True)
class Options:
    targets: tuple[str, ...] = ()
    jobs: int = 1
    force: bool = False
    keep_going: bool = False
    downstream: bool = False
    env: str | None = None
    overrides: tuple[str, ...] = ()
    pull: bool = False
    baseline: str | None = None  # git revision whose lock relative gates compare against


@dataclass
class Outcome:
    built: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.built)} built"]
        if self.restored:
            parts.append(f"{len(self.restored)} restored from cache")
        parts.append(f"{len(self.fresh)} up to date")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.skipped:
            parts.append(f"{len(self.skipped)} not run")
        return "Build: " + ", ".join(parts) + "."


def run_task(task: Task) -> dict[str, Any]:
    """Run one recipe; module-level so a process pool can call it. Returns plain data."""
    from mlmake.core import registry

    try:
        result = registry.registry().by_name(task.kind).run(task)
        return {"ok": True, "metrics": result.metrics}
    except NodeError as exc:
        return {"ok": False, "error": str(exc), "metrics": exc.metrics}
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a recipe bug must not take the build down
        _log(task.log, traceback.format_exc())
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


class BuildCache(RemoteCache):
    """The cache a build decides with: this machine's run cache, the machine's default remote
    (see mlmake.state.remotecache) and, with --pull, the configured remote's run cache."""

    def __init__(self, root: Path, location: Location, store: StoreThread, *, pull: bool) -> None:
        super().__init__(root, location)
        self.store, self.pull = store, pull

    def hit(self, fingerprint: str) -> Hit | None:
        found = super().hit(fingerprint)
        return found if found is not None or not self.pull else self.store.remote_hit(fingerprint)


def _log(path: str, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")


class Builder:
    """One build of one project."""

    def __init__(self, project: Project, graph: Graph, options: Options, runner: Runner, reporter: Reporter) -> None:
        self.project, self.graph, self.options = project, graph, options
        self.root = project.root
        self.runner, self.reporter = runner, reporter
        self.hasher = Hasher(self.root)
        self.lock: Lock = read_lock(self.root)
        self.run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.commit = runs.git_commit(self.root)
        self.outcome = Outcome()
        self.threads = max(1, (os.cpu_count() or 1) // max(1, options.jobs))
        self.baseline = _baseline(self.root, graph, options.baseline)
        store = Store.of(project, reporter.warn)
        self.store = StoreThread(Restorer(self.root, store, self.hasher, pull=options.pull, warn=reporter.warn))
        self.cache = BuildCache(self.root, store.location, self.store, pull=options.pull)

    def build(self) -> Outcome:
        with BuildLock(self.root):
            clean_staging(self.root)
            if self.options.pull:  # DVC-tracked raw data first: the plan reads what is there
                self._pull_data()
            plan = make_plan(self.graph, self.lock, self.hasher, self.options.targets, force=self.options.force,
                             downstream=self.options.downstream, cache=self.cache)
            for note in self.hasher.unrecorded_notes():
                self.reporter.warn(note)
            try:
                self._run(plan)
            finally:
                self.hasher.save()
                for failure in self.store.close():
                    self.reporter.warn(failure)
                if (self.root / LOCK_FILE).exists():
                    cache_lock(self.root, self.lock)
        return self.outcome

    def _pull_data(self) -> None:
        paths = tracked_data(self.root, self.graph, self.graph.select(self.options.targets))
        try:
            self.store.pull_data(paths)
        except MlmakeError as exc:  # what is not pulled is built, or its absence named
            self.reporter.warn(f"cannot pull DVC-tracked data: {exc}")

    def _run(self, plan: Plan) -> None:
        todo = {s.address: s for s in plan.steps if s.action in TO_RUN}
        # readers of an output that must be materialized are re-decided once it exists: a
        # rebuild (not a restore) may give other bytes; early cutoff skips them when not
        absent = [s.address for s in plan.steps if s.action == ABSENT]
        below = self.graph.closure(absent, down=True) if absent else set()
        for s in plan.steps:
            if s.action == FRESH and s.address in below:
                todo[s.address] = s
        todo = {a: todo[a] for a in self.graph.nodes if a in todo}  # build order
        self.outcome.fresh += [s.address for s in plan.steps if s.action == FRESH and s.address not in todo]
        self._remove([s.address for s in plan.steps if s.action == REMOVE])
        self.reporter.build_started(len(todo))
        if todo:
            self._prefetch([a for a in absent if a in todo])
        running: dict[Future[dict[str, Any]], tuple[Step, Task, float]] = {}
        try:
            self._loop(todo, running)
        except KeyboardInterrupt:
            self.runner.shutdown(cancel=True)
            for _, task, _ in running.values():
                shutil.rmtree(staging_root(self.root) / _slug(task.address), ignore_errors=True)
            raise Interrupted("interrupted: finished nodes are recorded; run `mlmake build` to go on") from None
        for failure in self.store.failures(wait=True):
            self.reporter.warn(failure)
        ok = not self.outcome.failed
        self.reporter.build_finished(self.outcome.summary(), ok)
        if not ok:
            raise BuildError(f"{len(self.outcome.failed)} node(s) failed: {', '.join(self.outcome.failed)}")

    def _prefetch(self, absent: list[str]) -> None:
        """Nodes restored by their pointers whose objects are not in the DVC cache here (a fresh
        clone) are fetched together, while the build starts."""
        cache = self.root / ".dvc" / "cache"
        missing = [a for a in absent
                   if any(not object_path(cache, md5).is_file() for md5 in pointer_md5s(self.root, a))]
        if missing:
            self.store.prefetch(missing)

    def _loop(self, todo: dict[str, Step], running: dict[Future[dict[str, Any]], tuple[Step, Task, float]]) -> None:
        stopped = False
        busy = set(todo)  # started or waiting, not finished: what a node must wait for
        while todo or running:
            for address in list(todo):
                if stopped or len(running) >= self.options.jobs:
                    break
                if self._is_ready(address, busy):
                    self._start(todo.pop(address), running)
                    if not any(s.address == address for s, _, _ in running.values()):
                        busy.discard(address)  # restored, up to date, or failed without running
                    stopped = stopped or (address in self.outcome.failed and not self.options.keep_going)
            if not running:
                if todo and not stopped and any(self._is_ready(a, busy) for a in todo):
                    continue
                self._skip_rest(todo)
                return
            # a bounded wait: with polars loaded an unbounded one may not wake for Ctrl-C
            done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                step, task, started = running.pop(future)
                busy.discard(step.address)
                if not self._finish(step, task, started, future.result()):
                    stopped = stopped or not self.options.keep_going
            if stopped:
                self._skip_rest(todo)
                todo.clear()

    def _is_ready(self, address: str, busy: set[str]) -> bool:
        ups = self.graph.upstream(address)
        if any(u in self.outcome.failed or u in self.outcome.skipped for u in ups):
            return False
        return not any(u in busy for u in ups)

    def _skip_rest(self, todo: dict[str, Step]) -> None:
        for address in list(todo):
            failed = [u for u in self.graph.closure([address], down=False) if u in self.outcome.failed]
            why = f"upstream {failed[0]} failed" if failed else "the build stopped"
            self.outcome.skipped.append(address)
            self.reporter.node_skipped(address, why)
            del todo[address]

    def _start(self, planned: Step, running: dict[Future[dict[str, Any]], tuple[Step, Task, float]]) -> None:
        """Decide again now that the upstream nodes are done (the same decision plan made,
        on the outputs they left), and do what it says."""
        decl = self.graph.nodes[planned.address]
        forced = self.options.force and planned.action != ABSENT and any(r.code == "forced" for r in planned.reasons)
        step = decide(decl, self.graph, self.lock, self.hasher, cache=self.cache, forced=forced)
        if step.action == FRESH:  # early cutoff: upstream rebuilt to identical bytes
            self.outcome.fresh.append(step.address)
            self.reporter.node_skipped(step.address, "up to date (upstream output unchanged)")
            return
        if step.action == CHECK and not self._rejudged(step):
            return
        if step.action in (RESTORE, ABSENT, CHECK) and self._restored(step):
            return
        if step.action in (ABSENT, CHECK):  # nothing to restore from: build it again
            step = replace(step, action=ABSENT, reasons=tuple(Reason("output_missing", m) for m in step.missing))
        elif step.action == RESTORE:  # the cache could not give it back (the warning says why)
            step = replace(step, action=BUILD, reasons=tuple(r for r in step.reasons if r.code != "cached"))
        task = self._task(step)
        self.store.open()  # DVC for its save, opened while it runs
        self.reporter.node_started(step)
        running[self.runner.submit(task)] = (step, task, time.time())

    def _rejudged(self, step: Step) -> bool:
        """Gates that changed, judged on the recorded metrics; False when the node is done with."""
        entry = self.lock.get(step.address)
        assert entry is not None  # a CHECK has a lock entry
        failed = self._gate_failures(step.address, entry.metrics)
        if failed:
            failed += " (judged on the recorded metrics)"
            self._record(step, "failed", time.time(), 0.0, entry.metrics, failed)
            self.outcome.failed.append(step.address)
            self.reporter.node_failed(step.address, failed, [])
            return False
        self.lock = with_entry(self.lock, step.address, replace(entry, gates=dict(step.gates)))
        write_lock(self.root, self.lock, cache=False)
        if step.missing:
            return True
        self.outcome.fresh.append(step.address)
        self.reporter.node_skipped(step.address, "gates re-checked on the recorded metrics: "
                                   + "; ".join(r.text() for r in step.reasons))
        return False

    def _restored(self, step: Step) -> bool:
        """Bring the node's outputs back from the cache instead of building it."""
        started = time.time()
        entry = self.store.restore(step, self.lock.get(step.address))
        if entry is None:
            return False
        failed = self._gate_failures(step.address, entry.metrics)
        if failed:  # cached outputs still answer to today's gates and baseline
            self._record(step, "failed", started, time.time() - started, entry.metrics, failed)
            self.outcome.failed.append(step.address)
            self.reporter.node_failed(step.address, failed + " (restored from the cache; not recorded)", [])
            return True
        entry = replace(entry, gates=dict(step.gates))
        if entry != self.lock.get(step.address):
            self.lock = with_entry(self.lock, step.address, entry)
            write_lock(self.root, self.lock, cache=False)
        self._record(step, "restored", started, time.time() - started, entry.metrics, "")
        self.outcome.restored.append(step.address)
        self.reporter.node_restored(step.address, time.time() - started)
        return True

    def _gate_failures(self, address: str, metrics: dict[str, Any]) -> str:
        """The node's gates judged on its metrics, against the baseline: why they fail, or ''
        (a gate that passed unchecked, for want of a baseline value, says so as a warning)."""
        base = self.baseline.get(address)
        rules, against = self.graph.nodes[address].gates, base.metrics if base else None
        for note in gates.notes(rules, metrics, against):
            self.reporter.warn(f"{address}: {note}")
        return "; ".join(gates.failures(rules, metrics, against))

    def _task(self, step: Step) -> Task:
        decl = self.graph.nodes[step.address]
        slug = _slug(step.address)
        staging: dict[str, str] = {}
        for i, out in enumerate(decl.outputs):
            if decl.kind == "cmd":
                staging[out] = str(self.root / out)
                continue
            # a kind's own folder (its first output) is created empty; other outputs
            # (a batch target's parquet file) are written by the recipe at the staged path
            tmp = staging_root(self.root) / slug / f"{i}-{Path(out).name}"
            tmp.parent.mkdir(parents=True, exist_ok=True)
            if i == 0:
                tmp.mkdir()
            staging[out] = str(tmp)
        log = log_path(self.root, step.address)
        log.write_text(f"# {step.address} ({decl.kind}) run {self.run_id}\n", encoding="utf-8")
        upstream = {u: list(self.graph.nodes[u].outputs) for u in self.graph.upstream(step.address)}
        kinds = {u: self.graph.nodes[u].kind for u in upstream}
        base = self.baseline.get(step.address)
        config = {**decl.config, "gates": decl.gates} if decl.gates else decl.config  # checked before it runs
        return Task(step.address, decl.kind, str(self.root), config, staging, upstream, kinds,
                    self.threads, str(log), dict(base.metrics) if base else {})

    def _finish(self, step: Step, task: Task, started: float, result: dict[str, Any]) -> bool:
        seconds = time.time() - started
        if result.get("ok"):
            error = self._commit(step, task, result.get("metrics") or {})
            if error is None:
                self._record(step, "built", started, seconds, result.get("metrics") or {}, "")
                self.outcome.built.append(step.address)
                self.reporter.node_finished(step.address, seconds, result.get("metrics") or {})
                return True
            result = {"ok": False, "error": error, "metrics": result.get("metrics")}
        message = str(result.get("error"))
        kept = self._keep_failed(task)
        if kept:
            message += f"\n(outputs kept for inspection in {kept})"
        self._record(step, "failed", started, seconds, result.get("metrics") or {}, message)
        self.outcome.failed.append(step.address)
        # a failed command quotes its own output in the message already
        self.reporter.node_failed(step.address, message, [] if task.kind == "cmd" else _tail(task.log))
        return False

    def _commit(self, step: Step, task: Task, metrics: dict[str, Any]) -> str | None:
        """Check the inputs did not move, put outputs in place, record the lock entry."""
        decl = self.graph.nodes[step.address]
        again = decide(decl, self.graph, self.lock, self.hasher)
        if again.fingerprint != step.fingerprint:
            return "an input changed while the node ran; not recorded as built (run the build again)"
        failed = self._gate_failures(step.address, metrics)
        if failed:  # judged before anything moves into place: the outputs stay for inspection
            return failed
        outputs: dict[str, dict[str, Any]] = {}
        for out in decl.outputs:
            if decl.kind != "cmd":
                if problem := writable_output(self.root, out):  # a symlink made since validate
                    return problem
                move_into_place(Path(task.staged(out)), self.root / out)
            digest = self.hasher.digest(out)
            if not digest.exists:
                return f"declared output '{out}' was not written"
            outputs[out] = {"hash": digest.hash, "size": digest.size}
        shutil.rmtree(staging_root(self.root) / _slug(step.address), ignore_errors=True)
        entry = Entry(step.fingerprint, decl.kind, step.components, outputs, metrics, dict(decl.gates))
        self.lock = with_entry(self.lock, step.address, entry)
        write_lock(self.root, self.lock, cache=False)
        self.store.save(step, outputs, metrics)  # the build stands if this fails; only sharing it is lost
        for failure in self.store.failures():
            self.reporter.warn(failure)
        return None

    def _keep_failed(self, task: Task) -> str:
        src = staging_root(self.root) / _slug(task.address)
        if not src.exists() or not any(p.is_file() for p in src.rglob("*")):
            shutil.rmtree(src, ignore_errors=True)
            return ""
        dest = failed_root(self.root) / _slug(task.address)
        move_into_place(src, dest)
        return str(dest.relative_to(self.root))

    def _remove(self, addresses: list[str]) -> None:
        for address in addresses:
            self.lock = with_entry(self.lock, address, None)
        if addresses:
            write_lock(self.root, self.lock, cache=False)

    def _record(self, step: Step, status: str, started: float, seconds: float,
                metrics: dict[str, Any], message: str) -> None:
        config = configured(step.components, step.gates)
        inputs = {**step.components.get("inputs", {}), **step.components.get("upstream", {})}
        rec = runs.Record(self.run_id, step.address, step.kind, step.fingerprint, status, started, seconds,
                          [r.text() for r in step.reasons], config.get("params", {}) if isinstance(config, dict)
                          else {}, metrics, self.commit, self.options.env, list(self.options.overrides), message,
                          config, inputs)
        runs.record(self.root, rec)


def _baseline(root: Path, graph: Graph, rev: str | None) -> Lock:
    """The lock relative gates compare against: --baseline REV, else HEAD's when there is one."""
    if rev:
        return lock_at(root, rev)
    relative = any("baseline" in str(g) for d in graph.nodes.values() for g in d.gates.values())
    if not relative:
        return Lock()
    try:
        return lock_at(root, "HEAD")
    except MlmakeError:
        return Lock()  # no git history: relative gates say they were not checked


def _slug(address: str) -> str:
    return address.replace("/", "_")


def _tail(log: str, n: int = 20) -> list[str]:
    try:
        return Path(log).read_text(encoding="utf-8", errors="replace").splitlines()[-n:]
    except OSError:
        return []
