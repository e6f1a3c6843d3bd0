"""monitors.NAME: a model's training features (the reference) against current data — a deploy
target's prediction log, or a table declared as the newest batch — as a JSON report of per-column
drift, prediction drift and live quality from fed-back labels (recipe.py, with scipy).

The log is not a node's output: it grows while the service runs. Its files' count and size enter
the monitor's configuration, so a monitor whose log grew or rotated is stale, and `plan` says so."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlmake.core.errors import Diagnostic, Span
from mlmake.core.kind import (
    ItemCheck,
    ItemPaths,
    Kind,
    NodeDecl,
    Ref,
    Result,
    Task,
    build_dir,
    dep_files,
    load_fragment,
)
from mlmake.core.spec import INTERNAL, NOT_FINGERPRINTED, Project, deps_of, node_config

SECTION = "monitors"
TABLES = ("features", "datasets")
REPORT_FILE = "report.json"


@dataclass(frozen=True, slots=True)
class Current:
    """The current data: one of a deploy target's log, a log file, a table."""

    deploy: str = ""
    log: str = ""
    table: str = ""


@dataclass(frozen=True, slots=True)
class Monitor:
    name: str = field(metadata=INTERNAL)
    span: Span | None = field(metadata=INTERNAL, compare=False)
    model: str
    current: Current
    window: int = 0
    description: str = field(default="", metadata=NOT_FINGERPRINTED)
    deps: tuple[str, ...] = field(default=(), metadata=NOT_FINGERPRINTED)

    @property
    def log_path(self) -> str:
        """The prediction log it reads (relative to the project), or "" for a table."""
        if self.current.log:
            return self.current.log
        return f".mlmake/serve/{self.current.deploy}/predictions.jsonl" if self.current.deploy else ""


def log_state(root: str, path: str) -> str:
    """The log's files and bytes: what changes when the service logs or rotates (a stat, no read)."""
    from mlmake.ml.logfiles import log_files

    files = log_files(os.path.join(root, path))
    size = sum(os.path.getsize(f) for f in files)
    return f"{len(files)} file{'s' if len(files) != 1 else ''}, {size} bytes"


class MonitorKind:
    name = "monitor"
    section = SECTION
    default = True
    word = "monitor"
    recipe = 1
    libraries: tuple[str, ...] = ("polars", "scipy", "numpy")
    item_type = Monitor

    def item_schema(self) -> dict[str, Any]:
        return load_fragment(__file__)

    def parse(self, name: str, span: Span | None, data: Mapping[str, Any]) -> Monitor:
        return Monitor(name, span, data["model"], Current(**data["current"]), int(data.get("window", 0)),
                       data.get("description", ""), deps_of(data))

    def paths(self, item: ItemCheck) -> ItemPaths:
        return ItemPaths(inputs=dep_files(item))

    def check(self, item: ItemCheck) -> list[Diagnostic]:
        deploy = (item.data.get("current") or {}).get("deploy")
        targets = item.doc.data.get("deploy") or {} if isinstance(item.doc.data, dict) else {}
        if deploy and deploy not in targets:
            return [item.problem(("current", "deploy"), f"no deploy target '{deploy}'",
                                 f"deploy targets: {', '.join(sorted(targets)) or 'none'}")]
        return []

    def declare(self, project: Project, item: Monitor) -> NodeDecl:
        key = (SECTION, item.name)
        refs = [Ref(item.model, (*key, "model"), ("models",))]
        model = project.section("models").get(item.model)
        if model is not None:
            refs.append(Ref(str(model.features), (*key, "model"), TABLES))
        if item.current.table:
            refs.append(Ref(item.current.table, (*key, "current", "table"), TABLES))
        config = {"kind": self.name, **node_config(item)}
        if item.log_path:
            config["log_path"] = item.log_path
            config["log_state"] = log_state(str(project.root), item.log_path)
        return NodeDecl(f"{SECTION}.{item.name}", self.name, item.span, config, tuple(refs), code=item.deps,
                        outputs=(build_dir(SECTION, item.name),), recipe=self.recipe, libraries=self.libraries)

    def run(self, task: Task) -> Result:
        from mlmake.kinds.monitor.recipe import run as recipe

        return recipe(task)


KIND: Kind[Monitor] = MonitorKind()
