"""A monitor's run: the reference (the model's training table, its input columns, and its held-out
predictions) against the current rows, column by column (mlmake.ml.drift), and the live quality of
the rows whose true label came back through /feedback. Writes report.json; its figures are the
node's metrics, which retraining triggers read."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import polars as pl

from mlmake.core.clock import now_text
from mlmake.core.kind import Result, Task
from mlmake.ml import drift, metrics, predlog
from mlmake.ml.scoring import SIGNATURE_FILE
from mlmake.ml.tables import output_dir, read_json, scan_upstream, upstream_folder, write_json

REPORT_FILE = "report.json"
PREDICTIONS_FILE = "predictions.parquet"


def run(task: Task) -> Result:
    config = task.config
    model = f"models.{config['model']}"
    folder = upstream_folder(task, model)
    signature = read_json(os.path.join(folder, SIGNATURE_FILE))
    inputs: list[dict[str, Any]] = signature["inputs"]
    reference = scan_upstream(task, _reference_table(task, model)).collect()
    current, source = _current(task, inputs)
    columns = [drift.column_drift(i["name"], _values(reference, i["name"]), _values(current, i["name"]),
                                  _numeric(reference, i["name"]))
               for i in inputs if i["name"] in current.columns and _values(current, i["name"]).size]
    drifted = [c.column for c in columns if c.drifted]
    share = round(len(drifted) / len(columns), 6) if columns else None  # no rows: no figure to trigger on
    report: dict[str, Any] = {
        "monitor": task.address, "model": model, "time": now_text(),
        "model_built": model_built(folder), "reference": {"rows": reference.height},
        "current": {**source, "rows": current.height},
        "drift_share": share, "drifted": drifted, "columns": [c.plain() for c in columns],
        "prediction": _prediction_drift(folder, current),
        "live": _live(signature, current),
    }
    write_json(os.path.join(output_dir(task), REPORT_FILE), report)
    figures: dict[str, Any] = {"rows": current.height, "drifted": len(drifted)}
    figures |= {"drift_share": share} if share is not None else {}
    figures |= {f"live.{k}": v for k, v in report["live"].items() if isinstance(v, float)}
    if report["prediction"]:
        figures["prediction_drift"] = report["prediction"]["value"]
    return Result(metrics=figures)


def model_built(folder: str) -> int:
    """When the model's files were written (ns): a report names the build of the model it judged."""
    try:
        return os.stat(os.path.join(folder, SIGNATURE_FILE)).st_mtime_ns
    except OSError:
        return 0


def _reference_table(task: Task, model: str) -> str:
    tables = [a for a in task.upstream if a != model and a.split(".")[0] in ("features", "datasets")]
    current = task.config["current"].get("table")
    ref = [a for a in tables if a.split(".", 1)[1] != current] or tables
    return ref[0]


def _current(task: Task, inputs: list[dict[str, Any]]) -> tuple[pl.DataFrame, dict[str, Any]]:
    if task.config["current"].get("table"):
        address = next(a for a in task.upstream if a.split(".", 1)[1] == task.config["current"]["table"]
                       and a.split(".")[0] in ("features", "datasets"))
        return scan_upstream(task, address).collect(), {"table": address}
    path = os.path.join(task.root, task.config["log_path"])  # none yet: an empty report, every trigger waits
    data = predlog.read(path, inputs, task.config.get("window") or None)
    return data.rows, {"log": task.config["log_path"], "fingerprint": data.fingerprint, "lines": data.lines,
                       "other_fingerprints_lines": data.other}


def _values(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame[column].drop_nulls().to_numpy()


def _numeric(frame: pl.DataFrame, column: str) -> bool:
    return frame.schema[column].is_numeric() and frame.schema[column] != pl.Boolean


def _prediction_drift(folder: str, current: pl.DataFrame) -> dict[str, Any]:
    path = os.path.join(folder, PREDICTIONS_FILE)
    if "_score" not in current.columns or not os.path.isfile(path):
        return {}
    held_out = pl.read_parquet(path)
    column = "probability" if "probability" in held_out.columns else "prediction"
    if not held_out.schema[column].is_numeric() or not current["_score"].drop_nulls().len():
        return {}
    return drift.column_drift("prediction", held_out[column].drop_nulls().to_numpy(),
                              current["_score"].drop_nulls().to_numpy(), True).plain()


def _live(signature: dict[str, Any], current: pl.DataFrame) -> dict[str, Any]:
    """The model's own metrics on the rows whose label came back."""
    if "_label" not in current.columns:
        return {}
    known = current.filter(pl.col("_label").is_not_null() & pl.col("_score").is_not_null())
    out: dict[str, Any] = {"labels": known.height}
    task = signature["task"]
    if not known.height or task == "multiclass":
        return out
    score = known["_score"].to_numpy().astype(float)
    if task == "binary":
        positive = str(signature.get("positive_class")).lower()
        y = (known["_label"].str.to_lowercase() == positive).to_numpy().astype(float)
        names = ["auc", "logloss", "accuracy", "f1"]
    else:
        y = known["_label"].cast(pl.Float64, strict=False).to_numpy()
        names = ["rmse", "mae", "r2"]
    return out | metrics.compute(task, names, y, score)
