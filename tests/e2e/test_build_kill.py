"""Builds in real processes: killed (SIGKILL), interrupted (Ctrl-C), and racing a second build.

The `cmd` steps here run scripts/slow.py OUT NAME, which writes the first half of OUT, marks
that NAME started, then waits while signals/block-NAME exists before writing the second half.
A test holds a node mid-write by creating its block file, acts once the start mark appears,
and lets the node go by removing it: no sleeps, and every wait is bounded.
"""

from __future__ import annotations

import json
import os
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
from tests.helpers import build, copy_example, run_records

REPO = Path(__file__).resolve().parents[2]
RunCli = Callable[..., Result]
WAIT_S = 30.0  # a bound on every wait; a healthy run needs a second or two

SLOW = '''\
"""slow.py OUT NAME: write OUT in two halves; between them, wait while signals/block-NAME exists."""
import os
import sys
import time
from pathlib import Path

out, name = Path(sys.argv[1]), sys.argv[2]
signals = Path("signals")
with open(out, "w") as f:
    f.write(f"{name}: first half\\n")
    f.flush()
    (signals / f"{name}.pid").write_text(str(os.getpid()))
    (signals / f"{name}.started").touch()
    deadline = time.monotonic() + 30
    while (signals / f"block-{name}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    f.write(f"{name}: second half\\n")
'''

STEPS = """\
version: 1
project: slow
params: {version: 1}
steps:
  a:
    cmd: [python, scripts/slow.py, build/a.txt, a]
    deps: [scripts/slow.py]
    outs: [build/a.txt]
  b:
    cmd: [python, scripts/slow.py, build/b.txt, "b${params.version}"]
    deps: [scripts/slow.py, steps.a]
    outs: [build/b.txt]
  c:
    cmd: [python, scripts/slow.py, build/c.txt, c]
    deps: [scripts/slow.py, steps.b]
    outs: [build/c.txt]
"""


class Builds:
    """Builds started as real processes, each in its own process group; all stopped at teardown."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.pids: list[int] = []  # processes a build started that a test saw

    def start(self, root: Path, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-m", "mlmake", "-C", str(root), "build", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=WAIT_S)
        for pid in self.pids:
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def builds() -> Iterator[Builds]:
    started = Builds()
    yield started
    started.stop_all()


def steps_project(make_project: Callable[[dict[str, str | bytes]], Path]) -> Path:
    root = make_project({"mlproject.yaml": STEPS, "scripts/slow.py": SLOW, "signals/.keep": ""})
    (root / "build").mkdir()
    return root


def block(root: Path, name: str) -> None:
    (root / "signals" / f"block-{name}").touch()


def release(root: Path, name: str) -> None:
    (root / "signals" / f"block-{name}").unlink(missing_ok=True)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    """Poll until condition holds; fail early, with the build's output, if the build ends first."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the build ended (exit {proc.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def wait_started(root: Path, name: str, proc: subprocess.Popen[str]) -> int:
    """Wait until step output NAME is half written; its process id."""
    mark = root / "signals" / f"{name}.started"
    wait_for(mark.exists, proc, f"{name} to start")
    return int((root / "signals" / f"{name}.pid").read_text())


def is_running(pid: int) -> bool:
    """Whether pid is a live process (a zombie waiting for its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_gone(pid: int, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while is_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def plan_json(run_cli: RunCli, root: Path, *args: str) -> dict[str, dict[str, Any]]:
    """address → the plan's node, from `mlmake plan --format json`."""
    result = run_cli(root, "plan", "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return {n["address"]: n for n in json.loads(result.stdout)["nodes"]}


def plan_exit(run_cli: RunCli, root: Path, *args: str) -> int:
    result = run_cli(root, "plan", "--detailed-exitcode", *args)
    assert result.exit_code in (0, 2), result.stderr
    return result.exit_code


def killed(proc: subprocess.Popen[str], sig: int) -> tuple[int, str, str]:
    """Send sig to the build's whole process group, as a terminal (Ctrl-C) or an OOM kill of all would."""
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=WAIT_S)
    return proc.returncode, out, err


# --- SIGKILL, and Ctrl-C during training ----------------------------------------------------------


