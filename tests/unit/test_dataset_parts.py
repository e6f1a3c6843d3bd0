"""A dataset in parts is read part by part (kinds/dataset/lazyparts.py) and writes exactly what the
whole-table read writes; whatever it cannot decide alone goes to the whole-table read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from mlmake.core.errors import NodeError
from mlmake.core.kind import Task
from mlmake.kinds.dataset import lazyparts, recipe

CSV = "id,customer_id,kind,amount,day\n" + "".join(
    f"{i},{i % 37 + 1},{['login', 'purchase', 'support'][i % 3]},{(i * 7.31) % 100:.4f},2024-01-{i % 28 + 1:02d}\n"
    for i in range(1, 400))
SCHEMA = {"id": {"type": "int64", "unique": True, "nullable": False}, "customer_id": {"type": "int64"},
          "kind": {"type": "category", "allowed": ["login", "purchase", "support"]}, "amount": {"type": "float64"},
          "day": {"type": "date"}}


def task(root: Path, name: str, **config: Any) -> Task:
    stage = root / "stage" / name
    base = {"path": "data/events.csv", "format": "csv", "schema": SCHEMA, "partitions": 4}
    return Task(address="datasets.events", kind="dataset", root=str(root), config=base | config,
                staging={"build/datasets/events": str(stage)}, upstream={}, log=str(root / f"{name}.log"))


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lazyparts, "run_parts", lambda task, schema: None)


@pytest.mark.parametrize("by", [["customer_id"], None])
def test_part_by_part_writes_the_bytes_and_record_of_the_whole_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by: list[str] | None) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "events.csv").write_text(CSV)
    extra = {"partition_by": by} if by else {}
    lazy = recipe.run(task(tmp_path, "lazy", **extra))
    log = (tmp_path / "lazy.log").read_text()
    shown = ", ".join(by or ["id", "customer_id", "kind", "amount", "day"])
    assert log == f"data/events.csv: 399 rows, 5 columns, contract holds; read and written in 4 parts under parts/, " \
                  f"by {shown}\n"
    with monkeypatch.context() as patch:
        whole(patch)
        read_whole = recipe.run(task(tmp_path, "whole", **extra))
    assert files(tmp_path / "stage" / "lazy") == files(tmp_path / "stage" / "whole")
    assert (lazy.metrics, lazy.tables) == (read_whole.metrics, read_whole.tables)


@pytest.mark.parametrize(("csv", "config", "expected"), [
    (CSV.replace("\n17,", "\nseventeen,"), {},
     "column 'id': rule type int64: 1 bad row, e.g. ['seventeen'] at rows [17]"),
    (CSV.replace("\n17,", "\n16,"), {}, "column 'id': rule unique: 2 bad rows, e.g. [16]"),
    (CSV, {"checks": [{"rows": ">= 1000"}]}, "check rows >= 1000: the table has 399 rows"),
])
def test_a_broken_contract_is_reported_as_the_whole_read_reports_it(
        tmp_path: Path, csv: str, config: dict[str, Any], expected: str) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "events.csv").write_text(csv)
    with pytest.raises(NodeError) as caught:
        recipe.run(task(tmp_path, "lazy", partition_by=["customer_id"], **config))
    assert str(caught.value) == f"'data/events.csv' breaks its contract (1 problem):\n  {expected}"
    assert not (tmp_path / "stage" / "lazy" / "parts").exists()
    assert (tmp_path / "lazy.log").read_text().startswith("read whole: ")


def test_a_part_column_whose_values_change_when_cast_reads_the_table_whole(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "events.csv").write_text(CSV.replace("2024-01-0", "2024-1-0"))
    done = recipe.run(task(tmp_path, "lazy", partition_by=["day"],
                           schema=SCHEMA | {"day": {"type": "date"}}))
    assert done.metrics == {"rows": 399, "columns": 5}
    log = (tmp_path / "lazy.log").read_text().splitlines()
    assert log[0].startswith("read whole: part 0: a row changes part once cast")
    assert log[-2:] == ["written in 4 parts under parts/, by day",
                        "data/events.csv: 399 rows, 5 columns, contract holds"]
    stored = pl.read_parquet(str(tmp_path / "stage" / "lazy" / "parts" / "*.parquet"))
    assert stored.height == 399 and stored["day"].dtype == pl.Date
