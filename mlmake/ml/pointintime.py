"""Point-in-time correct training sets: a table joined to the rows of another as of their event
time (polars' as-of join, backward: the latest row at or before it, per key), so no training row
sees a value recorded after its own event; and the check that finds a table that does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError

if TYPE_CHECKING:
    import polars as pl


def as_of_name(table: str, time: str) -> str:
    """What the joined table's own timestamp is called in the result: `balances_at`."""
    return f"{table}_{time}"


def join_as_of(spine: pl.LazyFrame, spine_time: str, table: pl.LazyFrame, name: str, time: str,
               by: list[str]) -> pl.LazyFrame:
    """Each row of `spine` with the columns of the latest row of `table` (same `by` key) whose
    `time` is at or before the spine row's `spine_time`; nulls where there is none."""
    import polars as pl

    renamed = table.rename({time: as_of_name(name, time)})
    joined_time = as_of_name(name, time)
    try:
        return spine.sort(spine_time).join_asof(
            renamed.sort(joined_time), left_on=spine_time, right_on=joined_time, by=by or None,
            strategy="backward", check_sortedness=False)
    except pl.exceptions.PolarsError as exc:
        raise NodeError(f"as_of {name}: {str(exc).splitlines()[0]}") from None


def leakage(frame: pl.DataFrame, check: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The outcome of a `leakage` check ({label: COLUMN, features: [COLUMN, …]}): the rows where
    a feature's timestamp is after the label's, and a line saying so ('' when there are none)."""
    import polars as pl

    label, features = str(check["label"]), [str(f) for f in check["features"]]
    missing = [c for c in [label, *features] if c not in frame.columns]
    if missing:
        return ({"leakage": check, "passed": False},
                f"check leakage: no column {missing[0]}; the table has {frame.columns}")
    found = []
    for column in features:
        late = frame.with_row_index("_row").filter(pl.col(column) > pl.col(label))
        if late.height:
            rows = [r + 1 for r in late["_row"].head(5).to_list()]
            found.append(f"check leakage: {late.height} row{'s' if late.height != 1 else ''} with {column} "
                         f"after {label} (a value recorded after the label: it leaks the future), e.g. rows {rows}")
    return {"leakage": check, "passed": not found}, "; ".join(found)
