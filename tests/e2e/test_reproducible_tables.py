"""Reproducible tables: each example's dataset, feature and batch-scoring outputs are
byte-identical over ten forced rebuilds with different polars thread counts and `-j`.

Each rebuild is its own process (polars sizes its thread pool once, at import). The
churn data is small (rows=3000) so the test stays fast; before the fix, polars' streaming
engine summed `SUM(e.amount)` over the join in a scheduling-dependent order and the
feature table differed in the last bit between these runs.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_build_examples import copy_example

# (threads, jobs) of the ten rebuilds: one thread, the machine's, and more threads than cores
RUNS = ((1, 1), (2, 1), (3, 1), (8, 1), (16, 1), (1, 2), (2, 2), (4, 2), (16, 2), (0, 3))
EXAMPLES = {
    "penguins": ((), ("datasets.penguins", "features.penguin_features", "deploy.species_scores"),
                 ("build/datasets", "build/features", "build/deploy/species_scores")),
    "churn": (("-P", "rows=3000"),
              ("datasets.customers", "datasets.events", "features.customer_features", "deploy.churn_scores"),
              ("build/datasets", "build/features", "build/deploy/churn_scores", "build/scores.parquet")),
}


def mlmake(root: Path, *args: str, threads: int = 0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("POLARS_MAX_THREADS", "POLARS_NO_PARTITION")}
    if threads:
        env["POLARS_MAX_THREADS"] = str(threads)
    done = subprocess.run([sys.executable, "-m", "mlmake", "-C", str(root), *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def tables(root: Path, paths: tuple[str, ...]) -> dict[str, str]:
    """Every file under the table outputs → the sha256 of its bytes."""
    found: dict[str, str] = {}
    for rel in paths:
        path = root / rel
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            found[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return found


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_tables_are_byte_identical_across_forced_rebuilds_threads_and_jobs(example: str, tmp_path: Path) -> None:
    params, targets, outputs = EXAMPLES[example]
    root = copy_example(example, tmp_path)
    mlmake(root, "build", *params)
    first = tables(root, outputs)
    assert any(name.endswith("data.parquet") for name in first) and any("scores" in name for name in first)
    for threads, jobs in RUNS:
        mlmake(root, "build", "--force", "-j", str(jobs), *params, *targets, threads=threads)
        again = tables(root, outputs)
        changed = sorted(name for name in first if again.get(name) != first[name])
        assert (changed, sorted(again)) == ([], sorted(first)), f"POLARS_MAX_THREADS={threads} -j {jobs}"
    lock = (root / "mlproject.lock").read_text(encoding="utf-8")
    mlmake(root, "build", "--force", *params)  # a full forced rebuild records the same lock
    assert (root / "mlproject.lock").read_text(encoding="utf-8") == lock


HOOKS = {
    "mlproject.yaml": """\
version: 1
project: hooks
datasets:
  customers:
    path: data/customers.csv
features:
  noisy:
    from: customers
    key: customer_id
    python: features/build.py:noisy
  steady:
    from: customers
    key: customer_id
    python: features/build.py:steady
""",
    "data/customers.csv": "customer_id,amount\n1,2.5\n2,3.5\n3,1.0\n",
    "features/build.py": """\
import random

import polars as pl


def noisy(customers):
    return customers.with_columns(pl.lit(random.random()).alias("noise"))


def steady(customers):
    return customers.with_columns((pl.col("amount") * 2).alias("double"))
""",
}


def test_check_determinism_names_a_hook_that_gives_different_tables(make_project: Any, run_cli: Any) -> None:
    root = make_project(HOOKS)
    assert run_cli(root, "build").exit_code == 0  # an ordinary build does not look
    result = run_cli(root, "build", "--check-determinism", "features.noisy")
    assert result.exit_code == 1
    assert re.search(r"^FAILED features\.noisy: python hook features/build\.py:noisy is not deterministic: two runs "
                     r"gave different tables \(column 'noise' differs in 3 rows, e\.g\. row 0: 0\.\d+ vs 0\.\d+\); "
                     r"seed its randomness and give its rows a fixed order$", result.stderr, re.M), result.stderr


def test_check_determinism_rebuilds_a_deterministic_hook_and_says_it_checked(make_project: Any,
                                                                             run_cli: Any) -> None:
    root = make_project(HOOKS)
    assert run_cli(root, "build").exit_code == 0
    result = run_cli(root, "build", "--check-determinism", "features.steady")
    assert result.exit_code == 0, result.stderr
    assert "[1/1] features.steady  (forced)\n" in result.stdout
    log = (root / ".mlmake" / "logs" / "features.steady.log").read_text(encoding="utf-8")
    assert "determinism check: python hook features/build.py:steady gave the same table twice\n" in log
    assert "MLMAKE_CHECK_DETERMINISM" not in os.environ  # the mode ends with the build
