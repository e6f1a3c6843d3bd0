"""What the deploy kinds (http, batch, docker) share: the item, and the references a target
declares. A target depends on its model and, when it reads one, on a table: the batch input, or
the keyed feature set an http/docker bundle copies into its online store. Its outputs record its
name and every upstream fingerprint (lineage), so those are part of its fingerprint.
A target following the registry (`model: churn_xgb@production`) does not depend on the model
built here: see mlmake.kinds.follow."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mlmake.core.errors import Diagnostic, Span
from mlmake.core.kind import ItemCheck, ItemPaths, NodeDecl, Ref, Task, build_dir, dep_files, load_fragment
from mlmake.core.spec import INTERNAL, NOT_FINGERPRINTED, Project, deps_of, node_config
from mlmake.kinds.follow import followed_version, split_model

SECTION = "deploy"
RECIPE = 5  # 2: the manifest's lineage is a fingerprinted input; no gate verdicts in it; 3: raw rows (request.json);
# 4: request.json says whether the SQL is compiled for one row ("compiled"); 5: that check compares exact types
# and the sign of zero, refuses Int32 literal arithmetic and nested comments, joins no null key (rowplan.py)
LIBRARIES = ("polars", "xgboost", "numpy", "pyarrow")  # the versions its manifest records
TABLES = ("features", "datasets")
MODELS = ("models",)


@dataclass(frozen=True, slots=True)
class Approval:
    """How many people must approve the target's model before a build delivers it."""

    required: int


@dataclass(frozen=True, slots=True)
class Target:
    """An http or docker target: a model to serve."""

    name: str = field(metadata=INTERNAL)
    span: Span | None = field(metadata=INTERNAL, compare=False)
    model: str
    description: str = field(default="", metadata=NOT_FINGERPRINTED)
    deps: tuple[str, ...] = field(default=(), metadata=NOT_FINGERPRINTED)  # files no analysis sees; hashed as code
    approval: Approval | None = field(default=None, metadata=NOT_FINGERPRINTED)  # judged by build, like gates


@dataclass(frozen=True, slots=True)
class ServedTarget(Target):
    """An http or docker target, and the store node (kinds/store/) it serves instead of its model's rows."""

    store: str | None = None


@dataclass(frozen=True, slots=True)
class BatchTarget(Target):
    """A batch target: a model, the table it scores and the file it writes."""

    input: str | None = None
    output: str | None = None


def parse(name: str, span: Span | None, d: Mapping[str, Any]) -> ServedTarget:
    return ServedTarget(name, span, d["model"], d.get("description", ""), deps_of(d), _approvals(d), d.get("store"))


def parse_batch(name: str, span: Span | None, d: Mapping[str, Any]) -> BatchTarget:
    return BatchTarget(name, span, d["model"], d.get("description", ""), deps_of(d), _approvals(d), d.get("input"),
                       d.get("output"))


def _approvals(d: Mapping[str, Any]) -> Approval | None:
    return Approval(int(d["approval"]["required"])) if d.get("approval") else None


def declare(kind: str, project: Project, item: Target, table: str | None) -> NodeDecl:
    """A target's node: its model, the table it reads (if any), its folder and its output."""
    name, selector = split_model(item.model)
    refs = [] if selector else [Ref(item.model, (SECTION, item.name, "model"), MODELS)]
    config = {"kind": kind, **node_config(item)}
    if selector:
        config["registry"] = followed_version(project.root, name, selector)
    source = item.input if isinstance(item, BatchTarget) else None
    output = item.output if isinstance(item, BatchTarget) else None
    if source:
        refs.append(Ref(source, (SECTION, item.name, "input"), TABLES))
    elif table:
        refs.append(Ref(table, (SECTION, item.name, "model"), TABLES))
    outputs = (build_dir(SECTION, item.name),) + ((output,) if output else ())
    return NodeDecl(
        f"{SECTION}.{item.name}", kind, item.span, config, tuple(refs),
        code=item.deps, outputs=outputs, recipe=RECIPE, libraries=LIBRARIES,
        lineage=True,  # the manifest records the target's name and every upstream fingerprint
        approvals=item.approval.required if item.approval else 0,
    )


