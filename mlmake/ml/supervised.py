"""What every supervised model kind shares (the built-in xgboost model and plugins such as
mlmake-sklearn): the upstream table read in a fixed order, its columns described and its rows
split (`prepare`), the signature serving reads, the held-out predictions and the per-slice
metrics, so two model kinds on one feature set train and are judged on the same rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError, did_you_mean
from mlmake.core.gates import SLICES
from mlmake.core.kind import Task
from mlmake.ml.design import (
    Input,
    Target,
    checked_split,
    describe_inputs,
    describe_target,
    design_matrix,
    encode_target,
    split_rows,
)
from mlmake.ml.hashsplit import HASH, held_out
from mlmake.ml.metrics import slice_metrics
from mlmake.ml.tables import first_line, log_line, scan_upstream, sort_frame, upstream_address, upstream_key

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

METRICS_FILE = "metrics.json"
SIGNATURE_FILE = "signature.json"
PREDICTIONS_FILE = "predictions.parquet"


@dataclass(frozen=True)
class Data:
    """The sorted table and everything derived from it for training."""

    frame: pl.DataFrame
    key: list[str]
    target: Target
    inputs: list[Input]
    x: np.ndarray
    y: np.ndarray
    train: np.ndarray
    test: np.ndarray


def prepare(task: Task) -> Data:
    """Read the upstream table in a fixed order, describe its columns and split its rows."""
    config = task.config
    frame, key = _load(task, str(config["features"]))
    check_columns(frame.columns, config)
    target = describe_target(frame[str(config["target"])], str(config["task"]))
    skip = {target.name, *key, *(config.get("drop") or [])}
    inputs = describe_inputs(frame, [c for c in frame.columns if c not in skip])
    y = encode_target(frame[target.name], target)
    train_rows, test_rows = _split(task, frame, key, y if target.classes else None)
    return Data(frame, key, target, inputs, design_matrix(frame, inputs), y, train_rows, test_rows)


def _split(task: Task, frame: pl.DataFrame, key: list[str],
           classes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices: seeded at random (stratified on request), or by hash of each row."""
    import numpy as np

    split = task.config.get("split") or {}
    test_size, seed = float(split.get("test_size", 0.2)), int(split.get("seed", 0))
    if split.get("by") == HASH:
        held = held_out(frame, key or frame.columns, test_size, seed)
        return checked_split(frame.height, int(held.sum()), np.flatnonzero(~held), np.flatnonzero(held))
    if split.get("stratify") and classes is None:
        log_line(task.log, "split.stratify ignored: a regression target has no classes")
    return split_rows(frame.height, test_size, seed, classes if split.get("stratify") else None)


def _load(task: Task, name: str) -> tuple[pl.DataFrame, list[str]]:
    import polars as pl

    address = upstream_address(task, name)
    try:
        frame = scan_upstream(task, address).collect()
    except pl.exceptions.PolarsError as exc:
        raise NodeError(f"cannot read the table of {address}: {first_line(exc)}") from None
    key = [k for k in upstream_key(task, address) if k in frame.columns]
    return sort_frame(frame, key), key


def check_columns(columns: list[str], config: dict[str, Any]) -> None:
    """The target, drop and slice columns must be columns of the table."""
    source = config["features"]
    problems = []
    if config["target"] not in columns:
        hint = did_you_mean(str(config["target"]), columns)
        problems.append(f"target '{config['target']}' is not a column of {source}; its columns are {columns}"
                        + (f" ({hint})" if hint else ""))
    problems += [f"drop: '{c}' is not a column of {source}" for c in config.get("drop") or [] if c not in columns]
    problems += [f"slices: '{c}' is not a column of {source}" for c in config.get("slices") or []
                 if c not in columns]
    if problems:
        raise NodeError("; ".join(problems))


def slices(config: dict[str, Any], data: Data, names: list[str], pred: np.ndarray) -> dict[str, Any]:
    kind, y = str(config["task"]), data.y[data.test]
    return {str(c): slice_metrics(kind, names, y, pred, data.frame[str(c)].gather(data.test).to_list())
            for c in config.get("slices") or []}


def reported(metrics: dict[str, float], by_slice: dict[str, Any]) -> dict[str, Any]:
    """The metrics a model reports to the build (recorded in the lock): the held-out metrics and,
    when it has slices, their metrics per slice under `slices`, which fairness gates read."""
    return {**metrics, SLICES: by_slice} if by_slice else dict(metrics)


def signature(task: Task, data: Data, objective: str) -> dict[str, Any]:
    """What serving needs to rebuild the inputs and read the outputs (`objective` names what
    the model optimises: xgboost's objective, or a plugin's own word)."""
    return signature_of(task, data.key, data.inputs, data.target, objective)


def signature_of(task: Task, key: list[str], inputs: list[Input], target: Target, objective: str) -> dict[str, Any]:
    """signature.json from its parts (engine: dask has no Data: it never holds the table)."""
    signature: dict[str, Any] = {
        "task": task.config["task"], "features": task.config["features"], "key": key,
        "inputs": [i.as_json() for i in inputs], "target": target.as_json(),
        "objective": objective,
    }
    if target.classes:
        signature["classes"] = list(target.classes)
    if len(target.classes) == 2:
        signature["positive_class"] = target.classes[1]  # predictions' "probability" is of this class
    return signature


def predictions(data: Data, pred: np.ndarray) -> pl.DataFrame:
    """The held-out rows: key, target, prediction and class probabilities."""
    return predictions_of(data.frame[data.test].select([*data.key, data.target.name]), data.target, pred)


def predictions_of(rows: pl.DataFrame, target: Target, pred: np.ndarray) -> pl.DataFrame:
    """The held-out rows (key and target) with their prediction and class probabilities."""
    import numpy as np
    import polars as pl

    classes = list(target.classes)
    if not classes:
        return rows.with_columns(pl.Series("prediction", pred.astype(np.float64)))
    labels = pl.Series("prediction", classes)
    if pred.ndim == 1:
        return rows.with_columns(labels.gather((pred >= 0.5).astype(np.int64)),
                                 pl.Series("probability", pred.astype(np.float64)))
    probabilities = [pl.Series(f"probability_{c}", pred[:, i].astype(np.float64)) for i, c in enumerate(classes)]
    return rows.with_columns(labels.gather(np.argmax(pred, axis=1)), *probabilities)
