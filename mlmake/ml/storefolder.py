"""The folder of a `store` node (kinds/store/), and how a serving bundle copies from it.

    store.parquet           the feature set's table over the store's sources, every column, sorted by key
    request.json, request.<table>.parquet, lookup.<table>.parquet
                            what raw rows need (ml/requestbundle.py), from the same sources
    store.json              the feature set, key, sources, rows, the request entry and the hash of
                            every other file; written last

A bundle (ml/bundle.py) takes the key and its model's inputs from store.parquet and the request
files as they are, adding its model's target to request.json (a client need not send it)."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError
from mlmake.ml.online import REQUEST_FILE
from mlmake.ml.requestbundle import write_request
from mlmake.ml.tables import columns_of, log_line, read_json, upstream_folder, write_json, write_parquet

if TYPE_CHECKING:
    import polars as pl

    from mlmake.core.kind import Task

TABLE = "store.parquet"
INFO = "store.json"


def as_tables(task: Task) -> Task:
    """The task with each dataset the store reads filed under the feature set's name for it
    (`datasets.events` → the folder of `datasets.live_events`), as the feature set's sql names them."""
    sources: dict[str, str] = task.config["sources"]
    upstream = {f"datasets.{table}": task.upstream[f"datasets.{dataset}"] for table, dataset in sources.items()}
    return replace(task, upstream=upstream)


def write_store(task: Task, frame: pl.DataFrame, out: str) -> dict[str, Any]:
    """Fill a store's folder with its table and the request files; returns store.json's content."""
    from mlmake.ml.bundle import hash_file

    feature = task.config["features"]
    write_parquet(frame, os.path.join(out, TABLE))
    request, written = write_request(task, {}, out)
    info = {"features": feature["name"], "key": feature["key"], "sources": task.config["sources"],
            "rows": frame.height, "columns": columns_of(frame), "request": request}
    info["files"] = {name: hash_file(os.path.join(out, name)) for name in [TABLE, *written]}
    write_json(os.path.join(out, INFO), info)
    shown = ", ".join(f"{t} from {d}" for t, d in info["sources"].items())
    log_line(task.log, f"online store of feature set {feature['name']}: {frame.height} rows keyed by "
                       f"{', '.join(feature['key'])} ({shown})")
    return info


def copy_store(task: Task, signature: dict[str, Any], out: str,
               table_file: str) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Copy a bundle's online store and request files from the store node it names: (the
    manifest's "store" entry, its "request" entry, the request files written)."""
    import polars as pl

    address = f"deploy.{task.config['store']}"
    folder = upstream_folder(task, address)
    if not os.path.isfile(os.path.join(folder, INFO)):
        raise NodeError(f"{os.path.relpath(folder, task.root)} holds no {INFO}; build {address} first")
    info = read_json(os.path.join(folder, INFO))
    key = [str(k) for k in signature.get("key") or []]
    if key != info["key"]:
        raise NodeError(f"{address} is keyed by {', '.join(info['key'])}, but model {task.config['model']} by "
                        f"{', '.join(key) or 'nothing'}; rebuild the model")
    names = key + [str(i["name"]) for i in signature["inputs"]]
    frame = pl.read_parquet(os.path.join(folder, TABLE))
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise NodeError(f"the store {address} lacks {', '.join(missing)}, which model {task.config['model']} "
                        "was trained on; rebuild the model")
    write_parquet(frame.select(names), os.path.join(out, table_file))
    store = {"file": table_file, "key": key, "rows": frame.height, "source": address}
    request = dict(info["request"])
    if not request.get("runs"):
        return store, request, []
    target = signature.get("target")
    request["target"] = str(target.get("name")) if isinstance(target, dict) else None
    files = [str(f) for f in request["tables"].values()]
    for name in files:
        shutil.copyfile(os.path.join(folder, name), os.path.join(out, name))
    write_json(os.path.join(out, REQUEST_FILE), request)
    return store, request, [REQUEST_FILE, *files]
