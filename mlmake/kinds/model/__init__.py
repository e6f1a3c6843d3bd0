"""models.NAME: an xgboost model trained, evaluated and gated on a feature set.

The declaration is here; the recipe (model_recipe.py, with polars and xgboost) is imported
only when a model trains, so planning never pays for it."""

from __future__ import annotations

from typing import Any

from mlmake.core.kind import NodeDecl, Ref, Result, Task, build_dir
from mlmake.core.spec import Model, node_config

SECTION = "models"
KIND = "model"
RECIPE = 2  # 2: metrics.json no longer holds gate verdicts (gates are judged by the build, not fingerprinted)
LIBRARIES = ("polars", "xgboost")


def declare(project: Any, item: Model) -> NodeDecl:
    ref = Ref(item.features, (SECTION, item.name, "features"), ("features", "datasets"))
    # gates judge the metrics a model produced; they are not an input of its training
    config = {k: v for k, v in node_config(item).items() if k != "gates"}
    return NodeDecl(
        f"{SECTION}.{item.name}", KIND, item.span, config, (ref,),
        code=item.deps, outputs=(build_dir(SECTION, item.name),), recipe=RECIPE, libraries=LIBRARIES,
        gates={str(m): str(r) for m, r in item.gates.items()},
    )


def run(task: Task) -> Result:
    from mlmake.kinds.model.recipe import run as recipe

    return recipe(task)
