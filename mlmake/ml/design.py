"""From a table to what xgboost eats, reproducibly: the inputs and their encoding
(recorded in signature.json so serving can rebuild the same matrix), the target
and its classes, and the seeded train/test split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError
from mlmake.ml.tables import dtype_name, examples

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

TEXT_TYPES = ("str", "category")


@dataclass(frozen=True, slots=True)
class Input:
    """One input column; a categorical one is coded as the position of its value in `categories`."""

    name: str
    type: str
    categories: tuple[Any, ...] | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.categories is not None:
            out["categories"] = list(self.categories)
        return out


@dataclass(frozen=True, slots=True)
class Target:
    """The predicted column; `classes` are sorted and a class's code is its position."""

    name: str
    type: str
    classes: tuple[Any, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type}


# --- inputs -------------------------------------------------------------------------


def describe_inputs(frame: pl.DataFrame, names: list[str]) -> list[Input]:
    """The inputs of a model, with the sorted category list of each text column."""
    levels = {n: categories(frame[n]) for n in text_columns(dict(frame.schema), names)}
    return inputs_from(dict(frame.schema), names, levels)


def text_columns(schema: dict[str, pl.DataType], names: list[str]) -> list[str]:
    """The columns of `names` that are coded as categories."""
    return [n for n in names if dtype_name(schema[n]) in TEXT_TYPES]


def inputs_from(schema: dict[str, pl.DataType], names: list[str], levels: dict[str, tuple[Any, ...]]) -> list[Input]:
    """The inputs from the table's types and each text column's categories (`categories`, or
    their sorted union over partitions); NodeError for a column a model cannot take."""
    if not names:
        raise NodeError("the model has no input columns left (after the target, key and drop)")
    inputs, problems = [], []
    for name in names:
        kind = dtype_name(schema[name])
        if kind in TEXT_TYPES:
            inputs.append(Input(name, kind, levels.get(name, ())))
        elif schema[name].is_numeric() or kind == "bool":
            inputs.append(Input(name, kind))
        else:
            problems.append(f"input column '{name}' has type {kind}, which a model cannot take")
    if problems:
        hint = "drop them, or derive numbers from them in the feature set"
        raise NodeError("; ".join(problems) + f" ({hint})")
    return inputs


def categories(column: pl.Series) -> tuple[Any, ...]:
    """The sorted distinct values of a text column, as text, nulls left out."""
    import polars as pl

    return tuple(column.cast(pl.String).drop_nulls().unique().sort().to_list())


def inputs_from_signature(signature: dict[str, Any]) -> list[Input]:
    """The inputs a model recorded in its signature.json, for serving to rebuild its matrix."""
    return [Input(str(i["name"]), str(i["type"]),
                  tuple(i["categories"]) if "categories" in i else None) for i in signature["inputs"]]


def feature_types(inputs: list[Input]) -> list[str]:
    """xgboost's feature types: 'c' for categorical, 'q' for numbers."""
    return ["c" if i.categories is not None else "q" for i in inputs]


def design_matrix(frame: pl.DataFrame, inputs: list[Input]) -> np.ndarray:
    """The float matrix of the inputs: nulls and unknown categories are NaN (missing)."""
    import numpy as np
    import polars as pl

    columns = []
    for spec in inputs:
        column = frame[spec.name]
        if spec.categories is not None:
            codes = range(len(spec.categories))
            column = column.cast(pl.String).replace_strict(
                list(spec.categories), list(codes), default=None, return_dtype=pl.Float64)
        columns.append(column.cast(pl.Float64).to_numpy())
    return np.column_stack(columns).astype(np.float32)


# --- target --------------------------------------------------------------------------


def describe_target(column: pl.Series, task: str) -> Target:
    """The target with its classes; NodeError when it does not fit the task."""
    nulls = column.null_count()
    classes = class_values(column) if task != "regression" and not nulls else ()
    return target_from(column.name, column.dtype, task, nulls, classes)


def target_from(name: str, dtype: pl.DataType, task: str, nulls: int, classes: tuple[Any, ...]) -> Target:
    """The target from its type, null count and sorted values (class_values; a reduction over
    partitions gives them too); NodeError when it does not fit the task."""
    kind = dtype_name(dtype)
    if nulls:
        raise NodeError(f"target '{name}' has {nulls} null rows; fill or filter them in the feature set")
    if task == "regression":
        if not (dtype.is_numeric() or kind == "bool"):
            raise NodeError(f"a regression target must be numeric; '{name}' has type {kind}")
        return Target(name, kind)
    if task == "binary" and len(classes) != 2:
        hint = "; use task: multiclass" if len(classes) > 2 else ""
        raise NodeError(f"a binary target needs exactly 2 values; '{name}' has {len(classes)}: "
                        f"{examples(list(classes), 10)}{hint}")
    if len(classes) < 2:
        raise NodeError(f"a multiclass target needs at least 2 values; '{name}' has {len(classes)}")
    return Target(name, kind, classes)


def class_values(column: pl.Series) -> tuple[Any, ...]:
    """The sorted values of a class column (text as text); NodeError for fractions."""
    import polars as pl

    if dtype_name(column.dtype) in TEXT_TYPES:
        column = column.cast(pl.String)
    elif column.dtype.is_float() and not (column == column.floor()).all():
        raise NodeError(f"a class target must hold labels, not fractions; '{column.name}' has {column.dtype}")
    return tuple(column.unique().sort().to_list())


def encode_target(column: pl.Series, target: Target) -> np.ndarray:
    """Class codes for classification, floats for regression."""
    import numpy as np
    import polars as pl

    if not target.classes:
        return column.cast(pl.Float64).to_numpy().astype(np.float64)
    if target.type in TEXT_TYPES:
        column = column.cast(pl.String)
    codes = column.replace_strict(list(target.classes), list(range(len(target.classes))), return_dtype=pl.Int64)
    return codes.to_numpy()


# --- split ---------------------------------------------------------------------------


def split_rows(n: int, test_size: float, seed: int, strata: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices, each sorted: seeded, and per class when `strata` is given."""
    import numpy as np

    if not 0 < test_size < 1:
        raise NodeError(f"split.test_size must be between 0 and 1, got {test_size}")
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == c) for c in np.unique(strata)]
    picked = [rng.permutation(g)[: int(np.floor(len(g) * test_size + 0.5))] for g in groups]
    held = np.zeros(n, dtype=bool)
    held[np.concatenate(picked)] = True
    return checked_split(n, int(held.sum()), np.flatnonzero(~held), np.flatnonzero(held))


def checked_split(n: int, held: int, train: Any, test: Any) -> tuple[Any, Any]:
    """(train, test) as given; NodeError when either part of the n rows is empty (held: held out)."""
    check_split(n, held)
    return train, test


def check_split(n: int, held: int) -> None:
    """NodeError when holding out `held` of the n rows leaves either part empty."""
    if held in (0, n):
        raise NodeError(f"the split leaves {n - held} training and {held} held-out rows of {n}; "
                        "change split.test_size or add rows")
