"""steps.NAME: a command run without a shell, its log, its declared outputs."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mlmake.core.errors import NodeError
from mlmake.core.kind import Result, Task
from mlmake.kinds import cmd

WRITE = """
import sys, pathlib
for out in sys.argv[1:]:
    path = pathlib.Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("fresh\\n")
print("wrote", len(sys.argv) - 1, "files")
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts/write.py").write_text(WRITE)
    return tmp_path


def run_cmd(root: Path, argv: list[Any], outs: list[str], log: str = "") -> Result:
    config = {"cmd": argv, "deps": [], "outs": outs}
    staging = {o: str(root / o) for o in outs}
    return cmd.KIND.run(Task("steps.s", "cmd", str(root), config, staging, {}, log=log))


def test_a_command_writes_its_outputs_and_logs_its_output(root: Path) -> None:
    log = root / "s.log"
    result = run_cmd(root, ["python", "scripts/write.py", "data/a.csv", "build/r.md"], ["data/a.csv", "build/r.md"],
                     str(log))
    assert result.metrics == {}
    assert (root / "data/a.csv").read_text() == "fresh\n"
    assert log.read_text().splitlines()[1:] == ["wrote 2 files"]
    assert log.read_text().startswith("$ python scripts/write.py data/a.csv build/r.md\n")


def test_stale_outputs_are_removed_before_the_run(root: Path) -> None:
    (root / "build/report").mkdir(parents=True)
    (root / "build/report/old.html").write_text("stale")
    (root / "data").mkdir()
    (root / "data/a.csv").write_text("stale")
    with pytest.raises(NodeError) as info:
        run_cmd(root, ["python", "-c", "pass"], ["data/a.csv", "build/report"])
    assert str(info.value) == ("declared output 'data/a.csv' was not written; "
                               "declared output 'build/report' was not written")
    assert not (root / "data/a.csv").exists() and not (root / "build/report").exists()


def test_a_failing_command_shows_its_exit_code_and_the_last_lines(root: Path) -> None:
    log = root / "s.log"
    log.write_text("an earlier run\n")
    script = "import sys\nfor i in range(30): print('line', i)\nsys.exit(3)"
    with pytest.raises(NodeError) as info:
        run_cmd(root, ["python", "-c", script], [], str(log))
    lines = str(info.value).splitlines()
    assert lines[0] == ("command failed with exit code 3: python -c 'import sys\\nfor i in range(30): "
                        "print('\"'\"'line'\"'\"', i)\\nsys.exit(3)'")
    assert lines[1] == f"last 20 lines of output (full output in {log}):"
    assert lines[2:] == [f"  line {i}" for i in range(10, 30)]
    assert log.read_text().startswith("an earlier run\n$ python -c ")


def test_without_a_log_the_tail_is_still_shown(root: Path) -> None:
    with pytest.raises(NodeError) as info:
        run_cmd(root, ["python", "-c", "import sys; sys.stderr.write('boom\\n'); sys.exit(1)"], [])
    assert str(info.value).splitlines()[1:] == ["last 1 lines of output:", "  boom"]


def test_no_shell_arguments_reach_the_program_literally(root: Path) -> None:
    log = root / "s.log"
    run_cmd(root, ["python", "-c", "import sys; print(sys.argv[1:])", "a; rm -rf x", "$HOME", "*", "`id`"], [],
            str(log))
    assert log.read_text().splitlines()[-1] == "['a; rm -rf x', '$HOME', '*', '`id`']"


def test_python_is_the_interpreter_mlmake_runs_on(root: Path) -> None:
    log = root / "s.log"
    run_cmd(root, ["python", "-c", "import sys; print(sys.executable)"], [], str(log))
    assert log.read_text().splitlines()[-1] == sys.executable


def test_the_command_runs_in_the_project_root(root: Path) -> None:
    log = root / "s.log"
    run_cmd(root, ["python", "-c", "import os; print(os.getcwd())"], [], str(log))
    assert os.path.samefile(log.read_text().splitlines()[-1], root)


def test_a_missing_executable_is_named(root: Path) -> None:
    with pytest.raises(NodeError) as info:
        run_cmd(root, ["no-such-tool-xyz", "--flag"], [])
    assert str(info.value) == "command not found: 'no-such-tool-xyz'"


def test_an_output_outside_the_project_is_refused(root: Path) -> None:
    with pytest.raises(NodeError, match=r"^declared output '\.\.' is not a path inside the project$"):
        run_cmd(root, ["python", "-c", "pass"], [".."])
    with pytest.raises(NodeError, match=r"^declared output '\.' is not a path inside the project$"):
        run_cmd(root, ["python", "-c", "pass"], ["."])
    assert (root / "scripts/write.py").exists()


def test_ctrl_c_stops_the_child_and_reraises(root: Path) -> None:
    marker = root / "pid"
    script = f"import os, pathlib, time\npathlib.Path({str(marker)!r}).write_text(str(os.getpid()))\ntime.sleep(60)"
    main = threading.get_ident()

    def interrupt() -> None:
        while not marker.exists() or not marker.read_text():
            time.sleep(0.02)
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_cmd(root, ["python", "-c", script], [])
    assert time.monotonic() - started < 30
    with pytest.raises(ProcessLookupError):  # stopped and reaped
        os.kill(int(marker.read_text()), 0)
