"""What a Dask build's client and workers hand each other, as plain data that crosses the
network: the task with the files it reads, named by their md5 on the remote (a Parcel), and
what came back (Returned): the recipe's Done, where it ran, its log and the files it wrote."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlmake.building.seams import Done
from mlmake.core.kind import Task
from mlmake.remote.objects import Piece


@dataclass(frozen=True)
class Parcel:
    """One task for a worker that shares no disk with the client."""

    task: Task
    files: dict[str, str]  # every file the node reads: its path in the project → its md5
    folders: tuple[str, ...]  # the inputs that are folders (created even when empty)
    remote: str  # where the objects are: a URL, or an absolute folder
    outputs: tuple[str, ...]  # the node's declared outputs, in order
    in_place: bool  # its recipe writes its outputs where they belong (a command)
    topic: str  # the Dask event topic the worker announces itself on
    environ: dict[str, str] = field(default_factory=dict)  # the declared `env:` variables set on the client


@dataclass(frozen=True)
class Returned:
    """What a worker sends back for one task."""

    done: Done
    worker: str  # the worker's address
    log: str = ""  # what the recipe wrote to its log (the client's log has the header)
    outputs: dict[str, list[Piece]] = field(default_factory=dict)  # output → its files, pushed to the remote
    folders: tuple[str, ...] = ()  # the outputs that are folders
