"""`mlmake build --scheduler`: the nodes run on a Dask LocalCluster of two worker processes,
each with its own working folder; the client and the workers share nothing but the remote
(a folder here, as an object store would be). Loopback only.

Scripts that must be held mid-run coordinate through an absolute folder passed as a param
(`signals`), since a worker runs them in a folder of its own; every wait is bounded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from mlmake.state.lock import read_lock
from tests.helpers import build, copy_example, run_records, write_files

distributed = pytest.importorskip("distributed")

RunCli = Callable[..., Result]
WAIT_S = 60.0  # a bound on every wait; a healthy run needs a few seconds
SMALL = ("-P", "rows=400", "-P", "models.churn_xgb.params.nthread=1")


@pytest.fixture(scope="module")
def workers_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workers")


@pytest.fixture(scope="module")
def cluster(workers_folder: Path) -> Iterator[Any]:
    """Two worker processes with a thread each; each worker's local directory is its own."""
    folder = workers_folder
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, local_directory=str(folder)) as local:
        yield local


@pytest.fixture
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as connected:
        yield connected


def committed(root: Path, dest: Path) -> Path:
    """What a clone of the built project has: the file, its scripts, the lock and the pointers."""
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns("build", "data", ".mlmake", "cache", "tmp",
                                                              "config.local"))
    return dest


def started_on(stdout: str) -> dict[str, str]:
    """node → the worker it ran on, from the build's progress lines."""
    placed = [line.strip().split(" runs on ") for line in stdout.splitlines() if " runs on " in line]
    return {node: worker for node, worker in placed}


# --- the churn example on the cluster ---------------------------------------------------------------


def test_churn_on_the_cluster_locks_what_a_local_build_locks_and_a_clone_restores_it_all(
        run_cli: RunCli, tmp_path: Path, cluster: Any, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    here = copy_example("churn", tmp_path / "here")
    monkeypatch.setenv("MLMAKE_REMOTE", str(tmp_path / "remote-here"))
    result = run_cli(here, "build", *SMALL)
    assert result.exit_code == 0, result.stderr

    there = copy_example("churn", tmp_path / "there")
    monkeypatch.setenv("MLMAKE_REMOTE", str(tmp_path / "remote-there"))  # its own: nothing restored from here
    result, ran = build(run_cli, there, "--scheduler", cluster.scheduler_address, *SMALL)
    assert result.exit_code == 0, result.stderr
    assert set(ran.values()) == {"built"} and len(ran) == 8
    workers = started_on(result.stdout)
    assert sorted(workers) == sorted(ran)
    assert set(workers.values()) <= set(client.nthreads())
    assert (there / "mlproject.lock").read_bytes() == (here / "mlproject.lock").read_bytes()
    assert (there / "build" / "report.md").read_bytes() == (here / "build" / "report.md").read_bytes()
    # the workers fetched what they read into their own folders, never the client's
    fetched = client.run(lambda dask_worker: sorted(os.listdir(Path(dask_worker.local_directory) / "mlmake")))
    assert all(folders == ["objects", "tasks"] for folders in fetched.values()), fetched
    assert not (there / ".mlmake" / "tmp").exists() or not any((there / ".mlmake" / "tmp").iterdir())

    clone = committed(there, tmp_path / "clone")
    result, ran = build(run_cli, clone, *SMALL)
    assert result.exit_code == 0, result.stderr
    assert ran == dict.fromkeys(ran, "restored") and len(ran) == 8
    assert result.stdout.splitlines()[-1] == "Build: 0 built, 8 restored from cache, 0 up to date."
    assert (clone / "mlproject.lock").read_bytes() == (here / "mlproject.lock").read_bytes()


# --- failures on the cluster ------------------------------------------------------------------------

HOLD = '''\
"""hold.py OUT NAME SIGNALS: write OUT; before that, the first run of NAME marks that it started
(with its worker's process id) and waits while SIGNALS/block-NAME exists or until its worker dies."""
import json
import os
import sys
import time
from pathlib import Path

out, name, signals = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
worker = os.getppid()
if not (signals / f"{name}.started").exists():
    (signals / f"{name}.worker").write_text(str(worker))
    (signals / f"{name}.started").touch()
    deadline = time.monotonic() + 60
    while (signals / f"block-{name}").exists() and os.getppid() == worker and time.monotonic() < deadline:
        time.sleep(0.01)
    if os.getppid() != worker:
        sys.exit(9)
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(f"{name} done\\n")
'''

FAIL = '''\
import sys
print("broken on purpose")
sys.exit(3)
'''

STEPS = """\
version: 1
project: held
params: {signals: SIGNALS}
environments:
  cluster: {runner: {scheduler: "ADDRESS"}}
steps:
  a:
    cmd: [python, scripts/hold.py, build/a.txt, a, "${params.signals}"]
    outs: [build/a.txt]
  b:
    cmd: [python, scripts/hold.py, build/b.txt, b, "${params.signals}"]
    deps: [steps.a]
    outs: [build/b.txt]
  bad:
    cmd: [python, scripts/fail.py]
    outs: [build/bad.txt]
  after_bad:
    cmd: [python, scripts/hold.py, build/after.txt, after, "${params.signals}"]
    deps: [steps.bad]
    outs: [build/after.txt]
"""


class Held:
    """A project whose steps can be held mid-run, and the builds started on it as processes."""

    def __init__(self, root: Path, signals: Path, address: str) -> None:
        self.root, self.signals, self.address = root, signals, address
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-m", "mlmake", "-C", str(self.root), "build",
                                 "--scheduler", self.address, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.procs.append(proc)
        return proc

    def block(self, name: str) -> None:
        (self.signals / f"block-{name}").touch()

    def release(self, name: str) -> None:
        (self.signals / f"block-{name}").unlink(missing_ok=True)

    def wait_started(self, name: str, proc: subprocess.Popen[str]) -> int:
        """Wait until step NAME runs on a worker; that worker's process id."""
        mark = self.signals / f"{name}.started"
        deadline = time.monotonic() + WAIT_S
        while not mark.exists():
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"the build ended (exit {proc.returncode}) before {name} started:\n{out}\n{err}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {name} to start")
            time.sleep(0.01)
        return int((self.signals / f"{name}.worker").read_text())

    def stop_all(self) -> None:
        for name in ("a", "b", "after"):
            self.release(name)
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=WAIT_S)


