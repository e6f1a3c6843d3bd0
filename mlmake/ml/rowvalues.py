"""The values of a query compiled for one row (rowplan.py): each expression becomes a function of
(the request row, its key's aggregates) with the kind polars gives its column, and computes
what polars computes, or raises Bail where it cannot vouch for that (a NaN compared, an
integer past Int64, a -0.0 summed). Where the kinds themselves would go where this does not
follow polars (a decimal literal outside float arithmetic), Unsupported: not compiled."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlmake.ml.rowsql import Unsupported

if TYPE_CHECKING:
    import polars as pl

INT, FLOAT, STR, BOOL, NULL, DEC = "int", "float", "str", "bool", "null", "dec"
INT32 = "int32"  # an integer made of literals alone (a literal, a CASE or COALESCE of them): Int32 in polars
Fn = Callable[[dict[str, Any], tuple[Any, ...]], Any]  # (the request row, its key's aggregates) → a value
Aggregate = Callable[[int, int], Any]  # (start, length) of a key's rows in the joined table → a value
_LOW, _HIGH = -(2**63), 2**63 - 1
_LOW32, _HIGH32 = -(2**31), 2**31 - 1
_PAIRWISE = 128  # from this many values on, polars' in-order float sum adds blocks pairwise (not followed)
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul}
_COMPARE = {"=": operator.eq, "<>": operator.ne, "<": operator.lt, ">": operator.gt, "<=": operator.le,
            ">=": operator.ge}


class Bail(Exception):
    """This row's value is not one the compiled form vouches for: the general path answers it."""


def aggregate(name: str, column: list[Any] | None, kind: str, float_sum: str) -> Aggregate:
    """COUNT, SUM, MIN or MAX over the rows [start, start + length) of `column` (None: COUNT(*));
    no rows are the one row of nulls a LEFT JOIN gives a key without rows."""
    def values(start: int, length: int) -> list[Any]:
        assert column is not None
        return [v for v in column[start:start + length] if v is not None]

    if column is None:
        return lambda start, length: max(length, 1)
    if name == "COUNT":
        return lambda start, length: len(values(start, length))
    if name in ("MIN", "MAX"):
        pick = min if name == "MIN" else max

        def extreme(start: int, length: int) -> Any:
            found = values(start, length)
            if kind == FLOAT:
                _unsigned(found)
            return pick(found) if found else None
        return extreme
    if kind == INT:
        return lambda start, length: as_int(sum(found)) if (found := values(start, length)) else None
    add, most = (_kahan, None) if float_sum == "kahan" else (_sequential, _PAIRWISE)

    def total(start: int, length: int) -> Any:
        if most is not None and length >= most:  # polars adds a long group's floats pairwise in blocks
            raise Bail
        found = values(start, length)
        return add(found) if found else None
    return total


def _kahan(values: list[float]) -> float:
    total = compensation = 0.0
    for value in values:
        y = value - compensation
        t = total + y
        compensation = (t - total) - y
        total = t
    return _plain(total, values)


def _sequential(values: list[float]) -> float:
    total = 0.0
    for value in values:
        total += value
    return _plain(total, values)


def _plain(total: float, values: list[float]) -> float:
    """`total`, unless an inf, a NaN or a -0.0 among the values leaves how polars adds them open."""
    if not math.isfinite(total) or total == 0.0:
        _unsigned(values)
    return total


def _unsigned(values: list[float]) -> None:
    """Bail on a NaN, an inf or a -0.0: where min, max and sums may differ in polars."""
    if any(not math.isfinite(v) or v == 0.0 and math.copysign(1.0, v) < 0 for v in values):
        raise Bail


def literal_kind(value: object) -> str:
    """The kind polars gives an integer literal: Int32 where it fits, else Int64."""
    return INT32 if isinstance(value, int) and _LOW32 <= value <= _HIGH32 else INT


def merge(args: list[tuple[str, Fn]]) -> tuple[str, list[Fn]]:
    """The common kind of CASE's or COALESCE's values (as polars' supertype), each made of it:
    Int32 where all are Int32 literals, Int64 where an Int64 is among them."""
    kinds = {k for k, _ in args} - {NULL}
    if len(kinds) == 1 and DEC not in kinds:
        return kinds.pop(), [f for _, f in args]
    kinds = {INT if k == INT32 else k for k in kinds}
    if kinds == {INT}:
        return INT, [f for _, f in args]
    if kinds in ({INT, FLOAT}, {DEC, FLOAT}):
        return FLOAT, [f if k == FLOAT else _to_float(f) for k, f in args]
    raise Unsupported(f"values of the kinds {sorted(kinds) or ['null']} together")


