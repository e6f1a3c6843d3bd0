"""datasets.NAME: read a raw table, check its contract, write a parquet snapshot."""

from __future__ import annotations

from typing import Any

from mlmake.kinds.base import TABLE_FILE, NodeDecl, Result, Task, build_dir
from mlmake.spec import Dataset, node_config

SECTION = "datasets"
KIND = "dataset"
RECIPE = 1
LIBRARIES = ("polars",)


def declare(project: Any, item: Dataset) -> NodeDecl:
    return NodeDecl(
        f"{SECTION}.{item.name}", KIND, item.span, node_config(item),
        inputs=(item.path,), outputs=(build_dir(SECTION, item.name),),
        recipe=RECIPE, libraries=LIBRARIES,
    )


def run(task: Task) -> Result:
    raise NotImplementedError(TABLE_FILE)
