"""deploy.NAME: a serving bundle (http), batch scores (batch) or a container context (docker)."""

from __future__ import annotations

from typing import Any

from mlmake.kinds.base import NodeDecl, Ref, Result, Task, build_dir
from mlmake.spec import Deploy, node_config

SECTION = "deploy"
KIND = "deploy"
RECIPE = 1
LIBRARIES = ("polars", "xgboost")


def declare(project: Any, item: Deploy) -> NodeDecl:
    refs = [Ref(item.model, (SECTION, item.name, "model"), ("models",))]
    if item.input:
        refs.append(Ref(item.input, (SECTION, item.name, "input"), ("features", "datasets")))
    outputs = (build_dir(SECTION, item.name),) + ((item.output,) if item.output else ())
    return NodeDecl(
        f"{SECTION}.{item.name}", KIND, item.span, node_config(item), tuple(refs),
        outputs=outputs, recipe=RECIPE, libraries=LIBRARIES,
    )


def run(task: Task) -> Result:
    raise NotImplementedError
