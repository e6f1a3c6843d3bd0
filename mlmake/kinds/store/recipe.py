"""The store recipe: the feature set's sql over the store's sources, its key checked, written with
the lookup tables raw rows need (ml/storefolder.py)."""

from __future__ import annotations

from mlmake.core.errors import NodeError
from mlmake.core.kind import Result, Task
from mlmake.kinds.features.recipe import key_problems, run_sql
from mlmake.kinds.target import raw_note
from mlmake.ml.storefolder import as_tables, write_store
from mlmake.ml.tables import log_line, output_dir, scan_upstream, sort_frame


def run(task: Task) -> Result:
    """Materialize the store; its rows and whether raw rows can be served are its metrics."""
    tables = as_tables(task)
    feature = tables.config["features"]
    key = [str(k) for k in feature["key"]]
    frames = {str(n): scan_upstream(tables, f"datasets.{n}") for n in feature["from"]}
    try:
        frame = run_sql(str(feature["sql"]), frames)
    except NodeError as exc:  # say what each table was read from: `sources` may have renamed it
        read = ", ".join(f"{t} from datasets.{d}" for t, d in tables.config["sources"].items())
        raise NodeError(f"{exc} (the store reads {read})") from None
    problems = key_problems(frame, key)
    if problems:
        raise NodeError(f"feature set {feature['name']} over the store's sources: " + "; ".join(problems))
    info = write_store(tables, sort_frame(frame, key), output_dir(task))
    raw = raw_note({"request": info["request"]})
    log_line(task.log, f"raw rows: {raw}")
    return Result(metrics={"rows": info["rows"], "raw_rows": raw})
