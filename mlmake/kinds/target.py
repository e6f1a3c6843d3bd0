"""What the deploy kinds (http, batch, docker) share: the item, and the references a target
declares. A target depends on its model and, when it reads one, on a table: the batch input, or
the keyed feature set an http/docker bundle copies into its online store. Its outputs record its
name and every upstream fingerprint (lineage), so those are part of its fingerprint.

A target may follow the registry (`model: churn_xgb@production`, or a pinned `@v1.2.0`): it then
does not depend on the model built in the workspace; its configuration holds the version that
holds the stage (its name, fingerprint and outputs, from the version's git tag), so a promotion
is what rebuilds it, and its recipe reads the version's outputs from the folder the build
brought them back into (mlmake.remote.versions)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlmake.core.errors import Diagnostic, NodeError, Span
from mlmake.core.kind import ItemCheck, ItemPaths, NodeDecl, Ref, Task, build_dir, dep_files, load_fragment
from mlmake.core.spec import INTERNAL, NOT_FINGERPRINTED, Project, deps_of, node_config

SECTION = "deploy"
RECIPE = 2  # 2: the manifest's lineage is a fingerprinted input; no gate verdicts in it
LIBRARIES = ("polars", "xgboost", "numpy", "pyarrow")  # the versions its manifest records
TABLES = ("features", "datasets")
MODELS = ("models",)


@dataclass(frozen=True, slots=True)
class Target:
    """An http or docker target: a model to serve."""

    name: str = field(metadata=INTERNAL)
    span: Span | None = field(metadata=INTERNAL, compare=False)
    model: str
    description: str = field(default="", metadata=NOT_FINGERPRINTED)
    deps: tuple[str, ...] = field(default=(), metadata=NOT_FINGERPRINTED)  # files no analysis sees; hashed as code


@dataclass(frozen=True, slots=True)
class BatchTarget(Target):
    """A batch target: a model, the table it scores and the file it writes."""

    input: str | None = None
    output: str | None = None


def parse(name: str, span: Span | None, d: Mapping[str, Any]) -> Target:
    return Target(name, span, d["model"], d.get("description", ""), deps_of(d))


def parse_batch(name: str, span: Span | None, d: Mapping[str, Any]) -> BatchTarget:
    return BatchTarget(name, span, d["model"], d.get("description", ""), deps_of(d), d.get("input"), d.get("output"))


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
    return f"; online store of {store['rows']} rows keyed by {', '.join(store['key'])}" if store else ""


class ServingKind:
    """What the http and docker kinds share (they differ in `name`, the folder of their schema
    fragment, and `run`): a target that serves its model, and copies its keyed feature set."""

    section = SECTION
    default = False
    word = "deploy target"
    recipe = RECIPE
    libraries: tuple[str, ...] = LIBRARIES
    item_type = Target
    name: str
    fragment: str  # the kind's module file: its item.schema.json lies beside it

    def item_schema(self) -> dict[str, Any]:
        return load_fragment(self.fragment)

    def parse(self, name: str, span: Span | None, data: Mapping[str, Any]) -> Target:
        return parse(name, span, data)

    def paths(self, item: ItemCheck) -> ItemPaths:
        return ItemPaths(inputs=dep_files(item))

    def check(self, item: ItemCheck) -> list[Diagnostic]:
        return []

    def declare(self, project: Project, item: Target) -> NodeDecl:
        return declare(self.name, project, item, keyed_table(project, item))


# --- following the registry: `model: NAME@STAGE` or `NAME@vX.Y.Z` ----------------------


def split_model(model: str) -> tuple[str, str | None]:
    """`churn_xgb@production` → ('churn_xgb', 'production'); a plain name has no selector."""
    name, at, selector = model.partition("@")
    return name, selector if at else None


def _resolve(root: Path, name: str, selector: str) -> tuple[Any, str]:
    """The registered version a selector names, or None with why."""
    from mlmake.registry import read_registry

    registry = read_registry(root)
    if registry.repo is None:
        return None, f"{root} is not in a git repository: versions and stages are git tags"
    if selector.startswith("v") and selector[1:2].isdigit():
        found = registry.find(name, selector)
        known = ", ".join(v.version for v in registry.versions_of(name)) or "none"
        return found, f"{name} has no registered version {selector} (registered: {known})"
    found = registry.stage_version(name, selector)
    stages = ", ".join(registry.known_stages(name)) or "none"
    return found, f"no version of {name} holds the stage {selector!r} (stages used: {stages})"


def follow_problems(project: Project, nodes: Mapping[str, NodeDecl], addresses: Iterable[str]) -> list[Diagnostic]:
    """Located errors for the targets among `addresses` that follow a version the registry does
    not have (`plan` and `build` refuse them; the rest of the project still plans and builds)."""
    found = []
    for address in addresses:
        registry = nodes[address].config.get("registry") if address in nodes else None
        if not registry or not registry.get("problem"):
            continue
        key = (*address.split(".", 1), "model")
        if project.doc is not None:
            found.append(project.doc.diagnostic(key, registry["problem"], registry["hint"]))
        else:
            found.append(Diagnostic(None, ".".join(key), registry["problem"], registry["hint"]))
    return found


def followed_version(root: Path, name: str, selector: str) -> dict[str, Any]:
    """What a target following the registry fingerprints of its version."""
    from mlmake.registry import version_folder

    found, why = _resolve(root, name, selector)
    pinned = selector.startswith("v") and selector[1:2].isdigit()
    if found is None:
        hint = (f"see `mlmake registry {name}`" if pinned
                else f"promote one: mlmake promote {name} VERSION --to {selector}")
        return {"stage": None if pinned else selector, "version": None, "problem": why, "hint": hint}
    if found.record is None:
        return {"stage": None if pinned else selector, "version": found.version, "hint": f"mlmake register {name}",
                "problem": f"{name} {found.version} was not registered by mlmake: its tag {found.tag} records no build"}
    record = found.record
    outputs = {p: {"hash": o.get("hash"), "md5": o.get("md5")} for p, o in sorted(record.outputs.items())}
    first = next(iter(record.outputs), "")
    return {"stage": None if pinned else selector, "version": found.version, "fingerprint": record.fingerprint,
            "outputs": outputs, "folder": version_folder(record.fingerprint, first)}


def followed(task: Task) -> Task:
    """The task with its model read from the version's folder instead of the workspace."""
    registry = task.config.get("registry")
    if not registry:
        return task
    name = split_model(str(task.config["model"]))[0]
    if registry.get("problem"):  # plan and build refuse it first
        raise NodeError(str(registry["problem"]))
    if not os.path.isdir(os.path.join(task.root, str(registry["folder"]))):
        raise NodeError(f"{name} {registry['version']} (fingerprint {str(registry['fingerprint'])[:8]}) could not be "
                        "brought back (the warning above says why)")
    return replace(task, config={**task.config, "model": name},
                   upstream={**task.upstream, f"models.{name}": [str(registry["folder"])]})
