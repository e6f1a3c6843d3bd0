"""datasets.NAME: reading, the data contract and the snapshot it writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from mlmake.core.errors import NodeError
from mlmake.core.kind import Task
from mlmake.kinds import dataset

OUT = "build/datasets/customers"
CSV = """\
id,age,plan,code,joined,active,note
1,34,basic,AB1,2024-01-02,true,x
2,51,pro,CD2,2024-02-03,false,y
3,27,pro,EF3,2024-03-04,yes,z
"""


def col(type_: str, **rules: Any) -> dict[str, Any]:
    """A column of the normalized schema, as spec.node_config writes it."""
    base = {"type": type_, "nullable": True, "unique": False, "min": None, "max": None, "allowed": None,
            "regex": None}
    return base | rules


def run_dataset(root: Path, schema: dict[str, Any], *, path: str = "data/customers.csv", fmt: str = "csv",
                checks: list[dict[str, Any]] | None = None, out: str = "out", nulls: tuple[str, ...] = ()) -> Path:
    staging = root / out
    staging.mkdir()
    config = {"path": path, "format": fmt, "null_values": list(nulls), "schema": schema, "checks": checks or []}
    result = dataset.KIND.run(Task("datasets.customers", "dataset", str(root), config, {OUT: str(staging)}, {}))
    assert result.metrics["rows"] == pl.read_parquet(staging / "data.parquet").height
    return staging


def write(root: Path, text: str, name: str = "data/customers.csv") -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)


def failure(root: Path, schema: dict[str, Any], text: str, **kw: Any) -> str:
    write(root, text)
    with pytest.raises(NodeError) as info:
        run_dataset(root, schema, **kw)
    return str(info.value)


def test_snapshot_casts_declared_columns_and_keeps_the_rest(tmp_path: Path) -> None:
    write(tmp_path, CSV)
    schema = {"id": col("int32", unique=True, nullable=False), "age": col("int64", min=0, max=120),
              "plan": col("category", allowed=["basic", "pro"]), "code": col("str", regex="^[A-Z]{2}[0-9]$"),
              "joined": col("date"), "active": col("bool")}
    out = run_dataset(tmp_path, schema, checks=[{"rows": ">= 3"}])
    frame = pl.read_parquet(out / "data.parquet")
    assert [dataset_type(t) for t in frame.dtypes] == ["Int32", "Int64", "Categorical", "String", "Date",
                                                       "Boolean", "String"]
    assert frame["active"].to_list() == [True, False, True]
    contract = json.loads((out / "contract.json").read_text())
    assert contract["rows"] == 3
    assert contract["checks"] == [{"passed": True, "rows": ">= 3", "value": 3}]
    assert contract["columns"][2] == {"declared": True, "name": "plan", "type": "category"}
    assert contract["columns"][6] == {"declared": False, "name": "note", "type": "str"}


def dataset_type(dtype: pl.DataType) -> str:
    return type(dtype).__name__ if not isinstance(dtype, type) else dtype.__name__


def test_the_snapshot_is_byte_identical_for_the_same_input(tmp_path: Path) -> None:
    write(tmp_path, CSV)
    schema = {"plan": col("category"), "joined": col("date")}
    first = run_dataset(tmp_path, schema, out="a") / "data.parquet"
    second = run_dataset(tmp_path, schema, out="b") / "data.parquet"
    assert first.read_bytes() == second.read_bytes()
    assert (first.parent / "contract.json").read_bytes() == (second.parent / "contract.json").read_bytes()


def test_whole_floats_are_integers_but_fractions_are_not(tmp_path: Path) -> None:
    message = failure(tmp_path, {"n": col("int64")}, "n\n3.0\n4\n4.5\n")
    assert message == ("'data/customers.csv' breaks its contract (1 problem):\n"
                       "  column 'n': rule type int64: 1 bad row, e.g. ['4.5'] at rows [3]")


@pytest.mark.parametrize(("rules", "text", "line"), [
    ({"type": "int64"}, "x\n1\nabc\n2\nzz\n", "rule type int64: 2 bad rows, e.g. ['abc', 'zz']"),
    ({"type": "int64", "nullable": False}, "x,y\n1,a\n,b\n,c\n", "rule nullable false: 2 bad rows, e.g. rows [2, 3]"),
    ({"type": "int64", "unique": True}, "x\n1\n2\n2\n3\n3\n3\n", "rule unique: 5 bad rows, e.g. [2, 3]"),
    ({"type": "int64", "min": 0}, "x\n-1\n5\n-3\n", "rule min 0: 2 bad rows, e.g. [-1, -3]"),
    ({"type": "int64", "max": 120}, "x\n130\n150\n30\n999\n", "rule max 120: 3 bad rows, e.g. [130, 150, 999]"),
    ({"type": "float64", "max": 0.5}, "x\n0.75\n0.25\n", "rule max 0.5: 1 bad row, e.g. [0.75]"),
    ({"type": "str", "allowed": ["basic", "pro"]}, "x\nbasic\ngold\nfree\n",
     "rule allowed ['basic', 'pro']: 2 bad rows, e.g. ['gold', 'free']"),
    ({"type": "int64", "allowed": [1, 2]}, "x\n1\n7\n", "rule allowed [1, 2]: 1 bad row, e.g. [7]"),
    ({"type": "str", "regex": "^[A-Z]+$"}, "x\nAB\nab\nA1\n", "rule regex '^[A-Z]+$': 2 bad rows, e.g. ['ab', 'A1']"),
    ({"type": "str", "regex": "(["}, "x\nAB\n",
     "rule regex '([': not a valid regular expression: unclosed character class"),
    ({"type": "str", "min": 1}, "x\nAB\n", "rule min 1: needs a numeric column, not str"),
    ({"type": "bool"}, "x\ntrue\nmaybe\n", "rule type bool: 1 bad row, e.g. ['maybe']"),
    ({"type": "date"}, "x\n2024-01-02\n2024-13-01\n", "rule type date: 1 bad row, e.g. ['2024-13-01']"),
    ({"type": "uint8"}, "x\n255\n256\n-1\n", "rule type uint8: 2 bad rows, e.g. ['256', '-1']"),
])
def test_each_rule_reports_its_count_and_examples(tmp_path: Path, rules: dict[str, Any], text: str,
                                                  line: str) -> None:
    message = failure(tmp_path, {"x": col(rules.pop("type"), **rules)}, text)
    assert message.splitlines()[1].startswith(f"  column 'x': {line}")


def test_null_values_are_read_as_missing(tmp_path: Path) -> None:
    write(tmp_path, "x,y\n1,NA\nNA,2.5\n3,n/a\n")
    out = run_dataset(tmp_path, {"x": col("int64")}, nulls=("NA", "n/a"))
    frame = pl.read_parquet(out / "data.parquet")
    assert frame.to_dict(as_series=False) == {"x": [1, None, 3], "y": [None, 2.5, None]}
    message = failure(tmp_path, {"x": col("int64", nullable=False)}, "x\n1\nNA\n", nulls=("NA",), out="again")
    assert message.endswith("column 'x': rule nullable false: 1 bad row, e.g. rows [2]")


def test_examples_stop_at_five(tmp_path: Path) -> None:
    message = failure(tmp_path, {"x": col("int64", max=0)}, "x\n" + "\n".join(str(i) for i in range(1, 9)))
    assert message.endswith("rule max 0: 8 bad rows, e.g. [1, 2, 3, 4, 5]")


def test_every_violation_is_listed_in_one_error(tmp_path: Path) -> None:
    text = "id,age,plan\n1,30,basic\n1,130,gold\n2,abc,pro\n"
    schema = {"id": col("int64", unique=True), "age": col("int64", max=120),
              "plan": col("str", allowed=["basic", "pro"]), "email": col("str")}
    message = failure(tmp_path, schema, text, checks=[{"rows": ">= 1000"}])
    assert message == (
        "'data/customers.csv' breaks its contract (6 problems):\n"
        "  column 'email': missing; the file has columns ['id', 'age', 'plan']\n"
        "  column 'id': rule unique: 2 bad rows, e.g. [1]\n"
        "  column 'age': rule type int64: 1 bad row, e.g. ['abc'] at rows [3]\n"
        "  column 'age': rule max 120: 1 bad row, e.g. [130]\n"
        "  column 'plan': rule allowed ['basic', 'pro']: 1 bad row, e.g. ['gold']\n"
        "  check rows >= 1000: the table has 3 rows"
    )


def test_a_missing_column_names_the_actual_ones_and_a_close_match(tmp_path: Path) -> None:
    message = failure(tmp_path, {"agee": col("int64")}, "id,age\n1,2\n")
    assert message.splitlines()[1] == ("  column 'agee': missing; the file has columns ['id', 'age'] "
                                       "(did you mean 'age'?)")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(NodeError, match=r"^data file 'data/customers.csv' not found \(looked in "):
        run_dataset(tmp_path, {})


def test_an_unreadable_file_is_an_error_naming_it(tmp_path: Path) -> None:
    write(tmp_path, "not parquet at all", "data/c.parquet")
    with pytest.raises(NodeError, match=r"^cannot read 'data/c.parquet' as parquet: "):
        run_dataset(tmp_path, {}, path="data/c.parquet", fmt="parquet")


@pytest.mark.parametrize(("check", "passes"), [
    (">= 3", True), (">= 4", False), ("<= 3", True), ("< 3", False), ("> 2", True), ("== 3", True),
    ("!= 3", False), ("  >=1e3 ", False),
])
def test_row_checks_compare_the_row_count(tmp_path: Path, check: str, passes: bool) -> None:
    write(tmp_path, CSV)
    if passes:
        run_dataset(tmp_path, {}, checks=[{"rows": check}])
        return
    with pytest.raises(NodeError, match=r"check rows .* the table has 3 rows$"):
        run_dataset(tmp_path, {}, checks=[{"rows": check}])


def test_parquet_input_with_a_type_that_cannot_convert(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    pl.DataFrame({"day": [1, 2], "score": [1.0, 2.5]}).write_parquet(tmp_path / "data/t.parquet")
    with pytest.raises(NodeError) as info:
        run_dataset(tmp_path, {"day": col("date"), "score": col("int64")}, path="data/t.parquet", fmt="parquet")
    assert str(info.value).splitlines()[1:] == [
        "  column 'day': rule type date: the file has type Int64, which cannot become date",
        "  column 'score': rule type int64: 1 bad row, e.g. [2.5] at rows [2]",
    ]


def test_ndjson_values_of_mixed_json_types_are_checked_as_text(tmp_path: Path) -> None:
    write(tmp_path, '{"id": 1, "ok": true}\n{"id": "two", "ok": false}\n{"id": 3, "ok": null}\n', "data/e.ndjson")
    with pytest.raises(NodeError) as info:
        run_dataset(tmp_path, {"id": col("int64"), "ok": col("bool", nullable=False)}, path="data/e.ndjson",
                    fmt="ndjson")
    assert str(info.value).splitlines()[1:] == [
        "  column 'id': rule type int64: 1 bad row, e.g. ['two'] at rows [2]",
        "  column 'ok': rule nullable false: 1 bad row, e.g. rows [3]",
    ]


def test_ndjson_snapshot(tmp_path: Path) -> None:
    write(tmp_path, '{"id": 1, "at": "2024-01-02 10:00:00"}\n{"id": 2, "at": "2024-01-03T11:30:00"}\n', "data/e.ndjson")
    out = run_dataset(tmp_path, {"at": col("datetime")}, path="data/e.ndjson", fmt="ndjson")
    frame = pl.read_parquet(out / "data.parquet")
    assert frame.schema == pl.Schema({"id": pl.Int64, "at": pl.Datetime("us")})
