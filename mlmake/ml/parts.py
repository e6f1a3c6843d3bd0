"""Partitioned tables: a table node of `partitions: N` writes parts/part-00000.parquet …
parts/part-{N-1:05d}.parquet instead of data.parquet (readers take either form, see
tables.table_files).

A row's part is a hash of its key columns' values, so the same rows always land in the same
part. The values are hashed as text, so that a key read as int32 in one table and int64 in
another (or as a category) puts equal keys in equal parts; polars promises its hash stable
within one polars version, and the polars version is part of every table node's fingerprint.

A partitioned table's column record (core.columns) hashes each column part by part: the hash
of a column is that of its parts' hashes in order, so it changes exactly when the column's
values (or their parts) change, and no part needs the others in memory."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlmake.core.columns import COLUMNS, LAYOUT
from mlmake.core.errors import NodeError
from mlmake.core.kind import Task
from mlmake.ml.tables import PARTS_DIR, column_hash, columns_of, first_line, write_parquet

if TYPE_CHECKING:
    import polars as pl

PARTITIONS = "partitions"  # in schema.json / contract.json of a table in parts: {"by": [columns], "count": N}
SEED = 20_240_917  # part assignment; changing it moves every row of every partitioned table
NULL = "\x00"  # a missing key value, as text no value is
SEPARATOR = "\x1f"


def part_file(index: int) -> str:
    """The file of part INDEX inside a table folder."""
    return f"{PARTS_DIR}/part-{index:05d}.parquet"


def part_of(key: list[str], parts: int) -> pl.Expr:
    """Each row's part, 0 … parts-1: a hash of its key values as text."""
    import polars as pl

    text = [pl.col(k).cast(pl.String).fill_null(NULL) for k in key]
    return pl.concat_str(text, separator=SEPARATOR).hash(SEED) % parts


def described(by: list[str], count: int) -> dict[str, Any]:
    """How a table is cut into parts, as its schema.json or contract.json records it."""
    return {"by": list(by), "count": count}


def co_partitioned(folder: str, key: list[str], parts: int) -> list[str]:
    """The part files of an upstream table cut by exactly KEY into PARTS parts (so its part i is
    the rows of part i, and reading it replaces filtering the whole table), else []."""
    from mlmake.ml.tables import SCHEMA_FILE, read_json, table_files

    for name in (SCHEMA_FILE, "contract.json"):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and read_json(path).get(PARTITIONS) == described(key, parts):
            files = table_files(folder)
            return files if len(files) == parts else []
    return []


def in_part(key: list[str], parts: int, index: int) -> pl.Expr:
    """Whether a row belongs to part INDEX."""
    return part_of(key, parts) == index


@dataclass(slots=True)
class PartWriter:
    """Writes the parts of one table in order and gathers what its record and schema.json need."""

    folder: str
    parts: int
    key: list[str]
    schema: Any = None  # the first part's polars schema; every part must have it
    columns: list[dict[str, str]] = field(default_factory=list)
    hashes: list[dict[str, str]] = field(default_factory=list)
    rows: int = 0

    def write(self, index: int, frame: pl.DataFrame) -> None:
        """Write part INDEX (the parts come in order)."""
        if self.schema is None:
            self.schema, self.columns = frame.schema, columns_of(frame)
        elif frame.schema != self.schema:
            raise NodeError(f"part {index} has columns {columns_of(frame)}, part 0 has {self.columns}: "
                            "every part must have the same columns and types")
        path = os.path.join(self.folder, part_file(index))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_parquet(frame, path)
        self.hashes.append({name: column_hash(frame.select(name)) for name in frame.columns})
        self.rows += frame.height

    def width(self) -> int:
        return len(self.columns)

    def record(self, task: Task) -> dict[str, dict[str, Any]]:
        """The column record of the table (see the module's docstring)."""
        names = [c["name"] for c in self.columns]
        columns = {n: hashlib.md5("\n".join(h[n] for h in self.hashes).encode()).hexdigest() for n in names}
        layout = hashlib.md5(json.dumps({"columns": names, "key": self.key}).encode()).hexdigest()
        return {next(iter(task.staging)): {COLUMNS: columns, LAYOUT: layout}}


def split(frame: pl.DataFrame, key: list[str], parts: int) -> Iterator[pl.DataFrame]:
    """A table in memory cut into its parts, one at a time (so only one copy of a part is held),
    each keeping the table's row order."""
    import polars as pl

    try:
        index = frame.select(part_of(key or frame.columns, parts)).to_series()
    except pl.exceptions.PolarsError as exc:
        raise NodeError(f"cannot split the table into parts by {key or 'its columns'}: {first_line(exc)}") from None
    for i in range(parts):
        yield frame.filter(index == i)