@pytest.fixture
def held(tmp_path: Path, cluster: Any) -> Iterator[Held]:
    signals = tmp_path / "signals"
    signals.mkdir()
    text = STEPS.replace("SIGNALS", str(signals)).replace("ADDRESS", cluster.scheduler_address)
    root = write_files(tmp_path / "held", {"mlproject.yaml": text, "scripts/hold.py": HOLD, "scripts/fail.py": FAIL})
    project = Held(root, signals, cluster.scheduler_address)
    yield project
    project.stop_all()


def test_a_failing_node_on_the_cluster_fails_as_it_does_here_and_keep_going_builds_the_rest(
        run_cli: RunCli, held: Held) -> None:
    root = held.root
    result, ran = build(run_cli, root, "--env", "cluster", "--keep-going")
    assert result.exit_code == 1
    log = root / ".mlmake" / "logs" / "steps.bad.log"
    assert result.stderr.splitlines()[:4] == [
        "FAILED steps.bad: command failed with exit code 3: python scripts/fail.py",
        f"last 1 lines of output (full output in {log}):",
        "  broken on purpose",
        "error: 1 node(s) failed: steps.bad",
    ]
    assert ran == {"steps.a": "built", "steps.b": "built", "steps.bad": "failed"}
    assert "  skip steps.after_bad: upstream steps.bad failed" in result.stdout.splitlines()
    assert sorted(read_lock(root).nodes) == ["steps.a", "steps.b"]
    assert (root / "build" / "b.txt").read_text() == "b done\n"
    assert not (root / "build" / "bad.txt").exists()
    assert log.read_text().splitlines()[1:] == ["$ python scripts/fail.py", "broken on purpose"]


def test_a_worker_killed_mid_node_runs_it_again_on_another_and_the_build_stands(held: Held) -> None:
    held.block("b")
    proc = held.start("steps.b")
    worker = held.wait_started("b", proc)
    os.kill(worker, signal.SIGKILL)  # the nanny starts a new worker; the scheduler reruns the node
    out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err
    ran = [line for line in out.splitlines() if line.startswith("  steps.b runs on ")]
    assert len(ran) == 2, out
    assert "  done steps.b in " in out
    assert (held.root / "build" / "b.txt").read_text() == "b done\n"
    assert sorted(read_lock(held.root).nodes) == ["steps.a", "steps.b"]


