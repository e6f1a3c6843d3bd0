"""The machine's state is the user's to fix, never an internal error: a full disk, a read-only
folder, a corrupt run database, a malformed lock. Each through the CLI, with the exact message
and exit code, and with the lock and the built outputs byte for byte as they were."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from mlmake.core import workdir

RunCli = Callable[..., Result]
WRITE = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text(pathlib.Path(sys.argv[2]).read_text() + sys.argv[3])"
SPEC = f"""version: 1
project: p
steps:
  a:
    cmd: [python, -c, "{WRITE}", build/a.txt, in.txt, a]
    deps: [in.txt]
    outs: [build/a.txt]
  b:
    cmd: [python, -c, "{WRITE}", build/b.txt, build/a.txt, b]
    deps: [build/a.txt]
    outs: [build/b.txt]
"""
KEPT = ("mlproject.lock", "build/a.txt", "build/b.txt")


def snapshot(root: Path) -> dict[str, bytes]:
    return {rel: (root / rel).read_bytes() for rel in KEPT}


@pytest.fixture
def built(tmp_path: Path, run_cli: RunCli) -> Path:
    """A small project of two cmd steps, built."""
    root = tmp_path / "p"
    make(root)
    result = run_cli(root, "build")
    assert result.exit_code == 0, result.stderr
    return root


def make(root: Path) -> None:
    (root / "build").mkdir(parents=True)
    (root / "mlproject.yaml").write_text(SPEC)
    (root / "in.txt").write_text("1\n")


# --- a corrupt or foreign run database ---------------------------------------------------


def test_a_corrupt_run_database_is_moved_aside_and_rebuilt(built: Path, run_cli: RunCli) -> None:
    db = built / ".mlmake" / "runs.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    before = snapshot(built)
    warning = ("warning: .mlmake/runs.sqlite was not a database this mlmake can read (file is not a database); "
               "moved it to runs.sqlite.corrupt and started a new run history\n")

    records = run_cli(built, "runs")
    assert (records.exit_code, records.stderr) == (0, warning)
    assert (db.with_name("runs.sqlite.corrupt")).read_bytes() == b"this is not a database" * 100
    assert run_cli(built, "runs").stderr == ""  # rebuilt once, quiet after

    db.write_bytes(b"\0" * 4096 + b"garbage")
    (built / "in.txt").write_text("2\n")
    result = run_cli(built, "build")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("warning: .mlmake/runs.sqlite was not a database this mlmake can read (")
    assert "moved it to runs.sqlite.corrupt2 and started a new run history\n" in result.stderr
    history = run_cli(built, "runs")
    assert (history.stderr, [line.split()[3:5] for line in history.stdout.splitlines()]) == (
        "", [["built", "steps.b"], ["built", "steps.a"]])  # the new history holds this build
    assert snapshot(built) != before and run_cli(built, "plan", "--detailed-exitcode").exit_code == 0


def test_status_survives_a_corrupt_run_database(built: Path, run_cli: RunCli) -> None:
    (built / ".mlmake" / "runs.sqlite").write_bytes(b"SQLite format 3\0" + b"\xff" * 200)
    before = snapshot(built)
    result = run_cli(built, "status")
    assert result.exit_code == 0, result.stderr
    assert "internal error" not in result.stderr
    assert snapshot(built) == before


def test_a_run_database_of_an_unknown_version_is_moved_aside(built: Path, run_cli: RunCli) -> None:
    db = built / ".mlmake" / "runs.sqlite"
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    records = run_cli(built, "runs")
    assert (records.exit_code, records.stderr) == (0, "warning: .mlmake/runs.sqlite was format version 99, not 1; "
                                                "moved it to runs.sqlite.corrupt and started a new run history\n")
    assert "steps.a" not in records.stdout  # a new, empty history


# --- unreadable caches are rebuilt, with a warning --------------------------------------


@pytest.mark.parametrize(("store", "content", "why"), [
    ("hashes.json", "{broken",
     "unreadable (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ("hashes.json", '{"version": 7, "entries": {}}', "format version 7, not 2"),
    ("lock.json", "[1, 2]", "format version None, not 1"),
])
def test_an_unreadable_cache_is_rebuilt_with_a_warning(built: Path, run_cli: RunCli, store: str, content: str,
                                                        why: str) -> None:
    (built / ".mlmake" / "cache" / store).write_text(content)
    result = run_cli(built, "plan", "--detailed-exitcode")
    assert (result.exit_code, result.stderr) == (0, f"warning: .mlmake/cache/{store} was {why}; rebuilding it\n")
    again = run_cli(built, "plan", "--detailed-exitcode")
    assert (again.exit_code, again.stderr) == (0, "")


# --- a malformed lock -------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("lock_version: 1\nnodes:\n  steps.a:\n    fingerprint: f\n    outputs: build/a.txt\n",
     "error: mlproject.lock is malformed:\n"
     "mlproject.lock:5:14: nodes.steps.a.outputs: expected a mapping, got a string\n"
     "      outputs: build/a.txt\n"
     "               ^\n"
     "hint: restore it from git (git checkout mlproject.lock)\n"),
    ("lock_version: 1\nnodes:\n  steps.a:\n    fingerprint: f\n    config: " + "[" * 400 + "]" * 400 + "\n",
     "error: mlproject.lock is not readable:\n"
     "mlproject.lock:5:1: nested deeper than 100 levels\n"
     "  config: " + "[" * 112 + "\n"
     "  ^\n"
     "hint: restore it from git (git checkout mlproject.lock)\n"),
    ("lock_version: 1\nnodes:\n" + "".join(f"{'  ' * (i + 1)}k{i}:\n" for i in range(500)),
     "error: mlproject.lock is not readable:\n"
     "mlproject.lock:103:1: nested deeper than 100 levels\n"
     "  k100:\n"
     "  ^\n"
     "hint: restore it from git (git checkout mlproject.lock)\n"),
])
@pytest.mark.parametrize("command", ["plan", "build", "status"])
def test_a_malformed_lock_is_an_error_naming_its_line(built: Path, run_cli: RunCli, text: str, message: str,
                                                     command: str) -> None:
    (built / "mlproject.lock").write_text(text)
    before = snapshot(built)
    result = run_cli(built, command)
    assert (result.exit_code, result.stderr) == (1, message)
    assert snapshot(built) == before


# --- a full disk ------------------------------------------------------------------------


def _no_space(fd: int, data: bytes) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_when_the_lock_is_written_keeps_the_old_lock(built: Path, run_cli: RunCli,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(built)
    (built / "in.txt").write_text("2\n")
    monkeypatch.setattr(workdir, "_write_all", _no_space)  # every file mlmake keeps goes through here
    result = run_cli(built, "build")
    assert (result.exit_code, result.stderr.splitlines()[-2:]) == (1, [
        f"error: cannot write {built.resolve() / 'mlproject.lock'}: no space left on the device",
        "hint: free some space and run the command again (what was built before is kept)"])
    assert (built / "mlproject.lock").read_bytes() == before["mlproject.lock"]
    assert (built / "build" / "b.txt").read_bytes() == before["build/b.txt"]
    assert not [p for p in built.iterdir() if p.name.endswith(".tmp")]  # no temp file left behind
    monkeypatch.undo()
    # nothing is called up to date that is not: a.txt was written, its lock entry was not
    assert run_cli(built, "plan", "--detailed-exitcode").exit_code == 2
    assert run_cli(built, "build").exit_code == 0
    assert run_cli(built, "plan", "--detailed-exitcode").exit_code == 0


def test_a_full_disk_when_the_run_is_recorded_is_an_error_with_a_fix(built: Path, run_cli: RunCli,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from mlmake.state import records

    def full(path: Path) -> sqlite3.Connection:
        raise sqlite3.OperationalError("database or disk is full")

    (built / "in.txt").write_text("2\n")
    monkeypatch.setattr(records, "_open", full)
    result = run_cli(built, "build")
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (
        1, "error: cannot record the run in .mlmake/runs.sqlite: no space left on the device; "
           "free some space and build again (what was built is kept)")
    monkeypatch.undo()
    assert "steps.a" in (built / "mlproject.lock").read_text()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (mounting needs root and a kernel that lets this process mount)."""
    where = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], capture_output=True,
                          text=True, check=False) if os.geteuid() == 0 else None
    if done is None or done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() if done else 'not root'}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path) -> None:
    """Write until the disk is full."""
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_a_really_full_disk_during_a_build(small_disk: Path, run_cli: RunCli) -> None:
    root = small_disk / "p"
    make(root)
    assert run_cli(root, "build").exit_code == 0
    before = snapshot(root)
    (root / "in.txt").write_text("2\n")
    fill(small_disk)
    result = run_cli(root, "build")
    # the command rewrites its output in the page it frees; the lock's temp file finds none
    assert (result.exit_code, result.stderr) == (1, (
        f"error: cannot write {root.resolve() / 'mlproject.lock'}: no space left on the device\n"
        "hint: free some space and run the command again (what was built before is kept)\n"))
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]
    assert snapshot(root)["mlproject.lock"] == before["mlproject.lock"]
    assert snapshot(root)["build/b.txt"] == before["build/b.txt"]
    (small_disk / "filler").unlink()
    assert run_cli(root, "plan", "--detailed-exitcode").exit_code == 2
    assert run_cli(root, "build").exit_code == 0
    assert (root / "build" / "b.txt").read_text() == "2\nab"


