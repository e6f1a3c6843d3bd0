"""What a Dask worker does with one node. Shared nothing: the files the node reads are fetched
from the remote into a folder of the task's own (through a cache of objects the worker keeps
in its local directory, linked, not copied, into each task's folder), the recipe runs there
exactly as it would in a local build, and its outputs are pushed to the remote; the folder is
removed. With a shared file system the task runs in the client's project as it is.

The worker never writes the client's lock, run records or DVC cache: the client commits."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlmake.building.parcel import Parcel, Returned
from mlmake.building.runners import run_task
from mlmake.building.seams import Done
from mlmake.core.kind import Task
from mlmake.remote.objects import MODE, Objects, Piece, files_of, relative
from mlmake.state.hashing import md5_file

FOLDER_ENV = "MLMAKE_WORKER_DIR"  # where a worker keeps its objects and task folders


def run_shared(task: Task, topic: str, environ: dict[str, str]) -> Returned:
    """A task run in the project folder the client and the workers share."""
    worker = _announce(task.address, topic)
    with declared(environ, task.env):
        return Returned(run_task(replace(task, threads=_threads(worker))), _address(worker))


def run_parcel(parcel: Parcel) -> Returned:
    """A task run in a folder of its own, its inputs fetched and its outputs pushed."""
    worker = _announce(parcel.task.address, parcel.topic)
    base = _base(worker)
    folder = base / "tasks" / uuid.uuid4().hex[:12]
    objects = Objects(parcel.remote)
    try:
        _fetch(parcel, folder, base / "objects", objects)
        task = _relocated(parcel, folder, _threads(worker))
        with declared(parcel.environ, task.env):
            done = run_task(task)
        log = _read(task.log)
        if not done.ok:
            return Returned(_restated(done, task, parcel.task), _address(worker), log)
        outputs, folders = _push(parcel, task, objects)
        return Returned(done, _address(worker), log, outputs, folders)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def declared(values: dict[str, str], names: tuple[str, ...]) -> Iterator[None]:
    """The node's declared environment variables as the client has them (set, or unset) while
    it runs: its fingerprint holds the client's values, not the worker's."""
    before = {name: os.environ.get(name) for name in names}
    try:
        for name in names:
            if name in values:
                os.environ[name] = values[name]
            else:
                os.environ.pop(name, None)
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _announce(address: str, topic: str) -> Any:
    """This worker, after telling the client which node it runs (None outside a worker)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    worker.log_event(topic, {"node": address, "worker": worker.address})
    return worker


def _address(worker: Any) -> str:
    return str(worker.address) if worker is not None else "local"


def _threads(worker: Any) -> int:
    """A recipe's threads: this machine's cores shared by the tasks the worker runs at once."""
    slots = int(getattr(worker, "state", worker).nthreads) if worker is not None else 1
    return max(1, (os.cpu_count() or 1) // max(1, slots))


def _base(worker: Any) -> Path:
    chosen = os.environ.get(FOLDER_ENV)
    if chosen:
        return Path(chosen)
    local = getattr(worker, "local_directory", None)
    return Path(local if local else os.getcwd()) / "mlmake"


def _fetch(parcel: Parcel, folder: Path, cache: Path, objects: Objects) -> None:
    """The node's files in its folder: each object fetched once per worker, then linked."""
    for rel in parcel.folders:
        _inside(folder, rel).mkdir(parents=True, exist_ok=True)
    for rel, md5 in parcel.files.items():
        cached = cache / md5[:2] / md5[2:]
        if not cached.is_file():
            cached.parent.mkdir(parents=True, exist_ok=True)
            objects.get(md5, cached)
            os.chmod(cached, MODE)
        dest = _inside(folder, rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(cached, dest)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(cached, dest)


def _inside(folder: Path, rel: str) -> Path:
    """A project path inside the task's folder; refused when it would lead out of it."""
    parts = rel.split("/")
    if os.path.isabs(rel) or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a path inside the project: {rel!r}")
    return folder.joinpath(*parts)


def _relocated(parcel: Parcel, folder: Path, threads: int) -> Task:
    """The task with its root, staging paths and log in the task's folder (staged as the
    client's workspace stages them: a kind's first output is an empty folder)."""
    state = folder / ".mlmake"
    state.mkdir(parents=True, exist_ok=True)
    staging = {}
    for i, out in enumerate(parcel.outputs):
        if parcel.in_place:
            staging[out] = str(_inside(folder, out))
            continue
        path = state / "tmp" / f"{i}-{Path(out).name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if i == 0:
            path.mkdir()
        staging[out] = str(path)
    log = state / "node.log"
    log.touch()
    return replace(parcel.task, root=str(folder), staging=staging, log=str(log), threads=threads)


def _push(parcel: Parcel, task: Task, objects: Objects) -> tuple[dict[str, list[Piece]], tuple[str, ...]]:
    """The outputs the recipe wrote, pushed to the remote: output → its files, and which are folders."""
    outputs: dict[str, list[Piece]] = {}
    folders = []
    for out in parcel.outputs:
        path = Path(task.staged(out))
        if not os.path.lexists(path):
            continue  # the client says it was not written, as a local build does
        if path.is_dir():
            folders.append(out)
        pieces = []
        for file in files_of(path):
            md5 = md5_file(file)
            objects.put(file, md5)
            pieces.append(Piece(relative(file, path), md5))
        outputs[out] = pieces
    return outputs, tuple(folders)


def _restated(done: Done, local: Task, original: Task) -> Done:
    """A failure's message with the worker's paths replaced by the client's."""
    error = done.error.replace(local.log, original.log).replace(local.root, original.root)
    return replace(done, error=error)


def _read(log: str) -> str:
    try:
        return Path(log).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
