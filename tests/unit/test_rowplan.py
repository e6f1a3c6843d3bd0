"""The feature set's SQL compiled for one request row (ml/rowplan.py) against the general path
(polars' SQL on a one-row frame, serve/raw.py): on random rows and random joined tables, the
compiled form answers a row exactly as polars does (names, types, values), or not at all."""

from __future__ import annotations

import dataclasses
import io
import math
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlmake.ml.online import RequestFeatures, make_lookup
from mlmake.ml.rowplan import check, compile_row, compiled, same_row
from mlmake.ml.rowsql import Unsupported, parse, tokens
from mlmake.serve.raw import RawRows, load_raw

CUSTOMERS = pl.Schema({"customer_id": pl.Int64, "age": pl.Int64, "fee": pl.Float64, "plan": pl.String,
                       "vip": pl.Boolean})
EVENTS = pl.Schema({"customer_id": pl.Int64, "amount": pl.Float64, "qty": pl.Int64, "kind": pl.String})

CHURN = """SELECT c.customer_id, c.age, c.plan, c.fee, COALESCE(COUNT(e.qty), 0) AS n_events,
  COALESCE(SUM(e.amount), 0.0) AS total_spend, c.vip
FROM customers AS c LEFT JOIN events AS e ON e.customer_id = c.customer_id
GROUP BY c.customer_id, c.age, c.plan, c.fee, c.vip ORDER BY c.customer_id"""
EXPRESSIONS = """SELECT c.customer_id, c.age * 2 + 1 AS a2, c.fee / c.age AS ratio, -c.fee AS neg, c.age - 7 AS older,
  CASE WHEN c.plan = 'pro' AND c.age > 30 THEN 1.5 WHEN c.plan IS NULL THEN c.fee ELSE 0.0 END AS score,
  COALESCE(c.fee, 0.25) AS fee0, NOT (c.age >= 40 OR c.plan <> 'basic') AS flag, c.vip IS NOT NULL AS known,
  c.fee * 0.5 <= c.age AS small, MIN(e.amount) AS lo, MAX(e.kind) AS top, COUNT(*) AS n, SUM(e.qty) AS q,
  SUM(e.amount) / c.age AS per_year, COUNT(e.kind) + c.age AS mixed
FROM customers c INNER JOIN events e ON c.customer_id = e.customer_id
GROUP BY c.customer_id, c.age, c.fee, c.plan, c.vip"""
BY_KEY = """SELECT c.customer_id, SUM(e.amount) AS spend, COUNT(e.kind) AS n FROM customers c
LEFT JOIN events e ON e.customer_id = c.customer_id GROUP BY c.customer_id"""  # polars adds in order here
ONE_TABLE = """SELECT age, fee, fee / age AS per_year, CASE WHEN plan = 'pro' THEN 1 WHEN plan = 'basic' THEN 0 END AS
  is_pro, vip OR age < 18 AS special FROM customers WHERE fee IS NOT NULL AND NOT vip"""

ids = st.sampled_from([1, 2, 3, 4, 5, 6, None])
floats = st.one_of(st.floats(-1e6, 1e6, allow_nan=False, width=32).map(lambda f: f + 0.0), st.integers(-50, 50),
                   st.none())
customer = st.fixed_dictionaries({
    "customer_id": ids, "age": st.one_of(st.integers(-3, 90), st.none()), "fee": floats,
    "plan": st.sampled_from(["basic", "pro", "é", None]), "vip": st.one_of(st.booleans(), st.none())})
event = st.tuples(st.integers(1, 5), st.one_of(st.floats(0, 1e4, allow_nan=False).map(lambda f: round(f, 2)),
                                               st.none()),
                  st.one_of(st.integers(-10, 10), st.none()), st.sampled_from(["login", "buy", None]))


def raw_rows(sql: str, events: list[tuple[Any, ...]], float_sum: str = "kahan") -> RawRows:
    """The service's raw-row computation of a bundle holding `sql` and these events, compiled."""
    def parquet(frame: pl.DataFrame) -> bytes:
        out = io.BytesIO()
        frame.write_parquet(out)
        return out.getvalue()

    frame = pl.DataFrame(events, schema=EVENTS, orient="row")
    entry = {"runs": True, "table": "customers", "key": ["customer_id"], "sql": sql, "target": None,
             "tables": {"customers": "c.parquet", "events": "e.parquet"},
             "compiled": {"runs": True, "float_sum": float_sum}}
    blobs = {"c.parquet": parquet(pl.DataFrame(schema=CUSTOMERS)), "e.parquet": parquet(frame), "request.json": b""}
    raw = load_raw(blobs, {"request": entry}, ["n_events"])
    assert raw is not None and raw.fast is not None
    return raw


