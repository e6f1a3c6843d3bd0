"""deploy.NAME with kind: batch — scores `input` (default: the model's own table) into `output`
(default build/deploy/NAME/scores.parquet), with a manifest beside it (recipe.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlmake.core.errors import Diagnostic, Span
from mlmake.core.kind import ItemCheck, ItemPaths, Kind, NodeDecl, PathUse, Result, Task, dep_files, load_fragment
from mlmake.core.spec import Project
from mlmake.kinds import follow, target
from mlmake.kinds.target import BatchTarget


class BatchKind:
    name = "batch"
    section = target.SECTION
    default = False
    word = "deploy target"
    recipe = target.RECIPE
    libraries: tuple[str, ...] = target.LIBRARIES
    item_type = BatchTarget

    def item_schema(self) -> dict[str, Any]:
        return load_fragment(__file__)

    def parse(self, name: str, span: Span | None, data: Mapping[str, Any]) -> BatchTarget:
        return target.parse_batch(name, span, data)

    def paths(self, item: ItemCheck) -> ItemPaths:
        output = item.data.get("output")
        outputs = (PathUse(("output",), output),) if isinstance(output, str) else ()
        return ItemPaths(inputs=dep_files(item), outputs=outputs)

    def check(self, item: ItemCheck) -> list[Diagnostic]:
        return []

    def declare(self, project: Project, item: BatchTarget) -> NodeDecl:
        return target.declare(self.name, project, item, target.model_table(project, item))

    def run(self, task: Task) -> Result:
        from mlmake.kinds.batch.recipe import score

        return score(follow.followed(task))


KIND: Kind[BatchTarget] = BatchKind()
