"""Scoring with a built model, shared by the batch target and the prediction service,
so a row gets the same prediction from the model kind, a `batch` target and `/predict`.

Tables are encoded by design.design_matrix, the model kind's own encoding; JSON rows
by rows.RowEncoder, which codes values the same way without polars (see there why).
Both matrices go through the one `predict` and the one way of naming outputs here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError
from mlmake.ml.design import Input, design_matrix, inputs_from_signature
from mlmake.ml.tables import first_line, read_json

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

MODEL_FILE = "model.json"  # the model kind's file names (model.py), read here
SIGNATURE_FILE = "signature.json"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class Scorer:
    """A loaded booster with the signature that says how to feed it and read it."""

    booster: Any
    signature: dict[str, Any]
    inputs: list[Input]

    @property
    def task(self) -> str:
        return str(self.signature["task"])

    @property
    def classes(self) -> list[Any]:
        return list(self.signature.get("classes") or [])

    @property
    def key(self) -> list[str]:
        return [str(k) for k in self.signature.get("key") or []]


def load_scorer(folder: str) -> Scorer:
    """The model in a folder holding model.json and signature.json (a model's or a bundle's)."""
    import xgboost as xgb

    for name in (MODEL_FILE, SIGNATURE_FILE):
        if not os.path.isfile(os.path.join(folder, name)):
            raise NodeError(f"{os.path.join(folder, name)} is missing; build the model first")
    booster = xgb.Booster()
    try:
        booster.load_model(os.path.join(folder, MODEL_FILE))
    except xgb.core.XGBoostError as exc:
        raise NodeError(f"cannot load {os.path.join(folder, MODEL_FILE)}: {first_line(exc)}") from None
    signature = read_json(os.path.join(folder, SIGNATURE_FILE))
    return Scorer(booster, signature, inputs_from_signature(signature))


def table_matrix(scorer: Scorer, frame: pl.DataFrame) -> np.ndarray:
    """A table's inputs as the model kind encodes them (design.design_matrix)."""
    return design_matrix(frame, scorer.inputs)


def predict(scorer: Scorer, x: np.ndarray) -> np.ndarray:
    """P(positive class) for binary, an (n, k) matrix for multiclass, values for regression.

    inplace_predict gives the same numbers as the model kind's DMatrix predict (the
    booster keeps its categorical feature types) and skips building a DMatrix."""
    import numpy as np

    if not len(x):
        width = len(scorer.classes) if scorer.task == "multiclass" else 0
        return np.zeros((0, width) if width else (0,), dtype=np.float32)
    return scorer.booster.inplace_predict(x)  # type: ignore[no-any-return]


def probability_columns(scorer: Scorer) -> list[str]:
    """The probability columns a prediction table has, as in the model's predictions.parquet."""
    if scorer.task == "binary":
        return ["probability"]
    if scorer.task == "multiclass":
        return [f"probability_{c}" for c in scorer.classes]
    return []


def prediction_columns(scorer: Scorer, pred: np.ndarray) -> dict[str, list[Any]]:
    """`prediction` (a class label or a value) and the probability columns, as plain lists."""
    import numpy as np

    classes = scorer.classes
    if not classes:
        return {"prediction": pred.astype(np.float64).tolist()}
    if pred.ndim == 1:
        labels = [classes[1] if p >= 0.5 else classes[0] for p in pred.tolist()]
        return {"prediction": labels, "probability": pred.astype(np.float64).tolist()}
    labels = [classes[i] for i in np.argmax(pred, axis=1).tolist()]
    columns: dict[str, list[Any]] = {"prediction": labels}
    for i, name in enumerate(probability_columns(scorer)):
        columns[name] = pred[:, i].astype(np.float64).tolist()
    return columns


def prediction_arrays(scorer: Scorer, pred: np.ndarray) -> dict[str, list[Any]]:
    """The JSON answer for a batch, aligned with its rows: `predictions`, and `probabilities`
    (binary: of the positive class, the last of `classes`; multiclass: one list per row,
    in the order of `classes`)."""
    import numpy as np

    columns = prediction_columns(scorer, pred)
    out = {"predictions": columns["prediction"]}
    if scorer.task == "binary":
        out["probabilities"] = columns["probability"]
    elif scorer.task == "multiclass":
        out["probabilities"] = pred.astype(np.float64).tolist()
    return out


def prediction_record(scorer: Scorer, arrays: dict[str, list[Any]], row: int) -> dict[str, Any]:
    """The JSON answer for one row: `prediction`, and `probability` (binary: of the positive
    class) or `probabilities` ({class: p}, multiclass)."""
    record = {"prediction": arrays["predictions"][row]}
    if scorer.task == "binary":
        record["probability"] = arrays["probabilities"][row]
    elif scorer.task == "multiclass":
        record["probabilities"] = dict(zip(map(str, scorer.classes), arrays["probabilities"][row], strict=True))
    return record
