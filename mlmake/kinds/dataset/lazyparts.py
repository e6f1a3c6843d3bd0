"""A dataset of `partitions: N` read part by part, so memory holds one part of the table.

For part i the source is scanned (never read whole) and only its rows whose `partition_by`
values (else all values) fall in part i are read, in file order; the contract is checked on the
part, and the part written. The rules that span the table are checked after: `unique` on the
written parts (those columns alone), `rows` on the total. This path writes exactly what
recipe.py writes from the whole table (the same rows in the same parts, in the same order).

It only ever succeeds: anything it cannot decide alone — a broken contract, a value that does
not parse, a `leakage` check (a whole-table outcome), a row whose part changes once its values
are cast (the part is picked on the values as read) — falls back to recipe.py's whole-table
read, which reports the problem exactly as for a table in one file."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError
from mlmake.core.kind import Result, Task
from mlmake.ml.parts import PARTITIONS, PartWriter, described, in_part
from mlmake.ml.tables import PARTS_DIR, collect, log_line, output_dir, scan_table, write_json

if TYPE_CHECKING:
    import polars as pl


class _Whole(Exception):
    """This table must be read whole (see the module's docstring)."""


def run_parts(task: Task, schema: dict[str, dict[str, Any]]) -> Result | None:
    """Build the dataset part by part; None when it must be read whole (nothing left written)."""
    import polars as pl

    config = task.config
    if any(check.get("leakage") is not None for check in config.get("checks") or []):
        return None
    out = output_dir(task)
    try:
        return _build(task, out, schema)
    except (_Whole, NodeError, OSError, pl.exceptions.PolarsError) as exc:
        shutil.rmtree(os.path.join(out, PARTS_DIR), ignore_errors=True)
        log_line(task.log, f"read whole: {exc}")
        return None


def _build(task: Task, out: str, schema: dict[str, dict[str, Any]]) -> Result:
    from mlmake.kinds.dataset.recipe import check_types, contract_of, table_checks

    config, parts = task.config, int(task.config["partitions"])
    scan = _source(task.root, config, schema)
    names = scan.collect_schema().names()
    by = [str(c) for c in config.get("partition_by") or []] or names
    if not set(by) <= set(names) or (config.get("timestamp") and config["timestamp"] not in names):
        raise _Whole("a column named in the file is missing")
    writer = PartWriter(out, parts, [])
    empty: pl.DataFrame | None = None
    for index in range(parts):
        frame, problems = check_types(collect(scan.filter(in_part(by, parts, index))), schema)
        if problems or frame.filter(~in_part(by, parts, index)).height:
            raise _Whole(f"part {index}: {problems[0] if problems else 'a row changes part once cast'}")
        writer.write(index, frame)
        empty = frame.clear() if empty is None else empty
    assert empty is not None  # partitions >= 1
    checks, failed = table_checks(empty, config.get("checks") or [], rows=writer.rows)
    if failed or not _unique(out, schema):
        raise _Whole(failed[0] if failed else "a unique column repeats across parts")
    contract = contract_of(config, empty, schema, checks) | {"rows": writer.rows, PARTITIONS: described(by, parts)}
    write_json(os.path.join(out, "contract.json"), contract)
    log_line(task.log, f"{config['path']}: {writer.rows} rows, {writer.width()} columns, contract holds; "
                       f"read and written in {parts} parts under {PARTS_DIR}/, by {', '.join(by)}")
    return Result(metrics={"rows": writer.rows, "columns": writer.width()}, tables=writer.record(task))


def _source(root: str, config: dict[str, Any], schema: dict[str, Any]) -> pl.LazyFrame:
    """The source as a lazy scan, read as recipe.py's first attempt reads it."""
    from mlmake.kinds.dataset.contract import read_types
    from mlmake.kinds.dataset.recipe import scan_csv, scan_source

    path, fmt = str(config["path"]), str(config["format"])
    full = os.path.join(root, path)
    if not os.path.exists(full):
        raise _Whole(f"no file {path}")
    nulls = list(config.get("null_values") or [])
    if fmt == "csv" and schema:
        return scan_csv(full, nulls, read_types(schema))
    return scan_source(full, fmt, schema, nulls)


def _unique(out: str, schema: dict[str, dict[str, Any]]) -> bool:
    """Whether every `unique` column holds each value once across the parts (nulls aside)."""
    import polars as pl

    columns = [name for name, spec in schema.items() if spec.get("unique")]
    if not columns:
        return True
    repeats = collect(scan_table(out).select(
        [(pl.col(c).is_duplicated() & pl.col(c).is_not_null()).any() for c in columns]))
    return not any(repeats.row(0))
