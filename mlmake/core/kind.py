"""The kind interface: what every node kind declares (NodeDecl), the plain-data Task its recipe
runs, and the `Kind` Protocol the registry (core/registry.py) holds, for built-in kinds
(mlmake/kinds/<kind>/) and third-party ones (the `mlmake.kinds` entry points) alike."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from mlmake.core.columns import ColumnUse
from mlmake.core.errors import Diagnostic, Span
from mlmake.core.source import Document, Path

if TYPE_CHECKING:
    from mlmake.core.spec import Project


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to another node, with the key that makes it.

    `name` is a full address when `sections` is empty, else a bare name looked
    up in those sections in order (a feature's `from: [customers]`). `columns`: the columns
    of that table the node reads, when its kind can tell (None: the whole table)."""

    name: str
    key: Path
    sections: tuple[str, ...] = ()
    columns: ColumnUse | None = None


@dataclass(frozen=True, slots=True)
class NodeDecl:
    """One node of the graph as its kind declares it."""

    address: str
    kind: str
    span: Span | None
    config: dict[str, Any]
    refs: tuple[Ref, ...] = ()
    inputs: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    recipe: int = 1
    libraries: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)  # the global params it reads: name → value
    param_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name → its config keys
    templates: dict[str, str] = field(default_factory=dict)  # key path → text before interpolation
    gates: dict[str, str] = field(default_factory=dict)  # metric → rule: judged on metrics, not fingerprinted
    lineage: bool = False  # its outputs record its name and its ancestors' fingerprints (a deploy manifest)
    in_place: bool = False  # its recipe writes its declared outputs where they belong, not in staging (cmd)
    log_tail: bool = True  # a failure shows its log's last lines (not for a kind whose message quotes its output)
    env: tuple[str, ...] = ()  # the environment variables it reads (`env:`, a key of every node)
    approvals: int = 0  # approvals of its model (`mlmake approve`) it needs before a build delivers it


@dataclass(frozen=True)
class Task:
    """Everything a recipe needs, as plain data so it can cross a process boundary."""

    address: str
    kind: str
    root: str
    config: dict[str, Any]
    staging: dict[str, str]
    upstream: dict[str, list[str]]
    upstream_kinds: dict[str, str] = field(default_factory=dict)
    threads: int = 1
    log: str = ""
    baseline: dict[str, float] = field(default_factory=dict)  # this node's metrics in the baseline lock
    env: tuple[str, ...] = ()  # the environment variables it declares (a command sees only these and a minimal set)

    def staged(self, output: str) -> str:
        """The temporary path a declared output is written to."""
        return self.staging[output]


@dataclass
class Result:
    """What a recipe reports back besides its files."""

    metrics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # output → its column record (core.columns)


# --- the kind interface ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathUse:
    """A path an item names, with the key that names it (inside the item)."""

    key: Path
    path: str
    outside_ok: bool = False  # an input that may be read through a link out of the project
    what: str = ""            # a source: what it is, with {address} ("the hook of {address}")


@dataclass(frozen=True, slots=True)
class ItemPaths:
    """The files an item names, for validate's path checks."""

    inputs: tuple[PathUse, ...] = ()   # read: must stay inside the project (code and DVC-tracked data
                                       # among them are protected from every node's outputs)
    outputs: tuple[PathUse, ...] = ()  # written besides its own build folder: must not replace a source
    sources: tuple[PathUse, ...] = ()  # code it runs that no node rebuilds


@dataclass(frozen=True, slots=True)
class ItemCheck:
    """One item as `validate` sees it after the schema passed: its resolved data and where to
    report a problem."""

    doc: Document
    section: str
    name: str
    data: Mapping[str, Any]
    root: FilePath

    def problem(self, key: Path, message: str, hint: str = "") -> Diagnostic:
        """A located problem at a key inside this item."""
        return self.doc.diagnostic((self.section, self.name, *key), message, hint)


ItemT = TypeVar("ItemT")


class Kind(Protocol[ItemT]):
    """A node kind, built in or from the `mlmake.kinds` entry points: what the registry holds."""

    name: str                   # the node kind, and the `kind:` value that picks it in a shared section
    section: str                # the file's section its items live in
    default: bool               # picked for an item of its section with no `kind:` key
    word: str                   # how messages name one item ("feature set")
    recipe: int                 # bump when the recipe's output could change
    libraries: tuple[str, ...]  # distributions whose versions enter the fingerprint
    item_type: type[ItemT]      # the frozen dataclass `parse` returns

    def item_schema(self) -> dict[str, Any]:
        """The JSON Schema of one item (the registry adds `kind` where a section has several)."""
        ...

    def parse(self, name: str, span: Span | None, data: Mapping[str, Any]) -> ItemT:
        """The item as a frozen value, from data the schema accepted."""
        ...

    def paths(self, item: ItemCheck) -> ItemPaths:
        """The files the item reads and writes, as written in the file."""
        ...

    def check(self, item: ItemCheck) -> list[Diagnostic]:
        """Everything wrong that the file alone shows (run by `validate`, before any build)."""
        ...

    def declare(self, project: Project, item: ItemT) -> NodeDecl:
        """Its node: inputs, outputs, references and the configuration fingerprinted. Cheap."""
        ...

    def run(self, task: Task) -> Result:
        """Build the node (heavy libraries are imported here)."""
        ...


REQUIRED = ("name", "section", "default", "word", "recipe", "libraries", "item_type",
            "item_schema", "parse", "paths", "check", "declare", "run")


def code_files(project: Project, hooks: tuple[str, ...], deps: tuple[str, ...],
               cmd: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The files a node's code is: its python hooks, or the script a `python …` command runs,
    each with the project modules it imports (transitively), then its declared deps."""
    from mlmake.core.codedeps import workspace

    found = list(hooks)
    files = workspace(FilePath(project.root))
    for hook in hooks:
        found += files.python_files(hook)
    found += files.script_files(cmd)
    return tuple(dict.fromkeys(found + list(deps)))


def dep_files(item: ItemCheck) -> tuple[PathUse, ...]:
    """The files among an item's `deps:` (the others name nodes)."""
    from mlmake.core.paths import is_address

    deps = item.data.get("deps") or []
    return tuple(PathUse(("deps", i), d) for i, d in enumerate(deps)
                 if isinstance(d, str) and not is_address(d, str(item.root)))


def build_dir(section: str, name: str) -> str:
    """The folder a built-in kind writes its outputs into."""
    return f"build/{section}/{name}"


TABLE_FILE = "data.parquet"  # every table-producing kind writes this inside its folder


def load_fragment(module_file: str, name: str = "item.schema.json") -> dict[str, Any]:
    """A kind's JSON Schema fragment, kept as a JSON file beside its module."""
    with open(FilePath(module_file).parent / name, encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]