def _to_float(f: Fn) -> Fn:
    return lambda row, aggs: as_float(f(row, aggs))


def arith(op: str, left: tuple[str, Fn], right: tuple[str, Fn]) -> tuple[str, Fn]:
    (lk, lf), (rk, rf) = left, right
    if lk == rk == INT32:  # polars folds literals, or computes in Int32 and wraps: neither followed
        raise Unsupported(f"{op} of two integer literals")
    kinds = {INT if k == INT32 else k for k in (lk, rk)}
    if not kinds <= {INT, FLOAT, DEC} or DEC in kinds and kinds != {DEC, FLOAT}:
        raise Unsupported(f"{op} of {lk} and {rk}")
    if op == "/" or FLOAT in kinds:
        how = _divide if op == "/" else _ARITH[op]

        def floats(row: dict[str, Any], aggs: tuple[Any, ...]) -> Any:
            a, b = lf(row, aggs), rf(row, aggs)
            return None if a is None or b is None else how(float(a), float(b))
        return FLOAT, floats
    how = _ARITH[op]

    def ints(row: dict[str, Any], aggs: tuple[Any, ...]) -> Any:
        a, b = lf(row, aggs), rf(row, aggs)
        return None if a is None or b is None else as_int(how(a, b))
    return INT, ints


def _divide(a: float, b: float) -> float:
    """IEEE division, as polars divides floats (x/0 is ±inf, 0/0 NaN)."""
    if b == 0.0:
        return math.nan if a == 0.0 or a != a else math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def compare(op: str, left: tuple[str, Fn], right: tuple[str, Fn]) -> tuple[str, Fn]:
    (lk, lf), (rk, rf) = left, right
    kinds, how = {INT if k == INT32 else k for k in (lk, rk)}, _COMPARE[op]
    if kinds in ({STR}, {BOOL}, {INT}):
        return BOOL, lambda row, aggs: None if (a := lf(row, aggs)) is None or (b := rf(row, aggs)) is None \
            else how(a, b)
    if kinds in ({FLOAT}, {INT, FLOAT}, {DEC, FLOAT}):
        def floats(row: dict[str, Any], aggs: tuple[Any, ...]) -> Any:
            a, b = lf(row, aggs), rf(row, aggs)
            if a is None or b is None:
                return None
            if a != a or b != b:  # polars orders NaN above everything and equal to itself
                raise Bail
            return how(float(a), float(b))
        return BOOL, floats
    raise Unsupported(f"{op} of {lk} and {rk}")


def logic(op: str, args: list[tuple[str, Fn]]) -> tuple[str, Fn]:
    """Three-valued AND, OR and NOT."""
    if any(k != BOOL for k, _ in args):
        raise Unsupported(f"{op} of something not a condition")
    fns = [f for _, f in args]
    if op == "NOT":
        return BOOL, lambda row, aggs: None if (a := fns[0](row, aggs)) is None else not a
    stop = op == "OR"  # the value that decides: True for OR, False for AND

    def decide(row: dict[str, Any], aggs: tuple[Any, ...]) -> Any:
        a, b = fns[0](row, aggs), fns[1](row, aggs)
        return stop if a is stop or b is stop else None if a is None or b is None else not stop
    return BOOL, decide


def as_int(value: Any) -> Any:
    if value is not None and not _LOW <= value <= _HIGH:
        raise Bail
    return value


def as_float(value: Any) -> Any:
    if value is None or type(value) is float:
        return value
    return float(as_int(value))


def as_str(value: Any) -> Any:
    if value is not None and not value.isascii():
        value.encode()  # a lone surrogate (JSON allows one) is no string polars holds: UnicodeError
    return value


def kind_of(dtype: pl.DataType) -> str:
    import polars as pl

    kinds = {pl.Int64: INT, pl.Float64: FLOAT, pl.String: STR, pl.Boolean: BOOL, pl.Null: NULL}
    for known, kind in kinds.items():
        if dtype == known:
            return kind
    raise Unsupported(f"a column of type {dtype}")


def output_kind(dtype: pl.DataType) -> str:
    """The kind of a column of the query's result, its exact type: Int64, Int32 (of literals)
    or the name of a type the compiled form never gives."""
    import polars as pl

    if dtype == pl.Int32:
        return INT32
    try:
        return kind_of(dtype)
    except Unsupported:
        return str(dtype)
