"""`engine: dask` on a table the node's process has read: the training rows split into
partitions that Dask workers hold, trained with xgboost.dask. The node reads the table only when
its split needs the whole table (`split: {by: random}` or `stratify`, see recipe.is_partition_wise);
otherwise dask_table.py reads it partition by partition on the workers. `train_on` and the client
serve both.

The rows, split and encoding are then the single-machine model's (ml/supervised.prepare), so the
held-out rows, metrics, slices, predictions and signature are computed as they are for it, and
the booster is saved the same way (serve and batch load it unchanged). What differs is the
training: each worker builds its quantile sketch on its own partitions, so the trees differ a
little from a single-process training (see the test's tolerance).

The Dask client: when the node itself runs on a Dask worker (`mlmake build --scheduler`), the
training runs on that cluster (`distributed.worker_client`); otherwise a LocalCluster is started
for the node and closed after it: in this process (processes=False, so no socket is opened), one
thread per worker, as many workers as the node's threads."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError
from mlmake.kinds.model.training import LOG_EVERY, Fit, TrainingSetup, check_finite
from mlmake.ml.design import Input, feature_types
from mlmake.ml.tables import first_line, log_line

if TYPE_CHECKING:
    import numpy as np

MISSING = "engine: dask needs Dask: pip install 'mlmake[dask]'"


@contextmanager
def dask_client(workers: int) -> Iterator[tuple[Any, str]]:
    """The cluster's client when this runs on a Dask worker, else a LocalCluster's for the node;
    with words for the log saying which."""
    try:
        import distributed
        import xgboost.dask  # noqa: F401  (imports dask.dataframe: fails here, not mid-training)
    except ImportError:
        raise NodeError(MISSING) from None
    try:
        distributed.get_worker()
    except ValueError:  # not on a worker: a cluster of our own, in this process
        with distributed.LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=max(1, workers), threads_per_worker=1, processes=False, dashboard_address=None,
        ) as cluster, distributed.Client(cluster) as client:  # type: ignore[no-untyped-call]
            yield client, "a LocalCluster for the node"
        return
    with distributed.worker_client() as client:
        yield client, "the build's cluster"


def partitions(rows: int, workers: int) -> int:
    """Rows per partition: at least two partitions a worker, as the rows allow."""
    return max(1, math.ceil(rows / max(2, 2 * workers)))


def train_dask(plan: TrainingSetup, data: tuple[np.ndarray, np.ndarray], held_out: tuple[np.ndarray, np.ndarray],
               inputs: list[Input], workers: int, log: str) -> Fit:
    """Train on the partitions; with early stopping, keep the trees up to the best round."""
    import dask.array as da
    import xgboost as xgb

    check_finite(data[0], inputs)
    names, types = [i.name for i in inputs], feature_types(inputs)
    with dask_client(workers) as (client, where):
        def dmatrix(x: np.ndarray, y: np.ndarray) -> Any:
            chunk = partitions(len(x), workers)
            rows = da.from_array(x, chunks=(chunk, x.shape[1]))  # type: ignore[no-untyped-call]
            labels = da.from_array(y, chunks=(chunk,))  # type: ignore[no-untyped-call]
            return xgb.dask.DaskDMatrix(client, rows, labels, feature_names=names, feature_types=types,
                                        enable_categorical=True)

        train_set, test_set = dmatrix(*data), dmatrix(*held_out)
        log_line(log, f"engine dask on {where}: {len(client.scheduler_info()['workers'])} worker(s), "
                      f"{len(data[0])} training rows in partitions of {partitions(len(data[0]), workers)}")
        return train_on(client, plan, train_set, test_set, log)


def train_on(client: Any, plan: TrainingSetup, train_set: Any, test_set: Any, log: str) -> Fit:
    """xgboost.dask.train on two DaskDMatrix; with early stopping, the trees up to the best round."""
    import xgboost as xgb

    params = {k: v for k, v in plan.params.items() if k != "nthread"}  # a thread per Dask worker
    try:
        output = xgb.dask.train(client, params, train_set, plan.rounds, evals=[(test_set, "test")],
                                early_stopping_rounds=plan.early_stopping, verbose_eval=False)
    except xgb.core.XGBoostError as exc:
        raise NodeError(f"xgboost rejected the training: {first_line(exc)}") from None
    booster = output["booster"]
    _log_history(log, output["history"], plan.rounds)
    if plan.early_stopping is None:
        return Fit(booster, plan.rounds - 1, plan.params["objective"])
    best = int(booster.best_iteration)
    log_line(log, f"early stopping: best round {best}")
    return Fit(booster[: best + 1], best, plan.params["objective"])


def _log_history(log: str, history: dict[str, dict[str, list[float]]], rounds: int) -> None:
    """The held-out metrics every LOG_EVERY rounds and at the last one, as the local training logs them."""
    count = max((len(v) for by in history.values() for v in by.values()), default=0)
    for epoch in range(count):
        if epoch % LOG_EVERY == 0 or epoch in (rounds - 1, count - 1):
            log_line(log, f"[{epoch}] " + "  ".join(f"{data}-{metric}: {values[epoch]:.5f}"
                                                    for data, by in history.items() for metric, values in by.items()))
