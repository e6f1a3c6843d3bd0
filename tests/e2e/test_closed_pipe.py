"""A reader that goes away (`mlmake plan | head -1`) ends the command quietly, as it ends
`git log | head`: nothing on stderr, exit 141 (128 + SIGPIPE, what a shell reports for a
writer stopped by a closed pipe). Real processes and real pipes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import write_files

MLMAKE = [sys.executable, "-m", "mlmake"]


def steps(n: int) -> str:
    lines = ["version: 1", "project: piped", "steps:"]
    for i in range(n):
        lines += [f"  s{i:03d}:", f"    cmd: [python, -c, \"open('out{i}.txt', 'w').close()\"]",
                  f"    outs: [out{i}.txt]"]
    return "\n".join(lines) + "\n"


def closed_pipe_run(root: Path, *args: str, stderr_too: bool = False) -> subprocess.CompletedProcess[str]:
    """Run mlmake with stdout (and stderr) on a pipe whose reader is already gone."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([*MLMAKE, "-C", str(root), *args], stdout=write,
                              stderr=write if stderr_too else subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)


@pytest.mark.skipif(not hasattr(__import__("fcntl"), "F_SETPIPE_SZ"), reason="needs Linux's F_SETPIPE_SZ")
def test_plan_piped_into_head_stops_quietly(tmp_path: Path) -> None:
    import fcntl

    root = write_files(tmp_path, {"mlproject.yaml": steps(400)})  # ~10 kB of plan, past the 4 kB pipe
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen([*MLMAKE, "-C", str(root), "plan"], stdout=write, stderr=subprocess.PIPE, text=True)
    os.close(write)
    first = b""
    while not first.endswith(b"\n"):  # one line, as `head -1` reads it
        first += os.read(read, 1)
    os.close(read)
    _, stderr = proc.communicate(timeout=120)
    assert first == b" + steps.s000  new node\n"
    assert (proc.returncode, stderr) == (141, "")


def test_runs_into_a_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    root = write_files(tmp_path, {"mlproject.yaml": steps(2)})
    built = subprocess.run([*MLMAKE, "-C", str(root), "build"], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    done = closed_pipe_run(root, "runs")
    assert (done.returncode, done.stderr) == (141, "")


def test_a_repeated_plan_answered_from_what_the_last_one_kept_stops_quietly_too(tmp_path: Path) -> None:
    root = write_files(tmp_path, {"mlproject.yaml": steps(2)})
    first = subprocess.run([*MLMAKE, "-C", str(root), "plan"], capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    for _ in range(2):
        done = closed_pipe_run(root, "plan")
        assert (done.returncode, done.stderr) == (141, "")


def test_a_build_whose_reader_goes_keeps_what_finished(tmp_path: Path) -> None:
    root = write_files(tmp_path, {"mlproject.yaml": steps(3)})
    done = closed_pipe_run(root, "build", stderr_too=True)  # `mlmake build 2>&1 | true`
    assert done.returncode == 141
    status = subprocess.run([*MLMAKE, "-C", str(root), "status"], capture_output=True, text=True, timeout=120)
    # the first line could not be written: the build stopped before running anything
    assert status.stdout.splitlines() == [f"stale    steps.s00{i}  new node" for i in range(3)]


def test_a_user_error_still_goes_to_stderr_when_stdout_is_closed(tmp_path: Path) -> None:
    root = write_files(tmp_path, {"mlproject.yaml": "version: 1\nproject: piped\nsteps: {s: {cmd: 3}}\n"})
    done = closed_pipe_run(root, "plan")
    assert done.returncode == 1
    assert done.stderr.startswith("mlproject.yaml:3:")
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
