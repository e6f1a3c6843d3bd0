"""The scheduler: runs the plan it is given. A node whose upstream nodes are done is decided
again (the decision the plan made, on the outputs they left), then ends without running
(up to date, gates re-judged, restored from the cache) or goes to the runner, at most --jobs
at a time; the commit step records each node as it ends. Everything it writes, hashes or
stores goes through the seams it is handed."""

from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from typing import NoReturn

from mlmake.building.commit import Commit
from mlmake.building.options import Options
from mlmake.building.outcome import Finished, Outcome
from mlmake.building.seams import Done, Seams
from mlmake.core.errors import BuildError, Interrupted
from mlmake.core.graph import Graph
from mlmake.core.kind import Task
from mlmake.planning import approval
from mlmake.planning.columns import fresh_note
from mlmake.planning.plan import (
    ABSENT,
    BUILD,
    CHECK,
    FRESH,
    MAYBE,
    NEW,
    REMOVE,
    RESTORE,
    Decision,
    Plan,
    Reason,
    decide,
)
from mlmake.state.approvals import Approvals, read_approvals

TO_RUN = (NEW, BUILD, MAYBE, RESTORE, ABSENT, CHECK)  # actions a build acts on
WAIT = 0.5  # seconds: with polars loaded an unbounded wait may not wake for Ctrl-C


@dataclass(frozen=True)
class Running:
    step: Decision
    task: Task
    started: float


