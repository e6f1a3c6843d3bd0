"""The columns a feature set's SQL can read (kinds/features/sqlcolumns.py): every identifier
outside strings and comments, or None (every column) for `*`, `COLUMNS(...)` and `NATURAL`."""

from __future__ import annotations

import pytest

from mlmake.core.columns import ColumnUse
from mlmake.kinds.features.sqlcolumns import read_names, sql_use


def test_identifiers_are_read_and_strings_and_comments_are_not() -> None:
    sql = """SELECT c.Age, "Plan Name", `tick`, COUNT(*) AS n, x * 2 -- email
             FROM customers c /* phone */ WHERE note = 'it''s region' GROUP BY 1"""
    assert read_names(sql) == frozenset({
        "select", "c", "age", "plan name", "tick", "count", "as", "n", "x", "from", "customers",
        "where", "note", "group", "by"})


def test_a_quoted_identifier_keeps_its_doubled_quote() -> None:
    assert read_names('SELECT "say ""hi""" FROM t') == frozenset({"select", 'say "hi"', "from", "t"})


@pytest.mark.parametrize("sql", [
    "SELECT * FROM t",
    "SELECT DISTINCT * FROM t",
    "SELECT a, * FROM t",
    "SELECT t.* FROM t JOIN u USING (id)",
    "SELECT * EXCLUDE (email) FROM t",
    "SELECT COLUMNS('^a.*$') FROM t",
    "SELECT a FROM t NATURAL JOIN u",
])
def test_what_selects_columns_it_does_not_name_reads_whole_tables(sql: str) -> None:
    assert read_names(sql) is None
    assert sql_use(sql) is None


@pytest.mark.parametrize("sql", [
    "SELECT COUNT(*) AS n FROM t",
    "SELECT a * b AS c FROM t",
    "SELECT (a) * 2 FROM t",
    "SELECT '*' AS star, a FROM t",
    "SELECT a FROM t -- SELECT *",
])
def test_a_star_that_is_not_a_projection_is_not_every_column(sql: str) -> None:
    assert read_names(sql) is not None


def test_the_use_of_a_query_names_its_identifiers() -> None:
    assert sql_use("SELECT age FROM customers") == ColumnUse(names=frozenset({"select", "age", "from", "customers"}))
