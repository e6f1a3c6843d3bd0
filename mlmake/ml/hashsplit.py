"""`split: {by: hash}`: a row is held out when a hash of its key (or, without a key, of every
column) and the split's seed falls below test_size. Each row decides alone, so the held-out
rows are the same whatever the rows' order or partitioning and no global sort or shuffle is
needed: `engine: dask` splits each partition where it is read.

The hash is our own, in numpy (splitmix64 over the values' bits, FNV-1a over text), not
polars' row hash, which may change between polars versions: a library upgrade retrains a
model, but must not move its held-out rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlmake.core.errors import NodeError
from mlmake.ml.tables import dtype_name

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

HASH = "hash"  # split.by's value
NULL = 0x9E3779B97F4A7C15  # what a null contributes (any fixed odd constant)
FNV_BASIS, FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3


def held_out(frame: pl.DataFrame, columns: list[str], test_size: float, seed: int) -> np.ndarray:
    """A bool per row: held out for evaluation."""
    return is_held(row_hash(frame, columns, seed), test_size)


def is_held(hashes: np.ndarray, test_size: float) -> np.ndarray:
    """A bool per row hash: its top 53 bits, as a fraction of 1, fall below test_size."""
    import numpy as np

    if not 0 < test_size < 1:
        raise NodeError(f"split.test_size must be between 0 and 1, got {test_size}")
    return (hashes >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 < test_size


def row_hash(frame: pl.DataFrame, columns: list[str], seed: int) -> np.ndarray:
    """A uint64 per row from the values of `columns`, in that order, and the seed."""
    import numpy as np

    h = np.full(frame.height, _mix(np.array([seed], dtype=np.uint64))[0], dtype=np.uint64)
    for name in columns:
        h = _mix(h ^ column_hash(frame[name]))
    return h


def column_hash(column: pl.Series) -> np.ndarray:
    """A uint64 per value: its bits for numbers, dates and times, FNV-1a of its UTF-8 text for text."""
    import numpy as np
    import polars as pl

    kind = dtype_name(column.dtype)
    if kind in ("str", "category") or isinstance(column.dtype, pl.Decimal):
        values = _text_hash(column.cast(pl.String))
    elif column.dtype.is_float():
        floats = column.cast(pl.Float64).to_numpy() + 0.0  # -0.0 → 0.0
        values = np.where(np.isnan(floats), np.nan, floats).view(np.uint64)  # one NaN, whatever its payload
    elif column.dtype.is_integer() or column.dtype.is_temporal() or kind == "bool":
        physical = column.to_physical()
        values = physical.cast(pl.UInt64 if physical.dtype == pl.UInt64 else pl.Int64).fill_null(0).to_numpy()
        values = values.view(np.uint64)
    else:
        raise NodeError(f"split by: hash cannot hash column '{column.name}' of type {kind}; give the table a key "
                        "(a feature set's key:) or drop the column in its feature set")
    nulls = column.is_null().to_numpy()
    return np.where(nulls, np.uint64(NULL), values)


def _text_hash(column: pl.Series) -> np.ndarray:
    """FNV-1a 64 of each value's UTF-8 bytes, a byte position at a time over all values."""
    import numpy as np
    import pyarrow as pa

    array = column.fill_null("").to_arrow().cast(pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset: array.offset + len(array) + 1]
    data = np.frombuffer(array.buffers()[2] or b"", dtype=np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    h = np.full(len(array), FNV_BASIS, dtype=np.uint64)
    for j in range(int(lengths.max(initial=0))):
        longer = np.flatnonzero(lengths > j)
        h[longer] = (h[longer] ^ data[starts[longer] + j].astype(np.uint64)) * np.uint64(FNV_PRIME)
    return h


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit moves about half the output bits."""
    import numpy as np

    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))  # type: ignore[no-any-return]