def test_ctrl_c_of_the_client_records_what_finished_and_nothing_that_ran(run_cli: RunCli, held: Held) -> None:
    held.block("b")
    proc = held.start("steps.b")
    held.wait_started("b", proc)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 130, err
    assert err == "error: interrupted: finished nodes are recorded; run `mlmake build` to go on\n"
    assert sorted(read_lock(held.root).nodes) == ["steps.a"]
    assert not (held.root / "build" / "b.txt").exists()
    assert [(r["node"], r["status"]) for r in run_records(run_cli, held.root)] == [("steps.a", "built")]

    held.release("b")  # what the worker still finishes never reaches this project
    result, ran = build(run_cli, held.root, "--scheduler", held.address, "steps.b")
    assert result.exit_code == 0, result.stderr
    assert ran == {"steps.b": "built"}
    assert (held.root / "build" / "b.txt").read_text() == "b done\n"


# --- where a node runs, and what is asked of the user --------------------------------------------------

WHERE = """\
version: 1
project: where
steps:
  where:
    cmd: [python, scripts/where.py, build/where.txt]
    outs: [build/where.txt]
"""

WHERE_PY = """\
import json
import os
import sys
from pathlib import Path

Path(sys.argv[1]).write_text(os.getcwd())
"""


def test_workers_run_in_folders_of_their_own_unless_told_the_file_system_is_shared(
        run_cli: RunCli, make_project: Any, cluster: Any, workers_folder: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project({"mlproject.yaml": WHERE, "scripts/where.py": WHERE_PY})
    monkeypatch.setenv("MLMAKE_SCHEDULER", cluster.scheduler_address)
    result = run_cli(root, "build")
    assert result.exit_code == 0, result.stderr
    ran_in = Path((root / "build" / "where.txt").read_text())
    assert ran_in.is_relative_to(workers_folder) and ran_in.parent.name == "tasks"
    assert not ran_in.exists()  # removed once its outputs were pushed

    result = run_cli(root, "build", "--force", "--shared-fs")
    assert result.exit_code == 0, result.stderr
    assert (root / "build" / "where.txt").read_text() == str(root)


def test_without_dask_installed_the_scheduler_option_says_what_to_install(
        run_cli: RunCli, make_project: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project({"mlproject.yaml": WHERE, "scripts/where.py": WHERE_PY})
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` raises ImportError
    result = run_cli(root, "build", "--scheduler", "tcp://127.0.0.1:8786")
    assert result.exit_code == 1
    assert result.stderr == ("error: building on a Dask cluster (--scheduler tcp://127.0.0.1:8786) needs Dask: "
                             "pip install 'mlmake[dask]'\n")
    assert not (root / "mlproject.lock").exists()


def test_an_environments_runner_is_checked_like_the_rest_of_the_file(
        run_cli: RunCli, make_project: Any) -> None:
    text = WHERE + "environments:\n  cluster: {runner: {scheduler: dask-host:8786, shared: true}}\n"
    root = make_project({"mlproject.yaml": text, "scripts/where.py": WHERE_PY})
    result = run_cli(root, "validate")
    assert result.exit_code == 1
    assert result.stderr == (
        "mlproject.yaml:8:33: environments.cluster.runner.scheduler: expected a value matching "
        "^[a-z][a-z0-9+.-]*://\\S+$, got 'dask-host:8786'\n"
        "    cluster: {runner: {scheduler: dask-host:8786, shared: true}}\n"
        "                                  ^\n"
        "mlproject.yaml:8:49: environments.cluster.runner.shared: unknown key 'shared'\n"
        "    cluster: {runner: {scheduler: dask-host:8786, shared: true}}\n"
        "                                                  ^\n"
        "  hint: did you mean 'shared_fs'?\n"
        "2 errors found\n")


def test_a_remote_that_cannot_take_a_nodes_inputs_fails_that_node_by_name(
        run_cli: RunCli, make_project: Any, cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project({"mlproject.yaml": WHERE, "scripts/where.py": WHERE_PY})
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MLMAKE_REMOTE", str(tmp_path / "a-file" / "remote"))
    result = run_cli(root, "build", "--scheduler", cluster.scheduler_address)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"FAILED steps.where: its inputs cannot be sent to the workers: cannot push where.py to the remote "
        f"{tmp_path / 'a-file' / 'remote'}: Not a directory")
    assert not (root / "mlproject.lock").exists()


PARTS = """\
version: 1
project: parts
datasets:
  events:
    path: data/events
    format: parquet
    schema:
      id: {type: int64, unique: true, nullable: false}
"""


def test_a_dataset_that_is_a_folder_of_parquet_partitions_builds_on_the_cluster(
        run_cli: RunCli, make_project: Any, cluster: Any) -> None:
    import polars as pl

    root = make_project({"mlproject.yaml": PARTS})
    (root / "data" / "events").mkdir(parents=True)
    for part in range(2):
        pl.DataFrame({"id": [2 * part + 1, 2 * part + 2]}).write_parquet(root / "data" / "events" / f"{part}.parquet")
    result, ran = build(run_cli, root, "--scheduler", cluster.scheduler_address)
    assert result.exit_code == 0, result.stderr
    assert ran == {"datasets.events": "built"}
    assert read_lock(root).nodes["datasets.events"].metrics == {"rows": 4, "columns": 1}

    pl.DataFrame({"id": [5, 6]}).write_parquet(root / "data" / "events" / "2.parquet")  # a new partition
    result, ran = build(run_cli, root, "--scheduler", cluster.scheduler_address)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "[1/1] datasets.events  (data/events changed)"
    assert read_lock(root).nodes["datasets.events"].metrics == {"rows": 6, "columns": 1}


GREET = """\
version: 1
project: greet
steps:
  greet:
    cmd: [python, scripts/greet.py, build/greeting.txt]
    env: [MLMAKE_TEST_GREETING]
    outs: [build/greeting.txt]
"""

GREET_PY = """\
import json
import os
import sys
from pathlib import Path

Path(sys.argv[1]).write_text(os.environ.get("MLMAKE_TEST_GREETING", "(unset)"))
"""


@pytest.mark.parametrize("shared", [False, True], ids=["share-nothing", "shared-fs"])
def test_a_nodes_declared_environment_is_the_clients_on_the_worker(
        run_cli: RunCli, make_project: Any, cluster: Any, monkeypatch: pytest.MonkeyPatch, shared: bool) -> None:
    root = make_project({"mlproject.yaml": GREET, "scripts/greet.py": GREET_PY})
    monkeypatch.setenv("MLMAKE_TEST_GREETING", "hello from the client")  # the workers started without it
    extra = ["--shared-fs"] if shared else []
    result = run_cli(root, "build", "--scheduler", cluster.scheduler_address, *extra)
    assert result.exit_code == 0, result.stderr
    assert (root / "build" / "greeting.txt").read_text() == "hello from the client"

    monkeypatch.delenv("MLMAKE_TEST_GREETING")
    result = run_cli(root, "build", "--scheduler", cluster.scheduler_address, *extra)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "[1/1] steps.greet  (env MLMAKE_TEST_GREETING unset (was set))"
    assert (root / "build" / "greeting.txt").read_text() == "(unset)"


def test_a_deploy_target_following_a_registered_version_builds_on_the_cluster(
        run_cli: RunCli, tmp_path: Path, cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{var}_NAME", "Ann Lee")
        monkeypatch.setenv(f"GIT_{var}_EMAIL", "ann@example.com")
    proj = copy_example("penguins", tmp_path / "proj")

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    assert run_cli(proj, "build").exit_code == 0
    git("add", "-A")
    git("commit", "-qm", "first model")
    assert run_cli(proj, "register", "species").exit_code == 0
    assert run_cli(proj, "promote", "species", "v0.0.1", "--to", "production").exit_code == 0
    with open(proj / "mlproject.yaml", "a", encoding="utf-8") as f:
        f.write("  prod_api:\n    model: species@production\n    kind: http\n")
    result, ran = build(run_cli, proj, "--scheduler", cluster.scheduler_address)
    assert result.exit_code == 0, result.stderr
    assert ran == {"deploy.prod_api": "built"}
    assert "  deploy.prod_api runs on tcp://127.0.0.1:" in result.stdout
    manifest = json.loads((proj / "build" / "deploy" / "prod_api" / "manifest.json").read_text())
    assert manifest["registry"] == {"version": "v0.0.1", "stage": "production"}
