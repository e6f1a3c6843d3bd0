"""Point-in-time correct training sets (issue 19): a naive join hands a training row a balance
recorded after its label; `as_of` does not; the leakage check fails the build that does."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tests.helpers import run_cli

LABELS = """customer_id,at,churned
1,2024-03-01 00:00:00,true
2,2024-03-05 00:00:00,false
3,2024-03-02 00:00:00,false
"""
BALANCES = """customer_id,at,balance
1,2024-02-01 00:00:00,10.0
1,2024-02-20 00:00:00,20.0
1,2024-04-01 00:00:00,999.0
2,2024-03-05 00:00:00,30.0
2,2024-03-06 00:00:00,888.0
3,2024-03-10 00:00:00,777.0
"""
PROJECT = """version: 1
project: pit
datasets:
  labels:
    path: data/labels.csv
    timestamp: at
    schema: {customer_id: {type: int64}, at: {type: datetime}, churned: {type: bool}}
  balances:
    path: data/balances.csv
    timestamp: at
    schema: {customer_id: {type: int64}, at: {type: datetime}, balance: {type: float64}}
features:
  naive:
    from: [labels, balances]
    sql: |
      SELECT l.customer_id, l.at, l.churned, b.balance, b.at AS balances_at
      FROM labels AS l LEFT JOIN balances AS b ON b.customer_id = l.customer_id
  as_of:
    from: [labels, balances]
    key: customer_id
    as_of: balances
    checks: [{leakage: {label: at, features: [balances_at]}}]
    sql: SELECT customer_id, at, churned, balance, balances_at FROM labels
"""


def project(tmp_path: Path, text: str = PROJECT) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data/labels.csv").write_text(LABELS, encoding="utf-8")
    (tmp_path / "data/balances.csv").write_text(BALANCES, encoding="utf-8")
    (tmp_path / "mlproject.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def table(root: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(root / f"build/features/{name}/data.parquet").sort("customer_id", "balances_at")


def test_a_naive_join_leaks_a_future_balance_and_as_of_does_not(tmp_path: Path) -> None:
    root = project(tmp_path)
    result = run_cli(root, "build")
    assert result.exit_code == 0, result.stdout + result.stderr
    naive = table(root, "naive")
    leaked = naive.filter(pl.col("balances_at") > pl.col("at"))
    assert leaked["balance"].to_list() == [999.0, 888.0, 777.0]  # recorded after the label: the future
    joined = table(root, "as_of")
    assert joined.select("customer_id", "balance").rows() == [(1, 20.0), (2, 30.0), (3, None)]
    assert joined.filter(pl.col("balances_at") > pl.col("at")).height == 0


def test_the_leakage_check_fails_a_feature_set_that_leaks(tmp_path: Path) -> None:
    text = PROJECT.replace("    as_of: balances\n", "").replace(
        "    sql: SELECT customer_id, at, churned, balance, balances_at FROM labels\n",
        "    sql: |\n      SELECT l.customer_id, l.at, l.churned, b.balance, b.at AS balances_at\n"
        "      FROM labels AS l JOIN balances AS b ON b.customer_id = l.customer_id\n"
        "      WHERE b.at >= '2024-03-06'\n")
    root = project(tmp_path, text)
    result = run_cli(root, "build", "features.as_of")
    assert result.exit_code == 1
    assert ("the feature table fails its checks:\n  check leakage: 3 rows with balances_at after at (a value "
            "recorded after the label: it leaks the future), e.g. rows [1, 2, 3]") in result.stdout + result.stderr


def test_the_leakage_check_is_a_contract_check_of_a_dataset_too(tmp_path: Path) -> None:
    text = PROJECT.replace("churned: {type: bool}}\n", "churned: {type: bool}, balance_at: {type: datetime}}\n"
                           "    checks: [{leakage: {label: at, features: [balance_at]}}]\n", 1)
    root = project(tmp_path, text)
    (root / "data/labels.csv").write_text("customer_id,at,churned,balance_at\n"
                                          "1,2024-03-01 00:00:00,true,2024-02-01 00:00:00\n"
                                          "2,2024-03-01 00:00:00,true,2024-03-02 00:00:00\n", encoding="utf-8")
    result = run_cli(root, "build", "datasets.labels")
    assert result.exit_code == 1
    assert ("'data/labels.csv' breaks its contract (1 problem):\n  check leakage: 1 row with balance_at after at "
            "(a value recorded after the label: it leaks the future), e.g. rows [2]") in result.stdout + result.stderr
