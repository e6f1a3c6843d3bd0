"""Request-time features: the feature set's own SQL run on the raw rows of a request, with
the other tables it reads (events, say) looked up by the entity key. What the bundle writer
and the service share: the bundle's `request.json`, its per-table parquet files, and the
computation itself, so that the build can replay it on the data before a service ever does.

    request.json            {"table", "sql", "key", "target", "tables": {name: file}, "sample": …}
    request.<table>.parquet the request table's columns the SQL reads, no rows (the schema)
    lookup.<table>.parquet  each other table, only the columns the SQL reads, sorted by the key

A feature set runs per request when its SQL reads only datasets, its first table is the one a
request's rows belong to, and every other table carries the key: a row's features then come
from that row and the other tables' rows of its key. Whether the SQL really relates them by
the key alone (no aggregate across customers, say) no reading of SQL can tell; the build
replays it per row on a sample of the data and compares with the whole query (`replay`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

REQUEST_FILE = "request.json"
REPLAY_ROWS = 200  # the rows of the request table the build replays one by one


@dataclass(frozen=True)
class Lookup:
    """A table by key: the rows of one key are `frame[start:start + length]`."""

    frame: pl.DataFrame
    spans: dict[Any, tuple[int, int]]

    def rows_of(self, key: Any) -> pl.DataFrame:
        start, length = self.spans.get(key, (0, 0))
        return self.frame.slice(start, length)

    def rows_of_many(self, keys: list[Any]) -> pl.DataFrame:
        import polars as pl

        return pl.concat([self.rows_of(k) for k in keys]) if len(keys) != 1 else self.rows_of(keys[0])


@dataclass(frozen=True)
class RequestFeatures:
    """The feature set's SQL and the tables it reads besides the request's rows."""

    table: str
    sql: str
    key: tuple[str, ...]
    schema: pl.Schema  # the request table's columns the SQL reads
    lookups: dict[str, Lookup]

    def compute(self, request: pl.DataFrame, keys: list[Any]) -> pl.DataFrame:
        """The feature rows of `request` (rows of the request table) whose keys are `keys`."""
        import polars as pl

        frames = {self.table: request.lazy()} | {n: t.rows_of_many(keys).lazy() for n, t in self.lookups.items()}
        return pl.SQLContext(frames, eager=False).execute(self.sql).collect(engine="in-memory")


def key_value(values: tuple[Any, ...]) -> Any:
    """How a key is held in `Lookup.spans`: its one value, or the tuple of a composite key."""
    plain = tuple(v if isinstance(v, (int, float, str)) and not isinstance(v, bool) else str(v) for v in values)
    return plain[0] if len(plain) == 1 else plain


def make_lookup(frame: pl.DataFrame, key: list[str]) -> Lookup:
    """Sort a table by its key and note where each key's rows lie. A row with a null in its key
    joins no row in SQL, so it has no span (key_value would hold a null as the string "None")."""
    frame = frame.sort(key, maintain_order=True)
    spans: dict[Any, tuple[int, int]] = {}
    for n, values in enumerate(frame.select(key).iter_rows()):
        if None in values:
            continue
        k = key_value(values)
        start, length = spans.get(k, (n, 0))
        spans[k] = (start, length + 1)
    return Lookup(frame, spans)


def keys_of(frame: pl.DataFrame, key: tuple[str, ...]) -> list[Any]:
    """The key of each row of a request frame (in row order)."""
    return [key_value(values) for values in frame.select(list(key)).iter_rows()]


def replay(features: RequestFeatures, table: pl.DataFrame) -> str:
    """Why the per-row computation disagrees with the whole query on the data ('' when it agrees):
    up to REPLAY_ROWS rows of `table`, evenly spread, are computed one by one and together."""
    import polars as pl

    step = max(1, table.height // REPLAY_ROWS)
    sample = table.gather_every(step).head(REPLAY_ROWS)
    if sample.height == 0:
        return ""
    keys = keys_of(sample, features.key) if features.key else [None] * sample.height
    whole = pl.SQLContext({features.table: sample.lazy()} | {n: t.frame.lazy() for n, t in features.lookups.items()},
                          eager=False).execute(features.sql).collect(engine="in-memory")
    parts = [features.compute(sample.slice(n, 1), [keys[n]] if features.key else []) for n in range(sample.height)]
    one_by_one = pl.concat(parts, how="vertical_relaxed") if parts else whole.clear()
    if one_by_one.columns != whole.columns:
        return f"computed one row at a time it gives the columns {one_by_one.columns}, not {whole.columns}"
    order = whole.columns
    if not one_by_one.sort(order, nulls_last=True).equals(whole.sort(order, nulls_last=True)):
        return (f"computed one row at a time on {sample.height} rows of {features.table} it gives other values "
                "than the whole query (does it aggregate across rows of different keys?)")
    return ""
