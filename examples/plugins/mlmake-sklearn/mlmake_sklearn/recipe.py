"""Train, evaluate and save a scikit-learn model on the same table, inputs, target and
split as the built-in xgboost model, and write what it writes: metrics.json (the same
metrics code), signature.json (plus the format and files that serving reads),
predictions.parquet, and the model as estimator.json.

The data preparation, the held-out predictions table, the slices and the signature are what
every model kind shares (mlmake.ml.supervised), so a row is read, encoded and split the same
way by both kinds."""

from __future__ import annotations

import os
from importlib import metadata
from typing import Any

from mlmake.core.errors import NodeError
from mlmake.core.kind import Result, Task
from mlmake.ml.metrics import chosen_metrics, compute, parse_gates
from mlmake.ml.scoring import FILES_KEY, FORMAT_KEY, METRICS_FILE, SIGNATURE_FILE
from mlmake.ml.supervised import Data, predictions, prepare, reported, slices
from mlmake.ml.supervised import signature as model_signature
from mlmake.ml.tables import first_line, log_line, output_dir, write_json, write_parquet
from mlmake_sklearn.estimators import CLASSES, ESTIMATORS
from mlmake_sklearn.predictor import ESTIMATOR_FILE, Pipeline, encode, save

LIBRARIES = ("scikit-learn", "numpy", "scipy")
PREDICTIONS_FILE = "predictions.parquet"


def run(task: Task) -> Result:
    config = task.config
    kind = str(config["task"])
    names = chosen_metrics(kind, [str(m) for m in config.get("metrics") or []])
    parse_gates(dict(config.get("gates") or {}), names)
    data = prepare(task)
    pipeline = fit(config, data, task.log)
    pred = pipeline.predict(data.x[data.test])
    metrics = compute(kind, names, data.y[data.test], pred)
    summary = {"task": kind, "metrics": metrics, "slices": slices(config, data, names, pred),
               "n_train": len(data.train), "n_test": len(data.test), "best_iteration": None}
    out = output_dir(task)
    save(pipeline, out, {name: metadata.version(name) for name in LIBRARIES})
    write_json(os.path.join(out, METRICS_FILE), summary)
    write_json(os.path.join(out, SIGNATURE_FILE), signature(task, data))
    write_parquet(predictions(data, pred), os.path.join(out, PREDICTIONS_FILE))
    log_line(task.log, "held-out " + ", ".join(f"{m} {v:.4f}" for m, v in metrics.items()))
    return Result(metrics=reported(metrics, summary["slices"]))


def fit(config: dict[str, Any], data: Data, log: str) -> Pipeline:
    """SimpleImputer(median) → StandardScaler → the estimator, on the training rows."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    widths = tuple(len(i.categories) if i.categories is not None else 0 for i in data.inputs)
    x, y = encode(data.x[data.train], widths), data.y[data.train]
    steps = (SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(), estimator(config))
    name = type(steps[-1]).__name__
    log_line(log, f"training {name} on {len(data.train)} rows, {x.shape[1]} columns after one-hot")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            for step in steps[:-1]:
                x = step.fit_transform(x)
            steps[-1].fit(x, y)
        except ValueError as exc:
            raise NodeError(f"scikit-learn rejected the training of {name}: {first_line(exc)}") from None
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            log_line(log, f"warning: {first_line(Exception(str(warning.message)))}")
    return Pipeline(steps, widths, str(config["task"]), len(data.target.classes))


def estimator(config: dict[str, Any]) -> Any:
    """The estimator named in the config, built with its params (seeded by split.seed)."""
    import importlib

    name = str(config["estimator"])
    if name not in ESTIMATORS:  # `validate` refuses it first; a hand-made config may not
        raise NodeError(f"estimator '{name}' is not one of {', '.join(ESTIMATORS)}")
    cls = getattr(importlib.import_module(CLASSES[name]), name)
    params = dict(config.get("params") or {})
    if "random_state" in cls().get_params():
        params["random_state"] = int((config.get("split") or {}).get("seed", 0))
    return cls(**params)


def signature(task: Task, data: Data) -> dict[str, Any]:
    """The model kind's signature, plus the format (this kind's name: scoring asks it to load the
    model) and the files a serving bundle copies."""
    out: dict[str, Any] = model_signature(task, data, f"sklearn:{task.config['estimator']}")
    out.update({FORMAT_KEY: task.kind, FILES_KEY: [ESTIMATOR_FILE], "estimator": task.config["estimator"],
                "libraries": ["scikit-learn", "scipy"]})
    return out

