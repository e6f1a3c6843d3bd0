"""The points the report draws, computed once at build time from the held-out predictions
(so `mlmake report` never retrains or re-scores): ROC and precision-recall curves, a confusion
matrix, a calibration table, and predicted against actual values for regression.

Small and deterministic: at most POINTS points per curve (thresholds picked evenly from the
distinct scores, first and last kept), at most SCATTER rows for a scatter (evenly spaced in
the order of the actual value), every number rounded to DIGITS digits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlmake.ml.metrics import slice_label

if TYPE_CHECKING:
    import numpy as np

CURVES_FILE = "curves.json"
POINTS = 101
SCATTER = 500
BINS = 10
DIGITS = 6


def curves(task: str, classes: tuple[Any, ...], y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """What the report draws for a model of `task` (y: class codes or values; pred as metrics.compute)."""
    import numpy as np

    labels = [slice_label(c) for c in classes]
    if task == "binary":
        positive = y == 1
        return {"task": task, "positive_class": labels[1], "roc": roc(positive, pred), "pr": pr(positive, pred),
                "calibration": calibration(pred, positive.astype(np.float64)),
                "confusion": confusion(labels, y, (pred >= 0.5).astype(np.int64))}
    if task == "multiclass":
        guess = np.argmax(pred, axis=1)
        confidence = pred[np.arange(len(y)), guess]  # a reliability diagram of the predicted class
        return {"task": task, "confusion": confusion(labels, y, guess),
                "calibration": calibration(confidence, (guess == y).astype(np.float64))}
    return {"task": task, "scatter": scatter(y, pred), "calibration": binned_means(y, pred)}


def _counts_at(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each distinct score (highest first): the threshold, true positives and false positives
    of predicting positive at or above it."""
    import numpy as np

    order = np.argsort(-score, kind="mergesort")
    ranked, hits = score[order], positive[order].astype(np.int64)
    last = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # the last row of each distinct score
    tp = np.cumsum(hits)[last]
    return ranked[last], tp, (last + 1) - tp


def _pick(n: int) -> np.ndarray:
    """At most POINTS indices of n, evenly spread, the first and last kept."""
    import numpy as np

    if n <= POINTS:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, POINTS)).astype(np.int64))


def roc(positive: np.ndarray, score: np.ndarray) -> list[dict[str, float]]:
    """False and true positive rates, from (0, 0) to (1, 1); [] with one class only."""
    n1 = int(positive.sum())
    n0 = len(positive) - n1
    if not n1 or not n0:
        return []
    thresholds, tp, fp = _counts_at(positive, score)
    keep = _pick(len(thresholds))
    points = [{"threshold": 1.0, "fpr": 0.0, "tpr": 0.0}]
    points += [{"threshold": _r(thresholds[i]), "fpr": _r(fp[i] / n0), "tpr": _r(tp[i] / n1)} for i in keep]
    return points


def pr(positive: np.ndarray, score: np.ndarray) -> list[dict[str, float]]:
    """Recall and precision at each kept threshold, from recall 0 (precision 1); [] without positives."""
    n1 = int(positive.sum())
    if not n1:
        return []
    thresholds, tp, fp = _counts_at(positive, score)
    keep = _pick(len(thresholds))
    points = [{"threshold": 1.0, "recall": 0.0, "precision": 1.0}]
    points += [{"threshold": _r(thresholds[i]), "recall": _r(tp[i] / n1), "precision": _r(tp[i] / (tp[i] + fp[i]))}
               for i in keep]
    return points


def calibration(predicted: np.ndarray, observed: np.ndarray) -> list[dict[str, float]]:
    """BINS equal bins of the predicted probability: its mean, the observed rate and the rows."""
    import numpy as np

    bins = np.minimum((predicted * BINS).astype(np.int64), BINS - 1)
    rows = []
    for b in range(BINS):
        inside = bins == b
        if inside.any():
            rows.append({"bin": b, "predicted": _r(predicted[inside].mean()), "observed": _r(observed[inside].mean()),
                         "rows": int(inside.sum())})
    return rows


def binned_means(actual: np.ndarray, predicted: np.ndarray) -> list[dict[str, float]]:
    """BINS bins of equal row count by predicted value: the mean predicted and actual value of each."""
    import numpy as np

    order = np.argsort(predicted, kind="mergesort")
    rows = []
    for b, part in enumerate(np.array_split(order, min(BINS, len(order)))):
        rows.append({"bin": b, "predicted": _r(predicted[part].mean()), "observed": _r(actual[part].mean()),
                     "rows": len(part)})
    return rows


def confusion(labels: list[str], y: np.ndarray, guess: np.ndarray) -> list[dict[str, Any]]:
    """Every (actual, predicted) pair of classes with its count, zeros included."""
    return [{"actual": labels[a], "predicted": labels[p], "count": int(((y == a) & (guess == p)).sum())}
            for a in range(len(labels)) for p in range(len(labels))]


def scatter(actual: np.ndarray, predicted: np.ndarray) -> list[dict[str, float]]:
    """Actual and predicted values of at most SCATTER rows, evenly spaced in the order of the actual value."""
    import numpy as np

    order = np.argsort(actual, kind="mergesort")
    if len(order) > SCATTER:
        order = order[np.unique(np.round(np.linspace(0, len(order) - 1, SCATTER)).astype(np.int64))]
    return [{"actual": _r(actual[i]), "predicted": _r(predicted[i])} for i in order]


def _r(value: Any) -> float:
    return round(float(value), DIGITS)
