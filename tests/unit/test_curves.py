"""mlmake/ml/curves.py: the points the report draws, computed at build time (exact values)."""

from __future__ import annotations

import numpy as np

from mlmake.ml import curves

Y = np.array([0, 0, 1, 1])
P = np.array([0.1, 0.4, 0.35, 0.8])


def test_roc_steps_through_each_distinct_score_from_the_origin() -> None:
    assert curves.roc(Y == 1, P) == [
        {"threshold": 1.0, "fpr": 0.0, "tpr": 0.0}, {"threshold": 0.8, "fpr": 0.0, "tpr": 0.5},
        {"threshold": 0.4, "fpr": 0.5, "tpr": 0.5}, {"threshold": 0.35, "fpr": 0.5, "tpr": 1.0},
        {"threshold": 0.1, "fpr": 1.0, "tpr": 1.0}]


def test_precision_recall_starts_at_recall_zero() -> None:
    assert curves.pr(Y == 1, P) == [
        {"threshold": 1.0, "recall": 0.0, "precision": 1.0}, {"threshold": 0.8, "recall": 0.5, "precision": 1.0},
        {"threshold": 0.4, "recall": 0.5, "precision": 0.5}, {"threshold": 0.35, "recall": 1.0, "precision": 0.666667},
        {"threshold": 0.1, "recall": 1.0, "precision": 0.5}]


def test_one_class_has_no_roc_and_no_positives_no_pr() -> None:
    assert curves.roc(np.array([True, True]), np.array([0.2, 0.7])) == []
    assert curves.pr(np.array([False, False]), np.array([0.2, 0.7])) == []


def test_calibration_bins_only_where_rows_fall() -> None:
    assert curves.calibration(P, (Y == 1).astype(float)) == [
        {"bin": 1, "predicted": 0.1, "observed": 0.0, "rows": 1},
        {"bin": 3, "predicted": 0.35, "observed": 1.0, "rows": 1},
        {"bin": 4, "predicted": 0.4, "observed": 0.0, "rows": 1},
        {"bin": 8, "predicted": 0.8, "observed": 1.0, "rows": 1}]
    # a probability of exactly 1 belongs to the last bin
    assert curves.calibration(np.array([1.0]), np.array([1.0]))[0]["bin"] == 9


def test_binary_curves_name_the_classes_and_count_every_pair() -> None:
    out = curves.curves("binary", (False, True), Y, P)
    assert out["positive_class"] == "true"
    assert out["confusion"] == [
        {"actual": "false", "predicted": "false", "count": 2}, {"actual": "false", "predicted": "true", "count": 0},
        {"actual": "true", "predicted": "false", "count": 1}, {"actual": "true", "predicted": "true", "count": 1}]


def test_multiclass_calibration_is_of_the_predicted_class() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.85, 0.05], [0.5, 0.45, 0.05]])
    out = curves.curves("multiclass", ("a", "b", "c"), np.array([0, 1, 1]), proba)
    assert out["calibration"] == [{"bin": 5, "predicted": 0.5, "observed": 0.0, "rows": 1},
                                  {"bin": 7, "predicted": 0.7, "observed": 1.0, "rows": 1},
                                  {"bin": 8, "predicted": 0.85, "observed": 1.0, "rows": 1}]
    assert sum(c["count"] for c in out["confusion"]) == 3 and len(out["confusion"]) == 9


def test_regression_scatter_and_binned_means() -> None:
    assert curves.curves("regression", (), np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0])) == {
        "task": "regression",
        "scatter": [{"actual": 1.0, "predicted": 1.5}, {"actual": 2.0, "predicted": 2.0},
                    {"actual": 3.0, "predicted": 2.0}],
        "calibration": [{"bin": 0, "predicted": 1.5, "observed": 1.0, "rows": 1},
                        {"bin": 1, "predicted": 2.0, "observed": 2.0, "rows": 1},
                        {"bin": 2, "predicted": 2.0, "observed": 3.0, "rows": 1}]}


def test_large_sets_are_thinned_to_a_fixed_size_keeping_the_ends() -> None:
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 5000), rng.random(5000)
    roc = curves.roc(y == 1, p)
    assert len(roc) == curves.POINTS + 1
    assert roc[1]["threshold"] == round(float(p.max()), 6) and roc[-1] == {
        "threshold": round(float(p.min()), 6), "fpr": 1.0, "tpr": 1.0}
    scatter = curves.scatter(p, p)
    assert len(scatter) == curves.SCATTER
    assert scatter[0]["actual"] == round(float(p.min()), 6) and scatter[-1]["actual"] == round(float(p.max()), 6)
    assert curves.roc(y == 1, p) == roc  # deterministic
