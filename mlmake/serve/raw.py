"""Raw rows in: a /predict row holding the columns of the feature set's first table (a
customer, a penguin) instead of the model's inputs gets its features from the feature set's
own SQL, run on that row with the other tables' rows of its key (ml/online.py), and is then
encoded like any row. The bundle says whether its feature set can (manifest "request").

A row is raw when it holds none of the inputs that only the SQL makes (n_events, bill_ratio)
and either some exist or it holds a column the model does not take (sex): so a feature row
missing one input is still told that input is missing."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import did_you_mean
from mlmake.ml.online import REQUEST_FILE, RequestFeatures, key_value, make_lookup
from mlmake.ml.rowplan import FLOAT_SUMS, RowPlan, compile_row
from mlmake.ml.rows import Loc, Problem
from mlmake.ml.rowsql import Unsupported

if TYPE_CHECKING:
    import polars as pl

_INTEGER, _NUMBER, _STRING, _BOOL, _OTHER = range(5)
_ACCEPTS: dict[int, tuple[type, ...]] = {_INTEGER: (int,), _NUMBER: (int, float), _STRING: (str,), _BOOL: (bool,),
                                         _OTHER: (str,)}
_CODE = {_INTEGER: "integer_type", _NUMBER: "number_type", _STRING: "string_type", _BOOL: "bool_type",
         _OTHER: "string_type"}
_WANTED = {_INTEGER: "an integer", _NUMBER: "a number", _STRING: "a string", _BOOL: "true or false",
           _OTHER: "a string"}


@dataclass(frozen=True)
class RawRows:
    """What a bundle needs to turn raw rows into feature rows."""

    features: RequestFeatures
    feature_set: str
    columns: dict[str, int]  # the request table's columns the SQL reads → how a JSON value is checked
    optional: frozenset[str]  # columns a row may leave out (the target: a client does not know it)
    derived: frozenset[str]  # inputs only the SQL makes
    raw_only: frozenset[str]  # columns a raw row has and a feature row does not
    fast: RowPlan | None = None  # the SQL compiled for one row, where the build found it gives the same

    def is_raw(self, row: Any) -> bool:
        if type(row) is not dict or row.keys() & self.derived:
            return False
        return bool(self.derived) or bool(row.keys() & self.raw_only)

    def feature_row(self, row: dict[str, Any], at: Loc, problems: list[Problem]) -> dict[str, Any] | None:
        """The feature set's row for one raw row, or None with the problems recorded."""
        found = self._check(row, at)
        if found:
            problems += found
            return None
        if self.fast is not None:
            computed = self.fast.row(row)
            if computed is not None:
                return computed
        frame = self._frame(row, at, problems)
        if frame is None:
            return None
        keys = [key_value(tuple(row[k] for k in self.features.key))] if self.features.key else []
        result = self.features.compute(frame, keys)
        if result.height != 1:
            what = "keeps no row" if result.height == 0 else f"gives {result.height} rows"
            problems.append(Problem(at, "no_features", f"the sql of feature set {self.feature_set} {what} for this "
                                    "row, so the model has nothing to score (as in training, where it "
                                    f"{'is left out' if result.height == 0 else 'is repeated'})"))
            return None
        return result.row(0, named=True)

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of one raw row: what /metadata and the OpenAPI document show clients."""
        types = {_INTEGER: "integer", _NUMBER: "number", _STRING: "string", _BOOL: "boolean", _OTHER: "string"}
        properties: dict[str, Any] = {name: {"anyOf": [{"type": types[kind]}, {"type": "null"}]}
                                      for name, kind in self.columns.items()}
        properties |= {name: {} for name in sorted(self.raw_only - set(self.columns))}  # read by no sql: ignored
        return {"type": "object", "properties": properties,
                "required": [n for n in self.columns if n not in self.optional], "additionalProperties": False}

    def _check(self, row: dict[str, Any], at: Loc) -> list[Problem]:
        """Wrong values and unknown columns first (where the encoder would name them), then the missing."""
        problems = []
        for name, value in row.items():
            kind = self.columns.get(name)
            if kind is None:
                if name not in self.raw_only:
                    hint = did_you_mean(name, list(self.columns))
                    problems.append(Problem((*at, name), "extra_forbidden", f"'{name}' is not a column of "
                                            f"{self.features.table}" + (f" ({hint})" if hint else "")
                                            + f"; a raw row carries {', '.join(self.columns)}", value))
            elif value is not None and (isinstance(value, bool) != (kind == _BOOL)
                                        or not isinstance(value, _ACCEPTS[kind])):
                problems.append(Problem((*at, name), _CODE[kind], f"'{name}': expected {_WANTED[kind]}, got "
                                        f"{json.dumps(value)[:40]}", value))
        return problems + [
            Problem((*at, name), "missing", f"'{name}' is missing; a raw row carries every column of "
                    f"{self.features.table} the feature set reads ({', '.join(self.columns)}); "
                    "send null for an unknown value") for name in self.columns
            if name not in row and name not in self.optional]

    def _frame(self, row: dict[str, Any], at: Loc, problems: list[Problem]) -> pl.DataFrame | None:
        import polars as pl

        schema = self.features.schema
        try:
            if _OTHER not in self.columns.values():  # the fast path: JSON values are already the column's kind
                return pl.DataFrame([[row.get(name) for name in self.columns]], schema=schema, orient="row",
                                    strict=False)
            data = {name: pl.Series(name, [row.get(name)], dtype=pl.String if kind == _OTHER else schema[name],
                                    strict=False) for name, kind in self.columns.items()}
            return pl.DataFrame([s.cast(schema[s.name]) if self.columns[s.name] == _OTHER else s
                                 for s in data.values()])
        except pl.exceptions.PolarsError as exc:
            problems.append(Problem(at, "type", f"cannot read the row as {self.features.table}: "
                                    f"{str(exc).splitlines()[0]}"))
            return None


def load_raw(blobs: dict[str, bytes], manifest: dict[str, Any], input_names: list[str]) -> RawRows | None:
    """The raw-row computation of a bundle whose feature set runs per request, else None."""
    import polars as pl

    entry = manifest.get("request") or {}
    if not entry.get("runs") or REQUEST_FILE not in blobs:
        return None
    tables: dict[str, str] = entry["tables"]
    table, key = str(entry["table"]), [str(k) for k in entry["key"]]
    request = pl.read_parquet(io.BytesIO(blobs[tables[table]]))
    lookups = {name: make_lookup(pl.read_parquet(io.BytesIO(blobs[file])), key)
               for name, file in tables.items() if name != table}
    features = RequestFeatures(table, str(entry["sql"]), tuple(key), request.schema, lookups)
    columns = {name: _kind(dtype) for name, dtype in request.schema.items()}
    target = entry.get("target")
    inputs = set(input_names)
    return RawRows(features, str(manifest.get("model", {}).get("features") or table), columns,
                   frozenset({target} & set(columns)) if isinstance(target, str) else frozenset(),
                   frozenset(inputs - set(columns)),
                   frozenset((set(columns) | set(entry.get("ignores") or [])) - inputs - set(key)),
                   _fast(features, entry.get("compiled"), columns))


def _fast(features: RequestFeatures, compiled: Any, columns: dict[str, int]) -> RowPlan | None:
    """The compiled form the build checked (manifest "compiled"), else None: polars' SQL answers
    (also where a column is read from a JSON string, a date say: polars parses it)."""
    if not isinstance(compiled, dict) or not compiled.get("runs") or compiled.get("float_sum") not in FLOAT_SUMS \
            or _OTHER in columns.values():
        return None
    try:
        return compile_row(features, str(compiled.get("float_sum")))
    except Unsupported:
        return None


def _kind(dtype: pl.DataType) -> int:
    import polars as pl

    if dtype == pl.Boolean:
        return _BOOL
    if dtype.is_integer():
        return _INTEGER
    if dtype.is_numeric():
        return _NUMBER
    if dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum)):
        return _STRING
    return _OTHER
