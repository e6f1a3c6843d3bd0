"""Held-out metrics in numpy (no sklearn), per-slice metrics, and quality gates, for every
model kind (the built-in xgboost one and plugins).

A metric that is undefined on some rows (auc with one class, r2 with a constant
target) is left out rather than reported as a made-up number."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError
from mlmake.core.gates import Gate, parse_gate, slice_gate
from mlmake.core.gates import judge as judge_gate

if TYPE_CHECKING:
    import numpy as np

# the metrics each task can compute, and those computed when a model names none (computed here for every
# model kind; `validate` checks models and gates against them)
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("auc", "logloss", "mlogloss", "accuracy", "f1", "precision", "recall"),
    "multiclass": ("auc", "logloss", "mlogloss", "accuracy", "f1", "precision", "recall"),
    "regression": ("rmse", "mae", "r2"),
}
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("auc", "logloss", "accuracy", "f1", "precision", "recall"),
    "multiclass": ("mlogloss", "accuracy", "f1", "precision", "recall"),
    "regression": ("rmse", "mae", "r2"),
}

EPS = 1e-15  # probabilities are clipped so a confident mistake costs a large, finite loss
APPLIES, DEFAULTS = TASK_METRICS, DEFAULT_METRICS  # one table, shared with `validate`


def chosen_metrics(task: str, names: list[str]) -> list[str]:
    """The metrics to compute: those named, or the task's defaults; NodeError for one that does not apply."""
    wrong = [m for m in names if m not in APPLIES[task]]
    if wrong:
        verb = "do not apply" if len(wrong) > 1 else "does not apply"
        raise NodeError(f"metric{'s' if len(wrong) > 1 else ''} {', '.join(wrong)} {verb} to a {task} "
                        f"model; choose from {', '.join(APPLIES[task])}")
    return list(names) or list(DEFAULTS[task])


def compute(task: str, names: list[str], y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Each defined metric in `names`, for true values `y` and predictions `pred`.

    pred is P(class 1) for binary, an (n, k) probability matrix for multiclass,
    and the predicted value for regression."""
    table = {"binary": _binary, "multiclass": _multiclass, "regression": _regression}[task]
    out: dict[str, float] = {}
    for name, value in table(y, pred).items():
        if name in names and value is not None and math.isfinite(value):
            out[name] = float(value)
    return out


def _binary(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    import numpy as np

    q = np.clip(p, EPS, 1 - EPS)
    loss = float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))
    scores = _counts((p >= 0.5).astype(int), y, 1)
    return {"auc": _auc(y == 1, p), "logloss": loss, "mlogloss": loss,
            "accuracy": float(np.mean((p >= 0.5) == (y == 1))), **scores}


def _multiclass(y: np.ndarray, proba: np.ndarray) -> dict[str, float | None]:
    import numpy as np

    guess = np.argmax(proba, axis=1)
    loss = float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], EPS, 1.0))))
    labels = np.union1d(y, guess)  # macro average over the classes seen, as sklearn does
    per_class = [_counts(guess, y, c, zero=0.0) for c in labels]
    macro = {m: float(np.mean([s[m] or 0.0 for s in per_class])) for m in ("precision", "recall", "f1")}
    aucs = [a for c in range(proba.shape[1]) if (a := _auc(y == c, proba[:, c])) is not None]
    return {"mlogloss": loss, "logloss": loss, "accuracy": float(np.mean(guess == y)),
            "auc": float(np.mean(aucs)) if aucs else None, **macro}


def _regression(y: np.ndarray, guess: np.ndarray) -> dict[str, float | None]:
    import numpy as np

    err = guess - y
    total = float(np.sum((y - np.mean(y)) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / total if total > 0 else None
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err))), "r2": r2}


def _counts(guess: np.ndarray, y: np.ndarray, label: int, zero: float | None = None) -> dict[str, float | None]:
    """Precision, recall and f1 of one class; `zero` where a ratio has nothing to divide by."""
    tp = int(((guess == label) & (y == label)).sum())
    fp = int(((guess == label) & (y != label)).sum())
    fn = int(((guess != label) & (y == label)).sum())
    return {"precision": tp / (tp + fp) if tp + fp else zero, "recall": tp / (tp + fn) if tp + fn else zero,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else zero}


def _auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve as the Mann-Whitney statistic, ties counted half."""
    n1 = int(positive.sum())
    n0 = len(positive) - n1
    if not n1 or not n0:
        return None
    ranks = _ranks(score)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank."""
    import numpy as np

    order = np.argsort(x, kind="mergesort")
    starts = np.r_[0, np.flatnonzero(np.diff(x[order])) + 1]
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


# --- slices -------------------------------------------------------------------------


def slice_metrics(task: str, names: list[str], y: np.ndarray, pred: np.ndarray,
                  values: list[Any]) -> dict[str, dict[str, float]]:
    """The metrics of each value of a slice column (held-out rows), with its row count."""
    import numpy as np

    labels = np.array([slice_label(v) for v in values], dtype=object)
    out: dict[str, dict[str, float]] = {}
    for label in sorted(set(labels.tolist())):
        rows = labels == label
        out[label] = {"rows": int(rows.sum()), **compute(task, names, y[rows], pred[rows])}
    return out


def slice_label(value: Any) -> str:
    """A slice value as a JSON key: null, true/false, or the value's text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- gates ---------------------------------------------------------------------------


def parse_gates(gates: dict[str, str], computed: list[str]) -> list[Gate]:
    """The gates, checked before training: each must be on a metric that is computed."""
    parsed, problems = [], []
    for metric, text in sorted(gates.items()):
        if gated_metric(metric) not in computed:
            problems.append(f"gate on '{metric}': the metric is not computed (metrics: {', '.join(computed)}); "
                            "add it to metrics")
            continue
        try:
            parsed.append(parse_gate(metric, str(text)))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise NodeError("; ".join(problems))
    return parsed


def gated_metric(metric: str) -> str:
    """The metric a gate reads: `auc` for `auc`, `auc.min_slice` and `auc.slice_gap`."""
    split = slice_gate(metric)
    return split[0] if split else metric


def judge(gates: list[Gate], metrics: dict[str, float],
          baseline: dict[str, float] | None = None) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Each gate's outcome for metrics.json, and a line for each that failed."""
    outcome: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    for gate in gates:
        verdict = judge_gate(gate, metrics.get(gate.metric), (baseline or {}).get(gate.metric))
        outcome[gate.metric] = verdict.to_dict()
        if not verdict.passed:
            failed.append(verdict.message)
    return outcome, failed

