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
from mlmake.kinds.dataset.item import Check, parse_check
from mlmake.kinds.features.sqlcolumns import sql_use

TABLES = ("features", "datasets")  # a bare name is looked up in these sections, in order


@dataclass(frozen=True, slots=True)
class Feature:
    name: str = field(metadata=INTERNAL)
    span: Span | None = field(metadata=INTERNAL, compare=False)
    inputs: tuple[str, ...] = field(metadata={"key": "from"})
    key: tuple[str, ...] = ()
    as_of: tuple[str, ...] | None = None  # tables joined to the first one as of its event time (ml/pointintime.py)
    checks: tuple[Check, ...] | None = None  # unset: out of the config, so older fingerprints hold
    sql: str | None = None
    python: str | None = None
    description: str = field(default="", metadata=NOT_FINGERPRINTED)
    deps: tuple[str, ...] = field(default=(), metadata=NOT_FINGERPRINTED)  # files no analysis sees; hashed as code
    partitions: int | None = None  # unset: one data.parquet, and out of the fingerprint (ml/parts.py)


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
        as_of = names(d["as_of"]) if "as_of" in d else None
        checks = tuple(parse_check(c) for c in d["checks"]) if "checks" in d else None
        return Feature(name, span, names(d["from"]), names(d.get("key")), as_of, checks, d.get("sql"),
                       d.get("python"), d.get("description", ""), deps_of(d), d.get("partitions"))

    def paths(self, item: ItemCheck) -> ItemPaths:
        hook = item.data.get("python")
        if not isinstance(hook, str):
            return ItemPaths(inputs=dep_files(item))
        file = hook.rsplit(":", 1)[0]
        return ItemPaths(inputs=(PathUse(("python",), file),) + dep_files(item),
                         sources=(PathUse(("python",), file, what="the hook of {address}"),))

    def check(self, item: ItemCheck) -> list[Diagnostic]:
        if item.data.get("partitions") is not None and not item.data.get("key"):
            return [item.problem(("partitions",), "a feature set in parts needs a `key:`: its rows are "
                                 "assigned to parts by it", "declare the entity key, e.g. key: customer_id")]
        return []

    def declare(self, project: Project, item: Feature) -> NodeDecl:
        use = sql_use(item.sql) if item.sql else None  # a python hook cannot be analysed: whole tables
        # the as-of join reads the timestamps, which the sql need not name: whole tables
        whole = set(item.as_of or ()) | ({item.inputs[0]} if item.as_of else set())
        refs = tuple(Ref(n, (self.section, item.name, "from", i), TABLES, None if n in whole else use)
                     for i, n in enumerate(item.inputs))
        config = node_config(item)
        if item.as_of:
            config["as_of_times"] = as_of_times(project, item)
        hook = (item.python.rsplit(":", 1)[0],) if item.python else ()
        return NodeDecl(
            f"{self.section}.{item.name}", self.name, item.span, config, refs,
            code=code_files(project, hook, item.deps), outputs=(build_dir(self.section, item.name),),
            recipe=self.recipe, libraries=self.libraries,
        )

    def run(self, task: Task) -> Result:
        from mlmake.kinds.features.recipe import run as recipe

        return recipe(task)


def as_of_times(project: Project, item: Feature) -> dict[str, str | None]:
    """The timestamp column of the first table and of each as-of table (None: not declared)."""
    datasets = project.section("datasets")
    tables = [item.inputs[0], *(item.as_of or ())]
    return {t: getattr(datasets.get(t), "timestamp", None) for t in tables}


KIND: Kind[Feature] = FeaturesKind()
