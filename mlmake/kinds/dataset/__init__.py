"""datasets.NAME: a raw table read, checked against its contract and snapshotted.

The declaration is here; the recipe (dataset_recipe.py, with polars) is imported only when a
dataset is built, so planning never pays for it."""

from __future__ import annotations

from typing import Any

from mlmake.core.kind import NodeDecl, Result, Task, build_dir
from mlmake.core.spec import Dataset, node_config

SECTION = "datasets"
KIND = "dataset"
RECIPE = 2  # 2: NaN and ±inf in a declared float column are written as missing values
LIBRARIES = ("polars",)


def declare(project: Any, item: Dataset) -> NodeDecl:
    return NodeDecl(
        f"{SECTION}.{item.name}", KIND, item.span, node_config(item),
        inputs=(item.path,), code=item.deps, outputs=(build_dir(SECTION, item.name),),
        recipe=RECIPE, libraries=LIBRARIES,
    )


def run(task: Task) -> Result:
    from mlmake.kinds.dataset.recipe import run as recipe

    return recipe(task)
