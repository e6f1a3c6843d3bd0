"""The dataset recipe: read a raw table, check its contract, write a parquet snapshot (see dataset.py)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError, did_you_mean
from mlmake.core.gates import show_number
from mlmake.core.kind import TABLE_FILE, Result, Task
from mlmake.kinds.dataset.contract import check_columns, delimiter_problem, read_types
from mlmake.ml.parts import PARTITIONS, PartWriter, described, split
from mlmake.ml.tables import (
    PARTS_DIR,
    collect,
    columns_of,
    first_line,
    holds,
    log_line,
    output_dir,
    parse_comparison,
    table_record,
    write_json,
    write_parquet,
)

if TYPE_CHECKING:
    import polars as pl

CONTRACT_FILE = "contract.json"
INFER_ROWS = 10_000  # rows read to guess the types of undeclared columns


def run(task: Task) -> Result:
    """Read the file, check its contract, write data.parquet and contract.json."""
    config = task.config
    schema: dict[str, dict[str, Any]] = config.get("schema") or {}
    if config.get("partitions"):
        from mlmake.kinds.dataset.lazyparts import run_parts

        done = run_parts(task, schema)
        if done is not None:
            return done
    raw = _read(task.root, config, schema)
    frame, problems = check_types(raw, schema)
    checks, failed = table_checks(frame, config.get("checks") or [])
    problems += failed
    if config.get("timestamp") and config["timestamp"] not in frame.columns:
        problems.append(f"timestamp: no column '{config['timestamp']}'; the table has {frame.columns}")
    if problems:
        raise NodeError(_report(config["path"], problems))
    out = output_dir(task)
    by, parts = _partition_by(config, frame), config.get("partitions")
    tables = _write(task, out, frame, parts, by)
    contract = contract_of(config, frame, schema, checks)
    if parts:
        contract[PARTITIONS] = described(by or frame.columns, parts)
    write_json(os.path.join(out, CONTRACT_FILE), contract)
    log_line(task.log, f"{config['path']}: {frame.height} rows, {frame.width} columns, contract holds")
    return Result(metrics={"rows": frame.height, "columns": frame.width}, tables=tables)


def _write(task: Task, out: str, frame: pl.DataFrame, partitions: int | None,
           by: list[str]) -> dict[str, dict[str, Any]]:
    """data.parquet, or with `partitions: N` its N parts (rows by a hash of their `partition_by`
    values, else of all their values; each part in file order); the table's column record."""
    if not partitions:
        write_parquet(frame, os.path.join(out, TABLE_FILE))
        return table_record(task, frame, [])
    writer = PartWriter(out, partitions, [])
    for index, part in enumerate(split(frame, by, partitions)):
        writer.write(index, part)
    log_line(task.log, f"written in {partitions} parts under {PARTS_DIR}/, by {', '.join(by or ['all columns'])}")
    return writer.record(task)


def _partition_by(config: dict[str, Any], frame: pl.DataFrame) -> list[str]:
    """The columns that pick a row's part ([]: all); NodeError for one the table lacks."""
    by = [str(c) for c in config.get("partition_by") or []]
    problems = [f"partition_by: {_missing(c, frame.columns)}" for c in by if c not in frame.columns]
    if problems:
        raise NodeError(_report(str(config["path"]), problems))
    return by


