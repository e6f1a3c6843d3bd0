"""Helpers the table kinds share: finding an upstream table, reading, computing and
writing tables deterministically, JSON files, and `OP VALUE` comparisons.

Reproducible tables: the same inputs give the same bytes on any run, thread count and
`-j`. polars' streaming engine (the default) sums floats in the order its morsels
arrive, and its partitioned group-by adds partial sums per thread, so `SUM(x)` over a
join could differ in the last bit between runs. Tables here are read whole, as one
chunk in their stored order; queries run on the in-memory engine with the partitioned
group-by off (its result depends on the thread count); written with one configuration.
A table is one data.parquet or, with `partitions: N`, parts/part-NNNNN.parquet (ml/parts.py):
every reader goes through table_files / scan_table, which take either.

polars is imported inside functions so importing a kind stays cheap."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mlmake.core.columns import COLUMNS, LAYOUT, ColumnUse, select
from mlmake.core.errors import NodeError, did_you_mean
from mlmake.core.gates import OPERATORS, parse_gate
from mlmake.core.kind import TABLE_FILE, Task

if TYPE_CHECKING:
    import polars as pl

TABLE_SECTIONS = ("features", "datasets")  # a bare name is looked up in this order
SCHEMA_FILE = "schema.json"  # the feature set's columns and key, beside its table
NO_PARTITION = "POLARS_NO_PARTITION"
CHECK_DETERMINISM = "MLMAKE_CHECK_DETERMINISM"  # set by `build --check-determinism`, seen by every worker
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 3, "statistics": True,
                                   "row_group_size": 1 << 17}
PARTS_DIR = "parts"  # a table of `partitions: N` is parts/part-00000.parquet … instead of data.parquet
PART_NAME = re.compile(r"part-\d{5}\.parquet")



# --- comparisons -------------------------------------------------------------


def parse_comparison(text: str) -> tuple[str, float]:
    """`">= 0.8"` → (">=", 0.8); NodeError when the text is not `OP NUMBER` (the gates' syntax
    without a baseline: a row check has none)."""
    try:
        gate = parse_gate("rows", text)
    except ValueError:
        gate = None
    if gate is None or gate.relative:
        raise NodeError(f"'{text}' is not a comparison like '>= 0.8'")
    return gate.op, gate.value


def holds(value: float, op: str, threshold: float) -> bool:
    """Whether `value OP threshold`."""
    return OPERATORS[op](value, threshold)


# --- upstream tables ----------------------------------------------------------


def upstream_address(task: Task, name: str) -> str:
    """The upstream node a bare table name refers to, preferring feature sets."""
    for section in TABLE_SECTIONS:
        address = f"{section}.{name}"
        if address in task.upstream:
            return address
    known = sorted(a.partition(".")[2] for a in task.upstream)
    hint = did_you_mean(name, known)
    raise NodeError(f"input '{name}' is not an upstream table of {task.address} (upstream: {known})"
                    + (f"; {hint}" if hint else ""))


def upstream_folder(task: Task, address: str) -> str:
    """The absolute folder of an upstream table node."""
    outputs = task.upstream.get(address) or []
    if not outputs:
        raise NodeError(f"upstream {address} declares no output folder")
    return os.path.join(task.root, outputs[0])


def scan_upstream(task: Task, address: str) -> pl.LazyFrame:
    """An upstream node's table, read whole as one chunk in its stored order (see the module's
    docstring), as a LazyFrame; NodeError when it was not built. A feature set in parts is sorted
    by its key, so its readers see the rows in the order of the same table in one file."""
    frame = collect(upstream_table(task, address))
    key = upstream_key(task, address)
    if key and not os.path.isfile(os.path.join(upstream_folder(task, address), TABLE_FILE)):
        frame = sort_frame(frame, key)
    return frame.lazy()


def upstream_table(task: Task, address: str) -> pl.LazyFrame:
    """An upstream node's table as a lazy scan, nothing read yet; NodeError when it was not built."""
    folder = upstream_folder(task, address)
    if not table_files(folder):
        path = os.path.join(folder, TABLE_FILE)
        raise NodeError(f"upstream {address} has no table at {os.path.relpath(path, task.root)}; build it first")
    return scan_table(folder)


def table_files(folder: str) -> list[str]:
    """The parquet files of a table folder: its data.parquet, else its parts in order; [] for neither."""
    single = os.path.join(folder, TABLE_FILE)
    if os.path.isfile(single):
        return [single]
    parts = os.path.join(folder, PARTS_DIR)
    names = sorted(os.listdir(parts)) if os.path.isdir(parts) else []
    return [os.path.join(parts, n) for n in names if PART_NAME.fullmatch(n)]


def scan_table(folder: str) -> pl.LazyFrame:
    """A table folder in either form (one data.parquet, or parts) as one lazy scan, rows in
    stored order (parts one after the other); NodeError when the folder holds no table."""
    import polars as pl

    files = table_files(folder)
    if not files:
        raise NodeError(f"no table in {folder} (neither {TABLE_FILE} nor {PARTS_DIR}/part-*.parquet)")
    return pl.scan_parquet(files, hive_partitioning=False)


def collect(frame: pl.LazyFrame) -> pl.DataFrame:
    """Compute a query so that its result does not depend on threads or scheduling (see the
    module's docstring): the in-memory engine, no partitioned group-by, one chunk."""
    os.environ[NO_PARTITION] = "1"  # polars reads it at each group-by
    return frame.collect(engine="in-memory").rechunk()


