"""The `sklearn` kind: a scikit-learn estimator trained beside the built-in xgboost model.

    models:
      baseline:
        kind: sklearn
        features: penguin_features
        target: species
        task: multiclass
        estimator: LogisticRegression
        params: {C: 1.0, max_iter: 200}

Everything here is cheap (no scikit-learn, polars or numpy import): `validate`, `plan`
and `schema` load it. Training is in recipe.py, loading a trained model in predictor.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import Diagnostic, Span, did_you_mean
from mlmake.core.kind import ItemCheck, ItemPaths, NodeDecl, Ref, Result, Task, build_dir, dep_files
from mlmake.core.spec import INTERNAL, NOT_FINGERPRINTED, deps_of, node_config
from mlmake.kinds.model import KIND as MODEL
from mlmake.kinds.model.check import check as check_metrics
from mlmake.kinds.model.item import Split
from mlmake_sklearn.estimators import ESTIMATORS, params_schema

if TYPE_CHECKING:
    from mlmake.core.spec import Project
    from mlmake.ml.scoring import Predictor

NAME = "sklearn"
SECTION = "models"
TABLES = ("features", "datasets")  # it trains on a feature set, or directly on a dataset
TASKS = ("binary", "multiclass", "regression")


@dataclass(frozen=True, slots=True)
class SklearnModel:
    """One `kind: sklearn` item of the models section."""

    name: str = field(metadata=INTERNAL)
    span: Span | None = field(metadata=INTERNAL, compare=False)
    features: str
    target: str
    task: str
    estimator: str
    drop: tuple[str, ...] = ()
    split: Split = Split()
    params: dict[str, Any] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()
    gates: dict[str, str] = field(default_factory=dict)
    slices: tuple[str, ...] = ()
    description: str = field(default="", metadata=NOT_FINGERPRINTED)
    deps: tuple[str, ...] = field(default=(), metadata=NOT_FINGERPRINTED)  # files no analysis sees; hashed as code


def item_schema() -> dict[str, Any]:
    """The built-in model's fragment (features, target, task, split, metrics, gates, slices, deps),
    with `estimator` and its `params` in place of xgboost's: the keys both kinds share are
    described, typed and completed the same way."""
    model = MODEL.item_schema()
    shared = {k: v for k, v in model["properties"].items() if k != "params"}
    estimator = {"enum": list(ESTIMATORS), "description": "The scikit-learn estimator: " + "; ".join(
        f"{e.name} ({', '.join(e.tasks)}): {e.description}" for e in ESTIMATORS.values())}
    order = ("features", "target", "task")
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [*order, "estimator"],
        "description": "A scikit-learn model (the mlmake-sklearn plugin) trained on the same feature set, target "
                       "and split as an xgboost model, saved as JSON and served like one.",
        "properties": {**{k: shared[k] for k in order}, "estimator": estimator, "params": params_schema(),
                       **{k: v for k, v in shared.items() if k not in order}},
        "$defs": {"split": model["$defs"]["split"]},  # the same definition as the model's: shared in the schema
    }


class SklearnKind:
    """The Kind protocol of mlmake.core.kind, for `kind: sklearn` items of `models:`."""

    name = NAME
    section = SECTION
    default = False  # the section's default is the built-in xgboost model
    word = "model"
    recipe = 2  # 2: the recorded metrics hold the slice metrics, which fairness gates judge
    libraries: tuple[str, ...] = ("polars", "scikit-learn", "scipy", "numpy")
    item_type = SklearnModel

    def item_schema(self) -> dict[str, Any]:
        return item_schema()

    def parse(self, name: str, span: Span | None, data: Mapping[str, Any]) -> SklearnModel:
        return SklearnModel(
            name, span, str(data["features"]), str(data["target"]), str(data["task"]), str(data["estimator"]),
            tuple(data.get("drop", ())), Split(**data.get("split", {})), dict(data.get("params", {})),
            tuple(data.get("metrics", ())), {str(k): str(v) for k, v in (data.get("gates") or {}).items()},
            tuple(data.get("slices", ())), str(data.get("description", "")), deps_of(data),
        )

    def paths(self, item: ItemCheck) -> ItemPaths:
        return ItemPaths(inputs=dep_files(item))

    def check(self, item: ItemCheck) -> list[Diagnostic]:
        # metrics against the task and gates on computed metrics: the model kind's own checks
        return problems(item) + check_metrics(item, {})

    def declare(self, project: Project, item: SklearnModel) -> NodeDecl:
        ref = Ref(item.features, (self.section, item.name, "features"), TABLES)
        # gates judge the metrics a model produced; they are not an input of its training
        config = {k: v for k, v in node_config(item).items() if k != "gates"}
        return NodeDecl(
            f"{self.section}.{item.name}", self.name, item.span, config, (ref,),
            code=item.deps, outputs=(build_dir(self.section, item.name),), recipe=self.recipe,
            libraries=self.libraries, gates=dict(item.gates),
        )

    def run(self, task: Task) -> Result:
        from mlmake_sklearn.recipe import run

        return run(task)

    def load_predictor(self, folder: str, signature: Mapping[str, Any]) -> Predictor:
        """The trained pipeline in a model's folder or a serving bundle (mlmake.ml.scoring)."""
        from mlmake_sklearn.predictor import load

        return load(folder, dict(signature))


def problems(item: ItemCheck) -> list[Diagnostic]:
    """What `validate` can tell from the item alone: an estimator outside the supported set,
    one that does not fit the task, a parameter it does not take."""
    data = item.data
    name, task = str(data.get("estimator")), str(data.get("task"))
    estimator = ESTIMATORS.get(name)
    if estimator is None:  # the schema's enum lets an editor complete it; this says what was meant
        return [item.problem(("estimator",), f"'{name}' is not an estimator mlmake-sklearn saves as JSON; "
                             f"choose from {', '.join(ESTIMATORS)}", did_you_mean(name, ESTIMATORS))]
    found = []
    if task in TASKS and task not in estimator.tasks:
        fits = [e.name for e in ESTIMATORS.values() if task in e.tasks]
        found.append(item.problem(("estimator",), f"{name} does not fit a {task} model; use {' or '.join(fits)}"))
    for key in data.get("params") or {}:
        if key not in estimator.params:
            found.append(item.doc.diagnostic(
                (item.section, item.name, "params", key), f"{name} takes no parameter '{key}'; "
                f"it takes {', '.join(estimator.params)}", did_you_mean(str(key), estimator.params), key=True))
    return found
