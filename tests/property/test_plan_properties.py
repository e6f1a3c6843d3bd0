"""The staleness invariants of DESIGN.md §3, over random DAG-shaped projects and random edits.

A project here is raw files, params, datasets reading some raw files, and steps whose deps are
raw files, datasets and earlier steps (by address, by output path, or a file inside a folder
output), with params interpolated into their commands. FakeRunner builds them in-process.
Edits: new raw content, a touch, a param, a step's command, a hand-edited output.
A small model of the project predicts, for each edit, exactly which nodes the plan must call
stale and with which reasons; the real plan must agree, the build must run exactly those
nodes, and the plan after it must be empty.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlmake.core.graph import to_networkx
from mlmake.planning.plan import BUILD, FRESH, MAYBE, NEW, RESTORE, Decision, Plan, Reason
from mlmake.state.hashing import hash_bytes
from mlmake.state.lock import LOCK_FILE
from tests.fakes import FakeClock, load, plan_of, record_build
from tests.helpers import scratch, write_files

# builds fsync (the lock, DVC's and the run records' sqlite): on tmpfs they cost no disk wait
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class StepSpec:
    deps: list[str]                 # as written in the file
    params: list[int]               # indexes of the params its cmd interpolates
    folder: bool = False            # a second output: a folder build/sI_dir
    version: int = 0                # bumped by a "cmd" edit


@dataclass
class Model:
    raws: list[bytes]
    params: list[int]
    datasets: list[int]             # raw indexes that have a dataset node
    steps: list[StepSpec]
    edits: int = 0

    def cmd(self, i: int) -> list[str]:
        spec = self.steps[i]
        return ["python", "-c", "pass", f"s{i}", f"v{spec.version}"] + [f"p{k}=${{params.p{k}}}" for k in spec.params]

    def resolved_cmd(self, i: int) -> list[str]:
        spec = self.steps[i]
        return self.cmd(i)[:5] + [f"p{k}={self.params[k]}" for k in spec.params]

    def yaml(self) -> str:
        lines = ["version: 1", "project: random", "params:"]
        lines += [f"  p{k}: {v}" for k, v in enumerate(self.params)]
        if self.datasets:
            lines.append("datasets:")
            for r in self.datasets:
                lines += [f"  d{r}:", f"    path: data/r{r}.csv"]
        lines.append("steps:")
        for i, spec in enumerate(self.steps):
            outs = [f"build/s{i}.txt"] + ([f"build/s{i}_dir"] if spec.folder else [])
            lines += [f"  s{i}:", f"    cmd: {json.dumps(self.cmd(i))}", f"    deps: {json.dumps(spec.deps)}",
                      f"    outs: {json.dumps(outs)}"]
        return "\n".join(lines) + "\n"

    def write(self, root: Path) -> Path:
        files: dict[str, str | bytes] = {"mlproject.yaml": self.yaml()}
        files.update({f"data/r{r}.csv": content for r, content in enumerate(self.raws)})
        return write_files(root, files)

    def readers(self, i: int) -> set[str]:
        """Addresses whose recorded components name raw file i."""
        path = f"data/r{i}.csv"
        out = {f"datasets.d{i}"} if i in self.datasets else set()
        return out | {f"steps.s{j}" for j, s in enumerate(self.steps) if path in s.deps}


@st.composite
def models(draw: st.DrawFn) -> Model:
    n_raw = draw(st.integers(1, 3))
    raws = [draw(st.binary(min_size=1, max_size=6)) for _ in range(n_raw)]
    params = draw(st.lists(st.integers(0, 9), min_size=1, max_size=3))
    datasets = sorted(draw(st.sets(st.integers(0, n_raw - 1))))
    steps: list[StepSpec] = []
    for i in range(draw(st.integers(1, 6))):
        choices = [f"data/r{r}.csv" for r in range(n_raw)] + [f"datasets.d{r}" for r in datasets]
        for j in range(i):
            choices += [f"steps.s{j}", f"build/s{j}.txt"]
            if steps[j].folder:
                choices.append(f"build/s{j}_dir/part-0")
        deps = draw(st.lists(st.sampled_from(choices), unique=True, max_size=3))
        used = draw(st.lists(st.integers(0, len(params) - 1), unique=True, max_size=2))
        steps.append(StepSpec(deps, used, draw(st.booleans())))
    return Model(raws, params, datasets, steps)


EDITS = st.one_of(
    st.tuples(st.just("content"), st.integers(0, 2), st.binary(min_size=1, max_size=6)),
    st.tuples(st.just("touch"), st.integers(0, 20)),
    st.tuples(st.just("param"), st.integers(0, 2), st.integers(1, 5)),
    st.tuples(st.just("cmd"), st.integers(0, 5)),
    st.tuples(st.just("tamper"), st.integers(0, 5)),
)
CACHED = Reason("cached", "<fingerprint[:8]>")


def expected(model: Model, order: list[str], uses: dict[str, tuple[str, ...]],
             own: dict[str, list[Reason]]) -> dict[str, tuple[str, list[Reason]]]:
    """Each node's action and reasons, given the nodes an edit touches directly."""
    pending: set[str] = set()
    out: dict[str, tuple[str, list[Reason]]] = {}
    for address in order:
        if any(r.code == "output_modified" for r in own.get(address, [])):
            # built before with exactly this fingerprint: restored from the cache, nothing waits on it
            out[address] = (RESTORE, own[address] + [CACHED])
            continue
        if own.get(address):
            out[address] = (BUILD, own[address])
        elif waiting := sorted(u for u in uses[address] if u in pending):
            out[address] = (MAYBE, [Reason("upstream_pending", u) for u in waiting])
        else:
            out[address] = (FRESH, [])
            continue
        pending.add(address)
    return out


