"""A plan answered from the one the state model kept is always the plan mlmake would
compute, over random edit sequences.

A small project (raw files, a folder input, a DVC-tracked file, steps reading them and each
other) is built once; then each edit changes something a plan depends on, or something it
does not, and ages every file so a plan may be kept. After each edit, `mlmake plan` through
the entry point (memo on, in-process) must print exactly what it prints with
MLMAKE_NO_MEMO=1, with the same exit code, and the plan after that must be answered from
the kept one (so the comparisons exercise the memo, not only its refusals).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlmake.__main__ import run
from mlmake.core import memo
from mlmake.state.hashing import CACHE_FILE
from tests.fakes import record_build
from tests.helpers import scratch, write_files

OLD_NS = time.time_ns() - 3600 * 1_000_000_000
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
ARGV = ["plan", "--format", "json", "--detailed-exitcode"]
EDITS = ["raw", "raw same bytes", "raw same size", "param", "output removed", "output edited", "folder add",
         "folder edit", "folder remove", "dvc pointer", "dvc pointer edit", "build", "build param",
         "lock removed", "spec touched", "unrelated file"]


def spec(seed: int) -> str:
    steps = {
        "s0": {"cmd": ["python", "-c", "pass", "${params.seed}"], "deps": ["data/a.csv", "data/folder"],
               "outs": ["build/s0.txt"]},
        "s1": {"cmd": ["python", "-c", "pass"], "deps": ["data/b.csv", "build/s0.txt"], "outs": ["build/s1.txt"]},
        "s2": {"cmd": ["python", "-c", "pass", "2"], "deps": ["data/tracked.csv"], "outs": ["build/s2"]},
    }
    lines = ["version: 1", "project: memo", "params:", f"  seed: {seed}", "steps:"]
    for name, body in steps.items():
        lines += [f"  {name}:"] + [f"    {k}: {json.dumps(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def age(root: Path) -> None:
    """Every file just written or touched given the same old mtime: only the size, the inode
    and the ctime (which utime cannot set) tell an edit apart, as after a `cp -p` or a `git
    stash`. What was not touched keeps its ctime, so a kept plan still holds for it."""
    for path in [root, *root.rglob("*")]:
        if ".mlmake/cache" not in path.as_posix() and path.lstat().st_mtime_ns != OLD_NS:
            os.utime(path, ns=(OLD_NS, OLD_NS), follow_symlinks=False)


def plan(root: Path, monkeypatch: pytest.MonkeyPatch, *, memo_on: bool) -> tuple[int, str, bool, str]:
    """Exit code, output, whether it was answered from a kept plan, and its warnings."""
    answers: list[int | None] = []
    real = memo.answer

    def spy(*args: object) -> int | None:
        answers.append(real(*args))  # type: ignore[arg-type]
        return answers[-1]

    with monkeypatch.context() as m:
        m.setattr(memo, "answer", spy)
        if memo_on:
            m.delenv("MLMAKE_NO_MEMO", raising=False)
        else:
            m.setenv("MLMAKE_NO_MEMO", "1")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(["-C", str(root), *ARGV])
    return code, out.getvalue(), bool(answers) and answers[0] is not None, err.getvalue()


def apply(root: Path, edit: str, n: int) -> None:
    data = root / "data"
    if edit == "raw":
        (data / "a.csv").write_text(f"x\n{n}{n}\n")
    elif edit == "raw same bytes":
        (data / "a.csv").write_bytes((data / "a.csv").read_bytes())
    elif edit == "raw same size":
        text = (data / "b.csv").read_text()
        (data / "b.csv").write_text(text[:-2] + ("7" if text[-2] != "7" else "8") + "\n")
    elif edit == "param":
        (root / "mlproject.yaml").write_text(spec(100 + n))
    elif edit == "output removed":
        (root / "build" / "s1.txt").unlink(missing_ok=True)
    elif edit == "output edited":
        if (root / "build" / "s0.txt").exists():
            (root / "build" / "s0.txt").write_text(f"edited {n}\n")
    elif edit == "folder add":
        (data / "folder" / f"new{n}.txt").write_text("new\n")
    elif edit == "folder edit":
        (data / "folder" / "one.txt").write_text(f"one {n}\n")
    elif edit == "folder remove":
        for path in sorted((data / "folder").glob("new*.txt"))[:1]:
            path.unlink()
    elif edit == "dvc pointer":
        (data / "tracked.csv.dvc").write_text(f"outs:\n- md5: {n:032x}\n  size: 9\n  path: tracked.csv\n")
    elif edit == "dvc pointer edit":
        pointer = data / "tracked.csv.dvc"
        if pointer.exists():
            pointer.write_text(pointer.read_text().replace("size: 9", "size: 10"))
    elif edit in ("build", "build param"):
        record_build(root, params=[f"seed={n}"] if edit == "build param" else [])
    elif edit == "lock removed":
        (root / "mlproject.lock").unlink(missing_ok=True)
    elif edit == "spec touched":
        os.utime(root / "mlproject.yaml")
    elif edit == "unrelated file":
        (root / "notes.md").write_text(f"note {n}\n")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.sampled_from(EDITS), min_size=1, max_size=6))
def test_a_kept_plan_is_the_computed_plan(edits: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with scratch(SCRATCH) as tmp:
        root = Path(tmp).resolve()
        write_files(root, {"mlproject.yaml": spec(1), "data/a.csv": "x\n1\n", "data/b.csv": "x\n2\n",
                           "data/tracked.csv": "x\n3\n", "data/folder/one.txt": "one\n"})
        record_build(root)
        age(root)
        assert plan(root, monkeypatch, memo_on=True)[:2] == plan(root, monkeypatch, memo_on=False)[:2]
        for n, edit in enumerate(edits):
            apply(root, edit, n)
            age(root)
            kept = plan(root, monkeypatch, memo_on=True)
            computed = plan(root, monkeypatch, memo_on=False)
            assert kept[:2] == computed[:2], edit
            # and both are the truth: every input hashed afresh, no stat cache trusted
            (root / CACHE_FILE).unlink(missing_ok=True)
            assert plan(root, monkeypatch, memo_on=False)[:2] == computed[:2], edit
            again = plan(root, monkeypatch, memo_on=True)
            # a plan that warned (data that differs from its DVC pointer) is computed each time
            assert again[:3] == (*computed[:2], not computed[3]), edit
