"""A feature set's query compiled for one request row: plain Python over the row's dict, the
aggregates over the joined table (COUNT, SUM… of a customer's events) taken over the rows of
its key (Lookup.spans). Planning and running polars' SQL for one row costs about a millisecond;
this costs about ten microseconds.

What it must be is exactly the query run by polars (RequestFeatures.compute), so it refuses
what it cannot prove it computes alike: a query outside the subset (rowsql.py) or one whose
types it does not follow (decimal literals outside float arithmetic, integer types other than
Int64) is not compiled; a value it cannot vouch for (a NaN compared, an integer past Int64, a
key with a null) makes `RowPlan.row` answer None, and that row takes the general path. The build
checks it against the general path on the replayed rows (`check`) before a bundle says so."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlmake.ml.online import REPLAY_ROWS, RequestFeatures, key_value
from mlmake.ml.rowsql import AGGREGATES, COMPARISONS, Call, Case, Col, Expr, Join, Lit, Op, Query, Unsupported, parse
from mlmake.ml.rowvalues import (
    BOOL,
    DEC,
    FLOAT,
    INT,
    INT32,
    STR,
    Aggregate,
    Bail,
    Fn,
    aggregate,
    arith,
    as_float,
    as_int,
    as_str,
    compare,
    kind_of,
    literal_kind,
    logic,
    merge,
    output_kind,
)

if TYPE_CHECKING:
    import polars as pl

FLOAT_SUMS = ("kahan", "sequential")  # how polars may add a group's floats; the build finds which (`check`)


@dataclass(frozen=True)
class RowPlan:
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    values: tuple[Fn, ...]
    where: Fn | None
    key: tuple[str, ...]  # empty when nothing is joined
    spans: dict[Any, tuple[int, int]]  # where the joined table's rows of each key lie (Lookup.spans)
    aggregates: tuple[Aggregate, ...]  # each aggregate over the rows of one key: (start, length) → its value
    inner: bool  # a key without rows drops its row (INNER JOIN) rather than join one row of nulls

    def row(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """The feature row of one raw row, or None where the general path must answer (no row
        or several, or a value this form does not vouch for)."""
        try:
            found: tuple[Any, ...] = ()
            if self.key:
                values = tuple(row.get(k) for k in self.key)
                span = None if None in values else self.spans.get(key_value(values), (0, 0))
                if span is None or span[1] == 0 and self.inner:
                    return None
                found = tuple(agg(*span) for agg in self.aggregates)
            if self.where is not None and self.where(row, found) is not True:
                return None
            return {name: value(row, found) for name, value in zip(self.names, self.values, strict=True)}
        except (Bail, ArithmeticError, UnicodeError):
            return None


def compile_row(features: RequestFeatures, float_sum: str = FLOAT_SUMS[0]) -> RowPlan:
    """The query of `features` for one row, a SUM of floats added up as `float_sum` says;
    Unsupported (saying what) where it cannot be."""
    query = parse(features.sql)
    if query.table != features.table:
        raise Unsupported(f"the query reads {query.table} first, not {features.table}")
    if len(query.joins) > 1:
        raise Unsupported("more than one join")
    join = query.joins[0] if query.joins else None
    grouped = bool(query.group_by)
    if grouped != bool(join):
        raise Unsupported("a join without GROUP BY" if join else "GROUP BY without a join")
    compiler = _Compiler(features, query, join, float_sum)
    where = None
    if query.where is not None:
        kind, where = compiler.expr(_no_aggregate(query.where))
        if kind != BOOL:
            raise Unsupported("a WHERE that is not a condition")
    items = [compiler.expr(e) for e, _ in query.items]
    if any(kind == DEC for kind, _ in items):
        raise Unsupported("a decimal literal as a column (a Decimal in polars)")
    names = tuple(_name(e, alias) for e, alias in query.items)
    if len(set(names)) != len(names):
        raise Unsupported("two columns of one name")
    return RowPlan(names, tuple(k for k, _ in items), tuple(f for _, f in items), where,
                   features.key if join else (), compiler.spans, tuple(compiler.aggregates),
                   join is not None and join.how == "inner")


def compiled(features: RequestFeatures, table: pl.DataFrame) -> dict[str, Any]:
    """The bundle's "compiled" entry: {"runs": true, "float_sum": …} when the compiled form gives
    the query's rows on the rows the build replays (online.replay's), else {"runs": false, "why": …}.
    How polars adds a group's floats depends on the GROUP BY (one column: in order; several:
    compensated, in polars 1.3x–2.x), so the likelier way is tried first and the check decides."""
    sample = table.gather_every(max(1, table.height // REPLAY_ROWS)).head(REPLAY_ROWS)
    why = ""
    try:
        sums = FLOAT_SUMS[::-1] if len(parse(features.sql).group_by) == 1 else FLOAT_SUMS
        for float_sum in sums:
            why = check(compile_row(features, float_sum), features, sample)
            if not why:
                return {"runs": True, "float_sum": float_sum}
    except Unsupported as exc:
        return {"runs": False, "why": str(exc)}
    return {"runs": False, "why": why}


def check(plan: RowPlan, features: RequestFeatures, sample: pl.DataFrame) -> str:
    """Why `plan` may not stand in for the query ('' when, on every row of `sample` it answers,
    it gives the query's row: the same names, types and values)."""
    for n, row in enumerate(sample.iter_rows(named=True)):
        keys = [key_value(tuple(row[k] for k in features.key))] if features.key else []
        general = features.compute(sample.slice(n, 1), keys)
        kinds = tuple(output_kind(dtype) for dtype in general.schema.values())
        if (tuple(general.columns), kinds) != (plan.names, plan.kinds):
            return f"compiled it gives the columns {list(zip(plan.names, plan.kinds, strict=True))}, not " \
                   f"{list(zip(general.columns, kinds, strict=True))}"
        fast = plan.row(row)
        if fast is not None and (general.height != 1 or not same_row(fast, general.row(0, named=True))):
            return f"compiled it gives other values than the query on row {n} of the {sample.height} replayed"
    return ""


def same_row(one: dict[str, Any], other: dict[str, Any]) -> bool:
    """Equal names, types and values (a NaN equal to a NaN, 0.0 not equal to -0.0)."""
    return list(one) == list(other) and all(_same(a, b) for a, b in zip(one.values(), other.values(), strict=True))


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b) or a != a and b != b
    return bool(a == b)


