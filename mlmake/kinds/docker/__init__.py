"""deploy.NAME with kind: docker — build/deploy/NAME/ is a docker build context serving the
model: a Dockerfile, pinned requirements, mlmake as a wheel and the http bundle (context.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlmake.core.errors import Diagnostic, Span
from mlmake.core.kind import ItemCheck, ItemPaths, Kind, NodeDecl, Result, Task, dep_files, load_fragment
from mlmake.core.spec import Project
from mlmake.kinds import target
from mlmake.kinds.target import Target


class DockerKind:
    name = "docker"
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
        import os

        from mlmake.kinds.docker.context import write_context
        from mlmake.ml.bundle import write_bundle
        from mlmake.ml.tables import log_line

        folder = task.staged(target.task_folder(task))
        bundle = os.path.join(folder, "bundle")
        os.makedirs(bundle)
        manifest = write_bundle(task, bundle)
        write_context(folder, manifest, task.address.partition(".")[2])
        log_line(task.log, f"docker context for {manifest['model']['address']}" + target.store_note(manifest))
        return Result(metrics={"model_fingerprint": manifest["model"]["fingerprint"]})


KIND: Kind[Target] = DockerKind()
