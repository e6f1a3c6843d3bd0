"""The request-time part of a serving bundle (see online.py): decided when the bundle is
built, so a feature set that cannot run per request is said then, with the reason, and never
discovered by a client."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError
from mlmake.ml.online import REQUEST_FILE, RequestFeatures, make_lookup, replay
from mlmake.ml.rowplan import compiled
from mlmake.ml.tables import columns_of, first_line, scan_upstream, write_json, write_parquet

if TYPE_CHECKING:
    import polars as pl

    from mlmake.core.kind import Task


def request_table_file(table: str) -> str:
    return f"request.{table}.parquet"


def lookup_file(table: str) -> str:
    return f"lookup.{table}.parquet"


def write_request(task: Task, signature: dict[str, Any], out: str) -> tuple[dict[str, Any], list[str]]:
    """Write what raw rows need into `out`: (the manifest's "request" entry, the files written).
    The entry is {"runs": false, "why": …} for a feature set that cannot run per request."""
    feature = task.config.get("features")
    if not isinstance(feature, dict):
        return {"runs": False, "why": "the target does not know its model's feature set"}, []
    why, tables = _cannot(task, feature)
    if why:
        return {"runs": False, "why": why}, []
    key = [str(k) for k in feature.get("key") or []]
    first, *others = tables
    request = _frame(task, first)
    lookups = {name: make_lookup(_frame(task, name), key) for name in others}
    features = RequestFeatures(first, str(feature["sql"]), tuple(key), request.schema, lookups)
    try:
        why = replay(features, request)
    except Exception as exc:  # noqa: BLE001 - polars' many errors: any of them means it cannot run per row
        why = f"its sql fails on one row at a time: {first_line(exc)}"
    if why:
        return {"runs": False, "why": why}, []
    files = {first: request_table_file(first)} | {n: lookup_file(n) for n in others}
    write_parquet(request.clear(), os.path.join(out, files[first]))
    for name, lookup in lookups.items():
        write_parquet(lookup.frame, os.path.join(out, files[name]))
    entry = {"runs": True, "table": first, "key": key, "sql": feature["sql"], "target": _target(signature),
             "tables": files, "columns": columns_of(request.clear()),
             "ignores": [c for c in _frame(task, first, whole=True).columns if c not in request.columns],
             "replayed": min(request.height, 200), "compiled": _compiled(features, request)}
    write_json(os.path.join(out, REQUEST_FILE), entry)
    return entry, [REQUEST_FILE, *files.values()]


def _compiled(features: RequestFeatures, request: pl.DataFrame) -> dict[str, Any]:
    """Whether the service may answer with the query compiled for one row (ml/rowplan.py)."""
    try:
        return compiled(features, request)
    except Exception as exc:  # noqa: BLE001 - polars' many errors: the general path stays, and says why
        return {"runs": False, "why": f"checking it failed: {first_line(exc)}"}


def _cannot(task: Task, feature: dict[str, Any]) -> tuple[str, list[str]]:
    """Why the feature set cannot run per request ('' when it may), and its tables."""
    name = feature.get("name")
    tables = [str(t) for t in feature.get("from") or []]
    if not feature.get("sql"):
        return (f"feature set {name} is a python hook, which the bundle does not carry; "
                "send its feature columns, or write it in sql"), tables
    reads = [t for t in tables if f"datasets.{t}" not in task.upstream]
    if reads:
        return (f"feature set {name} reads feature set {reads[0]}, not only datasets: "
                "send its feature columns"), tables
    if len(tables) > 1 and not feature.get("key"):
        return (f"feature set {name} joins {', '.join(tables[1:])} but declares no key to look their rows "
                "up by"), tables
    key = [str(k) for k in feature.get("key") or []]
    for table in tables[1:]:
        missing = [k for k in key if k not in _frame(task, table).columns]
        if missing:
            return f"table {table} has no key column {missing[0]}, so its rows cannot be looked up", tables
    return "", tables


def _frame(task: Task, table: str, *, whole: bool = False) -> pl.DataFrame:
    """A dataset's table, only the columns the feature set's SQL reads (with the key's)."""
    frame = scan_upstream(task, f"datasets.{table}").collect()
    feature = task.config["features"]
    if whole or feature.get("reads") is None:  # the sql may read every column (`*`)
        return frame
    names = set(feature["reads"])
    key = {str(k) for k in feature.get("key") or []}
    chosen = [c for c in frame.columns if c.casefold() in names or c in key]
    if not chosen:
        raise NodeError(f"the sql of feature set {feature.get('name')} reads no column of {table}")
    return frame.select(chosen)


def _target(signature: dict[str, Any]) -> str | None:
    target = signature.get("target")
    return str(target.get("name")) if isinstance(target, dict) else None
