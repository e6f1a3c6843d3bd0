"""The Dask runner: each node the builder hands over runs as a Dask task on a cluster
(`mlmake build --scheduler tcp://HOST:8786`). The planner and the commit step stay here, on
the client, which alone writes the lock and the run records. Workers share nothing but the
remote (building.shipping, building.worker) unless told they share the project's file
system. A worker lost mid-node: Dask runs the node again elsewhere (its scheduler's
`allowed-failures`), and when it gives up the node fails, named; Ctrl-C cancels what was
submitted and records nothing that did not finish. `distributed` is imported only here and
in the worker, and only when a scheduler is asked for."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlmake.building.parcel import Returned
from mlmake.building.seams import Done
from mlmake.building.shipping import Shipper, declared_values
from mlmake.building.worker import run_parcel, run_shared
from mlmake.core.errors import MlmakeError
from mlmake.core.graph import Graph
from mlmake.core.kind import Task
from mlmake.core.spec import Project
from mlmake.remote.objects import Objects
from mlmake.state.remotecache import local_folder, locate

ENV = "MLMAKE_SCHEDULER"
INSTALL = "pip install 'mlmake[dask]'"
CONNECT_S = 10  # seconds to reach the scheduler


@dataclass(frozen=True)
class Setting:
    """Where a build runs: a Dask scheduler's address, and whether its workers see the project
    at the same path as the client (then nothing is transferred)."""

    scheduler: str
    shared: bool = False


def setting(project: Project, env: str | None, scheduler: str | None, shared_fs: bool) -> Setting | None:
    """Where to build: --scheduler (or $MLMAKE_SCHEDULER), else the `runner:` of the --env
    environment; None for this machine."""
    if scheduler:
        return Setting(scheduler, shared_fs)
    chosen = project.environments.get(env) if env else None
    if chosen is not None and chosen.runner is not None:
        return Setting(chosen.runner.scheduler, shared_fs or chosen.runner.shared_fs)
    return None


def remote_url(project: Project) -> str:
    """The project's remote as the workers reach it: its URL, or a folder's absolute path."""
    remote = project.remote
    location = locate(project.root, remote.url if remote else None, remote.options if remote else None)
    return str(local_folder(project.root, location).resolve()) if location.is_local else location.url


def connect(address: str) -> Any:
    """A Dask client of the scheduler at address; what to install or what failed, as an error."""
    try:
        from distributed import Client
    except ImportError:
        raise MlmakeError(f"building on a Dask cluster (--scheduler {address}) needs Dask: {INSTALL}") from None
    try:
        return Client(address, timeout=CONNECT_S, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError) as exc:
        raise MlmakeError(f"cannot reach the Dask scheduler at {address}: {_first_line(exc)}") from None


class DaskRunner:
    """Runs tasks on a Dask cluster: the Runner seam (building.seams)."""

    def __init__(self, client: Any, shipper: Shipper | None, placed: Callable[[str, str], None], topic: str) -> None:
        self.client, self.shipper, self.topic = client, shipper, topic
        self.futures: dict[Any, Task] = {}
        self.stopping = threading.Event()
        self.closed = False
        # outputs are fetched off the main thread, so the builder goes on starting nodes meanwhile
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mlmake-dask")
        client.subscribe_topic(topic, lambda event: _placed(placed, event))

    def slots(self) -> int:
        """The threads of the cluster's workers: how many nodes run at once by default."""
        return max(1, sum(int(n) for n in self.client.nthreads().values()))

    def submit(self, task: Task) -> Future[Done]:
        future: Future[Done] = Future()
        future.set_running_or_notify_cancel()
        key = f"mlmake-{task.address}-{uuid.uuid4().hex[:8]}"
        if self.shipper is not None:
            try:
                parcel = self.shipper.parcel(task)
            except (MlmakeError, OSError) as exc:  # the remote cannot take its inputs: this node fails
                future.set_result(Done(ok=False, error=f"its inputs cannot be sent to the workers: {exc}"))
                return future
            remote = self.client.submit(run_parcel, parcel, key=key, pure=False)
        else:
            remote = self.client.submit(run_shared, task, self.topic, declared_values(task), key=key, pure=False)
        self.futures[remote] = task
        remote.add_done_callback(lambda f: self._ended(f, task, future))
        return future

    def _ended(self, remote: Any, task: Task, future: Future[Done]) -> None:
        """A Dask future is done (on the client's own thread): its outputs are fetched on ours."""
        try:
            self.pool.submit(self._finish, remote, task, future)
        except RuntimeError:  # the build stopped: nothing is fetched any more
            if not future.done():
                future.set_result(Done(ok=False, error="the build stopped"))

    def _finish(self, remote: Any, task: Task, future: Future[Done]) -> None:
        self.futures.pop(remote, None)
        try:
            done = self._done(remote, task)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong fails this node, not the build
            done = Done(ok=False, error=f"{type(exc).__name__}: {exc}")
        if not future.done():
            future.set_result(done)

    def _done(self, remote: Any, task: Task) -> Done:
        if self.stopping.is_set() or remote.cancelled():
            return Done(ok=False, error="the build stopped")
        try:
            returned: Returned = remote.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker, a task that cannot be sent
            return Done(ok=False, error=_lost(exc))
        if self.shipper is None:
            return returned.done
        return self.shipper.receive(task, returned, self.stopping)

    def shutdown(self, cancel: bool) -> None:
        if self.closed:
            return
        self.closed = True
        if cancel:
            self.stopping.set()
            self.client.cancel(list(self.futures), force=True)
        self.pool.shutdown(wait=True, cancel_futures=cancel)
        self.client.unsubscribe_topic(self.topic)
        self.client.close()


def make_runner(root: Path, graph: Graph, setting: Setting, remote: str,
                placed: Callable[[str, str], None]) -> DaskRunner:
    """The runner of a build on the cluster setting names, its objects on the remote at `remote`."""
    client = connect(setting.scheduler)
    topic = f"mlmake-{uuid.uuid4().hex}"
    shipper = None if setting.shared else Shipper(root, graph, Objects(remote), topic)
    return DaskRunner(client, shipper, placed, topic)


def _placed(placed: Callable[[str, str], None], event: Any) -> None:
    _, message = event
    placed(str(message.get("node", "")), str(message.get("worker", "")))


def _lost(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return f"the workers running it were lost ({_first_line(exc)}); not recorded"
    if name == "CancelledError":
        return "cancelled on the cluster; not recorded"
    return f"{name} on the cluster: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