def apply(model: Model, root: Path, edit: tuple, clock: FakeClock) -> dict[str, list[Reason]]:  # type: ignore[type-arg]
    """Apply an edit to the files and the model; return the reasons it gives each directly affected node."""
    kind = edit[0]
    if kind == "content":
        i = edit[1] % len(model.raws)
        # never content seen before: a revert would be restored from the run cache, not rebuilt
        # (test_plan.py::test_reverting_an_edit_restores_instead_of_rebuilding covers that)
        model.edits += 1
        old, new = model.raws[i], edit[2] + b"#%d" % model.edits
        model.raws[i] = new
        clock.write(root / f"data/r{i}.csv", new)
        path, hashes = f"data/r{i}.csv", (hash_bytes(old), hash_bytes(new))
        # a dataset reads its path as data; a step reads its file deps as code
        return {a: [Reason("input" if a.startswith("datasets.") else "code", path, *hashes)]
                for a in model.readers(i)}
    if kind == "tamper":
        i = edit[1] % len(model.steps)
        model.edits += 1
        clock.write(root / f"build/s{i}.txt", b"tampered #%d\n" % model.edits)
        return {f"steps.s{i}": [Reason("output_modified", f"build/s{i}.txt")]}
    if kind == "touch":
        files = sorted(p for p in root.rglob("*") if p.is_file() and ".mlmake" not in p.parts)
        clock.touch(files[edit[1] % len(files)])
        return {}
    if kind == "param":
        # a global param names itself in the reason, not the commands it is interpolated into
        k = edit[1] % len(model.params)
        old_value = model.params[k]
        model.params[k] += edit[2]
        (root / "mlproject.yaml").write_text(model.yaml())
        return {f"steps.s{i}": [Reason("param", f"params.p{k}", old_value, model.params[k])]
                for i, spec in enumerate(model.steps) if k in spec.params}
    i = edit[1] % len(model.steps)
    before = model.resolved_cmd(i)
    model.steps[i].version += 1
    (root / "mlproject.yaml").write_text(model.yaml())
    return {f"steps.s{i}": [Reason("config", "cmd", before, model.resolved_cmd(i))]}


def check_topological(root: Path, plan: Plan) -> None:
    _, graph = load(root)
    g = to_networkx(graph)
    position = {s.address: n for n, s in enumerate(plan.steps)}
    assert set(position) == set(g.nodes)
    assert all(position[u] < position[v] for u, v in g.edges), "plan order is not topological"


def assert_matches(plan: Plan, want: dict[str, tuple[str, list[Reason]]]) -> None:
    def subject(step: Decision, reason: Reason) -> str:
        return CACHED.subject if reason.code == "cached" and reason.subject == step.fingerprint[:8] else reason.subject

    got = {s.address: (s.action, [(r.code, subject(s, r), r.old, r.new) for r in s.reasons]) for s in plan.steps}
    assert got == {a: (act, [(r.code, r.subject, r.old, r.new) for r in rs]) for a, (act, rs) in want.items()}


@SETTINGS
@given(models(), st.lists(EDITS, min_size=1, max_size=4))
def test_exactly_the_downstream_of_an_edit_is_stale(model: Model, edits: list[tuple]) -> None:  # type: ignore[type-arg]
    with scratch(SCRATCH) as tmp:
        root = model.write(Path(tmp))
        plan = plan_of(root)
        assert {s.action for s in plan.steps} == {NEW}
        check_topological(root, plan)
        built = record_build(root)
        assert sorted(built.runner.ran) == sorted(s.address for s in plan.steps)
        assert not plan_of(root).has_changes, "a build left something stale"

        clock = FakeClock()
        for edit in edits:
            own = apply(model, root, edit, clock)
            _, graph = load(root)
            order = list(graph.nodes)
            want = expected(model, order, {a: graph.upstream(a) for a in order}, own)
            plan = plan_of(root)
            check_topological(root, plan)
            assert_matches(plan, want)
            built = record_build(root)
            stale = sorted(a for a, (action, _) in want.items() if action not in (FRESH, RESTORE))
            # FakeRunner's bytes follow config and inputs, so every MAYBE really changes too
            assert sorted(built.runner.ran) == stale
            assert sorted(a for (a,) in built.reporter.of("node_restored")) == \
                sorted(a for a, (action, _) in want.items() if action == RESTORE)
            assert not plan_of(root).has_changes, f"stale after building {edit}"


@SETTINGS
@given(models())
def test_touching_without_changing_plans_nothing(model: Model) -> None:
    with scratch(SCRATCH) as tmp:
        root = model.write(Path(tmp))
        record_build(root)
        clock = FakeClock()
        for path in root.rglob("*"):
            if path.is_file() and ".mlmake" not in path.parts:
                clock.touch(path)
        assert not plan_of(root).has_changes
        assert record_build(root).runner.ran == []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_fingerprints_do_not_depend_on_the_project_path(model: Model) -> None:
    with scratch(SCRATCH) as tmp:
        one = model.write(Path(tmp) / "one")
        two = model.write(Path(tmp) / "somewhere" / "else" / "two")
        cwd = os.getcwd()
        os.chdir(tmp)  # and not on the working directory either
        try:
            record_build(one)
            record_build(two)
        finally:
            os.chdir(cwd)
        assert (one / LOCK_FILE).read_bytes() == (two / LOCK_FILE).read_bytes()
        assert tmp.encode() not in (one / LOCK_FILE).read_bytes()
        fingerprints = [{s.address: s.fingerprint for s in plan_of(r).steps} for r in (one, two)]
        assert fingerprints[0] == fingerprints[1]
        assert [{s.address: s.fingerprint for s in plan_of(r, force=True).steps} for r in (one, two)] \
            == fingerprints
