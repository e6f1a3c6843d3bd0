"""The client's side of a build whose workers share nothing but the remote. Before a node is
submitted, every file it reads (its inputs, its code, its upstream nodes' outputs and the lock,
which a deploy target's manifest reads) is named by its md5 and pushed to the remote unless it
is there already; when the node is done, the files it wrote are fetched from the remote into
its staging paths, and the build's commit step takes them from there as it takes a local
recipe's: the lock, the run records and the DVC cache are the client's alone to write."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from pathlib import Path

from mlmake.building.parcel import Parcel, Returned
from mlmake.building.seams import Done
from mlmake.core.graph import Graph
from mlmake.core.kind import Task
from mlmake.core.workdir import move_into_place
from mlmake.remote.objects import ObjectError, Objects, Piece, files_of, relative
from mlmake.state.hashing import md5_file
from mlmake.state.lock import LOCK_FILE

_Stat = tuple[str, int, int, int]


class Shipper:
    """Parcels out tasks and takes their outputs back, for one build."""

    def __init__(self, root: Path, graph: Graph, objects: Objects, topic: str) -> None:
        self.root, self.graph, self.objects, self.topic = root, graph, objects, topic
        self._md5s: dict[_Stat, str] = {}  # a file's md5 by its stat: each file is read once per build
        self._pushed: set[str] = set()

    def parcel(self, task: Task) -> Parcel:
        """The task, with every file it reads on the remote."""
        decl = self.graph.nodes[task.address]
        paths = [*decl.inputs, *decl.code, *(o for outs in task.upstream.values() for o in outs), LOCK_FILE]
        registry = task.config.get("registry")
        if isinstance(registry, dict) and isinstance(registry.get("folder"), str):
            paths.append(registry["folder"])  # a deploy target reads a registered version from there (kinds/follow.py)
        files: dict[str, str] = {}
        folders = []
        for rel in dict.fromkeys(paths):
            full = self.root / rel
            if os.path.isabs(rel) or not full.exists():
                continue  # the recipe finds it missing on the worker, as it would here
            if full.is_dir():
                folders.append(Path(rel).as_posix())
            for file in files_of(full):
                sub = relative(file, full)
                files[Path(rel, sub).as_posix() if sub else Path(rel).as_posix()] = self._push(file)
        return Parcel(task, files, tuple(folders), self.objects.url, decl.outputs, decl.in_place, self.topic,
                      declared_values(task))

    def receive(self, task: Task, returned: Returned, stopping: threading.Event) -> Done:
        """The worker's outputs fetched into the task's staging paths, its log appended to the
        node's; the recipe's Done, or a failure when its outputs cannot be fetched."""
        _append(task.log, returned.log)
        if not returned.done.ok:
            return returned.done
        try:
            for out, pieces in returned.outputs.items():
                if stopping.is_set():
                    return Done(ok=False, error="the build stopped")
                self._fetch(Path(task.staged(out)), out in returned.folders, pieces)
        except ObjectError as exc:
            return Done(ok=False, metrics=returned.done.metrics,
                        error=f"built on {returned.worker}, but its outputs cannot be fetched: {exc}")
        return returned.done

    def _push(self, file: Path) -> str:
        st = file.stat()
        key = (str(file), st.st_size, st.st_mtime_ns, st.st_ino)
        md5 = self._md5s.get(key)
        if md5 is None:
            md5 = self._md5s[key] = md5_file(file)
        if md5 not in self._pushed:
            self.objects.put(file, md5)
            self._pushed.add(md5)
        return md5

    def _fetch(self, dest: Path, is_folder: bool, pieces: list[Piece]) -> None:
        """An output assembled beside its staging path, then moved there in one step."""
        incoming = dest.with_name(f".{dest.name}.incoming-{uuid.uuid4().hex[:8]}")
        try:
            if is_folder:
                incoming.mkdir(parents=True)
            for piece in pieces:
                target = _inside(incoming, piece.sub) if piece.sub else incoming
                target.parent.mkdir(parents=True, exist_ok=True)
                self.objects.get(piece.md5, target)
            move_into_place(incoming, dest)
        finally:
            if incoming.is_dir():
                shutil.rmtree(incoming, ignore_errors=True)
            else:
                incoming.unlink(missing_ok=True)


def declared_values(task: Task) -> dict[str, str]:
    """The values the node's declared `env:` variables have here (those that are set)."""
    return {name: os.environ[name] for name in task.env if name in os.environ}


def _inside(folder: Path, sub: str) -> Path:
    """A file of an output inside its folder; a path that would lead out of it is refused."""
    parts = sub.split("/")
    if os.path.isabs(sub) or any(p in ("", ".", "..") for p in parts):
        raise ObjectError(f"the worker named a file outside the output: {sub!r}")
    return folder.joinpath(*parts)


def _append(log: str, text: str) -> None:
    if log and text:
        with open(log, "a", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
