"""Where recipes run: in this process (-j 1) or in a pool of processes (-j N).
A distributed runner (Dask) would implement the same two methods."""

from __future__ import annotations

import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from mlmake.building.builder import run_task
from mlmake.core.kind import Task


class InlineRunner:
    """Runs each task at once in this process: no start-up cost, one at a time."""

    def submit(self, task: Task) -> Future[dict[str, Any]]:
        future: Future[dict[str, Any]] = Future()
        future.set_result(run_task(task))
        return future

    def shutdown(self, cancel: bool) -> None:
        pass


def _init_worker(threads: int) -> None:
    # set before polars/xgboost load so two trainings do not fight over the cores
    os.environ["POLARS_MAX_THREADS"] = str(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    # the parent decides what Ctrl-C stops; a handler (not SIG_IGN) so commands do not inherit ignoring it
    signal.signal(signal.SIGINT, _ignore)
    # the parent stops a worker with SIGTERM: raise in the recipe so a running command is stopped too
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _ignore(signum: int, frame: object) -> None:
    pass


class PoolRunner:
    """Runs tasks in N spawned worker processes."""

    def __init__(self, jobs: int, threads: int) -> None:
        self.pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                                        initializer=_init_worker, initargs=(threads,))

    def submit(self, task: Task) -> Future[dict[str, Any]]:
        return self.pool.submit(run_task, task)

    def shutdown(self, cancel: bool) -> None:
        if cancel:
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.terminate()
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


def make_runner(jobs: int, threads: int) -> InlineRunner | PoolRunner:
    return InlineRunner() if jobs <= 1 else PoolRunner(jobs, threads)
