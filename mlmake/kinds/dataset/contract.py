"""A dataset's data contract: cast each declared column to its type and check its
rules, collecting every violation as a line of text instead of stopping at the first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlmake.core.gates import show_number
from mlmake.ml.tables import examples, first_line

if TYPE_CHECKING:
    import polars as pl

INTEGERS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
NUMBERS = INTEGERS + ("float32", "float64")
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
SAME_TYPE = NUMBERS + ("bool", "str", "date", "datetime")  # a column already of this type is kept as it is


def polars_type(name: str) -> pl.DataType:
    """The polars type of a schema type name."""
    import polars as pl

    named: dict[str, Any] = {
        "int8": pl.Int8, "int16": pl.Int16, "int32": pl.Int32, "int64": pl.Int64,
        "uint8": pl.UInt8, "uint16": pl.UInt16, "uint32": pl.UInt32, "uint64": pl.UInt64,
        "float32": pl.Float32, "float64": pl.Float64, "bool": pl.Boolean, "str": pl.String,
        "category": pl.Categorical(), "date": pl.Date, "datetime": pl.Datetime("us"),
    }
    return named[name]  # type: ignore[no-any-return]


def read_types(schema: dict[str, dict[str, Any]]) -> dict[str, pl.DataType]:
    """The type to read each declared column of a text file as: numbers and bools as themselves
    (fast; a file where one of them does not parse is read again with `pl.String` everywhere, so
    that the contract can name the bad values), everything else as text."""
    import polars as pl

    return {name: polars_type(kind) if kind in NUMBERS or kind == "bool" else pl.String()
            for name, kind in ((n, str(spec.get("type"))) for n, spec in schema.items())}


def check_columns(raw: pl.DataFrame, schema: dict[str, dict[str, Any]]) -> tuple[list[pl.Series], list[str]]:
    """Each declared column of the table cast to its type, and each rule they break, column by
    column. The rules' bad rows are counted for all columns in one pass; only the rules with bad
    rows are then described (examples), so a table that holds its contract is read once."""
    import polars as pl

    casts: dict[str, pl.Series] = {}
    missing: dict[str, pl.Series] = {}
    found: dict[str, list[str]] = {}
    for name in (c for c in raw.columns if c in schema):
        col, kind = raw[name], str(schema[name]["type"])
        cast = cast_column(col, kind)
        if cast is None:
            found[name] = [f"column '{name}': rule type {kind}: the file has type {col.dtype}, "
                           f"which cannot become {kind}"]
            continue
        bad = cast.is_null() & col.is_not_null() if cast.null_count() else None
        found[name] = [_type_line(name, kind, col, bad)] if bad is not None and bad.any() else []
        casts[name], missing[name] = _non_finite_as_null(cast, col, schema[name])
    counts = _counts(pl.DataFrame(list(casts.values())), {n: schema[n] for n in casts}) if casts else {}
    for name, cast in casts.items():
        found[name] += _rules(cast, missing[name], schema[name], counts)
    return [casts.get(n, raw[n]) for n in found], [p for lines in found.values() for p in lines if p]


def _non_finite_as_null(cast: pl.Series, raw: pl.Series, spec: dict[str, Any]) -> tuple[pl.Series, pl.Series]:
    """NaN and ±inf in a float column are missing values (xgboost cannot train on inf) unless the
    column allows them; the column so, and which of its rows are missing."""
    if not cast.dtype.is_float() or spec.get("allow_non_finite"):
        return cast, raw.is_null()
    import polars as pl

    odd = (cast.is_nan() | cast.is_infinite()).fill_null(False)
    if not odd.any():
        return cast, raw.is_null()
    kept = pl.select(pl.when(odd).then(None).otherwise(cast)).to_series().alias(cast.name)
    return kept, raw.is_null() | odd


def _type_line(name: str, kind: str, col: pl.Series, bad: pl.Series) -> str:
    """`column 'age': rule type int64: 2 bad rows, e.g. ['x', 'y'] at rows [3, 7]`."""
    rows = [i + 1 for i in bad.arg_true().head(5).to_list()]
    return f"{_line(name, f'type {kind}', col.filter(bad))} at rows {rows}"


def delimiter_problem(columns: list[str]) -> str:
    """For a CSV file read as one column whose name holds another delimiter: say so, or ''."""
    if len(columns) != 1:
        return ""
    found = [d for d in (";", "\t", "|") if d in columns[0]]
    if not found:
        return ""
    shown = {"\t": "a tab"}.get(found[0], f"'{found[0]}'")
    return (f"the file parsed into a single column {columns[0]!r}: it looks delimited by {shown}, "
            "but mlmake reads CSV delimited by ','; convert the file, or read it with a python: feature hook")


def check_column(raw: pl.Series, spec: dict[str, Any]) -> tuple[pl.Series, list[str]]:
    """The column cast to its declared type, and each rule it breaks."""
    import polars as pl

    cast, problems = check_columns(pl.DataFrame([raw]), {raw.name: spec})
    return cast[0], problems


def cast_column(raw: pl.Series, kind: str) -> pl.Series | None:
    """The column cast to `kind` (null where a value does not convert), or None when the types cannot convert."""
    import polars as pl

    if kind in SAME_TYPE and raw.dtype == polars_type(kind):
        return raw
    source = raw.cast(pl.String) if isinstance(raw.dtype, (pl.Categorical, pl.Enum)) else raw
    cast = _from_text(source, kind) if source.dtype == pl.String else _from_typed(source, kind)
    return None if cast is None else cast.alias(raw.name)


def _from_text(text: pl.Series, kind: str) -> pl.Series:
    import polars as pl

    word = text.str.strip_chars()
    if kind == "str":
        return text
    if kind == "category":
        return text.cast(pl.Categorical())
    if kind == "bool":
        lower = word.str.to_lowercase()
        words = {w: True for w in TRUE_WORDS} | {w: False for w in FALSE_WORDS}
        return lower.replace_strict(words, default=None, return_dtype=pl.Boolean)
    if kind in ("date", "datetime"):
        return _times(word, kind)
    target = polars_type(kind)
    direct = word.cast(target, strict=False)
    if kind in INTEGERS and direct.null_count() > word.null_count():
        # "3.0" is a whole number too (pandas writes ints with nulls that way)
        return direct.fill_null(_whole(word.cast(pl.Float64, strict=False), target))
    return direct


ISO_FORMATS = {"date": ("%Y-%m-%d",),
               "datetime": ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%d")}


def _times(word: pl.Series, kind: str) -> pl.Series:
    """Dates or datetimes in the format polars infers from the values; where it infers none (the
    first value is not a date), ISO 8601's; null where a value does not parse."""
    import polars as pl

    def parse(fmt: str | None = None) -> pl.Series:
        if kind == "date":
            return word.str.to_date(fmt, strict=False)
        return word.str.to_datetime(fmt, strict=False, time_unit="us")

    try:
        return parse()
    except pl.exceptions.PolarsError:
        out = pl.Series(word.name, [None] * len(word), dtype=polars_type(kind))
        for fmt in ISO_FORMATS[kind]:
            out = out.fill_null(parse(fmt))
        return out


