"""models.NAME: an xgboost model trained, evaluated and gated on a feature set.

The declaration is here; the recipe (recipe.py, with polars and xgboost) is imported only when a
model trains, so planning never pays for it."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from mlmake.core.columns import ColumnUse
from mlmake.core.errors import Diagnostic, Span
from mlmake.core.kind import (
    ItemCheck,
    ItemPaths,
    Kind,
    NodeDecl,
    Ref,
    Result,
    Task,
    build_dir,
    dep_files,
    load_fragment,
)
from mlmake.core.spec import Project, node_config
from mlmake.kinds.model import check, item
from mlmake.kinds.model.item import Model

TABLES = ("features", "datasets")  # a model trains on a feature set, or directly on a dataset


class ModelKind:
    name = "model"
    section = "models"
    default = True
    word = "model"
    # 2: metrics.json no longer holds gate verdicts (gates are judged by the build, not fingerprinted)
    # 3: curves.json beside metrics.json (the points `mlmake report` draws)
    # 4: the metrics recorded in the lock hold the slice metrics, which fairness gates judge
    recipe = 4
    libraries: tuple[str, ...] = ("polars", "xgboost")
    item_type = Model

    def item_schema(self) -> dict[str, Any]:
        return load_fragment(__file__)

    def parse(self, name: str, span: Span | None, data: Mapping[str, Any]) -> Model:
        return item.parse(name, span, data)

    def paths(self, item: ItemCheck) -> ItemPaths:
        return ItemPaths(inputs=dep_files(item))

    def check(self, item: ItemCheck) -> list[Diagnostic]:
        return check.check(item, _typed_params())

    def declare(self, project: Project, item: Model) -> NodeDecl:
        ref = Ref(item.features, (self.section, item.name, "features"), TABLES, _column_use(project, item))
        # gates judge the metrics a model produced; they are not an input of its training
        config = {k: v for k, v in node_config(item).items() if k != "gates"}
        return NodeDecl(
            f"{self.section}.{item.name}", self.name, item.span, config, (ref,),
            code=item.deps, outputs=(build_dir(self.section, item.name),), recipe=self.recipe,
            libraries=self.libraries, gates={str(m): str(r) for m, r in item.gates.items()},
        )

    def run(self, task: Task) -> Result:
        from mlmake.kinds.model.recipe import run as recipe

        return recipe(task)


def _column_use(project: Project, item: Model) -> ColumnUse | None:
    """A model with `drop:` on a keyed feature set reads every column but those it drops: its
    target, slices and the key (its rows' order) are read even when listed. Its inputs follow
    the table's column order and key, so it reads the layout too. Without a key its rows are
    ordered by every column: it reads the whole table, as a model without `drop:` does."""
    upstream = project.section("features").get(item.features)
    if project.kinds.get(f"features.{item.features}") != "features" or upstream is None:
        return None
    key = set(getattr(upstream, "key", ()) or ())
    drop = set(item.drop) - {item.target, *item.slices, *key}
    return ColumnUse(drop=frozenset(drop), layout=True) if key and drop else None


@cache
def _typed_params() -> frozenset[str]:
    """The xgboost params with a key of their own in the fragment (read once, not per model)."""
    return frozenset(load_fragment(__file__)["$defs"]["xgboost_params"]["properties"])


KIND: Kind[Model] = ModelKind()
