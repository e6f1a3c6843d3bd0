"""Where recipes run: in this process (-j 1) or in a pool of processes (-j N).
A distributed runner (Dask) would implement the same two methods."""

from __future__ import annotations

import os
import signal
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context

from mlmake.building.seams import Done
from mlmake.core.errors import NodeError
from mlmake.core.kind import Task


def run_task(task: Task) -> Done:
    """Run one recipe; module-level so a process pool can call it."""
    from mlmake.core import registry

    try:
        result = registry.registry().by_name(task.kind).run(task)
        return Done(ok=True, metrics=result.metrics, tables=result.tables)
    except NodeError as exc:
        return Done(ok=False, metrics=exc.metrics, error=str(exc))
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a recipe bug must not take the build down
        _log(task.log, traceback.format_exc())
        return Done(ok=False, error=f"{type(exc).__name__}: {exc}")


def _log(path: str, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")


class InlineRunner:
    """Runs each task at once in this process: no start-up cost, one at a time."""

    def submit(self, task: Task) -> Future[Done]:
        future: Future[Done] = Future()
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
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked since it was started (submit)


_running = False  # in a pool worker: whether a recipe runs now (_run_in_worker)


def _run_in_worker(task: Task) -> Done:
    global _running
    _running = True
    try:
        return run_task(task)
    finally:
        _running = False


def _interrupt(signum: int, frame: object) -> None:
    if not _running:  # idle, waiting for work: leave at once (raising there prints multiprocessing's traceback)
        os._exit(128 + signum)
    raise KeyboardInterrupt


def _ignore(signum: int, frame: object) -> None:
    pass


class PoolRunner:
    """Runs tasks in N spawned worker processes."""

    def __init__(self, jobs: int, threads: int) -> None:
        self.pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                                        initializer=_init_worker, initargs=(threads,))

    def submit(self, task: Task) -> Future[Done]:
        # a worker the pool starts now inherits SIGINT blocked: a terminal's Ctrl-C reaching it while
        # it is still starting stays pending until _init_worker has its handler (it would print a
        # KeyboardInterrupt traceback); in this process the signal is only held for the call
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            return self.pool.submit(_run_in_worker, task)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def shutdown(self, cancel: bool) -> None:
        if cancel:
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.terminate()
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


def make_runner(jobs: int, threads: int) -> InlineRunner | PoolRunner:
    return InlineRunner() if jobs <= 1 else PoolRunner(jobs, threads)
