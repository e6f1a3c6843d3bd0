"""mlmake.replay: what a record notes, when it is kept, and when it may answer again.

Each test runs a small "command" between Recorder.start and finish, the way the `mlmake`
entry point wraps a plan, then asks answer() whether the record still holds."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mlmake import replay

OLD_NS = time.time_ns() - 60 * 1_000_000_000


def age(*paths: Path) -> None:
    """Make files look untouched for a minute: not "racily clean"."""
    for path in paths:
        os.utime(path, ns=(OLD_NS, OLD_NS), follow_symlinks=False)


def record(root: Path, command: Callable[[], int], *, answerable: bool = True, argv: tuple[str, ...] = ("plan",)) \
        -> tuple[int, str]:
    """Run command under a Recorder; its exit code and what it printed."""
    key = replay.make_key(list(argv))
    out = io.StringIO()
    saved = sys.stdout
    sys.stdout = out
    try:
        recorder = replay.Recorder(str(root), key).start()
        code = 1
        try:
            code = command()
            if answerable:
                replay.answerable()
        finally:
            recorder.finish(code)
    finally:
        sys.stdout = saved
    return code, out.getvalue()


def answered(root: Path, argv: tuple[str, ...] = ("plan",)) -> tuple[int, str] | None:
    out, err = io.StringIO(), io.StringIO()
    code = replay.answer(str(root), replay.make_key(list(argv)), out, err)
    return None if code is None else (code, out.getvalue())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path.resolve()
    (root / "data").mkdir()
    (root / "data" / "a.csv").write_text("x\n1\n")
    (root / "data" / "b.csv").write_text("x\n2\n")
    (root / "mlproject.yaml").write_text("version: 1\n")
    age(root / "data" / "a.csv", root / "data" / "b.csv", root / "mlproject.yaml")
    return root


def reads(root: Path) -> Callable[[], int]:
    """A command whose output is a.csv's text, whether b.csv exists and data/'s entries."""
    def command() -> int:
        print((root / "data" / "a.csv").read_text(), (root / "data" / "b.csv").exists(),
              sorted(os.listdir(root / "data")))
        return 2
    return command


def test_a_kept_record_answers_until_a_file_it_read_changes(project: Path) -> None:
    first = record(project, reads(project))
    assert answered(project) == first
    assert first[0] == 2 and first[1].startswith("x\n1\n True")

    (project / "data" / "a.csv").write_text("x\n3\n")  # same size, other bytes
    age(project / "data" / "a.csv")  # even the same mtime: the inode's ctime moved
    assert answered(project) is None
    assert record(project, reads(project))[1].startswith("x\n3\n")
    assert answered(project) is not None


@pytest.mark.parametrize("change", ["remove a stat-ed file", "add to a listed folder", "retarget a link"])
def test_what_a_command_did_not_open_still_counts(project: Path, change: str) -> None:
    link = project / "data" / "current.csv"
    link.symlink_to("a.csv")

    def command() -> int:
        print(os.path.exists(project / "data" / "b.csv"), sorted(os.listdir(project / "data")),
              os.path.realpath(link))
        return 0

    record(project, command)
    assert answered(project) is not None
    if change == "remove a stat-ed file":
        (project / "data" / "b.csv").unlink()
    elif change == "add to a listed folder":
        (project / "data" / "c.csv").write_text("x\n")
        age(project / "data" / "c.csv")
    else:
        link.unlink()
        link.symlink_to("b.csv")
        age(link)
    assert answered(project) is None


def test_the_command_line_and_environment_are_part_of_the_key(project: Path, monkeypatch: pytest.MonkeyPatch) \
        -> None:
    record(project, reads(project))
    assert answered(project, ("plan", "--format", "json")) is None
    monkeypatch.setenv("NO_COLOR", "1")
    assert answered(project) is None
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("MLMAKE_ANYTHING", "x")
    assert answered(project) is None
    monkeypatch.delenv("MLMAKE_ANYTHING")
    assert answered(project) is not None


def test_a_file_modified_just_before_the_plan_is_not_trusted(project: Path) -> None:
    (project / "data" / "a.csv").write_text("x\n1\n")  # now: it could change again within the clock's tick
    record(project, reads(project))
    assert answered(project) is None
    age(project / "data" / "a.csv")
    record(project, reads(project))
    assert answered(project) is not None


def test_a_file_changed_while_the_command_ran_is_not_kept(project: Path) -> None:
    fd = os.open(project / "data" / "a.csv", os.O_WRONLY)  # opened before: its write is not seen

    def command() -> int:
        code = reads(project)()
        os.write(fd, b"y")
        return code

    try:
        record(project, command)
    finally:
        os.close(fd)
    age(project / "data" / "a.csv")
    assert answered(project) is None


@pytest.mark.parametrize("spoiler", ["write outside the cache", "run a process", "not answerable", "exit 1"])
def test_what_the_record_cannot_see_is_never_kept(project: Path, spoiler: str) -> None:
    def command() -> int:
        reads(project)()
        if spoiler == "write outside the cache":
            (project / "out.txt").write_text("side effect")
        elif spoiler == "run a process":
            subprocess.run([sys.executable, "-c", "pass"], check=True)
        return 1 if spoiler == "exit 1" else 0

    record(project, command, answerable=spoiler != "not answerable")
    assert answered(project) is None


def test_writing_and_reading_its_own_caches_is_allowed(project: Path) -> None:
    def command() -> int:
        cache = project / ".mlmake" / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        (cache / "hashes.json").write_text("{}")
        (cache / "hashes.json").read_text()
        return reads(project)()

    record(project, command)
    assert answered(project) is not None


def test_a_corrupt_or_foreign_record_is_ignored(project: Path) -> None:
    record(project, reads(project))
    path = Path(replay.record_path(str(project), replay.make_key(["plan"])))
    path.write_text("{not json")
    assert answered(project) is None
    path.write_text('{"key": {"argv": ["other"]}, "paths": [], "listings": [], "code": 0, "out": "", "err": ""}')
    assert answered(project) is None


def test_only_a_plain_plan_command_line_is_answerable() -> None:
    assert replay.project_dir(["plan"]) == "."
    assert replay.project_dir(["-C", "examples/churn", "plan", "--format", "json", "-P", "seed=3"]) == "examples/churn"
    assert replay.project_dir(["-Cdir", "plan", "models.m"]) == "dir"
    for argv in (["build"], ["plan", "--base", "main"], ["plan", "--base=main"], ["plan", "--help"], ["-C"],
                 ["--version"], [], ["-C", "x", "status"]):
        assert replay.project_dir(argv) is None, argv


def test_a_compiled_module_is_noted_by_its_source_and_writing_bytecode_is_no_side_effect(project: Path) -> None:
    source = project / "mod.py"
    source.write_text("VALUE = 1\n")
    age(source)

    def command() -> int:
        import py_compile

        py_compile.compile(str(source))  # what an import does when the bytecode is missing or stale
        return reads(project)()

    record(project, command)
    assert answered(project) is not None
    compiled = os.path.join(str(project), "__pycache__", f"mod.{sys.implementation.cache_tag}.pyc")
    assert replay._source_of(compiled) == str(source)


def test_the_entry_point_answers_a_repeated_plan_without_loading_the_cli(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "mlproject.yaml").write_text(
        "version: 1\nproject: p\nparams: {n: 1}\nsteps:\n  s:\n    cmd: [python, -c, pass, '${params.n}']\n"
        "    deps: [in.txt]\n    outs: [out.txt]\n")
    (root / "in.txt").write_text("1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLMAKE_")}

    def plan(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-X", "importtime", "-m", "mlmake", "-C", str(root), "plan",
                               "--detailed-exitcode", *args], capture_output=True, text=True, env=env)

    for path in root.rglob("*"):
        age(path)
    first, second = plan(), plan()
    assert (first.returncode, second.returncode) == (2, 2)
    assert first.stdout == second.stdout and "+ steps.s" in first.stdout
    assert "mlmake.cli" in first.stderr and "mlmake.cli" not in second.stderr  # answered from the record

    (root / "mlproject.yaml").write_text((root / "mlproject.yaml").read_text().replace("{n: 1}", "{n: 2}"))
    age(root / "mlproject.yaml")
    third = plan()
    assert third.returncode == 2 and "mlmake.cli" in third.stderr  # the spec changed: computed again
    assert third.stdout == first.stdout


def test_a_file_whose_name_merely_contains_pyc_is_noted(project: Path) -> None:
    data = project / "data" / "talks.pycon.csv"
    data.write_text("a\n")
    age(data)

    def command() -> int:
        print(data.read_text())
        return 0

    record(project, command)
    assert answered(project) is not None
    data.write_text("b\n")
    age(data)
    assert answered(project) is None


def test_a_bytecode_folder_above_the_project_hides_nothing(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "pycache_prefix", str(project.parent))  # PYTHONPYCACHEPREFIX=/tmp, say
    record(project, reads(project))
    (project / "data" / "a.csv").write_text("x\n9\n")
    age(project / "data" / "a.csv")
    assert answered(project) is None


def test_a_path_through_a_link_and_dot_dot_is_noted_as_the_kernel_resolves_it(project: Path) -> None:
    (project / "other" / "dir").mkdir(parents=True)
    (project / "other" / "x.txt").write_text("1\n")
    (project / "x.txt").write_text("decoy\n")
    (project / "lnk").symlink_to("other/dir")
    age(project / "other" / "x.txt", project / "x.txt")
    tricky = os.path.join(str(project), "lnk", "..", "x.txt")  # other/x.txt, not x.txt

    def command() -> int:
        with open(tricky) as f:
            print(f.read())
        return 0

    record(project, command)
    assert answered(project) == (0, "1\n\n")
    (project / "other" / "x.txt").write_text("2\n")
    age(project / "other" / "x.txt")
    assert answered(project) is None


def test_a_symlink_loop_is_a_missing_file_not_a_crash(project: Path) -> None:
    (project / "data" / "in.csv").symlink_to("real.csv")
    (project / "data" / "real.csv").symlink_to("in.csv")

    def command() -> int:
        print(os.path.exists(project / "data" / "in.csv"))
        return 0

    assert record(project, command) == (0, "False\n")
    assert answered(project) == (0, "False\n")
    (project / "data" / "real.csv").unlink()
    (project / "data" / "real.csv").write_text("now a file\n")
    age(project / "data" / "real.csv")
    assert answered(project) is None


def test_a_file_read_through_a_link_and_modified_just_now_is_not_trusted(project: Path) -> None:
    (project / "data" / "current.csv").symlink_to("a.csv")
    (project / "data" / "a.csv").write_text("x\n5\n")  # just now

    def command() -> int:
        print((project / "data" / "current.csv").read_text())
        return 0

    record(project, command)
    assert answered(project) is None


def test_an_entry_removed_and_put_back_in_a_listed_folder_still_shows(project: Path) -> None:
    record(project, reads(project))
    (project / "data" / "b.csv").unlink()
    (project / "data" / "b.csv").write_text("x\n2\n")
    age(project / "data" / "b.csv", project / "data")
    assert answered(project) is None  # the folder's ctime moved, names or not


def test_a_replayed_plan_that_cannot_be_written_says_so(project: Path) -> None:
    record(project, reads(project))

    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    err = io.StringIO()
    assert replay.answer(str(project), replay.make_key(["plan"]), Full(), err) == 1
    assert err.getvalue() == "error: cannot write the plan: [Errno 28] No space left on device\n"
