"""The estimators this kind trains: a deliberate set whose fitted state is plain arrays,
so a model is saved as JSON and rebuilt by setting its fitted attributes (never a pickle).

Pure data, no scikit-learn import: `validate` and the JSON Schema read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CLASSIFICATION = ("binary", "multiclass")
REGRESSION = ("regression",)
_NUMBER: dict[str, Any] = {"type": "number"}
_POSITIVE: dict[str, Any] = {"type": "number", "exclusiveMinimum": 0}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 1}
_BOOL: dict[str, Any] = {"type": "boolean"}


@dataclass(frozen=True, slots=True)
class Estimator:
    """One supported estimator: where it lives, the tasks it fits, its parameters' schemas."""

    name: str
    module: str
    tasks: tuple[str, ...]
    description: str
    params: dict[str, dict[str, Any]]


ESTIMATORS: dict[str, Estimator] = {e.name: e for e in (
    Estimator("LogisticRegression", "sklearn.linear_model", CLASSIFICATION,
              "A linear classifier: class probabilities from a logistic (softmax) of a weighted sum.", {
                  "C": {**_POSITIVE, "description": "Inverse of the regularization strength (default 1.0)."},
                  "max_iter": {**_COUNT, "description": "The solver's iteration limit (default 100)."},
                  "tol": {**_POSITIVE, "description": "Stopping tolerance (default 1e-4)."},
                  "fit_intercept": {**_BOOL, "description": "Fit a bias term (default true)."},
                  "solver": {"enum": ["lbfgs", "newton-cg", "newton-cholesky", "sag", "saga"],
                             "description": "The optimizer (default lbfgs)."},
                  "class_weight": {"enum": ["balanced", None],
                                   "description": "'balanced' weighs classes inversely to their frequency."},
              }),
    Estimator("LinearRegression", "sklearn.linear_model", REGRESSION, "Ordinary least squares.", {
        "fit_intercept": {**_BOOL, "description": "Fit a bias term (default true)."},
        "positive": {**_BOOL, "description": "Constrain the coefficients to be positive (default false)."},
    }),
    Estimator("Ridge", "sklearn.linear_model", REGRESSION, "Least squares with an L2 penalty.", {
        "alpha": {"type": "number", "minimum": 0, "description": "The L2 penalty's strength (default 1.0)."},
        "fit_intercept": {**_BOOL, "description": "Fit a bias term (default true)."},
        "max_iter": {**_COUNT, "description": "The iterative solvers' iteration limit."},
        "tol": {**_POSITIVE, "description": "Stopping tolerance (default 1e-4)."},
        "solver": {"enum": ["auto", "svd", "cholesky", "lsqr", "sparse_cg", "sag", "saga"],
                   "description": "The solver (default auto)."},
        "positive": {**_BOOL, "description": "Constrain the coefficients to be positive (default false)."},
    }),
)}

# the preprocessing every model gets (the design matrix has NaN for missing values and
# category codes): categories one-hot, then SimpleImputer(median) and StandardScaler
PREPROCESSING = {"SimpleImputer": "sklearn.impute", "StandardScaler": "sklearn.preprocessing"}
# what a saved model may name: nothing outside this table is ever imported by name
CLASSES = {**PREPROCESSING, **{e.name: e.module for e in ESTIMATORS.values()}}


def params_schema() -> dict[str, Any]:
    """Every supported parameter, typed; `check` says which belong to which estimator."""
    merged: dict[str, dict[str, Any]] = {}
    for estimator in ESTIMATORS.values():
        for name, schema in estimator.params.items():
            merged.setdefault(name, schema)
    return {"type": "object", "additionalProperties": False, "properties": dict(sorted(merged.items())),
            "description": "The estimator's constructor parameters (the random seed is split.seed).",
            "examples": [{"C": 1.0, "max_iter": 200}, {"alpha": 0.5}]}
