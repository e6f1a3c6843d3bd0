"""`engine: dask`, partition by partition: the node's process never holds the table.

It reads only the table's metadata (the parquet footers: its columns, types and row groups);
`dask.dataframe.read_parquet` hands each row group (of data.parquet, or of each file of a
partitioned table's parts/) to the workers as a partition. The workers summarize their
partitions (ml/partwise.py) and the node reduces the summaries to the design (the target's
classes, each text input's categories): the small facts the single-machine model learns from
the whole table. The workers then split each partition by a hash of the key and the seed
(`split: {by: hash}`, the same rows whatever the partitioning) and encode it; xgboost.dask trains
on the training rows (`DaskDMatrix`) and predicts the held-out rows (`xgboost.dask.predict`).
What comes back to the node: the summaries, the booster, and for the held-out rows (test_size of
the table) their predictions and their key, target and slice columns — never the features. The
metrics, slices, curves and predictions.parquet are computed from those as the single-machine
model computes them, so every output file is the one it writes."""

from __future__ import annotations

import os
from operator import getitem
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError
from mlmake.core.kind import TABLE_FILE, Task
from mlmake.kinds.model.dask_training import dask_client, train_on
from mlmake.kinds.model.training import Trained, infinite_error, training_setup
from mlmake.ml import tables
from mlmake.ml.design import (
    Input,
    Target,
    check_split,
    encode_target,
    feature_types,
    inputs_from,
    target_from,
    text_columns,
)
from mlmake.ml.partwise import HASH_COLUMN, PartPlan, Summary, merge, split_part, summarize
from mlmake.ml.supervised import check_columns
from mlmake.ml.tables import log_line, sort_frame, upstream_address, upstream_folder, upstream_key

if TYPE_CHECKING:
    import polars as pl

PIECES = ("train_x", "train_y", "test_x", "test_y", "held")


def table_files(task: Task, address: str) -> list[str]:
    """The parquet files of an upstream table: its data.parquet, or its parts (ml/tables.py)."""
    folder = upstream_folder(task, address)
    files = tables.table_files(folder)
    if not files:
        whole, parts = (os.path.relpath(os.path.join(folder, name), task.root) for name in (TABLE_FILE, "parts"))
        raise NodeError(f"upstream {address} has no table at {whole} nor {parts}/; build it first")
    return files


def train_partitions(task: Task) -> Trained:
    """Read, split, encode, train and predict on the workers, partition by partition."""
    import dask.dataframe as dd

    address = upstream_address(task, str(task.config["features"]))
    files = table_files(task, address)
    plan = _plan(task, address, _schema(files))
    with dask_client(task.threads) as (client, where):
        frame = dd.read_parquet(files, split_row_groups=True, dtype_backend="pyarrow")
        workers = len(client.scheduler_info()["workers"])
        if frame.npartitions < 2 * workers:  # small tables: two partitions a worker, as before
            frame = frame.repartition(npartitions=2 * workers)
        log_line(task.log, f"engine dask on {where}: {workers} worker(s); {address} ({len(files)} file(s)) in "
                           f"{frame.npartitions} partitions, read by the workers")
        parts, readers = frame.to_delayed(), _readers(task, client)
        summaries = client.compute([_delayed(summarize)(p, plan) for p in parts], workers=readers)
        inputs, target = _design(plan, merge(client.gather(summaries)))
        return _train(task, client, plan, (parts, readers), frame._meta, (inputs, target))


def _readers(task: Task, client: Any) -> list[str] | None:
    """The workers that may read the table's files: any (None), unless the node runs on a worker
    in a task folder of its own (a cluster sharing nothing but the remote), whose files only the
    workers of its machine see."""
    import distributed

    try:
        worker = distributed.get_worker()
    except ValueError:  # a LocalCluster of our own, in this process
        return None
    # building/worker.py's folders: $MLMAKE_WORKER_DIR, else the worker's local directory
    base = os.environ.get("MLMAKE_WORKER_DIR") or str(getattr(worker, "local_directory", "") or "")
    if not base or not is_inside(task.root, base):
        return None  # a file system the client and the workers share (--shared-fs)
    return same_host(str(worker.address), list(client.scheduler_info()["workers"]))


def is_inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def same_host(address: str, workers: list[str]) -> list[str]:
    """The workers whose address has the host of `address` (`tcp://10.0.0.7:40213` → 10.0.0.7)."""
    host = address.rpartition(":")[0]
    return sorted(w for w in workers if w.rpartition(":")[0] == host)


def _schema(files: list[str]) -> dict[str, Any]:
    """The table's columns and polars types, from the first file's footer (no rows are read)."""
    import polars as pl

    try:
        return dict(pl.read_parquet_schema(files[0]))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise NodeError(f"cannot read the table's schema in {files[0]}: {exc}") from None


