"""mlmake.core.memo: a plan is kept with what the state model saw it read, and answers again only
while every one of those paths is as it was; it refuses whenever it cannot be sure."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlmake.__main__ import run
from mlmake.core import memo
from tests.fakes import record_build

OLD_NS = time.time_ns() - 60 * 1_000_000_000
SPEC = ("version: 1\nproject: p\nparams: {n: 1}\nsteps:\n  s:\n    cmd: [python, -c, pass, '${params.n}']\n"
        "    deps: [in.txt, data]\n    outs: [out.txt]\n")


def age(root: Path) -> None:
    """What was just written or touched looks a minute old (not "racily clean"); the rest keeps
    its times, ctime included, so a kept plan still holds for it."""
    for path in [root, *root.rglob("*")]:
        if ".mlmake" not in path.parts and path.lstat().st_mtime_ns != OLD_NS:
            os.utime(path, ns=(OLD_NS, OLD_NS), follow_symlinks=False)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path.resolve()
    (root / "mlproject.yaml").write_text(SPEC)
    (root / "in.txt").write_text("1\n")
    (root / "data").mkdir()
    (root / "data" / "a.csv").write_text("x\n")
    age(root)
    monkeypatch.delenv("MLMAKE_NO_MEMO", raising=False)
    return root


def plan(root: Path, *args: str) -> tuple[int, str, bool]:
    """Exit code, output, and whether a kept plan answered (through the entry point, in-process)."""
    out, err = io.StringIO(), io.StringIO()
    kept = memo.answer(str(root), ["-C", str(root), "plan", *args], io.StringIO()) is not None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(["-C", str(root), "plan", *args])
    return code, out.getvalue(), kept


def test_a_kept_plan_answers_until_a_path_it_read_changes(project: Path) -> None:
    first = plan(project)
    assert first[:2] == (0, " + steps.s  new node\n\nPlan: 1 to build, 0 up to date.\n") and not first[2]
    assert plan(project) == (*first[:2], True)
    (project / "data" / "b.csv").write_text("y\n")  # a new entry in a folder input
    age(project)
    assert plan(project) == (*first[:2], False)
    assert plan(project)[2]
    (project / "in.txt").write_text("2\n")  # same size, mtime put back: the ctime tells
    age(project)
    assert not plan(project)[2]


def test_the_exit_code_is_kept_with_the_output(project: Path) -> None:
    assert plan(project, "--detailed-exitcode")[:1] == (2,)
    assert plan(project, "--detailed-exitcode")[::2] == (2, True)


def test_the_command_line_and_environment_are_part_of_the_key(project: Path, monkeypatch: pytest.MonkeyPatch) \
        -> None:
    plan(project)
    assert not plan(project, "--format", "json")[2]
    monkeypatch.setenv("MLMAKE_SOMETHING", "1")
    assert not plan(project)[2]


def test_a_file_modified_just_before_the_plan_is_not_trusted(project: Path) -> None:
    (project / "in.txt").write_text("2\n")  # now: within the clock's resolution of the plan
    plan(project)
    assert not plan(project)[2]


def test_a_plan_that_warned_or_failed_is_not_kept(project: Path) -> None:
    (project / ".mlmake" / "cache").mkdir(parents=True)
    (project / ".mlmake" / "cache" / "hashes.json").write_text("{broken")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert run(["-C", str(project), "plan"]) == 0
    assert err.getvalue() == ("warning: .mlmake/cache/hashes.json was unreadable (Expecting property name "
                              "enclosed in double quotes: line 1 column 2 (char 1)); rebuilding it\n")
    assert not plan(project)[2]  # the warned plan was not kept; this one is
    assert plan(project)[2]
    (project / "mlproject.yaml").write_text("version: 1\nproject: p\nsteps: 3\n")
    age(project)
    assert plan(project)[0] == 1
    assert plan(project)[::2] == (1, False)


def test_only_a_plain_plan_command_line_is_answerable() -> None:
    assert memo.project_dir(["plan"]) == "."
    assert memo.project_dir(["-C", "x", "plan", "--format", "json"]) == "x"
    assert memo.project_dir(["-Cx", "plan"]) == "x"
    for argv in (["build"], ["plan", "--base", "main"], ["plan", "--base=main"], ["plan", "-h"], ["-C"], []):
        assert memo.project_dir(argv) is None


def test_a_corrupt_or_foreign_kept_plan_is_ignored(project: Path) -> None:
    plan(project)
    for path in (project / ".mlmake" / "cache" / "plan").iterdir():
        path.write_text("{not json")
    assert plan(project)[::2] == (0, False)


def test_the_entry_point_answers_a_repeated_plan_without_loading_the_cli(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLMAKE_")}

    def again() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-X", "importtime", "-m", "mlmake", "-C", str(project), "plan",
                               "--detailed-exitcode"], capture_output=True, text=True, env=env)

    first, second = again(), again()
    assert (first.returncode, second.returncode) == (2, 2)
    assert first.stdout == second.stdout and "+ steps.s" in first.stdout
    assert "mlmake.cli" in first.stderr and "mlmake.cli" not in second.stderr


def test_planning_replaces_nothing_in_the_standard_library(project: Path) -> None:
    import builtins

    before = (os.stat, os.lstat, os.listdir, os.scandir, builtins.open, io.open)
    plan(project)
    plan(project)
    assert (os.stat, os.lstat, os.listdir, os.scandir, builtins.open, io.open) == before


def test_a_module_that_appears_beside_a_script_is_seen(project: Path) -> None:
    """The import analysis looked for helper.py and found none (a library, then): creating it
    changes the step's code, so the kept plan must not answer."""
    (project / "mlproject.yaml").write_text(
        "version: 1\nproject: p\nsteps:\n  s:\n    cmd: [python, run.py]\n    outs: [out.txt]\n")
    (project / "run.py").write_text("import helper\n")
    record_build(project)
    age(project)
    first = plan(project, "--format", "json", "--detailed-exitcode")
    assert first[0] == 0 and plan(project, "--format", "json", "--detailed-exitcode") == (*first[:2], True)
    (project / "helper.py").write_text("X = 1\n")
    age(project)
    second = plan(project, "--format", "json", "--detailed-exitcode")
    assert second[::2] == (2, False) and "helper.py" in second[1]
