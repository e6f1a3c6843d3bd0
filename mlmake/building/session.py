"""`mlmake build` wired together: this machine's file system, hasher and DVC store are handed
to a build; under the project's build lock the plan is made (after --pull's DVC-tracked data,
which the plan reads) and given to the builder; whatever happens, what the hasher learned and
the saves the store holds are kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlmake.building.builder import Builder
from mlmake.building.commit import Commit, RunInfo, new_run_id
from mlmake.building.judge import Judge, baseline
from mlmake.building.options import Options
from mlmake.building.outcome import Outcome
from mlmake.building.seams import Reporter, Runner, Seams
from mlmake.building.workspace import LocalWorkspace
from mlmake.core.errors import MlmakeError
from mlmake.core.graph import Graph
from mlmake.core.spec import Project
from mlmake.core.workdir import BuildLock
from mlmake.planning.plan import Plan, make_plan
from mlmake.remote.dvcstore import Store
from mlmake.remote.restore import Restorer, StoreThread
from mlmake.remote.transfer import tracked_data
from mlmake.state.hashing import Hasher
from mlmake.state.lock import LOCK_FILE, cache_lock, read_lock
from mlmake.state.records import git_commit
from mlmake.state.remotecache import Location, RemoteCache, object_path, pointer_md5s
from mlmake.state.runcache import Hit


def run_build(project: Project, graph: Graph, options: Options, runner: Runner, reporter: Reporter) -> Outcome:
    """`mlmake build`: the project built with the real file system, hasher and DVC store."""
    root = project.root
    hasher = Hasher(root)
    store = Store.of(project, reporter.warn)  # DVC itself is imported when first used
    thread = BuildStore(Restorer(root, store, hasher, pull=options.pull, warn=reporter.warn))
    cache = BuildCache(root, store.location, thread, pull=options.pull)
    return build(graph, options, Seams(hasher, thread, cache, LocalWorkspace(root), runner, reporter),
                 prepare=lambda plan: _bring_back_versions(project, graph, plan, reporter.warn))


def _bring_back_versions(project: Project, graph: Graph, plan: Plan, warn: Callable[[str], None]) -> None:
    """The registered versions the deploy targets to build follow, brought back before they run
    (one that cannot be is named here, and its target fails saying why). DVC is opened only for
    a version that is neither built here nor in a folder on this machine."""
    from mlmake.planning.plan import ABSENT, FRESH
    from mlmake.remote.versions import bring_back

    decls = [graph.nodes[s.address] for s in plan.steps if s.action not in (FRESH, ABSENT) and s.address in graph.nodes]
    configs = [d.config["registry"] for d in decls if d.config.get("registry", {}).get("folder")]
    if not configs:
        return
    store = Store.of(project, warn)  # its own: the build's store belongs to the build's DVC thread
    try:
        for config in configs:
            try:
                bring_back(project.root, config, store, warn)
            except MlmakeError as exc:
                warn(str(exc))
    finally:
        store.close()


def build(graph: Graph, options: Options, seams: Seams,
          prepare: Callable[[Plan], None] = lambda plan: None) -> Outcome:
    """One build under the project's build lock: the plan made, then run by the builder."""
    root = seams.workspace.root
    judge = Judge(graph, baseline(root, graph, options.baseline), seams.reporter.warn)
    run = RunInfo(run_id=new_run_id(), git_commit=git_commit(root), env=options.env, overrides=options.overrides)
    with BuildLock(root):
        seams.workspace.clean()
        commit = Commit(graph, read_lock(root), seams, judge, run)
        try:
            plan = _plan(graph, options, seams, commit)
            prepare(plan)
            return Builder(plan, graph, options, seams, commit).run()
        finally:
            seams.files.save()
            for failure in seams.store.close():
                seams.reporter.warn(failure)
            if (root / LOCK_FILE).exists():
                cache_lock(root, commit.lock)


def _plan(graph: Graph, options: Options, seams: Seams, commit: Commit) -> Plan:
    if options.pull:  # DVC-tracked raw data first: the plan reads what is there
        _pull_data(graph, options, seams)
    plan = make_plan(graph, commit.lock, seams.files, options.targets, force=options.force,
                     downstream=options.downstream, cache=seams.cache)
    for note in seams.files.unrecorded_notes():
        seams.reporter.warn(note)
    return plan


def _pull_data(graph: Graph, options: Options, seams: Seams) -> None:
    paths = tracked_data(seams.workspace.root, graph, graph.select(options.targets))
    try:
        seams.store.pull_data(paths)
    except MlmakeError as exc:  # what is not pulled is built, or its absence named
        seams.reporter.warn(f"cannot pull DVC-tracked data: {exc}")


class BuildStore(StoreThread):
    """The build's DVC store, on a thread of its own (remote.restore.StoreThread)."""

    def prefetch(self, addresses: list[str]) -> None:
        """Nodes restored by their pointers whose objects are not in the DVC cache here (a fresh
        clone) are fetched together, while the build starts."""
        root = self.restorer.root
        cache = root / ".dvc" / "cache"
        missing = [a for a in addresses
                   if any(not object_path(cache, md5).is_file() for md5 in pointer_md5s(root, a))]
        if missing:
            super().prefetch(missing)


class BuildCache(RemoteCache):
    """The cache a build decides with: this machine's run cache, the machine's default remote
    (see mlmake.state.remotecache) and, with --pull, the configured remote's run cache."""

    def __init__(self, root: Path, location: Location, store: StoreThread, *, pull: bool) -> None:
        super().__init__(root, location)
        self.store, self.pull = store, pull

    def hit(self, fingerprint: str) -> Hit | None:
        found = super().hit(fingerprint)
        return found if found is not None or not self.pull else self.store.remote_hit(fingerprint)
