"""A model's table prepared one partition at a time (engine: dask), where each partition is
read: what the single-machine model learns from the whole table (ml/supervised.prepare), learned
by a reduction over partitions instead, then applied to each.

Two passes over the partitions. `summarize` reads what the encoding needs (the target's nulls
and classes, each text input's categories, the inputs holding inf), and `merge` reduces the
summaries: classes and categories are the sorted union of each partition's sorted values, which
is what describe_target and describe_inputs find in the whole table. `split_part` then splits a
partition by hash (ml/hashsplit) and encodes it with the merged design (design.design_matrix, as
serving does), giving the training rows, the held-out rows and, of the held-out rows, only the
key, target and slice columns that the metrics and predictions.parquet read.

Partitions come from dask.dataframe as pandas frames with pyarrow types; each is turned into a
polars frame cast to the table's own schema, so the values are those a polars read gives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError
from mlmake.ml.design import Input, Target, class_values, design_matrix, encode_target
from mlmake.ml.hashsplit import is_held, row_hash

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

HASH_COLUMN = "__mlmake_row_hash"  # the held-out rows' order when the table has no key


@dataclass(frozen=True, slots=True)
class PartPlan:
    """What a worker needs to summarize and split a partition (small: it travels with each task)."""

    schema: dict[str, Any]  # the table's polars types, by column
    task: str
    target: str
    inputs: list[str]
    text: list[str]  # the inputs coded as categories
    hashed: list[str]  # the split's hash columns: the key, else every column
    kept: list[str]  # the held-out rows' columns gathered: key, target, slices
    keyed: bool  # the table has a key (hashed), which orders the held-out rows; else their hash does
    test_size: float
    seed: int


@dataclass(frozen=True, slots=True)
class Summary:
    """A partition's (or, merged, the table's) facts the encoding is learned from."""

    rows: int = 0
    nulls: int = 0
    classes: tuple[Any, ...] = ()
    levels: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    infinite: frozenset[str] = frozenset()


def summarize(part: pd.DataFrame, plan: PartPlan) -> Summary:
    """The facts of one partition."""
    import numpy as np
    import polars as pl

    frame = to_polars(part, plan)
    target = frame[plan.target]
    nulls = target.null_count()
    classes = class_values(target) if plan.task != "regression" and not nulls else ()
    levels = {n: tuple(frame[n].cast(pl.String).drop_nulls().unique().sort().to_list()) for n in plan.text}
    numbers = [n for n in plan.inputs if n not in plan.text and frame.schema[n].is_float()]
    infinite = frozenset(n for n in numbers if np.isinf(frame[n].cast(pl.Float32).to_numpy()).any())
    return Summary(frame.height, nulls, classes, levels, infinite)


def merge(summaries: list[Summary]) -> Summary:
    """The table's facts from its partitions'."""

    def union(values: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        return tuple(sorted(set().union(*values)))

    names = {n for s in summaries for n in s.levels}
    return Summary(sum(s.rows for s in summaries), sum(s.nulls for s in summaries),
                   union([s.classes for s in summaries]),
                   {n: union([s.levels.get(n, ()) for s in summaries]) for n in sorted(names)},
                   frozenset().union(*(s.infinite for s in summaries)))


def split_part(part: pd.DataFrame, plan: PartPlan, inputs: list[Input], target: Target) -> dict[str, Any]:
    """One partition split and encoded: train_x, train_y, test_x, test_y (pandas, float32 inputs
    named as the model's) and held (the held-out rows' kept columns, plus the row hash when the
    table has no key)."""
    import numpy as np
    import pandas as pd
    import polars as pl

    frame = to_polars(part, plan)
    hashes = row_hash(frame, plan.hashed, plan.seed)
    held = is_held(hashes, plan.test_size)
    x, y = design_matrix(frame, inputs), encode_target(frame[plan.target], target).astype(np.float32)
    names = [i.name for i in inputs]
    rows = frame.filter(pl.Series(held, dtype=pl.Boolean)).select(plan.kept)
    if not plan.keyed:
        rows = rows.with_columns(pl.Series(HASH_COLUMN, hashes[held], dtype=pl.UInt64))
    return {"train_x": pd.DataFrame(x[~held], columns=names), "train_y": pd.Series(y[~held], name=plan.target),
            "test_x": pd.DataFrame(x[held], columns=names), "test_y": pd.Series(y[held], name=plan.target),
            "held": rows.to_pandas(use_pyarrow_extension_array=True)}


def to_polars(part: pd.DataFrame, plan: PartPlan) -> pl.DataFrame:
    """A pandas partition as the polars frame a read of its rows gives (the table's types)."""
    import polars as pl
    import pyarrow as pa

    frame = pl.from_arrow(pa.Table.from_pandas(part, preserve_index=False))
    if not isinstance(frame, pl.DataFrame):  # pragma: no cover - a Table always gives a frame
        raise NodeError("a partition did not read as a table")
    try:
        return frame.cast({n: t for n, t in plan.schema.items() if n in frame.columns})
    except pl.exceptions.PolarsError as exc:
        raise NodeError(f"a partition's columns do not have the table's types: {exc}") from None
