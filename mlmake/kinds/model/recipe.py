"""The model recipe: train and evaluate an xgboost model on a feature set, prepared as every
model kind prepares it (ml/supervised.py)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from mlmake.core.kind import Result, Task
from mlmake.kinds.model.training import Fit, importance, matrix, predict, train, training_setup
from mlmake.ml.curves import CURVES_FILE, curves
from mlmake.ml.metrics import chosen_metrics, compute, parse_gates
from mlmake.ml.supervised import (
    METRICS_FILE,
    PREDICTIONS_FILE,
    SIGNATURE_FILE,
    Data,
    predictions,
    prepare,
    reported,
    signature,
    slices,
)
from mlmake.ml.tables import log_line, output_dir, write_json, write_parquet

if TYPE_CHECKING:
    import numpy as np

MODEL_FILE = "model.json"  # xgboost's own JSON format, never a pickle


def run(task: Task) -> Result:
    """Train and evaluate. The gates are judged by the build on the metrics returned (they are
    not an input of training); they are only checked here, before training, to fail early."""
    config = task.config
    kind = str(config["task"])
    names = chosen_metrics(kind, [str(m) for m in config.get("metrics") or []])
    parse_gates(dict(config.get("gates") or {}), names)
    data = prepare(task)
    plan = training_setup(dict(config.get("params") or {}), kind, len(data.target.classes), task.threads,
                         int((config.get("split") or {}).get("seed", 0)))
    threads = int(plan.params["nthread"])
    log_line(task.log, f"training {plan.rounds} rounds with nthread {threads} on {len(data.train)} rows")
    test_set = matrix(data.x[data.test], data.y[data.test], data.inputs, threads)
    if config.get("engine") == "dask":
        from mlmake.kinds.model.dask_training import train_dask

        fit = train_dask(plan, (data.x[data.train], data.y[data.train]), (data.x[data.test], data.y[data.test]),
                         data.inputs, threads, task.log)
    else:
        fit = train(plan, matrix(data.x[data.train], data.y[data.train], data.inputs, threads), test_set, task.log)
    pred = predict(fit, test_set)
    metrics = compute(kind, names, data.y[data.test], pred)
    by_slice = slices(config, data, names, pred)
    summary = {"task": kind, "metrics": metrics, "slices": by_slice,
               "n_train": len(data.train), "n_test": len(data.test), "best_iteration": fit.best_iteration}
    _write_outputs(task, data, fit, pred, summary)
    log_line(task.log, "held-out " + ", ".join(f"{m} {v:.4f}" for m, v in metrics.items()))
    return Result(metrics=reported(metrics, by_slice))


def _write_outputs(task: Task, data: Data, fit: Fit, pred: np.ndarray, summary: dict[str, Any]) -> None:
    out = output_dir(task)
    fit.booster.save_model(os.path.join(out, MODEL_FILE))
    write_json(os.path.join(out, METRICS_FILE), summary)
    write_json(os.path.join(out, "importance.json"), {"importance": importance(fit, data.inputs)})
    # what `mlmake report` draws, so that it never re-scores the model
    write_json(os.path.join(out, CURVES_FILE), curves(summary["task"], data.target.classes, data.y[data.test], pred))
    write_json(os.path.join(out, SIGNATURE_FILE), signature(task, data, fit.objective))
    write_parquet(predictions(data, pred), os.path.join(out, PREDICTIONS_FILE))