class _Compiler:
    def __init__(self, features: RequestFeatures, query: Query, join: Join | None, float_sum: str) -> None:
        self.request, self.query, self.join, self.float_sum = features.table, query, join, float_sum
        self.tables = {query.alias: features.table, features.table: features.table}
        self.schemas: dict[str, pl.Schema] = {features.table: features.schema}
        self.aggs: list[Call] = []
        self.spans: dict[Any, tuple[int, int]] = {}
        self.aggregates: list[Aggregate] = []
        self.agg_kinds: tuple[str, ...] = ()
        if join is not None:
            if join.table not in features.lookups:
                raise Unsupported(f"a join of {join.table}, which is not looked up by key")
            self.tables |= {join.alias: join.table, join.table: join.table}
            self.schemas[join.table] = features.lookups[join.table].frame.schema
            self._check_on(join.on, features.key)
            self._check_groups()
            self.aggs = list(dict.fromkeys(c for e, _ in query.items for c in _aggregates(e)))
            self._aggregate(features)

    def _check_on(self, on: Expr, key: tuple[str, ...]) -> None:
        pairs, todo = set(), [on]
        while todo:
            e = todo.pop()
            if isinstance(e, Op) and e.op == "AND":
                todo += e.args
            elif isinstance(e, Op) and e.op == "=" and all(isinstance(a, Col) for a in e.args):
                pairs.add(frozenset(self.resolve(a) for a in e.args if isinstance(a, Col)))
            else:
                raise Unsupported("a join condition other than the key's columns being equal")
        assert self.join is not None
        if pairs != {frozenset({(self.request, k), (self.join.table, k)}) for k in key}:
            raise Unsupported(f"a join on other columns than the key ({', '.join(key)})")

    def _check_groups(self) -> None:
        groups = set()
        for e in self.query.group_by:
            if not isinstance(e, Col) or self.resolve(e)[0] != self.request:
                raise Unsupported(f"GROUP BY other than columns of {self.request}")
            groups.add(self.resolve(e))
        for e, _ in self.query.items:
            for col in _columns(e):
                if self.resolve(col) not in groups:
                    raise Unsupported(f"column {col.name} outside an aggregate and not grouped by")

    def _aggregate(self, features: RequestFeatures) -> None:
        """How each aggregate of the query is computed over the rows of one key."""
        assert self.join is not None
        lookup = features.lookups[self.join.table]
        self.spans = lookup.spans
        kinds: list[str] = []
        for call in self.aggs:
            arg = call.args[0] if call.args else None  # a column, or none for COUNT(*)
            table, name = self.resolve(arg) if isinstance(arg, Col) else (self.join.table, None)
            if table != self.join.table:
                raise Unsupported(f"an aggregate over a column not of {self.join.table}")
            kind = kind_of(lookup.frame.schema[name]) if name else INT
            if call.name == "SUM" and kind not in (INT, FLOAT) or call.name == "AVG":
                raise Unsupported(f"{call.name} of a {kind} column")
            kinds.append(INT if call.name == "COUNT" else kind)
            column = lookup.frame[name].to_list() if name else None
            self.aggregates.append(aggregate(call.name, column, kind, self.float_sum))
        self.agg_kinds = tuple(kinds)

    def resolve(self, col: Col) -> tuple[str, str]:
        """(table, column) of a column reference."""
        if col.table is not None:
            table = self.tables.get(col.table)
            if table is None or col.name not in self.schemas[table]:
                raise Unsupported(f"column {col.table}.{col.name}")
            return table, col.name
        found = [t for t in self.schemas if col.name in self.schemas[t]]
        if len(found) != 1:
            raise Unsupported(f"column {col.name} ({'in several tables' if found else 'not found'})")
        return found[0], col.name

    def expr(self, e: Expr) -> tuple[str, Fn]:
        if isinstance(e, Lit):
            value = e.value
            return literal_kind(value) if e.kind == INT else e.kind, lambda row, aggs: value
        if isinstance(e, Col):
            return self.column(e)
        if isinstance(e, Call):
            return self.call(e)
        if isinstance(e, Case):
            return self.case(e)
        return self.op(e)

    def column(self, col: Col) -> tuple[str, Fn]:
        table, name = self.resolve(col)
        if table != self.request:
            raise Unsupported(f"column {col.name} of {table} outside an aggregate")
        kind = kind_of(self.schemas[table][name])
        if kind == INT:
            return INT, lambda row, aggs: as_int(row.get(name))
        if kind == FLOAT:
            return FLOAT, lambda row, aggs: as_float(row.get(name))
        if kind == STR:
            return STR, lambda row, aggs: as_str(row.get(name))
        return kind, lambda row, aggs: row.get(name)

    def call(self, call: Call) -> tuple[str, Fn]:
        if call.name in AGGREGATES:
            if call not in self.aggs:
                raise Unsupported(f"{call.name} without a join")
            n = self.aggs.index(call)
            return self.agg_kinds[n], lambda row, aggs: aggs[n]
        kind, fns = merge([self.expr(a) for a in call.args])
        return kind, lambda row, aggs: next((v for f in fns if (v := f(row, aggs)) is not None), None)

    def case(self, case: Case) -> tuple[str, Fn]:
        conditions = [self.expr(c) for c, _ in case.whens]
        if any(k != BOOL for k, _ in conditions):
            raise Unsupported("a WHEN that is not a condition")
        kind, fns = merge([self.expr(v) for _, v in case.whens] + [self.expr(case.default)])
        pairs = [(c, f) for (_, c), f in zip(conditions, fns, strict=False)]
        default = fns[-1]

        def pick(row: dict[str, Any], aggs: tuple[Any, ...]) -> Any:
            for condition, value in pairs:
                if condition(row, aggs) is True:
                    return value(row, aggs)
            return default(row, aggs)
        return kind, pick

    def op(self, e: Op) -> tuple[str, Fn]:
        args = [self.expr(a) for a in e.args]
        if e.op in ("ISNULL", "NOTNULL"):
            f, is_null = args[0][1], e.op == "ISNULL"
            return BOOL, lambda row, aggs: (f(row, aggs) is None) == is_null
        if e.op in ("AND", "OR", "NOT"):
            return logic(e.op, args)
        if e.op in COMPARISONS:
            return compare(e.op, *args)
        if e.op == "NEG":  # as polars negates: 0 - x (so -(0.0) is 0.0, not -0.0)
            return arith("-", (INT32, lambda row, aggs: 0), args[0])
        return arith(e.op, *args)


def _name(e: Expr, alias: str | None) -> str:
    if alias is not None:
        return alias
    if isinstance(e, Col):
        return e.name
    raise Unsupported("an expression without AS")


def _children(e: Expr) -> tuple[Expr, ...]:
    if isinstance(e, (Op, Call)):
        return e.args
    if isinstance(e, Case):
        return (*(x for pair in e.whens for x in pair), e.default)
    return ()


def _aggregates(e: Expr) -> list[Call]:
    if isinstance(e, Call) and e.name in AGGREGATES:
        return [e]
    return [c for child in _children(e) for c in _aggregates(child)]


def _columns(e: Expr) -> list[Col]:
    """The column references outside aggregates."""
    if isinstance(e, Col):
        return [e]
    if isinstance(e, Call) and e.name in AGGREGATES:
        return []
    return [c for child in _children(e) for c in _columns(child)]


def _no_aggregate(e: Expr) -> Expr:
    if _aggregates(e):
        raise Unsupported("an aggregate in WHERE")
    return e
