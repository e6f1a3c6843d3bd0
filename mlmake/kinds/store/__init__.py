"""deploy.NAME with kind: store — an online store as its own node. build/deploy/NAME/ holds a
keyed feature set's rows materialized over the datasets the store names (`sources:`), and the
lookup tables raw rows need (ml/storefolder.py). An http or docker target that names it
(`store: NAME`) serves those rows and tables instead of the ones its model was trained on.

Its fingerprint is the feature set's definition (its sql, key and tables) and its sources' data,
never the model: when only the serving data moves, the store and the targets that copy it
rebuild, and the model does not retrain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlmake.core.errors import Diagnostic, Span, did_you_mean
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
from mlmake.core.spec import INTERNAL, NOT_FINGERPRINTED, Project, deps_of

SECTION = "deploy"
DATASETS = ("datasets",)


@dataclass(frozen=True, slots=True)
class Store:
    """A feature set materialized for serving, over the datasets `sources` names."""

    name: str = field(metadata=INTERNAL)
    span: Span | None = field(metadata=INTERNAL, compare=False)
    features: str
    sources: dict[str, str] = field(default_factory=dict)
    description: str = field(default="", metadata=NOT_FINGERPRINTED)
    deps: tuple[str, ...] = field(default=(), metadata=NOT_FINGERPRINTED)  # files no analysis sees; hashed as code


class StoreKind:
    name = "store"
    section = SECTION
    default = False
    word = "online store"
    recipe = 2  # 2: request.json's "compiled" as deploy's recipe 5 checks it (kinds/target.py)
    libraries: tuple[str, ...] = ("polars", "pyarrow")
    item_type = Store

    def item_schema(self) -> dict[str, Any]:
        return load_fragment(__file__)

    def parse(self, name: str, span: Span | None, data: Mapping[str, Any]) -> Store:
        sources = {str(k): str(v) for k, v in (data.get("sources") or {}).items()}
        return Store(name, span, str(data["features"]), sources, str(data.get("description", "")), deps_of(data))

    def paths(self, item: ItemCheck) -> ItemPaths:
        return ItemPaths(inputs=dep_files(item))

    def check(self, item: ItemCheck) -> list[Diagnostic]:
        return check_store(item)

    def declare(self, project: Project, item: Store) -> NodeDecl:
        key = (SECTION, item.name)
        feature = project.section("features").get(item.features)
        if feature is None:  # the graph reports the unknown feature set
            return NodeDecl(f"{SECTION}.{item.name}", self.name, item.span, {"kind": self.name},
                            (Ref(item.features, (*key, "features"), ("features",)),))
        sources = {str(t): item.sources.get(str(t), str(t)) for t in feature.inputs}
        refs = tuple(Ref(d, (*key, "sources", t) if t in item.sources else (*key, "features"), DATASETS)
                     for t, d in sources.items())
        config = {"kind": self.name, "features": definition(feature), "sources": sources}
        return NodeDecl(f"{SECTION}.{item.name}", self.name, item.span, config, refs, code=item.deps,
                        outputs=(build_dir(SECTION, item.name),), recipe=self.recipe, libraries=self.libraries)

    def run(self, task: Task) -> Result:
        from mlmake.kinds.store.recipe import run as recipe

        return recipe(task)


def definition(feature: Any) -> dict[str, Any]:
    """What of a feature set a store computes: its name, tables, key, sql and the columns it reads
    (the shape ml/requestbundle.py reads as a task's "features")."""
    from mlmake.kinds.features.sqlcolumns import read_names

    reads = read_names(feature.sql) if feature.sql else None
    return {"name": feature.name, "from": list(feature.inputs), "key": list(feature.key), "sql": feature.sql,
            "reads": sorted(reads) if reads is not None else None}


def check_store(item: ItemCheck) -> list[Diagnostic]:
    """A store's feature set must run per request (sql over datasets, with a key), and its
    `sources` may only rename tables that feature set reads."""
    data = item.doc.data if isinstance(item.doc.data, dict) else {}
    name = str(item.data.get("features"))
    feature = (data.get("features") or {}).get(name)
    if not isinstance(feature, dict):
        return []  # an unknown feature set: the graph says so, with a did-you-mean
    tables = _names(feature.get("from"))
    sources = item.data.get("sources") or {}
    kept = [t for t in tables if t not in sources]  # read as the feature set reads them; the graph checks the rest
    why, hint = cannot_serve(name, feature, kept, data.get("datasets") or {}, data.get("features") or {})
    found = [item.problem(("features",), why, hint)] if why else []
    for table in sources:
        if table not in tables:
            hint = did_you_mean(str(table), tables)
            found.append(item.problem(("sources", table), f"feature set {name} reads no table '{table}'"
                                      + (f" ({hint})" if hint else ""), f"it reads {', '.join(tables)}"))
    return found


def check_served_store(item: ItemCheck) -> list[Diagnostic]:
    """An http or docker target's `store:` names a store of its model's feature set."""
    store = item.data.get("store")
    data = item.doc.data if isinstance(item.doc.data, dict) else {}
    found = (data.get(SECTION) or {}).get(store) if store else None
    if not isinstance(found, dict):
        return []  # none, or an unknown node: the graph says so
    if found.get("kind") != "store":
        return [item.problem(("store",), f"deploy target {store} is a {found.get('kind')} target, not a store",
                             "name a deploy target of kind: store")]
    model, at, selector = str(item.data.get("model", "")).partition("@")
    if at:
        return [item.problem(("store",), f"store {store} computes the workspace's {found.get('features')}, but "
                             f"{model}@{selector} may be a version trained on another definition of it",
                             f"serve the workspace's model (model: {model}) with the store, or drop store:")]
    trained = ((data.get("models") or {}).get(model) or {}).get("features")
    if trained is not None and trained != found.get("features"):
        return [item.problem(("store",), f"store {store} holds feature set {found.get('features')}, but model "
                             f"{model} is trained on {trained}", f"a store of {trained} serves {model}")]
    return []


def cannot_serve(name: str, feature: Mapping[str, Any], tables: list[str],
                 datasets: Mapping[str, Any], features: Mapping[str, Any]) -> tuple[str, str]:
    """Why a feature set cannot be a store's, and what to do ('' when it can): what the file shows.
    A store computes its rows and raw rows' features by the feature set's own sql, by key."""
    if not feature.get("sql"):
        return (f"feature set {name} is a python hook; a store runs a feature set's sql (hooks are not carried)",
                f"write {name} in sql, or serve it without a store")
    if not _names(feature.get("key")):
        return (f"feature set {name} declares no key, so a store cannot look its rows up",
                f"declare the entity key of {name} (key: COLUMN)")
    if feature.get("as_of"):
        return (f"feature set {name} joins as_of an event time, which a request cannot replay",
                f"serve {name} without a store")
    # a bare name is a feature set before a dataset (ml/tables.py TABLE_SECTIONS), as the feature set reads it
    other = next((t for t in tables if t not in datasets or t in features), None)
    if other is not None:
        what = "not a dataset" if other not in datasets else "the feature set of that name, read before the dataset"
        return (f"feature set {name} reads {other}, which is {what}; a store computes from datasets only",
                f"name a dataset for it in sources:, or serve {name} without a store")
    return "", ""


def _names(value: Any) -> list[str]:
    """A `from:` or `key:` as a list (the file allows one name or a list)."""
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


KIND: Kind[Store] = StoreKind()
