"""What every node kind declares, and the plain-data Task a recipe runs.

A kind module exposes SECTION, KIND, RECIPE (bump it when the recipe's output
could change), LIBRARIES (distributions whose versions enter the fingerprint),
`declare(project, item) -> NodeDecl` (cheap, no heavy imports) and
`run(task) -> Result` (imports polars/xgboost inside)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any, Protocol

from mlmake.core.errors import Span
from mlmake.core.source import Path


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to another node, with the key that makes it.

    `name` is a full address when `sections` is empty, else a bare name looked
    up in those sections in order (a feature's `from: [customers]`)."""

    name: str
    key: Path
    sections: tuple[str, ...] = ()


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

    def staged(self, output: str) -> str:
        """The temporary path a declared output is written to."""
        return self.staging[output]


@dataclass
class Result:
    """What a recipe reports back besides its files."""

    metrics: dict[str, Any] = field(default_factory=dict)


class Kind(Protocol):
    SECTION: str
    KIND: str
    RECIPE: int
    LIBRARIES: tuple[str, ...]

    def declare(self, project: Any, item: Any) -> NodeDecl: ...

    def run(self, task: Task) -> Result: ...


def code_files(project: Any, hooks: tuple[str, ...], deps: tuple[str, ...],
               cmd: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The files a node's code is: its python hooks, or the script a `python …` command runs,
    each with the project modules it imports (transitively), then its declared deps."""
    found = list(hooks)
    root = getattr(project, "root", None)
    if root is not None:
        from mlmake.core.codedeps import workspace

        files = workspace(FilePath(root))
        for hook in hooks:
            found += files.python_files(hook)
        found += files.script_files(cmd)
    return tuple(dict.fromkeys(found + list(deps)))


def build_dir(section: str, name: str) -> str:
    """The folder a built-in kind writes its outputs into."""
    return f"build/{section}/{name}"


TABLE_FILE = "data.parquet"  # every table-producing kind writes this inside its folder
