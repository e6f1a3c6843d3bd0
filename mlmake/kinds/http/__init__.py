"""deploy.NAME with kind: http — build/deploy/NAME/ is the serving bundle `mlmake serve NAME`
runs (ml/bundle.py): the model, its signature and metrics, and the online store when its
feature set has a key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlmake.core.errors import Diagnostic, Span
from mlmake.core.kind import ItemCheck, ItemPaths, Kind, NodeDecl, Result, Task, dep_files, load_fragment
from mlmake.core.spec import Project
from mlmake.kinds import target
from mlmake.kinds.target import Target


class HttpKind:
    name = "http"
    section = target.SECTION
    default = False
    word = "deploy target"
    recipe = target.RECIPE
    libraries: tuple[str, ...] = target.LIBRARIES
    item_type = Target

    def item_schema(self) -> dict[str, Any]:
        return load_fragment(__file__)

    def parse(self, name: str, span: Span | None, data: Mapping[str, Any]) -> Target:
        return target.parse(name, span, data)

    def paths(self, item: ItemCheck) -> ItemPaths:
        return ItemPaths(inputs=dep_files(item))

    def check(self, item: ItemCheck) -> list[Diagnostic]:
        return []

    def declare(self, project: Project, item: Target) -> NodeDecl:
        return target.declare(self.name, project, item, target.keyed_table(project, item))

    def run(self, task: Task) -> Result:
        from mlmake.ml.bundle import write_bundle
        from mlmake.ml.tables import log_line

        manifest = write_bundle(task, task.staged(target.task_folder(task)))
        log_line(task.log, f"bundle of {manifest['model']['address']} (fingerprint "
                           f"{manifest['model']['fingerprint']})" + target.store_note(manifest))
        return Result(metrics={"model_fingerprint": manifest["model"]["fingerprint"]})


KIND: Kind[Target] = HttpKind()
