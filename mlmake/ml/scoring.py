"""Scoring with a built model, shared by the batch target and the prediction service,
so a row gets the same prediction from the model kind, a `batch` target and `/predict`.

Tables are encoded by design.design_matrix, the model kind's own encoding; JSON rows
by rows.RowEncoder, which codes values the same way without polars (see there why).
Both matrices go through the one `predict` and the one way of naming outputs here.

What predicts is a `Predictor`, chosen by the `format` a model recorded in its
signature.json: absent for the built-in xgboost booster (model.json), else the name of
the kind that wrote the model, whose `load_predictor(folder, signature)` rebuilds it
from the files the signature lists under `files` (never from a pickle)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mlmake.core.errors import NodeError
from mlmake.ml.design import Input, design_matrix, inputs_from_signature
from mlmake.ml.tables import first_line, read_json

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import polars as pl

MODEL_FILE = "model.json"  # the model kind's file names (model.py), read here
SIGNATURE_FILE = "signature.json"
METRICS_FILE = "metrics.json"
FORMAT_KEY = "format"  # signature.json: the kind whose load_predictor reads the model; absent: xgboost
FILES_KEY = "files"  # signature.json: the model's own files, beside signature.json and metrics.json


class Predictor(Protocol):
    """A loaded model: P(positive class) for binary, an (n, k) matrix for multiclass,
    values for regression, from a float32 design matrix with NaN for missing values."""

    def predict(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Booster:
    """The built-in predictor: an xgboost booster (model.json)."""

    booster: Any

    def predict(self, x: np.ndarray) -> np.ndarray:
        # inplace_predict gives the same numbers as the model kind's DMatrix predict (the
        # booster keeps its categorical feature types) and skips building a DMatrix
        return self.booster.inplace_predict(x)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Scorer:
    """A loaded predictor with the signature that says how to feed it and read it."""

    predictor: Predictor
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

    @property
    def files(self) -> list[str]:
        return model_files(self.signature)


def model_files(signature: dict[str, Any]) -> list[str]:
    """The files that hold a model besides its signature: what its format lists, or model.json.
    NodeError for a name that is not a plain file name (a bundle copies them by name)."""
    if FORMAT_KEY not in signature:
        return [MODEL_FILE]
    files = signature.get(FILES_KEY)
    names = [str(f) for f in files] if isinstance(files, list) else []
    bad = [n for n in names if n in ("", ".", "..", SIGNATURE_FILE, METRICS_FILE) or "/" in n or "\\" in n]
    if not names or bad:
        raise NodeError(f"{SIGNATURE_FILE}: '{FILES_KEY}' must list the model's files by plain name, got {files!r}")
    return names


def load_scorer(folder: str, threads: int = 1) -> Scorer:
    """The model in a folder holding signature.json and the model's files (a model's or a bundle's)."""
    path = os.path.join(folder, SIGNATURE_FILE)
    if not os.path.isfile(path):
        raise NodeError(f"{path} is missing; build the model first")
    signature = read_json(path)
    for name in model_files(signature):
        if not os.path.isfile(os.path.join(folder, name)):
            raise NodeError(f"{os.path.join(folder, name)} is missing; build the model first")
    return Scorer(load_predictor(folder, signature, threads), signature, inputs_from_signature(signature))


def load_predictor(folder: str, signature: dict[str, Any], threads: int = 1) -> Predictor:
    """The predictor of the model in `folder`, by the format its signature records."""
    if FORMAT_KEY not in signature:
        return load_booster(os.path.join(folder, MODEL_FILE), threads)
    loader: Callable[[str, dict[str, Any]], Predictor] = _kind_loader(str(signature[FORMAT_KEY]))
    return loader(folder, signature)


def load_booster(model: str | bytes, threads: int = 1) -> Booster:
    """The built-in predictor from model.json (a path, or its bytes); NodeError when xgboost refuses it."""
    import xgboost as xgb

    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(model) if isinstance(model, bytes) else model)
    except xgb.core.XGBoostError as exc:
        where = model if isinstance(model, str) else MODEL_FILE
        raise NodeError(f"cannot load {where}: {first_line(exc)}") from None
    booster.set_param({"nthread": max(1, threads)})
    return Booster(booster)


def _kind_loader(name: str) -> Any:
    """The `load_predictor` of the registered kind named `name` (the built-in format needs no
    registry: a docker image serves an xgboost model without loading the kinds)."""
    from mlmake.core.registry import registry

    try:
        kind: Any = registry().by_name(name)
    except KeyError:
        kind = None
    loader = getattr(kind, "load_predictor", None)
    if loader is None:
        raise NodeError(f"the model was written in format '{name}', which no installed kind reads "
                        f"(is the plugin that provides kind '{name}' installed?)")
    return loader


def table_matrix(scorer: Scorer, frame: pl.DataFrame) -> np.ndarray:
    """A table's inputs as the model kind encodes them (design.design_matrix)."""
    return design_matrix(frame, scorer.inputs)


def predict(scorer: Scorer, x: np.ndarray) -> np.ndarray:
    """P(positive class) for binary, an (n, k) matrix for multiclass, values for regression."""
    import numpy as np

    if not len(x):
        width = len(scorer.classes) if scorer.task == "multiclass" else 0
        return np.zeros((0, width) if width else (0,), dtype=np.float32)
    return scorer.predictor.predict(x)


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
