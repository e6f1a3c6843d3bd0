"""Column-level dependencies (issue 20, part 2), through the CLI: a feature set's SQL and a
model's `drop:` declare the columns they read, and a change to a column nobody reads stops
at the dataset that holds it; `plan` and `build` say which columns were read and which not."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

RunCli = Callable[..., Result]

SPEC = """\
version: 1
project: cols
datasets:
  customers:
    path: data/customers.csv
    schema:
      customer_id: {type: int64, unique: true, nullable: false}
features:
  profile:
    from: customers
    key: customer_id
    sql: SELECT customer_id, age, plan, churned FROM customers
  hooked:
    from: customers
    key: customer_id
    python: hooks.py:hooked
models:
  churn:
    features: profile
    target: churned
    task: binary
    drop: [plan]
    params: {num_boost_round: 3, max_depth: 2}
    split: {seed: 1}
"""

HOOK = """\
import polars as pl


def hooked(customers):
    return customers.select("customer_id", (pl.col("age") * 2).alias("age2"))
"""

COLUMNS = ["customer_id", "age", "plan", "email", "churned"]


def rows() -> list[dict[str, object]]:
    return [{"customer_id": i, "age": 20 + (i * 7) % 50, "plan": "pro" if i % 3 else "basic",
             "email": f"u{i}@example.com", "churned": (i * 5) % 7 % 2} for i in range(40)]


def write(root: Path, table: list[dict[str, object]], columns: list[str] = COLUMNS) -> None:
    with open(root / "data/customers.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows({c: r[c] for c in columns} for r in table)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built once (without the unread column `email`); each test works on a copy."""
    from tests.helpers import run_cli

    root = tmp_path_factory.mktemp("built") / "cols"
    (root / "data").mkdir(parents=True)
    (root / "mlproject.yaml").write_text(SPEC, encoding="utf-8")
    (root / "hooks.py").write_text(HOOK, encoding="utf-8")
    write(root, rows(), [c for c in COLUMNS if c != "email"])
    result = run_cli(root, "build")
    assert result.exit_code == 0, result.stderr
    return root


@pytest.fixture
def root(built: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "cols"
    shutil.copytree(built, dest, symlinks=True)
    return dest


def line(symbol: str, address: str, note: str = "") -> str:
    return f"{symbol:>2} {address:<18}  {note}".rstrip()


def plan_lines(run_cli: RunCli, root: Path) -> list[str]:
    result = run_cli(root, "plan")
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()


def build_lines(run_cli: RunCli, root: Path) -> list[str]:
    result = run_cli(root, "build")
    assert result.exit_code == 0, result.stderr
    return [text for text in result.stdout.splitlines() if not text.startswith("  done ")]


UP_TO_DATE = [line("=", "datasets.customers"), line("=", "features.profile"), line("=", "features.hooked"),
              line("=", "models.churn"), "", "Plan: 0 to build, 4 up to date."]
HOOK_WAITS = "upstream datasets.customers will rebuild; rebuilds only if its output changes"


def test_an_unread_column_added_stops_at_the_dataset(run_cli: RunCli, root: Path) -> None:
    write(root, rows())  # the raw table gains `email`, which no SQL reads
    assert plan_lines(run_cli, root) == [
        line("~", "datasets.customers", "data/customers.csv changed"),
        line("~?", "features.profile", "upstream datasets.customers will rebuild; rebuilds only if columns "
             "customer_id, age, plan, churned change"),
        line("~?", "features.hooked", HOOK_WAITS),
        line("~?", "models.churn", "upstream features.profile will rebuild; rebuilds only if columns "
             "customer_id, age, churned change"),
        "", "Plan: 1 to build, 3 to check after upstream, 0 up to date."]
    assert build_lines(run_cli, root) == [
        "[1/4] datasets.customers  (data/customers.csv changed)",
        "  skip features.profile: up to date (reads customer_id, age, plan, churned; changed column email "
        "is not read)",
        "[2/4] features.hooked  (upstream datasets.customers changed)",  # a python hook reads whole tables
        "  skip models.churn: up to date (upstream output unchanged)",
        "Build: 2 built, 2 up to date."]
    assert plan_lines(run_cli, root) == UP_TO_DATE
    assert build_lines(run_cli, root) == ["Nothing to build: every node is up to date.",
                                          "Build: 0 built, 4 up to date."]


def test_an_unread_column_changed_stops_at_the_dataset(run_cli: RunCli, root: Path) -> None:
    write(root, rows())
    assert run_cli(root, "build").exit_code == 0
    write(root, [{**r, "email": f"new{r['customer_id']}@example.com"} for r in rows()])
    assert build_lines(run_cli, root) == [
        "[1/4] datasets.customers  (data/customers.csv changed)",
        "  skip features.profile: up to date (reads customer_id, age, plan, churned; changed column email "
        "is not read)",
        "[2/4] features.hooked  (upstream datasets.customers changed)",  # a python hook reads whole tables
        "  skip models.churn: up to date (upstream output unchanged)",
        "Build: 2 built, 2 up to date."]
    assert plan_lines(run_cli, root) == UP_TO_DATE


def test_a_read_column_changed_rebuilds_downstream(run_cli: RunCli, root: Path) -> None:
    write(root, [{**r, "age": int(str(r["age"])) + 1} for r in rows()], [c for c in COLUMNS if c != "email"])
    assert build_lines(run_cli, root) == [
        "[1/4] datasets.customers  (data/customers.csv changed)",
        "[2/4] features.profile  (upstream datasets.customers changed: column age)",
        "[3/4] features.hooked  (upstream datasets.customers changed)",
        "[4/4] models.churn  (upstream features.profile changed: column age)",
        "Build: 4 built, 0 up to date."]
    assert plan_lines(run_cli, root) == UP_TO_DATE


def test_a_model_rebuilds_only_when_a_column_it_reads_changes(run_cli: RunCli, root: Path) -> None:
    """The model drops `plan`: a change there rebuilds the feature set, not the model."""
    write(root, [{**r, "plan": "basic" if r["plan"] == "pro" else "pro"} for r in rows()],
          [c for c in COLUMNS if c != "email"])
    assert build_lines(run_cli, root) == [
        "[1/4] datasets.customers  (data/customers.csv changed)",
        "[2/4] features.profile  (upstream datasets.customers changed: column plan)",
        "[3/4] features.hooked  (upstream datasets.customers changed)",
        "  skip models.churn: up to date (reads customer_id, age, churned; changed column plan is not read)",
        "Build: 3 built, 1 up to date."]


def test_the_target_counts_as_read_even_when_dropped(run_cli: RunCli, root: Path) -> None:
    spec = root / "mlproject.yaml"
    spec.write_text(SPEC.replace("drop: [plan]", "drop: [plan, churned]"), encoding="utf-8")
    result = run_cli(root, "plan")
    assert line("~", "models.churn", "drop [\"plan\"] → [\"plan\", \"churned\"]") in result.stdout.splitlines()
    assert run_cli(root, "build").exit_code == 0
    write(root, [{**r, "churned": 1 - int(str(r["churned"]))} for r in rows()], [c for c in COLUMNS if c != "email"])
    assert build_lines(run_cli, root)[-2:] == [
        "[4/4] models.churn  (upstream features.profile changed: column churned)", "Build: 4 built, 0 up to date."]
