"""datasets.NAME: a raw table read, checked against its contract and snapshotted.

The declaration is here; the recipe (recipe.py, with polars) is imported only when a dataset is
built, so planning never pays for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlmake.core.errors import Diagnostic, Span
from mlmake.core.kind import (
    ItemCheck,
    ItemPaths,
    Kind,
    NodeDecl,
    PathUse,
    Result,
    Task,
    build_dir,
    dep_files,
    load_fragment,
)
from mlmake.core.spec import Project, node_config
from mlmake.kinds.dataset import check, item
from mlmake.kinds.dataset.item import Dataset


class DatasetKind:
    name = "dataset"
    section = "datasets"
    default = True
    word = "dataset"
    recipe = 2  # 2: NaN and ±inf in a declared float column are written as missing values
    libraries: tuple[str, ...] = ("polars",)
    item_type = Dataset

    def item_schema(self) -> dict[str, Any]:
        return load_fragment(__file__)

    def parse(self, name: str, span: Span | None, data: Mapping[str, Any]) -> Dataset:
        return item.parse(name, span, data)

    def paths(self, item: ItemCheck) -> ItemPaths:
        data = item.data
        path = (PathUse(("path",), data["path"], bool(data.get("allow_outside"))),) \
            if isinstance(data.get("path"), str) else ()
        return ItemPaths(inputs=path + dep_files(item))

    def check(self, item: ItemCheck) -> list[Diagnostic]:
        return check.check(item)

    def declare(self, project: Project, item: Dataset) -> NodeDecl:
        return NodeDecl(
            f"{self.section}.{item.name}", self.name, item.span, node_config(item),
            inputs=(item.path,), code=item.deps, outputs=(build_dir(self.section, item.name),),
            recipe=self.recipe, libraries=self.libraries,
        )

    def run(self, task: Task) -> Result:
        from mlmake.kinds.dataset.recipe import run as recipe

        return recipe(task)


KIND: Kind[Dataset] = DatasetKind()
