"""features.NAME: polars SQL or a Python hook over datasets and other feature sets.

The declaration is here; the recipe (features_recipe.py, with polars) is imported only when a
feature set is built, so planning never pays for it."""

from __future__ import annotations

from typing import Any

from mlmake.core.kind import NodeDecl, Ref, Result, Task, build_dir, code_files
from mlmake.core.spec import Feature, node_config

SECTION = "features"
KIND = "features"
RECIPE = 1
LIBRARIES = ("polars",)
TABLES = ("features", "datasets")


def declare(project: Any, item: Feature) -> NodeDecl:
    refs = tuple(Ref(n, (SECTION, item.name, "from", i), TABLES) for i, n in enumerate(item.inputs))
    hook = (item.python.rsplit(":", 1)[0],) if item.python else ()
    code = code_files(project, hook, item.deps)
    return NodeDecl(
        f"{SECTION}.{item.name}", KIND, item.span, node_config(item), refs,
        code=code, outputs=(build_dir(SECTION, item.name),), recipe=RECIPE, libraries=LIBRARIES,
    )


def run(task: Task) -> Result:
    from mlmake.kinds.features.recipe import run as recipe

    return recipe(task)
