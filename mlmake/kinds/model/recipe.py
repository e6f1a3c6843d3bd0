"""The model recipe: train and evaluate an xgboost model on a feature set, prepared as every
model kind prepares it (ml/supervised.py), or, with `engine: dask`, partition by partition on
Dask workers (dask_table.py)."""

from __future__ import annotations

import os
from typing import Any

from mlmake.core.kind import Result, Task
from mlmake.kinds.model.training import Trained, importance, matrix, predict, train, training_setup
from mlmake.ml.curves import CURVES_FILE, curves
from mlmake.ml.metrics import chosen_metrics, compute, parse_gates, slice_metrics
from mlmake.ml.supervised import (
    METRICS_FILE,
    PREDICTIONS_FILE,
    SIGNATURE_FILE,
    predictions_of,
    prepare,
    reported,
    signature_of,
)
from mlmake.ml.tables import log_line, output_dir, write_json, write_parquet

MODEL_FILE = "model.json"  # xgboost's own JSON format, never a pickle


def run(task: Task) -> Result:
    """Train and evaluate. The gates are judged by the build on the metrics returned (they are
    not an input of training); they are only checked here, before training, to fail early."""
    config = task.config
    kind = str(config["task"])
    names = chosen_metrics(kind, [str(m) for m in config.get("metrics") or []])
    parse_gates(dict(config.get("gates") or {}), names)
    if config.get("engine") == "dask" and is_partition_wise(task):
        from mlmake.kinds.model.dask_table import train_partitions

        trained = train_partitions(task)
    else:
        trained = _train_here(task)
    metrics = compute(kind, names, trained.y, trained.pred)
    by_slice = {str(c): slice_metrics(kind, names, trained.y, trained.pred, trained.held[str(c)].to_list())
                for c in config.get("slices") or []}
    summary = {"task": kind, "metrics": metrics, "slices": by_slice, "n_train": trained.n_train,
               "n_test": len(trained.y), "best_iteration": trained.fit.best_iteration}
    _write_outputs(task, trained, summary)
    log_line(task.log, "held-out " + ", ".join(f"{m} {v:.4f}" for m, v in metrics.items()))
    return Result(metrics=reported(metrics, by_slice))


def is_partition_wise(task: Task) -> bool:
    """engine: dask reads the table partition by partition unless its split needs the whole
    table: `by: random` draws from the sorted rows, `stratify` counts each class first."""
    split = task.config.get("split") or {}
    if split.get("by", "hash") == "hash" and not split.get("stratify"):
        return True
    why = "split.stratify" if split.get("stratify") else "split by: random"
    log_line(task.log, f"engine dask: {why} needs the whole table: read, split and encoded by the node's process")
    return False


def _train_here(task: Task) -> Trained:
    """The whole table read, split and encoded in this process; trained here or, with
    engine: dask, on the partitions of its design matrix (dask_training.py)."""
    config = task.config
    data = prepare(task)
    plan = training_setup(dict(config.get("params") or {}), str(config["task"]), len(data.target.classes),
                          task.threads, int((config.get("split") or {}).get("seed", 0)))
    threads = int(plan.params["nthread"])
    log_line(task.log, f"training {plan.rounds} rounds with nthread {threads} on {len(data.train)} rows")
    test_set = matrix(data.x[data.test], data.y[data.test], data.inputs, threads)
    if config.get("engine") == "dask":
        from mlmake.kinds.model.dask_training import train_dask

        fit = train_dask(plan, (data.x[data.train], data.y[data.train]), (data.x[data.test], data.y[data.test]),
                         data.inputs, threads, task.log)
    else:
        fit = train(plan, matrix(data.x[data.train], data.y[data.train], data.inputs, threads), test_set, task.log)
    kept = list(dict.fromkeys([*data.key, data.target.name, *(str(c) for c in config.get("slices") or [])]))
    return Trained(fit, data.key, data.target, data.inputs, data.frame[data.test].select(kept), data.y[data.test],
                   predict(fit, test_set), len(data.train))


def _write_outputs(task: Task, trained: Trained, summary: dict[str, Any]) -> None:
    out, target = output_dir(task), trained.target
    trained.fit.booster.save_model(os.path.join(out, MODEL_FILE))
    write_json(os.path.join(out, METRICS_FILE), summary)
    write_json(os.path.join(out, "importance.json"), {"importance": importance(trained.fit, trained.inputs)})
    # what `mlmake report` draws, so that it never re-scores the model
    write_json(os.path.join(out, CURVES_FILE), curves(summary["task"], target.classes, trained.y, trained.pred))
    write_json(os.path.join(out, SIGNATURE_FILE),
               signature_of(task, trained.key, trained.inputs, target, trained.fit.objective))
    rows = trained.held.select([*trained.key, target.name])
    write_parquet(predictions_of(rows, target, trained.pred), os.path.join(out, PREDICTIONS_FILE))
