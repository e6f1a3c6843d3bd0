"""engine: dask partition by partition (kinds/model/dask_table.py, ml/partwise.py, ml/hashsplit.py):
the same files as the single-machine model split by hash, from a table the node never reads."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from mlmake.core.errors import NodeError
from mlmake.core.kind import Result, Task
from mlmake.kinds import model
from mlmake.ml import partwise
from mlmake.ml.hashsplit import held_out, row_hash
from tests.unit.test_kind_model import config, synthetic

pytest.importorskip("xgboost.dask")

TABLE = "build/features/customers"
FILES = ("model.json", "metrics.json", "importance.json", "curves.json", "signature.json", "predictions.parquet")
# Each Dask worker sketches the histogram quantiles of its own partitions, so the trees may differ
# a little from one process's (tests/e2e/test_dask_engine.py: 3 000 rows, gaps up to 0.005). On
# these 400 rows every gap measured 0 (each worker's sketch holds all of its values); the
# e2e test's 0.02 allows for another xgboost's sketch, and is far below a broken encoding's or a
# misaligned prediction's cost (auc ~0.5). Regression's rmse and mae are in units of the target
# (spread ~3.5): ten times that.
TOLERANCE = 0.02


def table(root: Path, frame: pl.DataFrame, parts: int = 0, key: bool = True) -> Path:
    """The feature set's folder: data.parquet in row groups of 100 rows, or parts/part-NNNNN.parquet
    (the partitioned layout) of the rows sorted by plan, so that a part lacks some categories."""
    folder = root / TABLE
    folder.mkdir(parents=True)
    if parts:
        (folder / "parts").mkdir()
        ordered = frame.sort("plan", "customer_id")
        for i, chunk in enumerate(ordered.iter_slices(-(-ordered.height // parts))):
            chunk.write_parquet(folder / "parts" / f"part-{i:05d}.parquet", row_group_size=50)
    else:
        frame.write_parquet(folder / "data.parquet", row_group_size=100)
    (folder / "schema.json").write_text(json.dumps({"key": ["customer_id"] if key else []}))
    return root


def train(root: Path, cfg: dict[str, Any], out: Path, log: Path | None = None) -> Result:
    out.mkdir(parents=True)
    task = Task("models.churn", "model", str(root), cfg, {"build/models/churn": str(out)},
                {"features.customers": [TABLE]}, {"features.customers": "features"}, 2, str(log or ""))
    return model.KIND.run(task)


def hashed(task: str, target: str, **over: Any) -> dict[str, Any]:
    return config(task, target, split={"test_size": 0.2, "seed": 3, "by": "hash"}, **over)


# --- the hash split --------------------------------------------------------------------


def test_the_hash_split_is_the_same_whatever_the_order_or_the_partitioning() -> None:
    frame = synthetic(2000)
    held = set(frame.filter(held_out(frame, ["customer_id"], 0.2, 3))["customer_id"])
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=1)
    in_parts = {k for part in shuffled.iter_slices(333)
                for k in part.filter(held_out(part, ["customer_id"], 0.2, 3))["customer_id"]}
    assert in_parts == held
    assert 360 <= len(held) <= 440  # 20% of 2000, give or take three standard deviations (~54)
    assert set(frame.filter(held_out(frame, ["customer_id"], 0.2, 4))["customer_id"]) != held


def test_the_row_hash_is_our_own_and_stable() -> None:
    """Pinned values: a change of the hash moves every hash-split model's held-out rows."""
    frame = pl.DataFrame({"i": [1, None], "s": ["ab", None], "f": [-0.0, float("nan")],
                          "b": [True, False], "c": ["x", "y"]}).with_columns(pl.col("c").cast(pl.Categorical))
    assert row_hash(frame, ["i"], 0).tolist() == [6238072747940578789, 16294208416658607535]
    assert row_hash(frame, ["s", "f", "b", "c"], 7).tolist() == [16504186417691822350, 7702204179724099778]
    same = pl.DataFrame({"i": [1], "s": ["ab"], "f": [0.0], "b": [True], "c": ["x"]})
    assert row_hash(same, ["s", "f", "b", "c"], 7)[0] == row_hash(frame, ["s", "f", "b", "c"], 7)[0]


# --- the files, against the single-machine model split by hash -------------------------


@pytest.mark.parametrize(("task", "target"), [("binary", "churned"), ("multiclass", "segment"),
                                              ("regression", "spend")])
def test_engine_dask_on_partitions_writes_the_files_of_the_single_machine_model(
        tmp_path: Path, task: str, target: str) -> None:
    frame = synthetic()
    here = table(tmp_path / "whole", frame)
    spread = table(tmp_path / "parts", frame, parts=4)
    train(here, hashed(task, target), tmp_path / "here")
    train(spread, hashed(task, target, engine="dask"), tmp_path / "spread", tmp_path / "spread.log")

    assert sorted(p.name for p in (tmp_path / "spread").iterdir()) == sorted(FILES)
    # the categories of `plan` are the union over parts that each lack some of them
    assert (tmp_path / "spread/signature.json").read_text() == (tmp_path / "here/signature.json").read_text()
    local, dask = (json.loads((tmp_path / m / "metrics.json").read_text()) for m in ("here", "spread"))
    assert (dask["n_train"], dask["n_test"]) == (local["n_train"], local["n_test"])
    rows = [pl.read_parquet(tmp_path / m / "predictions.parquet") for m in ("here", "spread")]
    assert rows[0].columns == rows[1].columns
    assert rows[1].select("customer_id", target).equals(rows[0].select("customer_id", target))
    for name, value in local["metrics"].items():
        assert dask["metrics"][name] == pytest.approx(value, abs=TOLERANCE * (10 if task == "regression" else 1)), name
    log = (tmp_path / "spread.log").read_text()
    assert ("engine dask on a LocalCluster for the node: 2 worker(s); features.customers (4 file(s)) in "
            "8 partitions, read by the workers\n") in log


