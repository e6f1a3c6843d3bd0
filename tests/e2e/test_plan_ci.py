"""`mlmake plan` in CI: a fresh clone has the lock and the .dvc pointers but neither the data
nor the built outputs, and must still plan exactly (exit 0 when nothing changed, 2 when a
param did). The project is built for real by `mlmake build` (cmd steps run by python) and
its raw data is put under DVC with `dvc add`, so the data itself is git-ignored."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.helpers import write_files

REPO = Path(__file__).resolve().parents[2]
GIT_ENV = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com", "GIT_COMMITTER_NAME": "ci",
           "GIT_COMMITTER_EMAIL": "ci@example.com", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_CONFIG_NOSYSTEM": "1", "DVC_NO_ANALYTICS": "1"}

PROJECT = """\
version: 1
project: ci
params:
  threshold: 2
steps:
  count:
    cmd: [python, scripts/count.py, data/raw.csv, build/count.txt]
    deps: [scripts/count.py, data/raw.csv]
    outs: [build/count.txt]
  flag:
    cmd: [python, scripts/flag.py, "${params.threshold}"]
    deps: [scripts/flag.py, steps.count]
    outs: [build/flag.txt]
"""
COUNT = """\
import sys

rows = open(sys.argv[1]).read().splitlines()[1:]
open(sys.argv[2], "w").write(str(len(rows)))
"""
FLAG = """\
import sys

count = int(open("build/count.txt").read())
open("build/flag.txt", "w").write(str(count > int(sys.argv[1])))
"""

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def run(cwd: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, env={**os.environ, **GIT_ENV})
    if check:
        assert done.returncode == 0, f"{argv} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


def mlmake(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(cwd, sys.executable, "-m", "mlmake", *args, check=False)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Project A built and committed with its lock; B, a `git clone` of it. Returns B."""
    base = tmp_path_factory.mktemp("ci")
    a = write_files(base / "A", {"mlproject.yaml": PROJECT, "scripts/count.py": COUNT, "scripts/flag.py": FLAG,
                                 "data/raw.csv": "id\n1\n2\n3\n", ".gitignore": "/build/\n/.mlmake/\n"})
    run(a, "git", "init", "-q", "-b", "main")
    run(a, sys.executable, "-m", "dvc", "init", "-q")
    run(a, sys.executable, "-m", "dvc", "add", "-q", "data/raw.csv")
    built = mlmake(a, "build")
    assert built.returncode == 0, built.stdout + built.stderr
    assert (a / "build/flag.txt").read_text() == "True"
    assert mlmake(a, "plan", "--detailed-exitcode").returncode == 0
    run(a, "git", "add", "-A")
    run(a, "git", "commit", "-q", "-m", "built")
    tracked = run(a, "git", "ls-files").stdout.split()
    assert {"mlproject.lock", "data/raw.csv.dvc", ".mlmake-artifacts/steps.count.dvc"} <= set(tracked)
    assert not any(p.startswith("build/") or p == "data/raw.csv" for p in tracked)
    run(base, "git", "clone", "-q", str(a), "B")
    return base / "B"


@pytest.fixture
def b(clone: Path, tmp_path: Path, module_remote: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the clone, so a test may edit it, on the machine that built A."""
    monkeypatch.setenv("MLMAKE_REMOTE", str(module_remote))  # the default remote A's build shared to
    return Path(shutil.copytree(clone, tmp_path / "B", symlinks=True))


def test_the_clone_has_no_data_and_no_outputs(b: Path) -> None:
    assert not (b / "data/raw.csv").exists()
    assert not (b / "build").exists()
    assert not (b / ".mlmake").exists()


def test_a_clean_clone_has_nothing_to_do(b: Path) -> None:
    done = mlmake(b, "plan", "--detailed-exitcode")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        " = steps.count  up to date; restorable from the DVC remote: build/count.txt\n"
        " = steps.flag   up to date; restorable from the DVC remote: build/flag.txt\n"
        "\n"
        "Plan: 0 to build, 2 up to date (2 not in this workspace).\n")
    assert run(b, "git", "status", "--porcelain").stdout == ""  # plan leaves the checkout clean


def test_the_clone_plans_as_json_without_the_data(b: Path) -> None:
    done = mlmake(b, "plan", "--format", "json", "--detailed-exitcode")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    jsonschema.validate(body, json.loads((REPO / "schemas/plan.schema.json").read_text()))
    assert body["has_changes"] is False
    assert {k: v for k, v in body["summary"].items() if k != "text"} == {
        "new": 0, "build": 0, "maybe": 0, "restore": 0, "check": 0, "fresh": 0, "absent": 2, "remove": 0}
    assert [n["missing_outputs"] for n in body["nodes"]] == [["build/count.txt"], ["build/flag.txt"]]
    assert [n["restorable"] for n in body["nodes"]] == [True, True]  # their pointers are committed


def test_a_param_change_in_the_clone_exits_2(b: Path) -> None:
    done = mlmake(b, "plan", "--detailed-exitcode", "-P", "threshold=5")
    assert (done.returncode, done.stderr) == (2, "")
    assert done.stdout == (
        " = steps.count  up to date; restorable from the DVC remote: build/count.txt\n"
        " ~ steps.flag   params.threshold 2 → 5\n"
        "\n"
        "Plan: 1 to build, 1 up to date (1 not in this workspace).\n")

    (b / "mlproject.yaml").write_text(PROJECT.replace("threshold: 2", "threshold: 5"))
    edited = mlmake(b, "plan", "--detailed-exitcode")
    assert (edited.returncode, edited.stdout) == (2, done.stdout)


def test_a_data_change_in_the_clone_is_seen_through_the_pointer(b: Path) -> None:
    pointer = (b / "data/raw.csv.dvc").read_text()
    (b / "data/raw.csv.dvc").write_text(pointer.replace("md5: ", "md5: 0", 1))
    done = mlmake(b, "plan", "--detailed-exitcode")
    assert (done.returncode, done.stderr) == (2, "")
    assert done.stdout == (
        " ~ steps.count  data/raw.csv changed\n"
        "~? steps.flag   upstream steps.count will rebuild; rebuilds only if its output changes\n"
        "\n"
        "Plan: 1 to build, 1 to check after upstream, 0 up to date.\n")


def test_a_broken_lock_in_the_clone_exits_1(b: Path) -> None:
    (b / "mlproject.lock").write_text("lock_version: 7\nnodes: {}\n")
    done = mlmake(b, "plan", "--detailed-exitcode")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == ("error: mlproject.lock: lock_version 7 is not one this mlmake reads (1); "
                           "upgrade mlmake or restore the file from git\n")
