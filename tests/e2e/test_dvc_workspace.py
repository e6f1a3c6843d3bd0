"""The workspace is the truth for data: a DVC-tracked file present in the workspace is
hashed like any file; where its bytes differ from its .dvc pointer, `plan` and `build` say
so and the lock records what the node read; where it is absent (a CI clone), the pointer's
hash stands. Real git, DVC and mlmake processes.

Before: editing a DVC-tracked raw file without `dvc add` left `plan` silent; a later rebuild
read the workspace bytes but recorded the pointer's md5, so after `dvc checkout` put the
old bytes back the plan said up to date for a snapshot built from other data.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

PROJECT = """\
version: 1
project: raw
datasets:
  x:
    path: data/raw.csv
steps:
  count:
    cmd: [python, count.py]
    deps: [data/images]
    outs: [build/count.txt]
"""
OLD = b"id,v\n1,2.5\n2,3.5\n"
NEW = b"id,v\n1,2.5\n2,3.5\n3,9.0\n"
WARNING = "warning: data/raw.csv differs from data/raw.csv.dvc: run `mlmake data add data/raw.csv`\n"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    return {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
            "DVC_SITE_CACHE_DIR": str(home / "dvc-site"), "DVC_NO_ANALYTICS": "1", "NO_COLOR": "1"}


def run(env: dict[str, str], root: Path, *argv: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == code, f"{argv}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def mlmake(env: dict[str, str], root: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    return run(env, root, sys.executable, "-m", "mlmake", "-C", str(root), *args, code=code)


@pytest.fixture
def project(tmp_path: Path, env: dict[str, str]) -> Path:
    """A git repository whose raw file and image folder are under DVC, built once."""
    root = tmp_path / "p"
    (root / "data" / "images" / "cats").mkdir(parents=True)
    (root / "data" / "raw.csv").write_bytes(OLD)
    (root / "data" / "images" / "a.txt").write_text("a\n")
    (root / "data" / "images" / "cats" / "b.txt").write_text("b\n")
    (root / "count.py").write_text("import os\nos.makedirs('build', exist_ok=True)\n"
                                   "open('build/count.txt', 'w').write('2')\n")
    (root / "mlproject.yaml").write_text(PROJECT)
    (root / ".gitignore").write_text("/build/\n/.mlmake/\n")
    run(env, root, "git", "init", "-q")
    mlmake(env, root, "data", "add", "data/raw.csv", "data/images")
    mlmake(env, root, "build")
    return root


def recorded_input(root: Path, address: str, path: str) -> str:
    lock = json.loads(mlmake_lock_json(root))
    return str(lock[address]["components"]["inputs" if address.startswith("datasets") else "code"][path])


def mlmake_lock_json(root: Path) -> str:
    from mlmake.state.lock import read_lock

    lock = read_lock(root)
    return json.dumps({a: {"components": e.components} for a, e in lock.nodes.items()})


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def test_a_dvc_file_edited_without_dvc_add_is_stale_said_and_recorded_as_read(project: Path,
                                                                             env: dict[str, str]) -> None:
    root = project
    assert recorded_input(root, "datasets.x", "data/raw.csv") == md5(OLD)
    (root / "data" / "raw.csv").write_bytes(NEW)  # no `dvc add`

    plan = mlmake(env, root, "plan", "--detailed-exitcode", code=2)
    assert plan.stdout == (" ~ datasets.x   data/raw.csv changed\n"
                           " = steps.count\n"
                           "\nPlan: 1 to build, 1 up to date.\n")
    assert plan.stderr == WARNING

    build = mlmake(env, root, "build")
    assert build.stderr == WARNING
    assert recorded_input(root, "datasets.x", "data/raw.csv") == md5(NEW)  # what the snapshot was built from
    assert mlmake(env, root, "plan", "--detailed-exitcode").stderr == WARNING  # built, still not added

    # the old bytes back: the snapshot in the workspace was built from other data
    run(env, root, sys.executable, "-m", "dvc", "checkout", "--force", "data/raw.csv.dvc")
    assert (root / "data" / "raw.csv").read_bytes() == OLD
    again = mlmake(env, root, "plan", "--detailed-exitcode", code=2)
    lines = again.stdout.splitlines()
    assert lines[0] == " < datasets.x   data/raw.csv changed", again.stdout  # the snapshot of OLD is cached
    assert lines[-1] == "Plan: 0 to build, 1 to restore from cache, 1 up to date.", again.stdout
    assert again.stderr == ""
    mlmake(env, root, "build")
    assert recorded_input(root, "datasets.x", "data/raw.csv") == md5(OLD)
    mlmake(env, root, "plan", "--detailed-exitcode")

    # `mlmake data add` makes the pointer agree: nothing to say, and the old snapshot stands
    (root / "data" / "raw.csv").write_bytes(NEW)
    mlmake(env, root, "data", "add", "data/raw.csv")
    assert mlmake(env, root, "plan", "--detailed-exitcode", code=2).stderr == ""


def test_absent_dvc_data_takes_the_pointers_hash(project: Path, env: dict[str, str]) -> None:
    root = project
    (root / "data" / "raw.csv").unlink()  # as on a CI clone
    shutil.rmtree(root / "data" / "images")
    done = mlmake(env, root, "plan", "--detailed-exitcode")
    assert (done.stdout, done.stderr) == (" = datasets.x\n = steps.count\n\nPlan: 0 to build, 2 up to date.\n", "")


def test_a_dvc_tracked_folder_is_hashed_as_dvc_hashes_it(project: Path, env: dict[str, str]) -> None:
    root = project
    pointer = (root / "data" / "images.dvc").read_text()
    recorded = recorded_input(root, "steps.count", "data/images")
    assert recorded.endswith(".dir") and f"md5: {recorded.removeprefix('md5:')}" in pointer
    (root / "data" / "images" / "cats" / "b.txt").write_text("c\n")
    done = mlmake(env, root, "plan", "--detailed-exitcode", code=2)
    assert done.stdout.splitlines()[1] == " ~ steps.count  data/images changed"
    assert done.stderr == ("warning: data/images differs from data/images.dvc: "
                           "run `mlmake data add data/images`\n")


def age(root: Path) -> None:
    """Every file and folder's mtime a minute back, so a plan may be kept (mlmake.core.memo)."""
    old = time.time() - 60
    for folder, dirs, files in os.walk(root):
        if ".git" not in Path(folder).parts:
            for name in dirs + files:
                os.utime(os.path.join(folder, name), (old, old), follow_symlinks=False)
    os.utime(root, (old, old))


def test_an_edit_to_dvc_data_is_never_answered_from_a_kept_plan(project: Path, env: dict[str, str]) -> None:
    root = project
    age(root)
    for _ in range(2):  # computed, then answered from the kept plan
        done = mlmake(env, root, "plan", "--detailed-exitcode")
        assert (done.stdout, done.stderr) == (" = datasets.x\n = steps.count\n\nPlan: 0 to build, 2 up to date.\n", "")
    raw = root / "data" / "raw.csv"
    when = raw.stat().st_mtime_ns
    raw.write_bytes(OLD.replace(b"3.5", b"3.6"))  # same size, the mtime put back, no `dvc add`
    os.utime(raw, ns=(when, when))
    done = mlmake(env, root, "plan", "--detailed-exitcode", code=2)
    assert done.stdout.splitlines()[0] == " ~ datasets.x   data/raw.csv changed"
    assert done.stderr == WARNING
