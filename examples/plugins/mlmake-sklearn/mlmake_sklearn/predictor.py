"""A trained pipeline and how it predicts: the kind's encoding of the design matrix
(categories one-hot), then SimpleImputer → StandardScaler → the estimator, read out in
mlmake's conventions (P(positive) for binary, (n, k) for multiclass, values for regression).

The model file (estimator.json) holds each step as state.dump_estimator writes it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError
from mlmake_sklearn.state import STATE_FORMAT, dump_estimator, load_estimator

if TYPE_CHECKING:
    import numpy as np

ESTIMATOR_FILE = "estimator.json"


@dataclass(frozen=True)
class Pipeline:
    """The fitted steps, with what reading their output needs."""

    steps: tuple[Any, ...]  # SimpleImputer, StandardScaler, the estimator
    widths: tuple[int, ...]  # per input: its number of categories, or 0 for a number
    task: str
    n_classes: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The Predictor protocol of mlmake.ml.scoring."""
        import numpy as np

        z = encode(x, self.widths)
        for step in self.steps[:-1]:
            z = step.transform(z)
        estimator = self.steps[-1]
        if self.task == "regression":
            return np.asarray(estimator.predict(z), dtype=np.float64)
        proba = np.zeros((len(z), self.n_classes))
        proba[:, estimator.classes_.astype(np.int64)] = estimator.predict_proba(z)  # a class unseen in training: 0
        return proba[:, 1] if self.task == "binary" else proba


def encode(x: np.ndarray, widths: tuple[int, ...]) -> np.ndarray:
    """float64 columns: numbers as they are (NaN = missing), each category code as one
    indicator per category (a missing or unknown category: all zero)."""
    import numpy as np

    columns = []
    for i, width in enumerate(widths):
        column = x[:, i].astype(np.float64)
        columns.append(column[:, None] if not width else (column[:, None] == np.arange(width)).astype(np.float64))
    return np.hstack(columns) if columns else np.zeros((len(x), 0))


def widths_of(signature: dict[str, Any]) -> tuple[int, ...]:
    return tuple(len(i["categories"]) if "categories" in i else 0 for i in signature["inputs"])


def save(pipeline: Pipeline, folder: str, versions: dict[str, str]) -> None:
    data = {"format": STATE_FORMAT, "steps": [dump_estimator(s) for s in pipeline.steps], "versions": versions}
    with open(os.path.join(folder, ESTIMATOR_FILE), "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True, allow_nan=False)
        fh.write("\n")


def load(folder: str, signature: dict[str, Any]) -> Pipeline:
    """The pipeline saved in `folder`, for the model `signature` describes."""
    path = os.path.join(folder, ESTIMATOR_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise NodeError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != STATE_FORMAT or not isinstance(data.get("steps"), list):
        raise NodeError(f"{path} is not an estimator file this mlmake-sklearn reads; rebuild the model")
    try:
        steps = tuple(load_estimator(s) for s in data["steps"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a damaged file, not a bug here
        raise NodeError(f"{path} is damaged ({type(exc).__name__}: {exc}); rebuild the model") from None
    return Pipeline(steps, widths_of(signature), str(signature["task"]), len(signature.get("classes") or []))
