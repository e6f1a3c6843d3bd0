"""The columns found in a feature set's SQL are all it reads (kinds/features/sqlcolumns.py):
a random query over two tables gives the same table on the columns found as on the whole
tables, however its comments and strings mention other columns. The features recipe runs
every query on the columns found only, so this is what keeps it from changing a result."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from mlmake.kinds.features.sqlcolumns import sql_use
from mlmake.ml.tables import restrict

T = pl.DataFrame({"id": [1, 2, 3, 4, 5, 6], "a": [3, 1, 4, 1, 5, 9], "b": [2, 7, 1, 8, 2, 8],
                  "g": ["x", "y", "x", "z", "y", "x"], "secret": [0, 0, 0, 0, 0, 1]})
U = pl.DataFrame({"id": [1, 2, 3, 7], "e": [10, 20, 30, 70], "hidden": ["p", "q", "r", "s"]})
NOISE = ["", " -- secret, hidden, *", " /* SELECT * FROM t */", " -- t.*"]

columns = st.sampled_from(["a", "b", "id", "A", '"a"'])


@st.composite
def queries(draw: st.DrawFn) -> str:
    shape = draw(st.sampled_from(["plain", "group", "join"]))
    noise = draw(st.sampled_from(NOISE))
    where = draw(st.sampled_from(["", " WHERE a > 1", " WHERE g = 'secret'", " WHERE b IN (1, 2, 8)"]))
    if shape == "group":
        agg = draw(st.sampled_from(["SUM(a)", "COUNT(*)", "MAX(b)", "MIN(a * b)"]))
        return f"SELECT g, {agg} AS v FROM t{where} GROUP BY g{noise}"
    if shape == "join":
        kind = draw(st.sampled_from(["JOIN", "LEFT JOIN"]))
        return f"SELECT t.id, t.a, u.e FROM t {kind} u ON t.id = u.id{where.replace(' a ', ' t.a ')}{noise}"
    items = draw(st.lists(columns, min_size=1, max_size=3, unique=True))
    expr = draw(st.sampled_from(["", ", a * 2 AS twice", ", 'secret' AS label", ", b - a AS d"]))
    return f"SELECT {', '.join(items)}{expr} FROM t{where}{noise}"


def run(sql: str, frames: dict[str, pl.LazyFrame]) -> pl.DataFrame | str:
    try:
        out = pl.SQLContext(frames, eager=False).execute(sql).collect()
    except pl.exceptions.PolarsError as exc:
        return type(exc).__name__
    return out.sort(out.columns)


@settings(max_examples=80, deadline=None)
@given(queries())
def test_a_query_on_the_columns_found_gives_the_same_table(sql: str) -> None:
    whole = {"t": T.lazy(), "u": U.lazy()}
    use = sql_use(sql)
    found = {name: restrict(frame, use) for name, frame in whole.items()}
    assert use is not None and use.names is not None
    assert not {"secret", "hidden"} & use.names  # named only in strings and comments: never read
    expected, got = run(sql, whole), run(sql, found)
    if isinstance(expected, str):
        assert got == expected
    else:
        assert isinstance(got, pl.DataFrame) and got.equals(expected)
