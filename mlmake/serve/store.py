"""The online store: a bundle's copy of the keyed feature table, held in memory and
encoded once at load by the model kind's own encoding (design.design_matrix), so a
request may send only an entity key and gets exactly the batch target's prediction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlmake.ml.design import Input, design_matrix
from mlmake.ml.tables import dtype_name

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

_TYPES = {"integer": (int,), "string": (str,), "number": (int, float)}


@dataclass(frozen=True)
class OnlineStore:
    """Rows by key: `find` gives a row number into `matrix` (the encoded inputs)."""

    key: list[str]
    frame: pl.DataFrame
    matrix: np.ndarray
    index: dict[Any, int]
    key_types: list[str]  # per key column: integer, number or string (what JSON must send)

    def find(self, values: tuple[Any, ...]) -> int | None:
        """The row of a key given as JSON values (one per key column), or None."""
        probe = values[0] if len(values) == 1 else values
        return self.index.get(probe)

    def wrong_type(self, column: int, value: Any) -> str | None:
        """Why a JSON value cannot be a value of key column `column`, or None."""
        kind = self.key_types[column]
        if isinstance(value, bool) or not isinstance(value, _TYPES[kind]):
            return f"expected {'an' if kind == 'integer' else 'a'} {kind}"
        return None

    def features(self, row: int) -> dict[str, Any]:
        """The stored row (key and inputs), for the prediction log."""
        return self.frame.row(row, named=True)


def load_store(frame: pl.DataFrame, key: list[str], inputs: list[Input]) -> OnlineStore:
    """Index a store table by its key and encode its inputs once."""
    rows = frame.select(key).rows()
    keys = [_plain(r[0]) if len(key) == 1 else tuple(_plain(v) for v in r) for r in rows]
    index = {k: i for i, k in enumerate(keys)}
    types = [_json_type(dtype_name(frame.schema[k]), frame.schema[k]) for k in key]
    return OnlineStore(key, frame, design_matrix(frame, inputs), index, types)


def _plain(value: Any) -> Any:
    # a date or decimal key is looked up by its text, the form JSON can carry
    return value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else str(value)


def _json_type(name: str, dtype: Any) -> str:
    if name.startswith(("int", "uint")):
        return "integer"
    if dtype.is_float():
        return "number"
    return "string"