def model_table(project: Project, item: Target) -> str | None:
    """The table its model trains on (None when the model is unknown: the graph reports that)."""
    model = project.section("models").get(split_model(item.model)[0])
    return str(model.features) if model is not None else None


def keyed_table(project: Project, item: Target) -> str | None:
    """Its model's feature set when that set has a key: what a bundle copies as its online store."""
    table = model_table(project, item)
    feature = project.section("features").get(table) if table else None
    return table if feature is not None and feature.key else None


def task_folder(task: Task) -> str:
    """The target's own folder (its first declared output)."""
    return next(iter(task.staging))


def store_note(manifest: dict[str, Any]) -> str:
    store = manifest.get("store")
    if not store:
        return ""
    node = f" from {store['source']}" if str(store.get("source")).startswith(f"{SECTION}.") else ""
    return f"; online store of {store['rows']} rows keyed by {', '.join(store['key'])}{node}"


def raw_note(manifest: dict[str, Any]) -> str:
    """Whether the bundle computes features from raw rows; said by the build, not found by a client."""
    request = manifest.get("request") or {}
    if not request.get("runs"):
        return f"not accepted: {request.get('why')}"
    fast = request.get("compiled") or {"why": "built by an older mlmake"}
    return "features computed per request" + ("" if fast.get("runs") else
                                              f" by polars' sql (not compiled: {fast.get('why')})")


class ServingKind:
    """What the http and docker kinds share (they differ in `name`, the folder of their schema
    fragment, and `run`): a target that serves its model, and copies its keyed feature set."""

    section = SECTION
    default = False
    word = "deploy target"
    recipe = RECIPE
    libraries: tuple[str, ...] = LIBRARIES
    item_type = ServedTarget
    name: str
    fragment: str  # the kind's module file: its item.schema.json lies beside it

    def item_schema(self) -> dict[str, Any]:
        return load_fragment(self.fragment)

    def parse(self, name: str, span: Span | None, data: Mapping[str, Any]) -> ServedTarget:
        return parse(name, span, data)

    def paths(self, item: ItemCheck) -> ItemPaths:
        return ItemPaths(inputs=dep_files(item))

    def check(self, item: ItemCheck) -> list[Diagnostic]:
        from mlmake.kinds.store import check_served_store

        return check_served_store(item)

    def declare(self, project: Project, item: ServedTarget) -> NodeDecl:
        if item.store:  # the store node's rows and lookup tables, not the model's feature set
            decl = declare(self.name, project, item, None)
            ref = Ref(item.store, (SECTION, item.name, "store"), (SECTION,))
            return replace(decl, refs=decl.refs + (ref,))
        decl = declare(self.name, project, item, keyed_table(project, item))
        return request_features(project, item, decl)


def request_features(project: Project, item: Target, decl: NodeDecl) -> NodeDecl:
    """A serving target also reads its model's feature set and the datasets that set reads, so
    its bundle can compute features from raw rows (ml/requestbundle.py)."""
    from mlmake.kinds.features.sqlcolumns import read_names

    table = model_table(project, item)
    feature = project.section("features").get(table) if table else None
    if feature is None or split_model(item.model)[1]:
        return decl
    reads = read_names(feature.sql) if feature.sql else None
    config = {**decl.config, "features": {
        "name": feature.name, "from": list(feature.inputs), "key": list(feature.key), "sql": feature.sql,
        "reads": sorted(reads) if reads is not None else None}}
    known = {r.name for r in decl.refs}
    refs = [Ref(n, (SECTION, item.name, "model"), ("datasets",)) for n in feature.inputs
            if n not in known and n in project.section("datasets")]
    return replace(decl, config=config, refs=decl.refs + tuple(refs))
