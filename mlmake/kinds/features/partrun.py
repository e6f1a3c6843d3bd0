"""A feature set of `partitions: N`, computed lazily: one part at a time, so memory holds a part
and never the whole table (ml/parts.py says how rows are assigned to parts).

For part i, each input that has the key columns is scanned (never read whole) and only its rows
whose key falls in part i are read; an input without them (a small lookup table) is read whole
once and given to every part. The query then runs on those rows as it runs on whole tables
(in-memory engine, rows in stored order: the same bytes on every run and thread count), its
key is checked, and every row it returns must have its key in part i: a query that computes a
key's row from other keys' rows (a rank over the whole table, say) cannot be split so, and says
so instead of writing wrong rows."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mlmake.core.columns import ColumnUse
from mlmake.core.errors import NodeError, did_you_mean
from mlmake.core.kind import Result, Task
from mlmake.ml.parts import PARTITIONS, PartWriter, co_partitioned, described, in_part
from mlmake.ml.tables import (
    PARTS_DIR,
    SCHEMA_FILE,
    collect,
    examples,
    first_line,
    log_line,
    output_dir,
    restrict,
    upstream_address,
    upstream_folder,
    upstream_table,
    write_json,
)

if TYPE_CHECKING:
    import polars as pl


def run_parts(task: Task, names: list[str], use: ColumnUse | None, key: list[str], parts: int) -> Result:
    """Compute and write the feature table part by part; its schema.json as for one table."""
    addresses = {n: upstream_address(task, n) for n in names}
    scans = {n: restrict(upstream_table(task, address), use) for n, address in addresses.items()}
    split = _split_inputs(scans, key)
    whole = {n: collect(scan).lazy() for n, scan in scans.items() if n not in split}
    same = {n: co_partitioned(upstream_folder(task, addresses[n]), key, parts) for n in split}
    writer = PartWriter(output_dir(task), parts, key)
    for index in range(parts):
        frames = {n: _rows_of_part(scans[n], same[n], key, (index, parts)) if n in split else whole[n]
                  for n in names}
        writer.write(index, _part(task, frames, names, key, (index, parts)))
    write_json(os.path.join(writer.folder, SCHEMA_FILE), {"columns": writer.columns, "key": key,
                                                          "rows": writer.rows, "from": names,
                                                          PARTITIONS: described(key, parts)})
    log_line(task.log, f"{writer.rows} rows, {writer.width()} columns from {', '.join(names)}, "
                       f"in {parts} parts under {PARTS_DIR}/ (split: {', '.join(sorted(split))}; "
                       f"read part by part: {', '.join(sorted(n for n in split if same[n])) or 'none'})")
    return Result(metrics={"rows": writer.rows, "columns": writer.width()}, tables=writer.record(task))


def _split_inputs(scans: dict[str, pl.LazyFrame], key: list[str]) -> set[str]:
    """The inputs that have every key column (read part by part); NodeError when none has."""
    columns = {n: scan.collect_schema().names() for n, scan in scans.items()}
    split = {n for n, names in columns.items() if set(key) <= set(names)}
    if split:
        return split
    lines = []
    for name, names in columns.items():
        absent = [k for k in key if k not in names]
        hints = [h for h in (did_you_mean(k, names) for k in absent) if h]
        lines.append(f"{name} has {names}" + (f" ({'; '.join(hints)})" if hints else ""))
    raise NodeError(f"key ({', '.join(key)}): no input has the key column{'s' if len(key) > 1 else ''} "
                    f"to split the rows into parts by; {'; '.join(lines)}")


def _rows_of_part(scan: pl.LazyFrame, files: list[str], key: list[str], where: tuple[int, int]) -> pl.LazyFrame:
    """The rows of an input whose key falls in part INDEX, in stored order: of an input cut the
    same way (FILES), its part INDEX alone; of any other, its files scanned and filtered."""
    import polars as pl

    index, parts = where
    try:
        if files:
            part = pl.scan_parquet(files[index], hive_partitioning=False)
            return collect(part.select(scan.collect_schema().names())).lazy()
        return collect(scan.filter(in_part(key, parts, index))).lazy()
    except pl.exceptions.PolarsError as exc:
        raise NodeError(f"cannot split an input into parts by ({', '.join(key)}): {first_line(exc)}") from None


def _part(task: Task, frames: dict[str, pl.LazyFrame], names: list[str], key: list[str],
          where: tuple[int, int]) -> pl.DataFrame:
    """One part of the feature table, computed as a whole table is (recipe.py), its rows checked."""
    from mlmake.kinds.features.recipe import compute

    frame = compute(task, frames, names, key)
    _check_strays(frame, key, where)
    return frame


def _check_strays(frame: pl.DataFrame, key: list[str], where: tuple[int, int]) -> None:
    """Every row of part INDEX must have its key in it (see the module's docstring)."""
    index, parts = where
    strays = frame.filter(~in_part(key, parts, index)).select(key)
    if strays.height:
        values = [r[0] if len(key) == 1 else r for r in strays.head(5).rows()]
        raise NodeError(f"part {index} of {parts}: the query returned {strays.height} row"
                        f"{'s' if strays.height != 1 else ''} whose key belongs to another part, e.g. "
                        f"{examples(values)}: in parts, each key's row must come from that key's rows "
                        "alone (joins and GROUP BY on the key); drop `partitions:` for this query")