def _read(root: str, config: dict[str, Any], schema: dict[str, Any]) -> pl.DataFrame:
    """The raw table. Declared number and bool columns of a CSV file are read as such; when one
    of them does not parse, and for the other declared columns of text formats, they are read as
    text, so that the contract casts them and names the values that do not convert."""
    import polars as pl

    path, fmt = str(config["path"]), str(config["format"])
    full = os.path.join(root, path)
    if not os.path.exists(full):
        if os.path.exists(full + ".dvc"):  # DVC-tracked data not fetched into this workspace
            raise NodeError(f"data file '{path}' is tracked by DVC ({path}.dvc) but not in this workspace: "
                            "run `mlmake pull` (or `mlmake build --pull`) to fetch it")
        raise NodeError(f"data file '{path}' not found (looked in {root})")
    nulls = list(config.get("null_values") or [])
    try:
        if fmt == "csv" and schema:
            try:
                return collect(scan_csv(full, nulls, read_types(schema)))
            except pl.exceptions.PolarsError:
                pass  # a value that does not parse: read it as text below, and let the contract name it
        return collect(scan_source(full, fmt, schema, nulls))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise NodeError(f"cannot read '{path}' as {fmt}: {first_line(exc)}") from None


def scan_csv(full: str, nulls: list[str], types: dict[str, pl.DataType]) -> pl.LazyFrame:
    """A CSV file with the given types for those of its columns it has."""
    import polars as pl

    options: dict[str, Any] = {"infer_schema_length": INFER_ROWS, "null_values": nulls or None}
    present = pl.scan_csv(full, **options).collect_schema().names()
    return pl.scan_csv(full, schema_overrides={c: t for c, t in types.items() if c in present}, **options)


def scan_source(full: str, fmt: str, schema: dict[str, Any], nulls: list[str]) -> pl.LazyFrame:
    import polars as pl

    if fmt == "parquet":
        return pl.scan_parquet(full)
    if fmt == "ndjson":
        present = pl.scan_ndjson(full, infer_schema_length=INFER_ROWS).collect_schema().names()
        text = {c: pl.String for c in schema if c in present}
        return pl.scan_ndjson(full, infer_schema_length=INFER_ROWS, schema_overrides=text)
    return scan_csv(full, nulls, {c: pl.String() for c in schema})


def check_types(raw: pl.DataFrame, schema: dict[str, dict[str, Any]]) -> tuple[pl.DataFrame, list[str]]:
    """The table with declared columns cast, and every contract violation."""
    problems = [_missing(c, raw.columns) for c in schema if c not in raw.columns]
    if problems and delimiter_problem(raw.columns):
        problems = [delimiter_problem(raw.columns)]
    cast, found = check_columns(raw, schema)
    return raw.with_columns(cast), problems + found


def _missing(column: str, actual: list[str]) -> str:
    hint = did_you_mean(column, actual)
    return f"column '{column}': missing; the file has columns {actual}" + (f" ({hint})" if hint else "")


def table_checks(frame: pl.DataFrame, checks: list[dict[str, Any]],
                  rows: int | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Each check with its outcome, and a line for each that failed (ROWS: the table's, when
    FRAME is not the whole table)."""
    from mlmake.ml.pointintime import leakage

    done: list[dict[str, Any]] = []
    failed: list[str] = []
    rows = frame.height if rows is None else rows
    for check in checks:
        if check.get("leakage") is not None:
            outcome, line = leakage(frame, check["leakage"])
            done.append(outcome)
            failed += [line] if line else []
        if check.get("rows") is None:
            continue
        op, limit = parse_comparison(str(check["rows"]))
        passed = holds(rows, op, limit)
        done.append({"rows": f"{op} {show_number(limit)}", "value": rows, "passed": passed})
        if not passed:
            failed.append(f"check rows {op} {show_number(limit)}: the table has {rows} rows")
    return done, failed


def _report(path: str, problems: list[str]) -> str:
    n = len(problems)
    lines = "\n".join(f"  {p}" for p in problems)
    return f"'{path}' breaks its contract ({n} problem{'s' if n != 1 else ''}):\n{lines}"


def contract_of(config: dict[str, Any], frame: pl.DataFrame, schema: dict[str, Any],
              checks: list[dict[str, Any]]) -> dict[str, Any]:
    columns = [dict(c, declared=c["name"] in schema) for c in columns_of(frame)]
    return {"source": config["path"], "format": config["format"], "rows": frame.height,
            "columns": columns, "checks": checks}
