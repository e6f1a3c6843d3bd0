"""Tables in parts (ml/parts.py) and the readers that take either form (ml/tables.py)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from mlmake.core.errors import NodeError
from mlmake.ml.parts import PartWriter, co_partitioned, part_file, part_of, split
from mlmake.ml.tables import read_json, scan_table, table_files, write_json, write_parquet


def parts_of(frame: pl.DataFrame, key: list[str], n: int) -> list[int]:
    return [int(v) for v in frame.select(part_of(key, n)).to_series().to_list()]


def test_the_part_of_a_key_is_fixed() -> None:
    # pinned: a change here moves the rows of every table in parts (a new seed, or a polars whose hash differs)
    assert parts_of(pl.DataFrame({"a": list(range(1, 11))}), ["a"], 4) == [3, 3, 1, 1, 2, 1, 0, 2, 3, 0]
    assert parts_of(pl.DataFrame({"a": ["x", "y", None]}), ["a"], 4) == [3, 2, 1]
    assert parts_of(pl.DataFrame({"a": [1, 1, 2], "b": ["x", None, "x"]}), ["a", "b"], 4) == [3, 0, 0]


def test_equal_keys_of_other_integer_types_or_as_text_land_in_the_same_part() -> None:
    ids = list(range(-50, 200))
    expected = parts_of(pl.DataFrame({"k": ids}), ["k"], 7)
    assert set(expected) == set(range(7))
    for dtype in (pl.Int32, pl.Int16):
        assert parts_of(pl.DataFrame({"k": ids}, schema={"k": dtype}), ["k"], 7) == expected
    for dtype in (pl.String, pl.Categorical):
        assert parts_of(pl.DataFrame({"k": [str(i) for i in ids]}, schema={"k": dtype}), ["k"], 7) == expected
    assert parts_of(pl.DataFrame({"k": ids[50:]}, schema={"k": pl.UInt64}), ["k"], 7) == expected[50:]


def test_split_keeps_each_rows_order_and_every_row_once() -> None:
    frame = pl.DataFrame({"k": [5, 3, 9, 3, 1, 5, 2], "v": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]})
    parts = list(split(frame, ["k"], 3))
    assert len(parts) == 3 and sum(p.height for p in parts) == frame.height
    for index, part in enumerate(parts):
        assert part.equals(frame.filter(pl.Series(parts_of(frame, ["k"], 3)) == index))
    # no key: the rows' values pick the part
    assert [p.height for p in split(frame, [], 3)] == [p.height for p in split(frame, ["k", "v"], 3)]
    assert sum(p.height for p in split(frame, [], 3)) == frame.height


def test_split_names_a_key_it_cannot_hash() -> None:
    frame = pl.DataFrame({"k": [[1], [2]]})
    with pytest.raises(NodeError, match=r"^cannot split the table into parts by \['k'\]: "):
        next(split(frame, ["k"], 2))


def test_table_files_takes_one_file_or_the_parts_in_order(tmp_path: Path) -> None:
    assert table_files(str(tmp_path)) == []
    parts = tmp_path / "parts"
    parts.mkdir()
    for name in ("part-00002.parquet", "part-00000.parquet", "part-00001.parquet", "part-1.parquet", "notes.txt"):
        (parts / name).write_bytes(b"")
    assert table_files(str(tmp_path)) == [str(parts / f"part-0000{i}.parquet") for i in range(3)]
    (tmp_path / "data.parquet").write_bytes(b"")
    assert table_files(str(tmp_path)) == [str(tmp_path / "data.parquet")]


def test_scan_table_reads_the_parts_one_after_the_other(tmp_path: Path) -> None:
    with pytest.raises(NodeError) as caught:
        scan_table(str(tmp_path))
    assert str(caught.value) == f"no table in {tmp_path} (neither data.parquet nor parts/part-*.parquet)"
    frame = pl.DataFrame({"k": [4, 1, 3, 2, 8, 6], "v": ["a", "b", "c", "d", "e", "f"]})
    writer = PartWriter(str(tmp_path), 2, ["k"])
    for index, part in enumerate(split(frame, ["k"], 2)):
        writer.write(index, part)
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert scan_table(str(tmp_path)).collect().equals(pl.concat(list(split(frame, ["k"], 2))))
    assert writer.rows == 6 and writer.columns == [{"name": "k", "type": "int64"}, {"name": "v", "type": "str"}]


def test_every_part_must_have_the_first_parts_columns(tmp_path: Path) -> None:
    writer = PartWriter(str(tmp_path), 2, ["k"])
    writer.write(0, pl.DataFrame({"k": [1], "v": [1.5]}))
    with pytest.raises(NodeError) as caught:
        writer.write(1, pl.DataFrame({"k": [2], "v": ["x"]}))
    assert str(caught.value) == (
        "part 1 has columns [{'name': 'k', 'type': 'int64'}, {'name': 'v', 'type': 'str'}], part 0 has "
        "[{'name': 'k', 'type': 'int64'}, {'name': 'v', 'type': 'float64'}]: every part must have the same "
        "columns and types")


def test_a_tables_record_changes_with_a_column_in_any_part_and_only_that_column(tmp_path: Path) -> None:
    from mlmake.core.kind import Task

    def record(frame: pl.DataFrame, folder: str) -> dict[str, str]:
        writer = PartWriter(str(tmp_path / folder), 3, ["k"])
        for index, part in enumerate(split(frame, ["k"], 3)):
            writer.write(index, part)
        task = Task(address="features.f", kind="features", root=str(tmp_path), config={}, upstream={},
                    staging={"build/features/f": str(tmp_path / folder)})
        return dict(writer.record(task)["build/features/f"]["columns"])

    frame = pl.DataFrame({"k": list(range(20)), "v": [float(i) for i in range(20)], "w": ["x"] * 20})
    before = record(frame, "a")
    after = record(frame.with_columns(pl.when(pl.col("k") == 13).then(-1.0).otherwise(pl.col("v")).alias("v")), "b")
    assert sorted(n for n in before if before[n] != after[n]) == ["v"]
    assert record(frame, "c") == before


def test_an_upstream_cut_the_same_way_is_read_part_by_part(tmp_path: Path) -> None:
    for i in range(3):
        write_parquet(pl.DataFrame({"k": [i]}), str(tmp_path / "x.parquet"))
        (tmp_path / part_file(i)).parent.mkdir(exist_ok=True)
        (tmp_path / "x.parquet").rename(tmp_path / part_file(i))
    write_json(str(tmp_path / "schema.json"), {"key": ["k"], "partitions": {"by": ["k"], "count": 3}})
    assert co_partitioned(str(tmp_path), ["k"], 3) == table_files(str(tmp_path))
    assert co_partitioned(str(tmp_path), ["k"], 4) == []
    assert co_partitioned(str(tmp_path), ["k", "j"], 3) == []
    assert read_json(str(tmp_path / "schema.json"))["partitions"] == {"by": ["k"], "count": 3}
