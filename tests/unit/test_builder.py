"""The builder given a plan and fake seams: a runner that writes the outputs, a reporter that
records, and a DVC store in memory (tests/fakes.py). A build needs no `.dvc/` and no dvc."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import pytest

from mlmake.building.seams import Done
from mlmake.core.errors import BuildError
from mlmake.core.kind import Task
from mlmake.state import records
from mlmake.state.lock import read_lock
from tests.fakes import FakeRunner, MemoryStore, RecordingReporter, fake_build, read_tree

ROOT = Path(__file__).resolve().parents[2]
MakeProject = Callable[[dict[str, str | bytes]], Path]

# the heavy kinds, declared only: FakeRunner builds them
PROJECT = """\
version: 1
project: demo
datasets:
  customers:
    path: data/customers.csv
features:
  cf:
    from: customers
    sql: SELECT * FROM customers
models:
  churn:
    features: cf
    target: churned
    task: binary
    params: {max_depth: 6}
    gates: {auc: ">= 0.5"}
steps:
  report:
    cmd: [python, -c, pass]
    deps: [models.churn]
    outs: [build/report.txt]
"""
FILES: dict[str, str | bytes] = {"mlproject.yaml": PROJECT, "data/customers.csv": "id,churned\n1,true\n"}
NODES = ["datasets.customers", "features.cf", "models.churn", "steps.report"]

# run in a fresh interpreter, so that what the build imported is all that sys.modules holds
BUILD_SCRIPT = """\
import json, sys
from pathlib import Path
from tests.fakes import MemoryStore, fake_build
store = MemoryStore(Path(sys.argv[1]))
built = fake_build(store.root, store=store)
dvc = sorted(m for m in sys.modules if m.split(".")[0] in ("dvc", "dvc_data", "dvc_objects"))
print(json.dumps({"built": built.outcome.built, "stored": store.calls, "dvc modules": dvc}))
"""


def test_a_build_with_fake_seams_records_every_node_and_never_touches_dvc(make_project: MakeProject) -> None:
    root = make_project(FILES)
    proc = subprocess.run([sys.executable, "-c", BUILD_SCRIPT, str(root)], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert json.loads(proc.stdout) == {"built": NODES, "stored": [["save", a] for a in NODES], "dvc modules": []}
    assert not (root / ".dvc").exists()
    lock = read_lock(root)
    assert {a: e.kind for a, e in lock.nodes.items()} == {
        "datasets.customers": "dataset", "features.cf": "features", "models.churn": "model", "steps.report": "cmd"}
    assert lock.nodes["models.churn"].gates == {"auc": ">= 0.5"}
    found = sorted(records.history(root), key=lambda r: r.started)
    assert [(r.node, r.status, r.reasons) for r in found] == [(a, "built", ["new node"]) for a in NODES]
    assert found[2].params == {"max_depth": 6}
    assert found[2].metrics == {"auc": 0.5}  # what FakeRunner reports to pass its gate


def test_an_output_missing_here_is_restored_from_the_store_not_rebuilt(make_project: MakeProject) -> None:
    root = make_project(FILES)
    store = MemoryStore(root)
    fake_build(root, store=store)
    before = read_tree(str(root / "build/models/churn"))
    shutil.rmtree(root / "build/models/churn")
    again = fake_build(root, store=store)
    assert (again.runner.ran, again.reporter.of("node_restored")) == ([], [("models.churn",)])
    assert again.reporter.of("node_skipped") == [("steps.report", "up to date (upstream output unchanged)")]
    assert read_tree(str(root / "build/models/churn")) == before
    assert store.calls[-1] == ("restore", "models.churn")
    assert records.history(root, "models.churn")[0].status == "restored"
    assert not (root / ".dvc").exists()


def test_a_kind_that_writes_in_place_gets_its_own_paths_the_others_a_staging_folder(make_project: MakeProject) -> None:
    root = make_project(FILES)
    staging = {t.address: t.staging for t in fake_build(root).runner.tasks}
    assert staging["steps.report"] == {"build/report.txt": str(root / "build/report.txt")}
    assert staging["models.churn"] == {"build/models/churn": str(root / ".mlmake/tmp/models.churn/0-churn")}


class LoggingRunner(FakeRunner):
    """FakeRunner whose failing tasks first write two lines to their log."""

    def submit(self, task: Task) -> Future[Done]:
        if task.address in self.fail:
            with open(task.log, "a", encoding="utf-8") as f:
                f.write("reading data\nboom\n")
        return super().submit(task)


class TailReporter(RecordingReporter):
    """Keeps the log tail shown under each failed node."""

    def __init__(self) -> None:
        super().__init__()
        self.tails: dict[str, list[str]] = {}

    def node_failed(self, address: str, message: str, log_tail: list[str]) -> None:
        super().node_failed(address, message, log_tail)
        self.tails[address] = log_tail


@pytest.mark.parametrize(("node", "shown"), [("features.cf", True), ("steps.report", False)])
def test_a_failure_shows_the_log_tail_unless_the_kind_quotes_its_output(
        make_project: MakeProject, node: str, shown: bool) -> None:
    root = make_project(FILES)
    reporter = TailReporter()
    with pytest.raises(BuildError, match=f"^1 node\\(s\\) failed: {node}$"):
        fake_build(root, runner=LoggingRunner(fail=[node]), reporter=reporter)
    assert reporter.of("node_failed") == [(node, f"{node} failed on purpose")]
    tail = reporter.tails[node]
    if shown:
        kind = node.split(".")[0]
        assert tail[0].startswith(f"# {node} ({kind}) run ") and tail[1:] == ["reading data", "boom"]
    else:
        assert tail == []


def test_a_changed_gate_is_judged_on_the_recorded_metrics(make_project: MakeProject) -> None:
    root = make_project(FILES)
    store = MemoryStore(root)
    fake_build(root, store=store)
    (root / "mlproject.yaml").write_text(PROJECT.replace('">= 0.5"', '">= 2"'))
    reporter = RecordingReporter()
    with pytest.raises(BuildError, match=r"^1 node\(s\) failed: models.churn$"):
        fake_build(root, store=store, reporter=reporter)
    message = "gate auc >= 2 failed: auc = 0.5000 (judged on the recorded metrics)"
    assert reporter.of("node_failed") == [("models.churn", message)]
    assert reporter.of("build_finished") == [("Build: 0 built, 3 up to date, 1 failed.", False)]
    assert (records.history(root, "models.churn")[0].status, records.history(root, "models.churn")[0].message) == (
        "failed", message)
    assert read_lock(root).nodes["models.churn"].gates == {"auc": ">= 0.5"}  # still what its metrics passed