def test_the_node_reads_only_the_tables_metadata_and_the_workers_read_its_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any read of the rows in the node fails the training: polars' readers and the single-machine
    preparation raise; each partition is converted on a Dask worker's thread, a row group at a time."""
    root = table(tmp_path, synthetic())
    seen: list[tuple[str, int]] = []
    convert = partwise.to_polars

    def recorded(part: Any, plan: Any) -> pl.DataFrame:
        frame = convert(part, plan)
        seen.append((threading.current_thread().name, frame.height))
        return frame

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the node read the table")

    monkeypatch.setattr(partwise, "to_polars", recorded)
    for name in ("read_parquet", "scan_parquet"):
        monkeypatch.setattr(pl, name, refused)
    monkeypatch.setattr("mlmake.kinds.model.recipe.prepare", refused)
    train(root, config("binary", "churned", engine="dask"), tmp_path / "m", tmp_path / "m.log")

    read = [(thread, rows) for thread, rows in seen if rows]
    assert sum(rows for _, rows in read) == 2 * 400  # two passes: the summaries, then the split
    assert max(rows for _, rows in read) == 100  # a row group at a time
    assert threading.main_thread().name not in {thread for thread, _ in read}
    assert ("features.customers (1 file(s)) in 4 partitions, read by the workers\n"
            "training 20 rounds on 314 rows, 86 held out (split by hash)\n") in (tmp_path / "m.log").read_text()


def test_without_a_key_the_rows_are_hashed_whole(tmp_path: Path) -> None:
    frame = synthetic()
    train(table(tmp_path / "a", frame, key=False), hashed("binary", "churned"), tmp_path / "here")
    train(table(tmp_path / "b", frame, parts=3, key=False), hashed("binary", "churned", engine="dask"),
          tmp_path / "spread")
    rows = [pl.read_parquet(tmp_path / m / "predictions.parquet") for m in ("here", "spread")]
    assert rows[0].height == rows[1].height == 102
    assert sorted(rows[0]["churned"]) == sorted(rows[1]["churned"])


# --- what stays on the whole-table path, and mistakes ----------------------------------------


@pytest.mark.parametrize(("split", "why"), [({"stratify": True}, "split.stratify"),
                                            ({"by": "random"}, "split by: random")])
def test_a_split_that_needs_the_whole_table_reads_it_in_the_node(tmp_path: Path, split: dict[str, Any],
                                                                 why: str) -> None:
    root = table(tmp_path, synthetic())
    train(root, config("binary", "churned", engine="dask", split=split), tmp_path / "m", tmp_path / "m.log")
    log = (tmp_path / "m.log").read_text()
    assert f"engine dask: {why} needs the whole table: read, split and encoded by the node's process\n" in log
    assert json.loads((tmp_path / "m/metrics.json").read_text())["n_test"] == 80


@pytest.mark.parametrize(("frame", "over", "message"), [
    (synthetic().with_columns(pl.when(pl.col("customer_id") == 7).then(float("inf")).otherwise(pl.col("x2"))
                              .alias("x2")), {},
     "input column(s) ['x2'] hold inf or -inf (or a number too large for float32), which xgboost cannot train on; "
     "declare the column as float in its dataset's schema (inf is then a missing value) or replace the values in "
     "the feature set"),
    (synthetic(), {"target": "segment", "drop": ["churned", "spend"]},
     "a binary target needs exactly 2 values; 'segment' has 3: ['a', 'b', 'c']; use task: multiclass"),
    (synthetic(), {"target": "churn"},
     "target 'churn' is not a column of customers; its columns are ['customer_id', 'x1', 'x2', 'plan', 'churned', "
     "'segment', 'spend'] (did you mean 'churned'?)"),
])
def test_mistakes_read_as_on_the_single_machine(tmp_path: Path, frame: pl.DataFrame, over: dict[str, Any],
                                               message: str) -> None:
    roots = {"local": table(tmp_path / "whole", frame), "dask": table(tmp_path / "parts", frame, parts=2)}
    for engine, root in roots.items():
        with pytest.raises(NodeError) as info:
            train(root, hashed("binary", "churned", engine=engine) | over, tmp_path / f"m-{engine}")
        assert str(info.value) == message, engine


def test_on_a_cluster_sharing_nothing_only_the_nodes_machine_reads_its_files(tmp_path: Path) -> None:
    """The node's task folder is on its worker's disk: the partitions are read by the workers of
    that machine; in a shared project folder, by any."""
    from mlmake.kinds.model.dask_table import is_inside, same_host

    workers = ["tcp://10.0.0.7:40213", "tcp://10.0.0.8:39001", "tcp://10.0.0.7:40999"]
    assert same_host("tcp://10.0.0.7:40213", workers) == ["tcp://10.0.0.7:40213", "tcp://10.0.0.7:40999"]
    assert is_inside(str(tmp_path / "w" / "mlmake" / "tasks" / "ab12"), str(tmp_path / "w"))
    assert not is_inside(str(tmp_path / "project"), str(tmp_path / "w"))
    assert not is_inside(str(tmp_path / "w2"), str(tmp_path / "w"))
