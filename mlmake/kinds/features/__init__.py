"""features.NAME: polars SQL or a Python hook over datasets and other feature sets.

The declaration is here; the recipe (recipe.py, with polars) is imported only when a feature set
is built, so planning never pays for it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlmake.core.errors import Diagnostic, Span
from mlmake.core.kind import (
    ItemCheck,
    ItemPaths,
    Kind,
    NodeDecl,
    PathUse,
    Ref,
    Result,
    Task,
    build_dir,
    code_files,
    dep_files,
    load_fragment,
)
from mlmake.core.spec import INTERNAL, NOT_FINGERPRINTED, Project, deps_of, names, node_config
from mlmake.kinds.features.sqlcolumns import sql_use

TABLES = ("features", "datasets")  # a bare name is looked up in these sections, in order


@dataclass(frozen=True, slots=True)
class Feature:
    name: str = field(metadata=INTERNAL)
    span: Span | None = field(metadata=INTERNAL, compare=False)
    inputs: tuple[str, ...] = field(metadata={"key": "from"})
    key: tuple[str, ...] = ()
    sql: str | None = None
    python: str | None = None
    description: str = field(default="", metadata=NOT_FINGERPRINTED)
    deps: tuple[str, ...] = field(default=(), metadata=NOT_FINGERPRINTED)  # files no analysis sees; hashed as code


class FeaturesKind:
    name = "features"
    section = "features"
    default = True
    word = "feature set"
    recipe = 1
    libraries: tuple[str, ...] = ("polars",)
    item_type = Feature

    def item_schema(self) -> dict[str, Any]:
        return load_fragment(__file__)

    def parse(self, name: str, span: Span | None, d: Mapping[str, Any]) -> Feature:
        return Feature(name, span, names(d["from"]), names(d.get("key")), d.get("sql"), d.get("python"),
                       d.get("description", ""), deps_of(d))

    def paths(self, item: ItemCheck) -> ItemPaths:
        hook = item.data.get("python")
        if not isinstance(hook, str):
            return ItemPaths(inputs=dep_files(item))
        file = hook.rsplit(":", 1)[0]
        return ItemPaths(inputs=(PathUse(("python",), file),) + dep_files(item),
                         sources=(PathUse(("python",), file, what="the hook of {address}"),))

    def check(self, item: ItemCheck) -> list[Diagnostic]:
        return []

    def declare(self, project: Project, item: Feature) -> NodeDecl:
        use = sql_use(item.sql) if item.sql else None  # a python hook cannot be analysed: whole tables
        refs = tuple(Ref(n, (self.section, item.name, "from", i), TABLES, use) for i, n in enumerate(item.inputs))
        hook = (item.python.rsplit(":", 1)[0],) if item.python else ()
        return NodeDecl(
            f"{self.section}.{item.name}", self.name, item.span, node_config(item), refs,
            code=code_files(project, hook, item.deps), outputs=(build_dir(self.section, item.name),),
            recipe=self.recipe, libraries=self.libraries,
        )

    def run(self, task: Task) -> Result:
        from mlmake.kinds.features.recipe import run as recipe

        return recipe(task)


KIND: Kind[Feature] = FeaturesKind()
