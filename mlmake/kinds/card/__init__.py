"""cards.NAME: a model card, built as a node after its model. build/cards/NAME/ holds card.md and
card.json, generated from the graph and the lock: the model's description and the card's intended
use and limitations, the data it was trained on (files, hashes, contracts), its features, training
params, metrics and slice metrics with their gaps, its gates and their results, its registry
versions and stages, and its lineage.

What the card tells is its fingerprint: the card's own text, the model's description and gates
(which are not the model's fingerprint) and the model's registry (each version's fingerprint, the
version each stage holds: git tags, read once per process) in its configuration, every upstream fingerprint
(lineage), so it rebuilds exactly when one of them changes. The recipe (recipe.py) only reads JSON
and writes text."""

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
    Ref,
    Result,
    Task,
    build_dir,
    dep_files,
    load_fragment,
)
from mlmake.core.spec import INTERNAL, NOT_FINGERPRINTED, Project, deps_of, node_config

SECTION = "cards"
APPROVALS_FILE = "approvals.yaml"  # mlmake.state.approvals writes it (kinds sit above state: named here)
MODELS = ("models",)


@dataclass(frozen=True, slots=True)
class Card:
    name: str = field(metadata=INTERNAL)
    span: Span | None = field(metadata=INTERNAL, compare=False)
    model: str
    intended_use: str = ""
    limitations: str = ""
    description: str = field(default="", metadata=NOT_FINGERPRINTED)
    deps: tuple[str, ...] = field(default=(), metadata=NOT_FINGERPRINTED)  # files no analysis sees; hashed as code


class CardKind:
    name = "card"
    section = SECTION
    default = True
    word = "model card"
    recipe = 1
    libraries: tuple[str, ...] = ()
    item_type = Card

    def item_schema(self) -> dict[str, Any]:
        return load_fragment(__file__)

    def parse(self, name: str, span: Span | None, data: Mapping[str, Any]) -> Card:
        return Card(name, span, str(data["model"]), str(data.get("intended_use", "")),
                    str(data.get("limitations", "")), str(data.get("description", "")), deps_of(data))

    def paths(self, item: ItemCheck) -> ItemPaths:
        return ItemPaths(inputs=dep_files(item))

    def check(self, item: ItemCheck) -> list[Diagnostic]:
        return []

    def declare(self, project: Project, item: Card) -> NodeDecl:
        ref = Ref(item.model, (SECTION, item.name, "model"), MODELS)
        model = project.section("models").get(item.model)
        told = {"model_description": str(getattr(model, "description", "") or ""),
                "model_gates": {str(m): str(r) for m, r in (getattr(model, "gates", None) or {}).items()},
                "model_registry": _registry(project, item.model)}
        return NodeDecl(
            f"{SECTION}.{item.name}", self.name, item.span, {**node_config(item), **told}, (ref,),
            inputs=(APPROVALS_FILE,),  # the approvals of the model's deploy targets (absent: none)
            code=item.deps, outputs=(build_dir(SECTION, item.name),), recipe=self.recipe,
            libraries=self.libraries, lineage=True,  # the card shows every upstream fingerprint
        )

    def run(self, task: Task) -> Result:
        from mlmake.kinds.card.recipe import run as recipe

        return recipe(task)


def _registry(project: Project, model: str) -> dict[str, Any]:
    """The model's registered versions (version → the fingerprint it recorded) and the version each
    stage holds now; empty outside git or before the first `mlmake register`."""
    from mlmake.registry import read_registry

    registry = read_registry(project.root)
    versions = {v.version: v.record.fingerprint if v.record else "" for v in registry.versions_of(model)}
    stages = {stage: event.version or "" for stage, event in registry.stages(model).items()}
    return {"versions": versions, "stages": stages} if versions or stages else {}


KIND: Kind[Card] = CardKind()
