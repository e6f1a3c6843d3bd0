"""Two commands at once never leave a falsely fresh workspace.

A small built project (a DVC-tracked CSV, its dataset and a step that counts its rows), committed
and pushed, gets new raw data or none; then two of `build`, `pull`, `push`, `plan` and `data add`
start together, the second after a short random delay, as real processes. Every command that
writes the workspace takes the build lock, so one of a writing pair may stop with the lock's
message; none may crash. Afterwards, when `plan --detailed-exitcode` says nothing is to do (exit
0), the built outputs must be byte for byte those of a clean build of the workspace's sources
(the raw data as it is in the workspace: what mlmake fingerprints when it is there).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

COMMANDS = {"build": ("build",), "pull": ("pull",), "push": ("push",), "plan": ("plan",),
            "data add": ("data", "add", "data/raw.csv")}
PROJECT = """\
version: 1
project: race
remote: {url: REMOTE}
datasets:
  raw:
    path: data/raw.csv
    schema:
      id: {type: int64, unique: true}
steps:
  count:
    cmd: [python, scripts/count.py]
    deps: [scripts/count.py, data/raw.csv]
    outs: [build/count.txt]
"""
COUNT = """\
from pathlib import Path
rows = Path("data/raw.csv").read_text().splitlines()[1:]
Path("build").mkdir(exist_ok=True)
Path("build/count.txt").write_text(f"{len(rows)} rows, ids {rows[0]} .. {rows[-1]}\\n")
"""
BUSY = "another mlmake build is running in this project"


def csv(rows: int) -> str:
    return "id,v\n" + "".join(f"{i},{i % 7}.5\n" for i in range(1, rows + 1))


def mlmake(env: dict[str, str], root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlmake", "-C", str(root), *args], env=env, capture_output=True,
                          text=True, timeout=180, check=False)


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, f"{done.args} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    return {**os.environ, "HOME": str(home), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1", "DVC_SITE_CACHE_DIR": str(home / "dvc-site"), "DVC_NO_ANALYTICS": "1",
            "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Path:
    """The project with 3 000 rows under DVC, built, committed and pushed."""
    base = tmp_path_factory.mktemp("race")
    root = base / "project"
    (root / "data").mkdir(parents=True)
    (root / "scripts").mkdir()
    (root / "mlproject.yaml").write_text(PROJECT.replace("REMOTE", str(base / "remote")), encoding="utf-8")
    (root / "scripts" / "count.py").write_text(COUNT, encoding="utf-8")
    (root / "data" / "raw.csv").write_text(csv(3000), encoding="utf-8")
    (root / ".gitignore").write_text("/build/\n/.mlmake/\n", encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=root, env=env, check=True)
    ok(mlmake(env, root, "data", "add", "data/raw.csv"))
    ok(mlmake(env, root, "build"))
    subprocess.run(["git", "add", "-A"], cwd=root, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "built"], cwd=root, env=env, check=True)
    ok(mlmake(env, root, "push"))
    return root


def clean_build(env: dict[str, str], workspace: Path, dest: Path) -> dict[str, str]:
    """The outputs of a first build of the workspace's sources (the file, the script, the data)."""
    for rel in ("mlproject.yaml", "scripts/count.py", "data/raw.csv"):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(workspace / rel, dest / rel)
    ok(mlmake({**env, "MLMAKE_REMOTE": str(dest.parent / "clean-remote")}, dest, "build"))
    return tree(dest / "build")


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.sampled_from(sorted(COMMANDS)), second=st.sampled_from(sorted(COMMANDS)),
       rows=st.sampled_from([None, 40, 60_000]), delay=st.sampled_from([0.0, 0.3, 0.8]))
def test_two_commands_at_once_leave_nothing_falsely_fresh(built: Path, env: dict[str, str],
                                                          tmp_path_factory: pytest.TempPathFactory,
                                                          first: str, second: str, rows: int | None,
                                                          delay: float) -> None:
    base = tmp_path_factory.mktemp("pair")
    root = base / "project"
    shutil.copytree(built, root, symlinks=True)
    if rows is not None:  # new raw data, not yet tracked: build, pull and data add all have work
        (root / "data" / "raw.csv").write_text(csv(rows), encoding="utf-8")
    argv = [sys.executable, "-m", "mlmake", "-C", str(root)]
    procs = []
    for i, name in enumerate((first, second)):
        if i:
            time.sleep(delay)
        procs.append(subprocess.Popen([*argv, *COMMANDS[name]], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    for name, proc in zip((first, second), procs, strict=True):
        out, err = proc.communicate(timeout=180)
        assert proc.returncode in (0, 1, 2), f"{name} exited {proc.returncode}\n{out}\n{err}"
        assert "Traceback" not in err and "internal error" not in err, err
        if proc.returncode == 1 and name != "plan":
            assert BUSY in err, f"{name} failed, not for the lock:\n{out}\n{err}"

    plan = mlmake(env, root, "plan", "--detailed-exitcode")
    assert plan.returncode in (0, 2), plan.stdout + plan.stderr
    if plan.returncode == 0:
        assert tree(root / "build") == clean_build(env, root, base / "clean"), plan.stdout
