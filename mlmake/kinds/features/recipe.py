"""The features recipe: polars SQL or a Python hook over the inputs (see features.py)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError, did_you_mean
from mlmake.core.kind import TABLE_FILE, Result, Task
from mlmake.kinds.features.sqlcolumns import sql_use
from mlmake.ml.tables import (
    SCHEMA_FILE,
    collect,
    columns_of,
    difference,
    examples,
    first_line,
    is_checking_determinism,
    log_line,
    output_dir,
    restrict,
    scan_upstream,
    sort_frame,
    table_record,
    upstream_address,
    write_json,
    write_parquet,
)

if TYPE_CHECKING:
    import polars as pl



def run(task: Task) -> Result:
    """Compute the feature table, check its key, write data.parquet (or its parts) and schema.json."""
    config = task.config
    names = [str(n) for n in config["from"]]
    use = sql_use(str(config["sql"])) if config.get("sql") else None
    key = [str(k) for k in config.get("key") or []]
    if config.get("partitions"):
        from mlmake.kinds.features.partrun import run_parts

        return run_parts(task, names, use, key, int(config["partitions"]))
    frames = {n: restrict(scan_upstream(task, upstream_address(task, n)), use) for n in names}
    frame = compute(task, frames, names, key)
    out = output_dir(task)
    write_parquet(frame, os.path.join(out, TABLE_FILE))
    write_json(os.path.join(out, SCHEMA_FILE), {"columns": columns_of(frame), "key": key, "rows": frame.height,
                                                "from": names})
    log_line(task.log, f"{frame.height} rows, {frame.width} columns from {', '.join(names)}")
    return Result(metrics={"rows": frame.height, "columns": frame.width}, tables=table_record(task, frame, key))


def compute(task: Task, frames: dict[str, pl.LazyFrame], names: list[str], key: list[str]) -> pl.DataFrame:
    """The feature table of these inputs (the whole table's, or one part's): as-of joins, the SQL
    or hook, its key, the leakage check, and under --check-determinism a second computation."""
    frames = with_as_of(task.config, frames, names, key)
    frame = feature_table(task, frames, key)
    check_leakage(task.config, frame)
    if is_checking_determinism():
        check_deterministic(task, frame, feature_table(task, frames, key))
    return frame


def feature_table(task: Task, frames: dict[str, pl.LazyFrame], key: list[str]) -> pl.DataFrame:
    """The feature table from the SQL or the hook, its key checked, its rows in a fixed order."""
    import polars as pl

    config = task.config
    if config.get("sql"):
        frame = run_sql(str(config["sql"]), frames)
    else:
        frame = _collect(_hook(task, str(config["python"]), frames), f"python hook {config['python']}")
    problems = key_problems(frame, key)
    if problems:
        raise NodeError("; ".join(problems))
    try:
        return sort_frame(frame, key)
    except pl.exceptions.PolarsError as exc:
        raise NodeError(f"cannot sort the feature table (declare a key?): {first_line(exc)}") from None


def with_as_of(config: dict[str, Any], frames: dict[str, pl.LazyFrame], names: list[str],
           key: list[str]) -> dict[str, pl.LazyFrame]:
    """The first table with each `as_of` table joined to its rows as of their event time."""
    from mlmake.ml.pointintime import join_as_of

    tables = [str(t) for t in config.get("as_of") or []]
    if not tables:
        return frames
    times = config.get("as_of_times") or {}
    first = names[0]
    for table in [first, *tables]:
        if table not in names or table == first and table in tables:
            raise NodeError(f"as_of {table}: not a table of `from` after the first ({', '.join(names[1:])})")
        if not times.get(table):
            raise NodeError(f"as_of: dataset {table} declares no `timestamp:` column to join on")
    if not key:
        raise NodeError("as_of: the feature set declares no key to join the tables by")
    spine = frames[first]
    for table in tables:
        spine = join_as_of(spine, str(times[first]), frames[table], table, str(times[table]), key)
    return {**frames, first: spine}


def check_leakage(config: dict[str, Any], frame: pl.DataFrame) -> None:
    from mlmake.ml.pointintime import leakage

    lines = [line for check in config.get("checks") or [] if check.get("leakage")
             for line in [leakage(frame, check["leakage"])[1]] if line]
    if lines:
        raise NodeError("the feature table fails its checks:\n" + "\n".join(f"  {line}" for line in lines))


def check_deterministic(task: Task, first: pl.DataFrame, second: pl.DataFrame) -> None:
    """--check-determinism: the two computations must agree."""
    found = difference(first, second)
    what = f"python hook {task.config['python']}" if task.config.get("python") else "the sql"
    if found:
        raise NodeError(f"{what} is not deterministic: two runs gave different tables ({found}); "
                        "seed its randomness and give its rows a fixed order")
    log_line(task.log, f"determinism check: {what} gave the same table twice")


def run_sql(query: str, frames: dict[str, pl.LazyFrame]) -> pl.DataFrame:
    """Run polars SQL with each input registered under its name."""
    import polars as pl

    try:
        lazy = pl.SQLContext(frames, eager=False).execute(query)
        return collect(lazy)
    except pl.exceptions.PolarsError as exc:
        raise NodeError(f"sql failed: {first_line(exc)} (tables: {', '.join(frames)})") from None


def _hook(task: Task, spec: str, frames: dict[str, pl.LazyFrame]) -> object:
    """Call FILE.py:FUNCTION with one LazyFrame per input, by name."""
    with _importable(task.root):
        function = _load_function(task, spec)
        try:
            return function(**frames)
        except Exception as exc:  # the user's code: report it as theirs, with the traceback in the log
            log_line(task.log, traceback.format_exc())
            raise NodeError(f"python hook {spec} raised {type(exc).__name__}: {exc}") from None


@contextlib.contextmanager
def _importable(root: str) -> Iterator[None]:
    """The project root on sys.path while a hook runs, so it can import its own helper modules;
    the project modules it imported are forgotten after, so the next run reads them afresh
    (an edited helper is a reason to rebuild, see codedeps.py: a stale copy must not be used)."""
    sys.path.insert(0, root)
    before = set(sys.modules)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(root)
        inside = os.path.join(os.path.realpath(root), "")
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None)
            if isinstance(file, str) and os.path.realpath(file).startswith(inside):
                del sys.modules[name]


def _load_function(task: Task, spec: str) -> Callable[..., object]:
    file, _, name = spec.rpartition(":")
    path = os.path.join(task.root, file)
    if not os.path.isfile(path):
        raise NodeError(f"python hook file '{file}' not found")
    module = _load_module(task, file, path)
    function = getattr(module, name, None)
    if not callable(function):
        hint = did_you_mean(name, [n for n in vars(module) if callable(getattr(module, n))])
        raise NodeError(f"'{file}' has no function '{name}'" + (f"; {hint}" if hint else ""))
    return function  # type: ignore[no-any-return]


def _load_module(task: Task, file: str, path: str) -> ModuleType:
    # a name per node, so two hooks in files of the same name never share a module
    module_name = "mlmake_hook_" + re.sub(r"\W", "_", task.address)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise NodeError(f"cannot load python hook file '{file}'")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        log_line(task.log, traceback.format_exc())
        raise NodeError(f"python hook file '{file}' failed to load: {type(exc).__name__}: {exc}") from None
    return module


def _collect(result: object, what: str) -> pl.DataFrame:
    import polars as pl

    if not isinstance(result, (pl.LazyFrame, pl.DataFrame)):
        raise NodeError(f"{what} returned {type(result).__name__}, expected a polars LazyFrame or DataFrame")
    try:
        return collect(result.lazy())
    except pl.exceptions.PolarsError as exc:
        raise NodeError(f"{what} failed: {first_line(exc)}") from None


def key_problems(frame: pl.DataFrame, key: list[str]) -> list[str]:
    """Why KEY does not identify the rows of FRAME: missing columns, nulls, duplicates."""
    missing = [k for k in key if k not in frame.columns]
    if missing:
        return [f"key column '{k}' is not in the feature table; its columns are {frame.columns}" for k in missing]
    if not key:
        return []
    problems = []
    for k in key:
        nulls = frame[k].null_count()
        if nulls:
            problems.append(f"key column '{k}' has {nulls} null row{'s' if nulls != 1 else ''}")
    keys = frame.select(key).drop_nulls()
    dupes = keys.filter(keys.is_duplicated())
    if dupes.height:
        shown = dupes.unique(maintain_order=True).head(5).rows()
        values = [r[0] if len(key) == 1 else r for r in shown]
        problems.append(f"key ({', '.join(key)}) is not unique: {dupes.height} rows share a key, "
                        f"e.g. {examples(values)}")
    return problems