def upstream_key(task: Task, address: str) -> list[str]:
    """The key a feature set declared in its schema.json, or [] (datasets have none)."""
    path = os.path.join(upstream_folder(task, address), SCHEMA_FILE)
    if not os.path.isfile(path):
        return []
    key = read_json(path).get("key") or []
    return [str(k) for k in key]


# --- frames ---------------------------------------------------------------------


def sort_frame(frame: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """Rows in a fixed order: by the key, else by every column (GROUP BY order is not fixed)."""
    by = key or frame.columns
    if not by or frame.height < 2:
        return frame
    return frame.sort(by, nulls_last=True, maintain_order=True)


# --- determinism -------------------------------------------------------------------


@contextlib.contextmanager
def checking_determinism(on: bool) -> Iterator[None]:
    """While it lasts (and in the workers started meanwhile), recipes compute their tables twice."""
    if not on:
        yield
        return
    previous = os.environ.get(CHECK_DETERMINISM)
    os.environ[CHECK_DETERMINISM] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[CHECK_DETERMINISM]
        else:
            os.environ[CHECK_DETERMINISM] = previous


def is_checking_determinism() -> bool:
    return os.environ.get(CHECK_DETERMINISM, "") not in ("", "0")


def difference(first: pl.DataFrame, second: pl.DataFrame) -> str:
    """How two computations of one table differ ('' when they are equal, nulls and NaNs included)."""
    if first.schema != second.schema:
        return f"columns {columns_of(first)} vs {columns_of(second)}"
    if first.height != second.height:
        return f"{first.height} vs {second.height} rows"
    for name in first.columns:
        a, b = first[name], second[name]
        if a.dtype.is_nested():  # no element-wise comparison: the column as a whole
            if not a.equals(b):
                return f"column '{name}' differs"
            continue
        same = a.eq_missing(b)
        if a.dtype.is_float():
            same = same | (a.is_nan() & b.is_nan()).fill_null(False)
        rows = (~same).arg_true()
        if len(rows):
            i = int(rows[0])
            return (f"column '{name}' differs in {len(rows)} row{'s' if len(rows) != 1 else ''}, "
                    f"e.g. row {i}: {_plain(a[i])!r} vs {_plain(b[i])!r}")
    return ""


def dtype_name(dtype: pl.DataType) -> str:
    """A column type in the words of the schema: int64, str, category, date …"""
    import polars as pl

    if dtype == pl.String:
        return "str"
    if isinstance(dtype, (pl.Categorical, pl.Enum)):
        return "category"
    if dtype == pl.Boolean:
        return "bool"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    return str(dtype).lower()


def write_parquet(frame: pl.DataFrame, path: str) -> None:
    """Write a table with fixed options, as one chunk (pages follow chunks), so equal frames
    give equal bytes; polars writes no time stamp."""
    frame.rechunk().write_parquet(path, **PARQUET_OPTIONS)


def table_record(task: Task, frame: pl.DataFrame, key: list[str]) -> dict[str, dict[str, Any]]:
    """The column record of a kind's one table output (core.columns): a hash per column, of
    its type and values as written (each column alone, with the table's parquet options, so
    the hash depends on nothing else of the table), and a hash of its layout."""
    columns = {name: column_hash(frame.select(name)) for name in frame.columns}
    layout = hashlib.md5(json.dumps({"columns": frame.columns, "key": key}).encode()).hexdigest()
    return {next(iter(task.staging)): {COLUMNS: columns, LAYOUT: layout}}


def column_hash(column: pl.DataFrame) -> str:
    buffer = io.BytesIO()
    column.rechunk().write_parquet(buffer, **PARQUET_OPTIONS)
    return hashlib.md5(buffer.getvalue()).hexdigest()


def restrict(frame: pl.LazyFrame, use: ColumnUse | None) -> pl.LazyFrame:
    """Only the columns a node declared it reads (core.columns), so that a column its
    analysis missed fails the query instead of being read unseen by its fingerprint."""
    chosen = select(use, frame.collect_schema().names()) if use is not None else None
    return frame if chosen is None else frame.select(chosen)


def columns_of(frame: pl.DataFrame) -> list[dict[str, str]]:
    """[{"name", "type"}] of a frame, in column order."""
    return [{"name": n, "type": dtype_name(t)} for n, t in frame.schema.items()]


# --- files ------------------------------------------------------------------------


def write_json(path: str, data: Any) -> None:
    """Pretty, sorted JSON ending with a newline: diff friendly and byte-stable."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, allow_nan=False, default=str)
        fh.write("\n")


def read_json(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    return data if isinstance(data, dict) else {}


def log_line(log: str, text: str) -> None:
    """Append a progress line to a node's log file, if it has one."""
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(text.rstrip("\n") + "\n")


def output_dir(task: Task) -> str:
    """The staging folder of a kind with a single folder output."""
    if len(task.staging) != 1:
        raise NodeError(f"{task.address} expects one output folder, got {sorted(task.staging)}")
    path = next(iter(task.staging.values()))
    os.makedirs(path, exist_ok=True)
    return path


def examples(values: list[Any], limit: int = 5) -> str:
    """`[130, 150, 999]`: the first few values, quoted the way Python shows them."""
    return "[" + ", ".join(repr(_plain(v)) for v in values[:limit]) + "]"


def _plain(value: Any) -> Any:
    # dates and decimals read better as text than as datetime.date(2024, 1, 2)
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (polars adds pages of context)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
