"""features.NAME: SQL and python hooks over upstream tables, the key, and the outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from mlmake.core.errors import NodeError
from mlmake.core.kind import Task
from mlmake.kinds import features

CUSTOMERS = {"customer_id": [3, 1, 2], "plan": ["pro", "basic", "pro"]}
EVENTS = {"id": [10, 11, 12, 13], "customer_id": [1, 1, 3, 3], "amount": [5.0, 7.0, 1.0, 2.0]}
JOIN = """
SELECT c.customer_id, c.plan, COUNT(e.id) AS n_events, SUM(e.amount) AS spent
FROM customers c LEFT JOIN events e ON c.customer_id = e.customer_id
GROUP BY c.customer_id, c.plan
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Two built datasets, as their recipe leaves them."""
    for name, table in (("customers", CUSTOMERS), ("events", EVENTS)):
        folder = tmp_path / "build/datasets" / name
        folder.mkdir(parents=True)
        pl.DataFrame(table).write_parquet(folder / "data.parquet")
    return tmp_path


def run_features(root: Path, *, sql: str | None = None, python: str | None = None, key: list[str] | None = None,
                 inputs: tuple[str, ...] = ("customers", "events"), out: str = "out") -> Path:
    staging = root / out
    staging.mkdir()
    upstream = {f"datasets.{n}": [f"build/datasets/{n}"] for n in ("customers", "events")}
    config: dict[str, Any] = {"from": list(inputs), "key": key or [], "sql": sql, "python": python}
    task = Task("features.f", "features", str(root), config, {"build/features/f": str(staging)}, upstream)
    features.KIND.run(task)
    return staging


def test_sql_joins_two_inputs_and_sorts_by_the_key(project: Path) -> None:
    out = run_features(project, sql=JOIN, key=["customer_id"])
    frame = pl.read_parquet(out / "data.parquet")
    assert frame.to_dict(as_series=False) == {
        "customer_id": [1, 2, 3], "plan": ["basic", "pro", "pro"], "n_events": [2, 0, 2], "spent": [12.0, None, 3.0],
    }
    assert json.loads((out / "schema.json").read_text()) == {
        "columns": [{"name": "customer_id", "type": "int64"}, {"name": "plan", "type": "str"},
                    {"name": "n_events", "type": "int64"}, {"name": "spent", "type": "float64"}],
        "from": ["customers", "events"], "key": ["customer_id"], "rows": 3,
    }


def test_without_a_key_rows_are_sorted_by_every_column_and_bytes_repeat(project: Path) -> None:
    query = "SELECT customer_id, COUNT(*) AS n FROM events GROUP BY customer_id"
    first = run_features(project, sql=query, out="a")
    second = run_features(project, sql=query, out="b")
    assert pl.read_parquet(first / "data.parquet")["customer_id"].to_list() == [1, 3]
    assert (first / "data.parquet").read_bytes() == (second / "data.parquet").read_bytes()


def test_a_feature_set_is_preferred_over_a_dataset_of_the_same_name(project: Path) -> None:
    folder = project / "build/features/customers"
    folder.mkdir(parents=True)
    pl.DataFrame({"customer_id": [9]}).write_parquet(folder / "data.parquet")
    staging = project / "out"
    staging.mkdir()
    upstream = {"datasets.customers": ["build/datasets/customers"], "features.customers": ["build/features/customers"]}
    config = {"from": ["customers"], "key": [], "sql": "SELECT * FROM customers", "python": None}
    features.KIND.run(Task("features.f", "features", str(project), config, {"x": str(staging)}, upstream))
    assert pl.read_parquet(staging / "data.parquet")["customer_id"].to_list() == [9]


def test_bad_sql_is_an_error_with_polars_message(project: Path) -> None:
    with pytest.raises(NodeError) as info:
        run_features(project, sql="SELECT nope FROM customers")
    assert str(info.value) == ('sql failed: unable to find column "nope"; valid columns: ["customer_id", "plan"] '
                               "(tables: customers, events)")


def test_an_unknown_table_in_sql_lists_the_tables(project: Path) -> None:
    with pytest.raises(NodeError, match=r"^sql failed: relation 'orders' was not found \(tables: customers, events\)$"):
        run_features(project, sql="SELECT * FROM orders")


def test_a_key_that_is_not_unique(project: Path) -> None:
    with pytest.raises(NodeError) as info:
        run_features(project, sql="SELECT * FROM events", key=["customer_id"])
    assert str(info.value) == "key (customer_id) is not unique: 4 rows share a key, e.g. [1, 3]"


def test_a_key_with_nulls_and_a_missing_key_column(project: Path) -> None:
    with pytest.raises(NodeError) as info:
        run_features(project, sql="SELECT CASE WHEN customer_id = 1 THEN NULL ELSE customer_id END AS k FROM customers",
                     key=["k"])
    assert str(info.value) == "key column 'k' has 1 null row"
    with pytest.raises(NodeError) as info:
        run_features(project, sql="SELECT * FROM customers", key=["id"], out="again")
    assert str(info.value) == "key column 'id' is not in the feature table; its columns are ['customer_id', 'plan']"


HOOK = '''
import polars as pl


def build(customers, events):
    spent = events.group_by("customer_id").agg(pl.col("amount").sum().alias("spent"))
    return customers.join(spent, on="customer_id", how="left").with_columns(pl.col("spent").fill_null(0.0))


def eager(customers, events):
    return customers.collect()


def wrong(customers, events):
    return 42


def broken(customers, events):
    raise ValueError("no such plan")
'''


@pytest.fixture
def hook(project: Path) -> Path:
    (project / "features").mkdir()
    (project / "features/build.py").write_text(HOOK)
    return project


def test_a_python_hook_gets_one_lazyframe_per_input(hook: Path) -> None:
    out = run_features(hook, python="features/build.py:build", key=["customer_id"])
    assert pl.read_parquet(out / "data.parquet").to_dict(as_series=False) == {
        "customer_id": [1, 2, 3], "plan": ["basic", "pro", "pro"], "spent": [12.0, 0.0, 3.0],
    }


def test_a_hook_may_return_a_dataframe(hook: Path) -> None:
    out = run_features(hook, python="features/build.py:eager")
    assert pl.read_parquet(out / "data.parquet")["customer_id"].to_list() == [1, 2, 3]


@pytest.mark.parametrize(("python", "message"), [
    ("features/build.py:wrong", "python hook features/build.py:wrong returned int, expected a polars LazyFrame "
                                "or DataFrame"),
    ("features/build.py:broken", "python hook features/build.py:broken raised ValueError: no such plan"),
    ("features/build.py:bild", "'features/build.py' has no function 'bild'; did you mean 'build'?"),
    ("features/nope.py:build", "python hook file 'features/nope.py' not found"),
])
def test_hook_mistakes_are_errors(hook: Path, python: str, message: str) -> None:
    with pytest.raises(NodeError) as info:
        run_features(hook, python=python)
    assert str(info.value) == message


def test_a_hook_can_import_a_helper_module_of_the_project(hook: Path) -> None:
    (hook / "featurelib.py").write_text("def only_pro(frame):\n    return frame.filter(plan='pro')\n")
    (hook / "features/pro.py").write_text("from featurelib import only_pro\n\n\n"
                                          "def pro(customers, events):\n    return only_pro(customers)\n")
    out = run_features(hook, python="features/pro.py:pro", key=["customer_id"])
    assert pl.read_parquet(out / "data.parquet")["customer_id"].to_list() == [2, 3]
    assert str(hook) not in sys.path


def test_a_hook_that_fails_to_import_writes_its_traceback_to_the_log(hook: Path) -> None:
    (hook / "features/bad.py").write_text("import no_such_module_here\n")
    staging = hook / "out"
    staging.mkdir()
    log = hook / "node.log"
    config = {"from": ["customers"], "key": [], "sql": None, "python": "features/bad.py:f"}
    task = Task("features.f", "features", str(hook), config, {"x": str(staging)},
                {"datasets.customers": ["build/datasets/customers"]}, log=str(log))
    with pytest.raises(NodeError, match=r"^python hook file 'features/bad.py' failed to load: ModuleNotFoundError"):
        features.KIND.run(task)
    assert "Traceback" in log.read_text()


def test_an_input_that_was_not_built(project: Path) -> None:
    (project / "build/datasets/events/data.parquet").unlink()
    with pytest.raises(NodeError) as info:
        run_features(project, sql=JOIN)
    assert str(info.value) == ("upstream datasets.events has no table at build/datasets/events/data.parquet; "
                               "build it first")