class Builder:
    """One build of one plan."""

    def __init__(self, plan: Plan, graph: Graph, options: Options, seams: Seams, commit: Commit) -> None:
        self.plan, self.graph, self.options, self.seams, self.commit = plan, graph, options, seams, commit
        self.reporter = seams.reporter
        self.before = commit.lock  # the lock as planned: what an early cutoff compares with
        self.outcome = Outcome()
        self.todo = self._todo()
        self.busy = set(self.todo)  # started or waiting, not ended: what a node must wait for
        self.running: dict[Future[Done], Running] = {}
        self.stopped = False
        self.threads = max(1, (os.cpu_count() or 1) // max(1, options.jobs))
        self.approvals: Approvals | None = None  # approvals.yaml, read when a target needs it

    def run(self) -> Outcome:
        self.commit.removed([s.address for s in self.plan.steps if s.action == REMOVE])
        for step in self.plan.steps:
            if step.action == FRESH and step.address not in self.todo:
                self.commit.reformatted(step)
        self.reporter.build_started(len(self.todo))
        if self.todo:
            self.seams.store.prefetch([a for a in self.todo if self.todo[a].action == ABSENT])
        try:
            self._loop()
        except KeyboardInterrupt:
            self._interrupted()
        for failure in self.seams.store.failures(wait=True):
            self.reporter.warn(failure)
        self.reporter.build_finished(self.outcome.summary(), self.outcome.ok)
        if not self.outcome.ok:
            failed = self.outcome.failed
            raise BuildError(f"{len(failed)} node(s) failed: {', '.join(failed)}")
        return self.outcome

    def _todo(self) -> dict[str, Decision]:
        """The steps to act on, in build order. Readers of an output that must be materialized
        are decided again once it exists: a rebuild (not a restore) may give other bytes, and
        early cutoff skips them when it does not."""
        steps = self.plan.steps
        todo = {s.address: s for s in steps if s.action in TO_RUN}
        absent = [s.address for s in steps if s.action == ABSENT]
        below = self.graph.closure(absent, down=True) if absent else set()
        todo.update({s.address: s for s in steps if s.action == FRESH and s.address in below})
        self.outcome.fresh += [s.address for s in steps if s.action == FRESH and s.address not in todo]
        return {a: todo[a] for a in self.graph.nodes if a in todo}

    def _loop(self) -> None:
        while self.todo or self.running:
            self._start_ready()
            if self.running:
                self._wait()
            elif not (self.todo and not self.stopped and any(self._is_ready(a) for a in self.todo)):
                break
            if self.stopped:
                self._skip_rest()
        self._skip_rest()

    def _start_ready(self) -> None:
        for address in list(self.todo):
            if self.stopped or len(self.running) >= self.options.jobs:
                return
            if self._is_ready(address):
                self._start(self.todo.pop(address))

    def _is_ready(self, address: str) -> bool:
        ups = self.graph.upstream(address)
        if any(u in self.outcome.failed or u in self.outcome.skipped for u in ups):
            return False
        return not any(u in self.busy for u in ups)

    def _skip_rest(self) -> None:
        for address in list(self.todo):
            failed = [u for u in self.graph.closure([address], down=False) if u in self.outcome.failed]
            self.outcome.skipped.append(address)
            self.reporter.node_skipped(address, f"upstream {failed[0]} failed" if failed else "the build stopped")
            del self.todo[address]

    def _start(self, planned: Decision) -> None:
        """Decide again now that the upstream nodes are done, and do what it says."""
        decl = self.graph.nodes[planned.address]
        forced = self.options.force and planned.action != ABSENT and any(r.code == "forced" for r in planned.reasons)
        step = decide(decl, self.graph, self.commit.lock, self.seams.files, cache=self.seams.cache, forced=forced)
        finished = self._unapproved(step) or self._without_running(step)
        if finished is not None:
            self._ended(step.address, self._cut_off_by_column(step, finished))
            return
        step = _to_build(step)
        task = self._task(step)
        self.seams.store.open()  # DVC for its save, opened while it runs
        self.reporter.node_started(step)
        self.running[self.seams.runner.submit(task)] = Running(step, task, time.time())

    def _unapproved(self, step: Decision) -> Finished | None:
        """A target that needs approvals its model (as built now) lacks fails without running; one up
        to date by the lock was approved when it was built."""
        if not self.graph.nodes[step.address].approvals or step.action in (FRESH, ABSENT):
            return None
        if self.approvals is None:
            self.approvals = read_approvals(self.seams.workspace.root)
        problem = approval.refusal(self.graph, step.address, self.commit.lock, self.approvals)
        # nothing is wrong with what was built: the rest of the build goes on (the model's card
        # is what a reviewer reads before approving), and the build still exits 1
        return Finished("failed", problem, stops=False) if problem else None

    def _cut_off_by_column(self, step: Decision, finished: Finished) -> Finished:
        """An early cutoff where upstream columns the node does not read changed says which."""
        if step.action != FRESH:
            return finished
        note = fresh_note(self.graph.nodes[step.address], self.graph, self.before, self.commit.lock)
        return replace(finished, message=f"up to date ({note})") if note else finished

    def _without_running(self, step: Decision) -> Finished | None:
        """How a node ends without running its recipe; None when it must run."""
        if step.action == FRESH:  # early cutoff: upstream rebuilt to identical bytes
            self.commit.reformatted(step)
            return Finished("fresh", "up to date (upstream output unchanged)")
        if step.action == CHECK and (judged := self.commit.rejudged(step)) is not None:
            return judged
        if step.action in (RESTORE, ABSENT, CHECK):
            return self.commit.restored(step)
        return None

    def _task(self, step: Decision) -> Task:
        decl, workspace = self.graph.nodes[step.address], self.seams.workspace
        ups = self.graph.upstream(step.address)
        header = f"# {step.address} ({decl.kind}) run {self.commit.run.run_id}"
        return Task(
            address=step.address, kind=decl.kind, root=str(workspace.root),
            config={**decl.config, "gates": decl.gates} if decl.gates else decl.config,  # checked before it runs
            staging=workspace.stage(step.address, decl.outputs, in_place=decl.in_place),
            upstream={u: list(self.graph.nodes[u].outputs) for u in ups},
            upstream_kinds={u: self.graph.nodes[u].kind for u in ups}, threads=self.threads,
            log=workspace.start_log(step.address, header), baseline=self.commit.judge.metrics(step.address),
            env=decl.env)

    def _wait(self) -> None:
        done, _ = wait(list(self.running), timeout=WAIT, return_when=FIRST_COMPLETED)
        for future in done:
            run = self.running.pop(future)
            self._ended(run.step.address, self.commit.ran(run.step, run.task, future.result(), run.started))

    def _ended(self, address: str, finished: Finished) -> None:
        """Tell how a node ended; a failure stops the build unless --keep-going."""
        self.busy.discard(address)
        self.outcome.add(address, finished.status)
        if finished.status == "built":
            self.reporter.node_finished(address, finished.seconds, finished.metrics)
        elif finished.status == "restored":
            self.reporter.node_restored(address, finished.seconds)
        elif finished.status == "fresh":
            self.reporter.node_skipped(address, finished.message)
        else:
            self.reporter.node_failed(address, finished.message, finished.log_tail)
            self.stopped = self.stopped or (finished.stops and not self.options.keep_going)

    def _interrupted(self) -> NoReturn:
        self.seams.runner.shutdown(cancel=True)
        for run in self.running.values():
            self.seams.workspace.discard(run.step.address)
        raise Interrupted("interrupted: finished nodes are recorded; run `mlmake build` to go on") from None


def _to_build(step: Decision) -> Decision:
    """A step that must run: what could not be restored is built, with reasons that say why."""
    if step.action in (ABSENT, CHECK):  # nothing to restore from
        return replace(step, action=ABSENT, reasons=tuple(Reason("output_missing", m) for m in step.missing))
    if step.action == RESTORE:  # the cache could not give it back (the warning says why)
        return replace(step, action=BUILD, reasons=tuple(r for r in step.reasons if r.code != "cached"))
    return step