def test_a_read_only_project_says_so(small_disk: Path, run_cli: RunCli) -> None:
    root = small_disk / "p"
    make(root)
    assert run_cli(root, "build").exit_code == 0
    before = snapshot(root)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    plan = run_cli(root, "plan", "--detailed-exitcode")
    assert (plan.exit_code, plan.stderr) == (0, "")
    result = run_cli(root, "build", "--force")
    assert (result.exit_code, result.stderr) == (1, (
        f"error: cannot write {root.resolve() / '.mlmake' / 'build.lock'}: Read-only file system\n"
        "hint: make the project folder writable for this user, then run the command again\n"))
    records = run_cli(root, "runs")
    assert records.exit_code == 0, records.stderr
    assert snapshot(root) == before


# --- a full remote during a push --------------------------------------------------------


def test_a_full_remote_during_a_push(tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    from dvc.repo import Repo

    root = tmp_path / "p"
    make(root)
    (root / "mlproject.yaml").write_text(SPEC + f"remote: {{url: {tmp_path / 'remote'}}}\n")
    assert run_cli(root, "build").exit_code == 0
    pointers = {p.name: p.read_bytes() for p in (root / ".mlmake-artifacts").iterdir()}
    before = snapshot(root)

    def full(self: object, *args: object, **kwargs: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Repo, "push", full)  # the DVC adapter's boundary: dvc itself fails
    result = run_cli(root, "push")
    assert (result.exit_code, result.stderr) == (1, (
        f"error: remote 'mlmake' ({tmp_path / 'remote'}) is full: No space left on device; free space there and "
        "run the command again (nothing here was changed)\n"))
    assert snapshot(root) == before
    assert {p.name: p.read_bytes() for p in (root / ".mlmake-artifacts").iterdir()} == pointers