def _from_typed(col: pl.Series, kind: str) -> pl.Series | None:
    import polars as pl

    dtype = col.dtype
    numeric = dtype.is_numeric() or dtype == pl.Boolean or dtype == pl.Null
    if kind == "str":
        return col.cast(pl.String)
    if kind == "category":
        return col.cast(pl.String).cast(pl.Categorical())
    if kind in INTEGERS and numeric:
        return _whole(col.cast(pl.Float64), polars_type(kind)) if dtype.is_float() else \
            col.cast(polars_type(kind), strict=False)
    if kind in NUMBERS and numeric:
        return col.cast(polars_type(kind), strict=False)
    if kind == "bool" and numeric:
        return col.cast(pl.Float64).replace_strict({1.0: True, 0.0: False}, default=None, return_dtype=pl.Boolean)
    if kind == "date" and dtype in (pl.Date, pl.Null):
        return col.cast(pl.Date)
    if kind == "datetime" and (dtype in (pl.Date, pl.Null) or isinstance(dtype, pl.Datetime)):
        return col if isinstance(dtype, pl.Datetime) else col.cast(pl.Datetime("us"))
    return None


def _whole(values: pl.Series, target: pl.DataType) -> pl.Series:
    """Floats that are whole numbers, as integers; the rest null."""
    import polars as pl

    whole = values.is_finite() & (values == values.floor())
    return pl.select(pl.when(whole).then(values).otherwise(None)).to_series().cast(target, strict=False)


Counts = dict[tuple[str, str], int]  # (column, rule) → bad rows, for the rules counted in one pass


