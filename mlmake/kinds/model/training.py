"""Training an xgboost booster reproducibly: the parameters (objective by task,
seed and threads pinned), the rounds and early stopping, and progress lines in
the node's log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError
from mlmake.ml.design import Input, Target, feature_types
from mlmake.ml.tables import first_line, log_line

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

OBJECTIVES = {"binary": "binary:logistic", "multiclass": "multi:softprob", "regression": "reg:squarederror"}
EVAL_METRICS = {"binary": "logloss", "multiclass": "mlogloss", "regression": "rmse"}
# the objectives whose predictions the metrics can read: probabilities, or values
FITTING = {"binary": ("binary:logistic",), "multiclass": ("multi:softprob",), "regression": ("reg:", "count:")}
DEFAULT_ROUNDS = 100
LOG_EVERY = 10
TRAIN_EVERY = 100  # the training set is scored this often (and at the last round): it costs a prediction


@dataclass(frozen=True, slots=True)
class TrainingSetup:
    """The booster parameters and the loop around them."""

    params: dict[str, Any]
    rounds: int
    early_stopping: int | None


@dataclass(frozen=True, slots=True)
class Fit:
    booster: Any
    best_iteration: int
    objective: str


@dataclass(frozen=True)
class Trained:
    """A trained model and its held-out rows: what its metrics and files are made of, whichever
    engine trained it."""

    fit: Fit
    key: list[str]
    target: Target
    inputs: list[Input]
    held: pl.DataFrame  # the held-out rows' key, target and slice columns, in the table's order
    y: np.ndarray  # their encoded target
    pred: np.ndarray  # their predictions
    n_train: int


def training_setup(given: dict[str, Any], task: str, n_classes: int, threads: int, seed: int) -> TrainingSetup:
    """The params for xgboost.train; num_boost_round and early_stopping_rounds taken out."""
    # params.extra is the escape hatch: other xgboost parameters, passed through as written
    extra: dict[str, Any] = given["extra"] if isinstance(given.get("extra"), dict) else {}
    params = {k: v for k, v in {**extra, **given}.items() if v is not None and k != "extra"}
    rounds = _count(params.pop("num_boost_round", DEFAULT_ROUNDS), "num_boost_round")
    early = params.pop("early_stopping_rounds", None)
    objective = str(params.setdefault("objective", OBJECTIVES[task]))
    if not objective.startswith(FITTING[task]):
        raise NodeError(f"params.objective '{objective}' does not fit a {task} model; "
                        f"use {OBJECTIVES[task]} (or leave it out)")
    if task == "multiclass":
        params["num_class"] = n_classes
    params.setdefault("eval_metric", EVAL_METRICS[task])
    params.setdefault("seed", seed)
    # a declared nthread is the user's to pin (say 1 per model, so that -j 2 runs two trainings on
    # two cores side by side); otherwise the builder's share of the cores: cores // jobs
    params["nthread"] = _count(params["nthread"], "nthread") if "nthread" in params else max(1, threads)
    return TrainingSetup(params, rounds, None if early is None else _count(early, "early_stopping_rounds"))


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise NodeError(f"params.{name} must be a positive integer, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1 or (isinstance(value, float) and not value.is_integer()):
        raise NodeError(f"params.{name} must be a positive integer, got {value!r}")
    return number


def matrix(x: np.ndarray, y: np.ndarray, inputs: list[Input], threads: int) -> Any:
    """A DMatrix whose categorical columns are coded already (see design.design_matrix)."""
    import xgboost as xgb

    check_finite(x, inputs)
    return xgb.DMatrix(x, label=y, feature_names=[i.name for i in inputs], feature_types=feature_types(inputs),
                       enable_categorical=True, nthread=max(1, threads))


def check_finite(x: np.ndarray, inputs: list[Input]) -> None:
    """Refuse inf by column name: xgboost would stop with its native backtrace."""
    import numpy as np

    infinite = np.isinf(x).any(axis=0)
    if infinite.any():
        raise NodeError(infinite_error([i.name for i, bad in zip(inputs, infinite, strict=True) if bad]))


def infinite_error(names: list[str]) -> str:
    return (f"input column(s) {names} hold inf or -inf (or a number too large for float32), which "
            "xgboost cannot train on; declare the column as float in its dataset's schema (inf is "
            "then a missing value) or replace the values in the feature set")


def train(plan: TrainingSetup, train_set: Any, test_set: Any, log: str) -> Fit:
    """Train; with early stopping, keep only the trees up to the best round on the held-out set."""
    import xgboost as xgb

    # only the held-out set is evaluated every round (it drives early stopping); the training set
    # only on the rounds the log shows, which is all that reads it
    try:
        booster = xgb.train(plan.params, train_set, plan.rounds, evals=[(test_set, "test")], verbose_eval=False,
                            early_stopping_rounds=plan.early_stopping,
                            callbacks=[_logger(log, plan.rounds, train_set)])
    except xgb.core.XGBoostError as exc:
        raise NodeError(f"xgboost rejected the training: {first_line(exc)}") from None
    if plan.early_stopping is None:
        return Fit(booster, plan.rounds - 1, plan.params["objective"])
    best = int(booster.best_iteration)
    log_line(log, f"early stopping: best round {best}")
    return Fit(booster[: best + 1], best, plan.params["objective"])


def _logger(log: str, rounds: int, train_set: Any) -> Any:
    """A callback writing the held-out set's eval metrics every LOG_EVERY rounds and at the last
    one, with the training set's beside them every TRAIN_EVERY rounds and at the last one (scoring
    the training set is a prediction over all of it: every tenth round cost 3% of a training)."""
    import xgboost as xgb

    class LogEvery(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, dict[str, Any]]) -> bool:
            if log and (epoch % LOG_EVERY == 0 or epoch == rounds - 1):
                last = epoch == rounds - 1
                scores = _scores(model.eval_set([(train_set, "train")], epoch)) if (
                    epoch % TRAIN_EVERY == 0 or last) else []
                parts = [f"{data}-{metric}: {value:.5f}" for data, metric, value in scores]
                parts += [f"{data}-{metric}: {values[-1]:.5f}"
                          for data, by_metric in evals_log.items() for metric, values in by_metric.items()]
                log_line(log, f"[{epoch}] " + "  ".join(parts))
            return False

    return LogEvery()


def _scores(text: str) -> list[tuple[str, str, float]]:
    """`[3]\ttrain-auc:0.9\ttrain-logloss:0.3` → [("train", "auc", 0.9), ("train", "logloss", 0.3)],
    parsed the way xgboost parses it for evals_log."""
    scores = []
    for item in text.split()[1:]:
        key, _, value = item.rpartition(":")
        data, _, metric = key.partition("-")
        scores.append((data, metric, float(value)))
    return scores


def predict(fit: Fit, data: Any) -> np.ndarray:
    """P(class 1) for binary, an (n, k) matrix for multiclass, values for regression."""
    return fit.booster.predict(data)  # type: ignore[no-any-return]


def importance(fit: Fit, inputs: list[Input]) -> list[dict[str, Any]]:
    """The average gain of each input's splits, largest first; inputs never split on have 0."""
    gain = fit.booster.get_score(importance_type="gain")
    rows = [{"feature": i.name, "gain": float(gain.get(i.name, 0.0))} for i in inputs]
    return sorted(rows, key=lambda r: (-r["gain"], r["feature"]))
