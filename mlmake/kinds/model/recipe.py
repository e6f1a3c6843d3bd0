"""The model recipe: train, evaluate and gate an xgboost model on a feature set (see model.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError, did_you_mean
from mlmake.core.kind import Result, Task
from mlmake.kinds.model.training import Fit, importance, matrix, predict, train, training_plan
from mlmake.ml.design import (
    Input,
    Target,
    describe_inputs,
    describe_target,
    design_matrix,
    encode_target,
    split_rows,
)
from mlmake.ml.metrics import chosen_metrics, compute, parse_gates, slice_metrics
from mlmake.ml.tables import (
    first_line,
    log_line,
    output_dir,
    scan_upstream,
    sort_frame,
    upstream_address,
    upstream_key,
    write_json,
    write_parquet,
)

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

MODEL_FILE = "model.json"  # xgboost's own JSON format, never a pickle
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


def run(task: Task) -> Result:
    """Train and evaluate. The gates are judged by the build on the metrics returned (they are
    not an input of training); they are only checked here, before training, to fail early."""
    config = task.config
    kind = str(config["task"])
    names = chosen_metrics(kind, [str(m) for m in config.get("metrics") or []])
    parse_gates(dict(config.get("gates") or {}), names)
    data = _prepare(task)
    plan = training_plan(dict(config.get("params") or {}), kind, len(data.target.classes), task.threads,
                         int((config.get("split") or {}).get("seed", 0)))
    threads = int(plan.params["nthread"])
    log_line(task.log, f"training {plan.rounds} rounds with nthread {threads} on {len(data.train)} rows")
    test_set = matrix(data.x[data.test], data.y[data.test], data.inputs, threads)
    fit = train(plan, matrix(data.x[data.train], data.y[data.train], data.inputs, threads), test_set, task.log)
    pred = predict(fit, test_set)
    metrics = compute(kind, names, data.y[data.test], pred)
    summary = {"task": kind, "metrics": metrics, "slices": _slices(config, data, names, pred),
               "n_train": len(data.train), "n_test": len(data.test), "best_iteration": fit.best_iteration}
    _write_outputs(task, data, fit, pred, summary)
    log_line(task.log, "held-out " + ", ".join(f"{m} {v:.4f}" for m, v in metrics.items()))
    return Result(metrics=metrics)


def _prepare(task: Task) -> Data:
    """Read the upstream table in a fixed order, describe its columns and split its rows."""
    config = task.config
    frame, key = _load(task, str(config["features"]))
    _check_columns(frame, config)
    target = describe_target(frame[str(config["target"])], str(config["task"]))
    skip = {target.name, *key, *(config.get("drop") or [])}
    inputs = describe_inputs(frame, [c for c in frame.columns if c not in skip])
    y = encode_target(frame[target.name], target)
    split = config.get("split") or {}
    strata = y if split.get("stratify") and target.classes else None
    if split.get("stratify") and not target.classes:
        log_line(task.log, "split.stratify ignored: a regression target has no classes")
    train_rows, test_rows = split_rows(frame.height, float(split.get("test_size", 0.2)),
                                       int(split.get("seed", 0)), strata)
    return Data(frame, key, target, inputs, design_matrix(frame, inputs), y, train_rows, test_rows)


def _load(task: Task, name: str) -> tuple[pl.DataFrame, list[str]]:
    import polars as pl

    address = upstream_address(task, name)
    try:
        frame = scan_upstream(task, address).collect()
    except pl.exceptions.PolarsError as exc:
        raise NodeError(f"cannot read the table of {address}: {first_line(exc)}") from None
    key = [k for k in upstream_key(task, address) if k in frame.columns]
    return sort_frame(frame, key), key


def _check_columns(frame: pl.DataFrame, config: dict[str, Any]) -> None:
    """The target, drop and slice columns must be columns of the table."""
    columns, source = frame.columns, config["features"]
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


def _slices(config: dict[str, Any], data: Data, names: list[str], pred: np.ndarray) -> dict[str, Any]:
    kind, y = str(config["task"]), data.y[data.test]
    return {str(c): slice_metrics(kind, names, y, pred, data.frame[str(c)].gather(data.test).to_list())
            for c in config.get("slices") or []}


def _write_outputs(task: Task, data: Data, fit: Fit, pred: np.ndarray, summary: dict[str, Any]) -> None:
    out = output_dir(task)
    fit.booster.save_model(os.path.join(out, MODEL_FILE))
    write_json(os.path.join(out, METRICS_FILE), summary)
    write_json(os.path.join(out, "importance.json"), {"importance": importance(fit, data.inputs)})
    write_json(os.path.join(out, SIGNATURE_FILE), _signature(task, data, fit))
    write_parquet(_predictions(data, pred), os.path.join(out, PREDICTIONS_FILE))


def _signature(task: Task, data: Data, fit: Fit) -> dict[str, Any]:
    """What serving needs to rebuild the inputs and read the outputs."""
    signature: dict[str, Any] = {
        "task": task.config["task"], "features": task.config["features"], "key": data.key,
        "inputs": [i.as_json() for i in data.inputs], "target": data.target.as_json(),
        "objective": fit.objective,
    }
    if data.target.classes:
        signature["classes"] = list(data.target.classes)
    if len(data.target.classes) == 2:
        signature["positive_class"] = data.target.classes[1]  # predictions' "probability" is of this class
    return signature


def _predictions(data: Data, pred: np.ndarray) -> pl.DataFrame:
    """The held-out rows: key, target, prediction and class probabilities."""
    import numpy as np
    import polars as pl

    rows = data.frame[data.test].select([*data.key, data.target.name])
    classes = list(data.target.classes)
    if not classes:
        return rows.with_columns(pl.Series("prediction", pred.astype(np.float64)))
    labels = pl.Series("prediction", classes)
    if pred.ndim == 1:
        return rows.with_columns(labels.gather((pred >= 0.5).astype(np.int64)),
                                 pl.Series("probability", pred.astype(np.float64)))
    probabilities = [pl.Series(f"probability_{c}", pred[:, i].astype(np.float64)) for i, c in enumerate(classes)]
    return rows.with_columns(labels.gather(np.argmax(pred, axis=1)), *probabilities)