def _plan(task: Task, address: str, schema: dict[str, Any]) -> PartPlan:
    config = task.config
    columns = list(schema)
    check_columns(columns, config)
    key = [k for k in upstream_key(task, address) if k in schema]
    target = str(config["target"])
    skip = {target, *key, *(config.get("drop") or [])}
    inputs = [c for c in columns if c not in skip]
    split = config.get("split") or {}
    kept = list(dict.fromkeys([*key, target, *(str(c) for c in config.get("slices") or [])]))
    return PartPlan(schema, str(config["task"]), target, inputs, text_columns(schema, inputs), key or columns, kept,
                    bool(key), float(split.get("test_size", 0.2)), int(split.get("seed", 0)))


def _design(plan: PartPlan, summary: Summary) -> tuple[list[Input], Target]:
    """The inputs and target the whole table's would be (describe_inputs, describe_target)."""
    target = target_from(plan.target, plan.schema[plan.target], plan.task, summary.nulls, summary.classes)
    inputs = inputs_from(plan.schema, plan.inputs, summary.levels)
    if summary.infinite:
        raise NodeError(infinite_error([i.name for i in inputs if i.name in summary.infinite]))
    return inputs, target


def _train(task: Task, client: Any, plan: PartPlan, read: tuple[list[Any], list[str] | None], meta: Any,
           design: tuple[list[Input], Target]) -> Trained:
    """Split and encode each partition, train on the training rows, predict the held-out ones."""
    import dask.dataframe as dd
    import numpy as np
    import xgboost as xgb

    (parts, readers), (inputs, target) = read, design
    config = task.config
    setup = training_setup(dict(config.get("params") or {}), plan.task, len(target.classes), task.threads,
                           plan.seed)
    empty = split_part(meta, plan, inputs, target)  # the pieces' types, for Dask
    pieces = [_delayed(split_part)(p, plan, inputs, target) for p in parts]
    frames = client.persist([dd.from_delayed([_delayed(getitem)(p, name) for p in pieces], meta=empty[name],
                                             verify_meta=False) for name in PIECES], workers=readers)
    train_x, train_y, test_x, test_y, held = frames
    n_train, n_test = len(train_y), len(test_y)
    check_split(n_train + n_test, n_test)
    log_line(task.log, f"training {setup.rounds} rounds on {n_train} rows, {n_test} held out (split by hash)")
    names, types = [i.name for i in inputs], feature_types(inputs)
    shape = {"feature_names": names, "feature_types": types, "enable_categorical": True}
    train_set = _training_matrix(client, setup.params, (train_x, train_y), shape)
    test_set = xgb.dask.DaskDMatrix(client, test_x, test_y, **shape)
    fit = train_on(client, setup, train_set, test_set, task.log)
    pred = np.asarray(client.compute(xgb.dask.predict(client, fit.booster, test_set)).result())
    rows = _held_rows(client.compute(held).result(), plan)
    rows, pred = _in_order(rows, pred, plan)
    key = plan.hashed if plan.keyed else []
    return Trained(fit, key, target, inputs, rows, encode_target(rows[target.name], target), pred, n_train)


def _training_matrix(client: Any, params: dict[str, Any], data: tuple[Any, Any], shape: dict[str, Any]) -> Any:
    """The training rows as xgboost.dask's quantile matrix when the trees are grown by histogram
    (the default): each worker bins its partitions as it reads them and never keeps a float copy,
    a quarter of the memory; other tree methods need the values (DaskDMatrix)."""
    import xgboost as xgb

    if str(params.get("tree_method", "hist")) not in ("hist", "auto"):
        return xgb.dask.DaskDMatrix(client, *data, **shape)
    return xgb.dask.DaskQuantileDMatrix(client, *data, max_bin=int(params.get("max_bin", 256)), **shape)


def _held_rows(held: Any, plan: PartPlan) -> pl.DataFrame:
    """The gathered held-out rows as a polars frame of the table's types."""
    import polars as pl

    frame = pl.from_pandas(held)
    return frame.cast({n: t for n, t in plan.schema.items() if n in frame.columns})


def _in_order(rows: pl.DataFrame, pred: Any, plan: PartPlan) -> tuple[pl.DataFrame, Any]:
    """The held-out rows (and their predictions) in the single-machine model's order: by key;
    without a key, by row hash (a whole-table sort by every column would need the features)."""
    import numpy as np
    import polars as pl

    order = pl.Series("order", np.arange(rows.height))
    by = plan.hashed if plan.keyed else [HASH_COLUMN]
    ranked = sort_frame(rows.with_columns(order), by)
    index = ranked["order"].to_numpy()
    return ranked.drop("order", HASH_COLUMN, strict=False), pred[index]


def _delayed(function: Any) -> Any:
    from dask.delayed import delayed

    return delayed(function, pure=True)