def test_a_command_killed_mid_write_is_never_called_up_to_date(run_cli: RunCli, make_project: Any,
                                                                builds: Builds) -> None:
    root = steps_project(make_project)
    assert run_cli(root, "build").exit_code == 0
    lock_bytes = (root / "mlproject.lock").read_bytes()
    block(root, "b2")
    proc = builds.start(root, "-P", "version=2")
    wait_started(root, "b2", proc)
    code, out, _ = killed(proc, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert out.startswith("[1/2] steps.b  (")
    release(root, "b2")

    assert (root / "build" / "b.txt").read_text() == "b2: first half\n"  # the command writes in place
    assert (root / "mlproject.lock").read_bytes() == lock_bytes
    # back at version 1 the lock matches the file, but the half-written output must not pass
    plan = plan_json(run_cli, root)
    assert plan["steps.a"]["action"] == "fresh"
    assert plan["steps.b"]["action"] in ("build", "restore")  # restore: the cache has version 1's output
    assert [r["code"] for r in plan["steps.b"]["reasons"]][0] == "output_modified"
    assert plan["steps.c"]["action"] in ("maybe", "fresh")
    assert plan_json(run_cli, root, "-P", "version=2")["steps.b"]["action"] == "build"

    result, ran = build(run_cli, root)
    assert result.exit_code == 0, result.stderr
    assert ran.get("steps.b") in ("built", "restored") and "steps.a" not in ran
    assert (root / "build" / "b.txt").read_text() == "b1: first half\nb1: second half\n"
    assert plan_exit(run_cli, root) == 0

    result, ran = build(run_cli, root, "-P", "version=2")
    assert (result.exit_code, ran) == (0, {"steps.b": "built", "steps.c": "built"}), result.stderr
    assert (root / "build" / "b.txt").read_text() == "b2: first half\nb2: second half\n"
    assert plan_exit(run_cli, root, "-P", "version=2") == 0


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_model_stopped_mid_training_leaves_the_previous_model_and_lock(run_cli: RunCli, tmp_path: Path,
                                                                         builds: Builds, sig: int) -> None:
    root = tmp_path / "penguins"
    copy_example("penguins", root)
    assert run_cli(root, "build").exit_code == 0
    artifacts = {p: p.read_bytes() for p in sorted((root / "build").rglob("*")) if p.is_file()}
    lock_bytes = (root / "mlproject.lock").read_bytes()
    log = root / ".mlmake" / "logs" / "models.species.log"
    log.unlink()
    longer = "models.species.params.num_boost_round=2000"
    proc = builds.start(root, "-P", longer)
    wait_for(lambda: log.exists() and "\n[10] " in log.read_text(encoding="utf-8"), proc, "training round 10")
    code, out, err = killed(proc, sig)
    assert code == (130 if sig == signal.SIGINT else -signal.SIGKILL), err
    assert "done models.species" not in out

    assert {p: p.read_bytes() for p in sorted((root / "build").rglob("*")) if p.is_file()} == artifacts
    assert (root / "mlproject.lock").read_bytes() == lock_bytes
    assert plan_exit(run_cli, root) == 0  # the last good build is intact and still up to date
    step = plan_json(run_cli, root, "-P", longer)["models.species"]
    assert step["action"] == "build"
    assert [r["text"] for r in step["reasons"]] == ["params.num_boost_round 100 → 2000"]

    result, ran = build(run_cli, root, "-P", longer)
    assert result.exit_code == 0, result.stderr
    assert ran["models.species"] == "built"
    assert "datasets.penguins" not in ran and "features.penguin_features" not in ran
    assert not [p for p in (root / ".mlmake" / "tmp").rglob("*") if p.is_file()]  # staging cleaned
    assert plan_exit(run_cli, root, "-P", longer) == 0


# --- Ctrl-C ----------------------------------------------------------------------------------


@pytest.mark.parametrize("to", ["group", "mlmake"])
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_exits_130_stops_the_command_and_keeps_the_finished_nodes(run_cli: RunCli, make_project: Any,
                                                                          builds: Builds, jobs: str, to: str) -> None:
    root = steps_project(make_project)
    block(root, "b1")
    proc = builds.start(root, "-j", jobs)
    pid = wait_started(root, "b1", proc)
    builds.pids.append(pid)
    if to == "group":  # a terminal's Ctrl-C reaches every process of the foreground group
        code, out, err = killed(proc, signal.SIGINT)
    else:  # `kill -INT` of mlmake alone: mlmake must stop what it started
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=WAIT_S)
        code = proc.returncode
    assert code == 130, err
    assert err == "error: interrupted: finished nodes are recorded; run `mlmake build` to go on\n"
    assert [ln for ln in out.splitlines() if ln.startswith("[")] == ["[1/3] steps.a  (new node)",
                                                                      "[2/3] steps.b  (new node)"]
    # with -j 2 the command once outlived the build: a pool worker's child ignored SIGINT and was orphaned
    assert wait_gone(pid), "the interrupted command is still running"
    release(root, "b1")

    assert sorted(read_lock(root).nodes) == ["steps.a"]
    assert [(r["node"], r["status"]) for r in run_records(run_cli, root)] == [("steps.a", "built")]
    plan = plan_json(run_cli, root)
    assert [plan[a]["action"] for a in ("steps.a", "steps.b", "steps.c")] == ["fresh", "new", "new"]

    result, ran = build(run_cli, root)
    assert (result.exit_code, ran) == (0, {"steps.b": "built", "steps.c": "built"}), result.stderr
    assert (root / "build" / "b.txt").read_text() == "b1: first half\nb1: second half\n"
    assert plan_exit(run_cli, root) == 0


def test_sigterm_stops_the_build_and_the_command_it_runs(run_cli: RunCli, make_project: Any, builds: Builds) -> None:
    root = steps_project(make_project)
    block(root, "b1")
    proc = builds.start(root)
    pid = wait_started(root, "b1", proc)
    builds.pids.append(pid)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=WAIT_S)
    assert proc.returncode != 0
    try:
        assert wait_gone(pid), "the command outlives the build"
    finally:
        release(root, "b1")
    assert sorted(read_lock(root).nodes) == ["steps.a"]


# --- a second build while one runs ---------------------------------------------------------------


def test_a_second_build_is_refused_while_one_runs(run_cli: RunCli, make_project: Any, builds: Builds) -> None:
    root = steps_project(make_project)
    block(root, "b1")
    first = builds.start(root)
    wait_started(root, "b1", first)

    second = run_cli(root, "build")
    assert (second.exit_code, second.stdout) == (1, "")
    assert second.stderr == (f"error: another mlmake build is running in this project (pid {first.pid}); "
                             "wait for it to finish, or stop it\n")
    assert plan_exit(run_cli, root) == 2  # reading is fine while a build runs

    release(root, "b1")
    out, err = first.communicate(timeout=WAIT_S)
    assert (first.returncode, err) == (0, "")
    assert out.endswith("Build: 3 built, 0 up to date.\n")
    assert sorted(read_lock(root).nodes) == ["steps.a", "steps.b", "steps.c"]
    assert sorted(r["node"] for r in run_records(run_cli, root)) == ["steps.a", "steps.b", "steps.c"]
    assert plan_exit(run_cli, root) == 0