def both(raw: RawRows, row: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the compiled answer, polars' answer) for one row: None where it gives no single row."""
    general = raw.features.compute(pl.DataFrame([[row[n] for n in CUSTOMERS]], schema=CUSTOMERS, orient="row",
                                                strict=False), [row["customer_id"]])
    return raw.fast.row(row) if raw.fast else None, general.row(0, named=True) if general.height == 1 else None


def same(one: dict[str, Any], other: dict[str, Any]) -> bool:
    return same_row(one, other)  # names, types, values; a NaN equal to a NaN, -0.0 not equal to 0.0


@pytest.mark.parametrize("sql", [CHURN, EXPRESSIONS, BY_KEY, ONE_TABLE], ids=["churn", "expressions", "by-key",
                                                                             "one-table"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(customer, min_size=1, max_size=8), events=st.lists(event, max_size=30))
def test_the_compiled_row_is_polars_row(sql: str, rows: list[dict[str, Any]], events: list[tuple[Any, ...]]) -> None:
    raw = raw_rows(sql, events, "sequential" if sql == BY_KEY else "kahan")
    for row in rows:
        fast, general = both(raw, row)
        if fast is not None:
            assert general is not None and same(fast, general), (row, fast, general)
        elif row["customer_id"] is not None or sql == ONE_TABLE:  # it answers every row with a key
            assert general is None, (row, general)


def test_a_churn_row_is_computed_without_polars() -> None:
    raw = raw_rows(CHURN, [(2, 1.5, 1, "buy"), (2, 2.25, None, "login"), (3, None, None, None)])
    assert raw.fast is not None
    assert [raw.fast.row({"customer_id": k, "age": 40, "plan": "pro", "fee": 9, "vip": None}) for k in (2, 3, 4)] == [
        {"customer_id": 2, "age": 40, "plan": "pro", "fee": 9.0, "n_events": 1, "total_spend": 3.75, "vip": None},
        {"customer_id": 3, "age": 40, "plan": "pro", "fee": 9.0, "n_events": 0, "total_spend": 0.0, "vip": None},
        {"customer_id": 4, "age": 40, "plan": "pro", "fee": 9.0, "n_events": 0, "total_spend": 0.0, "vip": None}]


def test_rows_it_does_not_vouch_for_take_the_general_path() -> None:
    raw = raw_rows(EXPRESSIONS, [(2, 1.5, 1, "buy")])
    assert raw.fast is not None
    row = {"customer_id": 2, "age": 40, "plan": "pro", "fee": 9.0, "vip": True}
    assert raw.fast.row(row) is not None
    assert raw.fast.row(row | {"customer_id": None}) is None  # a null key
    assert raw.fast.row(row | {"customer_id": 5}) is None  # no events: the INNER JOIN drops the row
    assert raw.fast.row(row | {"age": 2**63}) is None  # past Int64
    assert raw.fast.row(row | {"plan": "\ud800"}) is None  # no string polars holds
    general = dataclasses.replace(raw, fast=None)
    assert general.feature_row(row, ("body",), []) == raw.feature_row(row, ("body",), [])


def test_the_build_says_why_a_query_is_not_compiled() -> None:
    events = make_lookup(pl.DataFrame([(1, 2.0, 1, "buy")], schema=EVENTS, orient="row"), ["customer_id"])
    customers = pl.DataFrame([(1, 30, 2.0, "pro", True)], schema=CUSTOMERS, orient="row")

    def entry(sql: str) -> dict[str, Any]:
        return compiled(RequestFeatures("customers", sql, ("customer_id",), CUSTOMERS, {"events": events}),
                        customers)
    assert entry(CHURN) == {"runs": True, "float_sum": "kahan"}
    assert entry("SELECT UPPER(plan) AS p FROM customers") == {"runs": False, "why": "function UPPER"}
    assert entry("SELECT age, 1.5 * age AS a FROM customers") == {"runs": False, "why": "* of dec and int"}
    assert entry("SELECT c.age, COUNT(e.qty) AS n FROM customers c LEFT JOIN events e ON e.qty = c.age "
                 "GROUP BY c.age") == {"runs": False, "why": "a join on other columns than the key (customer_id)"}


@pytest.mark.parametrize(("group_by", "float_sum", "total"), [
    ("c.customer_id", "sequential", 47.28999999999999), ("c.customer_id, c.age", "kahan", 47.29)])
def test_the_build_finds_how_polars_adds_the_floats_of_a_group(group_by: str, float_sum: str, total: float) -> None:
    amounts = [0.0, 13.55, 0.0, 25.58, 0.0, 8.16]
    events = make_lookup(pl.DataFrame([(1, a, 1, "buy") for a in amounts], schema=EVENTS, orient="row"),
                         ["customer_id"])
    customers = pl.DataFrame([(1, 30, 2.0, "pro", True)], schema=CUSTOMERS, orient="row")
    sql = (f"SELECT c.customer_id, SUM(e.amount) AS s FROM customers c LEFT JOIN events e "
           f"ON e.customer_id = c.customer_id GROUP BY {group_by}")
    features = RequestFeatures("customers", sql, ("customer_id",), CUSTOMERS, {"events": events})
    assert compiled(features, customers) == {"runs": True, "float_sum": float_sum}
    assert features.compute(customers, [1])["s"].to_list() == [total]
    assert compile_row(features, float_sum).row({"customer_id": 1, "age": 30}) == {"customer_id": 1, "s": total}


def test_a_long_group_is_compiled_only_where_polars_sum_is_followed() -> None:
    events = [(1, round(0.37 * n + 0.01, 2), n, "buy") for n in range(300)]
    row = {"customer_id": 1, "age": 3, "plan": "pro", "fee": 1.5, "vip": False}
    compensated = raw_rows(CHURN, events)
    fast, general = both(compensated, row)
    assert fast is not None and general is not None and same(fast, general)
    in_order = raw_rows(BY_KEY, events, "sequential")  # from 128 values on polars adds blocks pairwise
    assert in_order.fast is not None and in_order.fast.row(row) is None
    assert in_order.feature_row(row, ("body",), []) == both(in_order, row)[1]


@pytest.mark.parametrize(("sql", "why"), [
    ("SELECT * FROM t", "SELECT *"),
    ("SELECT DISTINCT a FROM t", "SELECT DISTINCT"),
    ("SELECT a FROM t WHERE a IN (1, 2)", "IN"),
    ("SELECT a FROM t RIGHT JOIN u ON t.a = u.a", "expected the end of the query at 'RIGHT'"),
    ("SELECT a FROM t LIMIT 3", "expected the end of the query at 'LIMIT'"),
    ("SELECT SUM(a + 1) AS s FROM t", "SUM of 1 arguments or of an expression"),
    ("SELECT 1e3 AS x FROM t", "cannot read '1e3 AS x F'"),
    ("SELECT 0.12345678901234567 AS x FROM t", "the number 0.12345678901234567 (too many digits to be exact as "
                                               "a float)"),
])
def test_sql_outside_the_subset_is_named(sql: str, why: str) -> None:
    with pytest.raises(Unsupported) as caught:
        parse(sql)
    assert str(caught.value) == why


def test_the_subset_reads_quoted_names_comments_and_literals() -> None:
    query = parse('SELECT "a b" AS "x""y", -2.5 AS n, \'it\'\'s\' AS s -- note\nFROM "t" /* c */ ORDER BY 1 DESC;')
    assert [alias for _, alias in query.items] == ['x"y', "n", "s"]
    assert str(query.items) == ("((Col(table=None, name='a b'), 'x\"y'), (Lit(kind='dec', value=-2.5), 'n'), "
                                "(Lit(kind='str', value=\"it's\"), 's'))")
    assert (query.table, query.alias) == ("t", "t")


def one_row(sql: str, schema: pl.Schema, row: dict[str, Any], lookups: dict[str, Any] | None = None,
            key: tuple[str, ...] = ()) -> tuple[Any, dict[str, Any]]:
    """(the compiled answer, or "unsupported"; polars' row with its types) of `sql` on one row."""
    features = RequestFeatures("customers", sql, key, schema, lookups or {})
    general = features.compute(pl.DataFrame([row], schema=schema), [row[k] for k in key])
    try:
        fast: Any = compile_row(features).row(row)
    except Unsupported as exc:
        fast = f"unsupported: {exc}"
    return fast, {name: (general[name][0], general.schema[name]) for name in general.columns}


def test_a_negated_zero_is_polars_zero_not_minus_zero() -> None:
    fast, general = one_row("SELECT age / -fee AS x, -fee AS y FROM customers", CUSTOMERS,
                            {"customer_id": 1, "age": 7, "fee": 0.0, "plan": "pro", "vip": True})
    assert general == {"x": (math.inf, pl.Float64), "y": (0.0, pl.Float64)}
    assert fast == {"x": math.inf, "y": 0.0} and math.copysign(1.0, fast["y"]) == 1.0
    assert same_row({"y": 0.0}, {"y": 0.0}) and not same_row({"y": -0.0}, {"y": 0.0})


def test_the_build_refuses_a_plan_whose_zero_has_another_sign() -> None:
    customers = pl.DataFrame([(1, 7, 0.0, "pro", True)], schema=CUSTOMERS, orient="row")
    features = RequestFeatures("customers", "SELECT -fee AS y FROM customers", (), CUSTOMERS, {})
    plan = compile_row(features)
    minus = dataclasses.replace(plan, values=(lambda row, aggs: -row["fee"],))
    assert check(plan, features, customers) == ""
    assert check(minus, features, customers) == "compiled it gives other values than the query on row 0 of the 1 " \
                                                "replayed"


@pytest.mark.parametrize(("sql", "row", "polars", "why"), [
    ("SELECT CASE WHEN age > 100 THEN 2000000000 ELSE 0 END * 2 AS x FROM customers", {"age": 101}, -294967296, "*"),
    ("SELECT COALESCE(CASE WHEN vip THEN 2147483647 END, 0) + 1 AS x FROM customers", {"vip": True}, -2147483648,
     "+"),
    ("SELECT -CASE WHEN vip THEN -2147483648 END AS x FROM customers", {"vip": True}, -2147483648, "-"),
])
def test_arithmetic_of_int32_literals_is_left_to_polars(sql: str, row: dict[str, Any], polars: int, why: str) -> None:
    full = {"customer_id": 1, "age": 7, "fee": 0.0, "plan": "pro", "vip": True} | row
    fast, general = one_row(sql, CUSTOMERS, full)
    assert general == {"x": (polars, pl.Int32)}  # Int32, wrapped
    assert fast == f"unsupported: {why} of two integer literals"


def test_int32_literals_keep_their_type_and_mix_with_int64() -> None:
    sql = ("SELECT CASE WHEN vip THEN 1 ELSE 2 END AS a, COALESCE(CASE WHEN vip THEN 2147483647 END, age) + 1 AS b, "
           "CASE WHEN vip THEN 2000000000 END * age AS c, 3000000000 AS d, -(2147483648) AS e FROM customers")
    row = {"customer_id": 1, "age": 2, "fee": 0.0, "plan": "pro", "vip": True}
    fast, general = one_row(sql, CUSTOMERS, row)
    assert general == {"a": (1, pl.Int32), "b": (2147483648, pl.Int64), "c": (4000000000, pl.Int64),
                       "d": (3000000000, pl.Int64), "e": (-2147483648, pl.Int32)}
    assert fast == {name: value for name, (value, _) in general.items()}
    features = RequestFeatures("customers", sql, (), CUSTOMERS, {})
    assert compile_row(features).kinds == ("int32", "int", "int", "int", "int32")
    assert compiled(features, pl.DataFrame([row], schema=CUSTOMERS)) == {"runs": True, "float_sum": "kahan"}


def test_a_string_key_none_joins_no_row_of_a_null_key() -> None:
    schema = pl.Schema({"customer_id": pl.String, "age": pl.Int64})
    events = pl.DataFrame([(None, 5), (None, 6), ("a", 1)], schema=pl.Schema({"customer_id": pl.String,
                                                                              "qty": pl.Int64}), orient="row")
    lookup = make_lookup(events, ["customer_id"])
    assert lookup.spans == {"a": (2, 1)}
    sql = ("SELECT c.customer_id, COUNT(e.qty) AS n, SUM(e.qty) AS s FROM customers c LEFT JOIN events e "
           "ON e.customer_id = c.customer_id GROUP BY c.customer_id")
    for key, n, s in (("None", 0, None), ("a", 1, 1)):
        fast, general = one_row(sql, schema, {"customer_id": key, "age": 3}, {"events": lookup}, ("customer_id",))
        assert general == {"customer_id": (key, pl.String), "n": (n, pl.Int64), "s": (s, pl.Int64)}
        assert fast == {"customer_id": key, "n": n, "s": s}


def test_a_nested_block_comment_is_left_to_polars() -> None:
    sql = "SELECT age /* /* */ * 2 -- */\nAS age FROM customers"
    fast, general = one_row(sql, CUSTOMERS, {"customer_id": 1, "age": 7, "fee": 2.5, "plan": "pro", "vip": True})
    assert general == {"age": (7, pl.Int64)}  # polars nests the comments: `* 2` is inside them
    assert fast == "unsupported: a block comment inside a block comment (polars nests them)"
    assert [t for _, t in tokens("SELECT a /* x * / y */ FROM t")] == ["SELECT", "a", "FROM", "t"]


def test_a_decimal_literal_column_is_left_to_polars() -> None:
    fast, general = one_row("SELECT 1.5 AS x FROM customers", CUSTOMERS,
                            {"customer_id": 1, "age": 7, "fee": 2.5, "plan": "pro", "vip": True})
    assert general == {"x": (Decimal("1.5"), pl.Decimal(2, 1))}
    assert fast == "unsupported: a decimal literal as a column (a Decimal in polars)"
