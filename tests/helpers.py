"""Shared test data and plain helpers (fixtures live in conftest.py).

Import as `from tests.helpers import VALID` (the repository root is on sys.path).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from click.testing import CliRunner, Result

from mlmake.core.errors import SpecError

if TYPE_CHECKING:
    from mlmake.core.graph import Graph
    from mlmake.core.spec import Project

# A minimal valid project: 1 dataset, 1 feature set (sql), 1 model, 1 step.
# Tests quote its line numbers in expected messages: append, don't reflow.
VALID = """\
version: 1
project: demo
params:
  seed: 42
  test_size: 0.25
datasets:
  customers:
    path: data/customers.csv
features:
  customer_features:
    from: customers
    key: customer_id
    sql: SELECT * FROM customers
models:
  churn:
    features: customer_features
    target: churned
    task: binary
    split: {test_size: "${params.test_size}", seed: "${params.seed}"}
    params: {max_depth: 6}
steps:
  report:
    cmd: [python, scripts/report.py]
    deps: [scripts/report.py, models.churn]
    outs: [build/report.html]
"""


REPO = Path(__file__).resolve().parents[1]
# what a build or a command leaves in a project: never part of the example a test starts from
LOCAL_STATE = ("build", ".mlmake", ".dvc", ".dvcignore", ".mlmake-artifacts", "mlproject.lock", "__pycache__")


def copy_example(name: str, dest: Path, *, skip: tuple[str, ...] = ()) -> Path:
    """examples/NAME as committed: without build outputs, local state, or anything git-ignored
    (a user may have built the example in this checkout: the tests never see it)."""
    source = REPO / "examples" / name
    ignored = _git_ignored(source)

    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder).resolve()
        return {n for n in names if n in LOCAL_STATE or n in skip or (here / n) in ignored}

    shutil.copytree(source, dest, ignore=ignore)
    return dest


def _git_ignored(folder: Path) -> set[Path]:
    """The git-ignored paths under folder (none when it is not in a git checkout)."""
    try:
        done = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--directory",
                               "-z", "."], cwd=folder, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return set()
    if done.returncode != 0:
        return set()
    return {(folder / p.decode().rstrip("/")).resolve() for p in done.stdout.split(b"\0") if p}


def drop_caches(root: Path) -> None:
    """Forget every copy of what was built: the project's DVC cache and the default remote."""
    shutil.rmtree(root / ".dvc" / "cache", ignore_errors=True)
    shutil.rmtree(os.environ["MLMAKE_REMOTE"], ignore_errors=True)


@contextlib.contextmanager
def scratch(folder: str | None = None) -> Iterator[str]:
    """A temporary folder with a default remote of its own (beside it), for one hypothesis
    example: what an earlier example built is never restored in the next one."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp, tempfile.TemporaryDirectory(dir=folder) as remote:
        before = os.environ.get("MLMAKE_REMOTE")
        os.environ["MLMAKE_REMOTE"] = remote
        try:
            yield tmp
        finally:
            if before is None:
                os.environ.pop("MLMAKE_REMOTE", None)
            else:
                os.environ["MLMAKE_REMOTE"] = before


def write_files(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write each relative path → text (UTF-8) or bytes under root, creating folders."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def run_cli(root: Path | str, *args: str) -> Result:
    """Run `mlmake -C ROOT ARGS…` in-process; stdout and stderr stay separate."""
    from mlmake.cli import cli

    return CliRunner().invoke(cli, ["-C", str(root), *args], catch_exceptions=False)


def load(root: Path, env: str | None = None, params: tuple[str, ...] = ()) -> tuple[Project, Graph]:
    """What `mlmake validate` does: parse -P, load, resolve, check, build the graph."""
    from mlmake.core.graph import build_graph
    from mlmake.core.resolve import parse_override
    from mlmake.core.spec import load_project

    project = load_project(root, env, tuple(parse_override(p) for p in params))
    return project, build_graph(project)


def errors_of(root: Path, env: str | None = None, params: tuple[str, ...] = ()) -> str:
    """The rendered SpecError that loading ROOT raises (fails the test if it loads)."""
    try:
        load(root, env, params)
    except SpecError as exc:
        return exc.render()
    raise AssertionError("expected a SpecError, but the project loaded")


def run_records(run_cli: Callable[..., Result], root: Path, *args: str) -> list[dict[str, Any]]:
    """`mlmake runs --json` (every record, newest first)."""
    result = run_cli(root, "runs", "--json", "--limit", "100000", *args)
    assert result.exit_code == 0, result.stderr
    records: list[dict[str, Any]] = json.loads(result.stdout)
    return records


def build(run_cli: Callable[..., Result], root: Path, *args: str) -> tuple[Result, dict[str, str]]:
    """Run `mlmake build ARGS`; its result and {node: status} of the run records it added."""
    before = {(r["run_id"], r["node"]) for r in run_records(run_cli, root)}
    result = run_cli(root, "build", *args)
    added = [r for r in run_records(run_cli, root) if (r["run_id"], r["node"]) not in before]
    assert len({r["run_id"] for r in added}) <= 1, added  # one build, one run id
    return result, {r["node"]: r["status"] for r in added}


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# tests of what a user without the reference plugin sees cannot hold where it is installed
SKLEARN_PLUGIN_INSTALLED = _installed("mlmake_sklearn")
