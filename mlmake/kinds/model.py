"""models.NAME: an xgboost model trained, evaluated and gated on a feature set.

The declaration is here; the recipe (model_recipe.py, with polars and xgboost) is imported
only when a model trains, so planning never pays for it."""

from __future__ import annotations

from typing import Any

from mlmake.kinds.base import NodeDecl, Ref, Result, Task, build_dir
from mlmake.spec import Model, node_config

SECTION = "models"
KIND = "model"
RECIPE = 1
LIBRARIES = ("polars", "xgboost")


def declare(project: Any, item: Model) -> NodeDecl:
    ref = Ref(item.features, (SECTION, item.name, "features"), ("features", "datasets"))
    return NodeDecl(
        f"{SECTION}.{item.name}", KIND, item.span, node_config(item), (ref,),
        code=item.deps, outputs=(build_dir(SECTION, item.name),), recipe=RECIPE, libraries=LIBRARIES,
    )


def run(task: Task) -> Result:
    from mlmake.kinds.model_recipe import run as recipe

    return recipe(task)