def _counts(frame: pl.DataFrame, specs: dict[str, dict[str, Any]]) -> Counts:
    """The bad rows of every rule of every column, in one select; {} when that fails (an invalid
    regex, say), so that each rule is then checked, and its error reported, on its own."""
    import polars as pl

    keys: list[tuple[str, str]] = []
    exprs: list[pl.Expr] = []
    for name, spec in specs.items():
        col, kind = pl.col(name), str(spec["type"])
        bad: dict[str, pl.Expr] = {}
        if spec.get("unique"):
            bad["unique"] = col.is_duplicated() & col.is_not_null()
        if kind in NUMBERS:
            if spec.get("min") is not None:
                bad["min"] = col < float(spec["min"])
            if spec.get("max") is not None:
                bad["max"] = col > float(spec["max"])
        if spec.get("allowed") is not None:
            bad["allowed"] = _not_allowed(col, frame.schema[name], kind, list(spec["allowed"]))
        if spec.get("regex") is not None:
            bad["regex"] = ~col.cast(pl.String).str.contains(str(spec["regex"])).fill_null(True)
        for rule, expr in bad.items():
            keys.append((name, rule))
            exprs.append(expr.fill_null(False).sum().alias(str(len(exprs))))
    if not exprs:
        return {}
    try:
        row = frame.select(exprs).row(0)
    except pl.exceptions.PolarsError:
        return {}
    return {key: int(n) for key, n in zip(keys, row, strict=True)}


def _rules(col: pl.Series, was_null: pl.Series, spec: dict[str, Any], counts: Counts) -> list[str]:
    name, kind = col.name, str(spec["type"])

    def broken(rule: str) -> bool:  # not counted clean in the one pass: check it
        return counts.get((name, rule), 1) > 0

    found: list[str] = []
    if spec.get("nullable", True) is False and was_null.any():
        rows = [i + 1 for i in was_null.arg_true().head(5).to_list()]
        found.append(f"column '{name}': rule nullable false: {bad_rows(int(was_null.sum()))}, e.g. rows {rows}")
    if spec.get("unique") and broken("unique"):
        found.append(_line(name, "unique", col.filter(col.is_duplicated() & col.is_not_null()), distinct=True))
    for bound in ("min", "max"):
        if spec.get(bound) is not None and broken(bound):
            found.append(_bound(col, kind, bound, float(spec[bound])))
    if spec.get("allowed") is not None and broken("allowed"):
        found.append(_allowed(col, kind, list(spec["allowed"])))
    if spec.get("regex") is not None and broken("regex"):
        found.append(_regex(col, str(spec["regex"])))
    return found


def _not_allowed(col: pl.Expr, dtype: pl.DataType, kind: str, allowed: list[Any]) -> pl.Expr:
    """The rows whose value is not in `allowed` (null where the value is null)."""
    import polars as pl

    values = [a for a in allowed if a is not None]
    if kind in ("str", "category"):
        return ~col.cast(pl.String).is_in([str(v) for v in values])
    return ~col.is_in(pl.Series(values, strict=False).cast(dtype, strict=False).drop_nulls().to_list())


def _bound(col: pl.Series, kind: str, bound: str, limit: float) -> str:
    rule = f"{bound} {show_number(limit)}"
    if kind not in NUMBERS:
        return f"column '{col.name}': rule {rule}: needs a numeric column, not {kind}"
    bad = col < limit if bound == "min" else col > limit
    return _line(col.name, rule, col.filter(bad.fill_null(False)))


def _allowed(col: pl.Series, kind: str, allowed: list[Any]) -> str:
    import polars as pl

    values = [a for a in allowed if a is not None]
    if kind in ("str", "category"):
        text = col.cast(pl.String)
        bad = ~text.is_in([str(v) for v in values])
    else:
        bad = ~col.is_in(pl.Series(values, strict=False).cast(col.dtype, strict=False).drop_nulls().to_list())
    return _line(col.name, f"allowed {examples(allowed, len(allowed))}", col.filter(bad.fill_null(False)))


def _regex(col: pl.Series, pattern: str) -> str:
    import polars as pl

    try:
        match = col.cast(pl.String).str.contains(pattern)
    except pl.exceptions.PolarsError as exc:
        return f"column '{col.name}': rule regex {pattern!r}: not a valid regular expression: {_regex_error(exc)}"
    return _line(col.name, f"regex {pattern!r}", col.filter(~match.fill_null(True)))


def _regex_error(exc: Exception) -> str:
    # the regex engine puts the useful part ("error: unclosed group") on a later line
    lines = [ln.strip() for ln in str(exc).splitlines()]
    reason = [ln.removeprefix("error: ") for ln in lines if ln.startswith("error: ")]
    return reason[0] if reason else first_line(exc)


def bad_rows(n: int) -> str:
    return f"{n} bad row{'s' if n != 1 else ''}"


def _line(name: str, rule: str, bad: pl.Series, distinct: bool = False) -> str:
    """`column 'age': rule max 120: 3 bad rows, e.g. [130, 150, 999]`, or '' when none are bad."""
    if bad.len() == 0:
        return ""
    shown = bad.unique(maintain_order=True) if distinct else bad
    return f"column '{name}': rule {rule}: {bad_rows(bad.len())}, e.g. {examples(shown.head(5).to_list())}"
