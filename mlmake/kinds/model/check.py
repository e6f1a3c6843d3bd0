"""What validate checks in a model beyond the schema: metrics and gates against its task, and
xgboost params passed through `extra` that have a checked key of their own."""

from __future__ import annotations

from collections.abc import Collection

from mlmake.core.errors import Diagnostic, did_you_mean
from mlmake.core.kind import ItemCheck
from mlmake.ml.metrics import DEFAULT_METRICS, TASK_METRICS, gated_metric


def check(item: ItemCheck, typed_params: Collection[str]) -> list[Diagnostic]:
    model = item.data
    task = model.get("task")
    if task not in TASK_METRICS:
        return []
    found = []
    applies = TASK_METRICS[task]
    for i, metric in enumerate(model.get("metrics") or []):
        if metric not in applies:
            found.append(item.problem(("metrics", i), f"'{metric}' is not a metric of a {task} model",
                                      f"a {task} model computes {', '.join(applies)}"))
    for key in (model.get("params") or {}).get("extra") or {}:
        if key in typed_params:
            found.append(item.doc.diagnostic((item.section, item.name, "params", "extra", key),
                                             f"'{key}' has its own key, checked by mlmake",
                                             f"write it as params.{key}", key=True))
    split = model.get("split")
    if isinstance(split, dict) and split.get("by") == "hash" and split.get("stratify") is True:
        found.append(item.problem(("split", "stratify"), "stratify needs by: random (a hash split picks "
                                  "each row on its own, without counting the classes)",
                                  "remove stratify, or write by: random"))
    computed = [m for m in (model.get("metrics") or DEFAULT_METRICS[task]) if m in applies]
    for gate in model.get("gates") or {}:
        metric = gated_metric(gate)
        if metric not in computed:
            found.append(item.doc.diagnostic((item.section, item.name, "gates", gate),
                                             _gate_message(metric, task, computed),
                                             _gate_hint(metric, task, applies, computed), key=True))
        elif metric != gate and not model.get("slices"):
            found.append(item.doc.diagnostic((item.section, item.name, "gates", gate),
                                             f"a gate over slices ('{gate}') on a model without slices",
                                             "name the columns to slice by: slices: [COLUMN]", key=True))
    return found


def _gate_message(metric: str, task: str, computed: list[str]) -> str:
    if metric not in TASK_METRICS[task]:
        return f"a gate on '{metric}', which a {task} model does not compute"
    return f"a gate on '{metric}', which this model does not compute (metrics: {', '.join(computed)})"


def _gate_hint(metric: str, task: str, applies: tuple[str, ...], computed: list[str]) -> str:
    if metric in applies:
        return f"add '{metric}' to metrics"
    if not computed:  # every metric named is wrong for the task: those are reported too
        return f"a {task} model computes {', '.join(applies)}"
    return did_you_mean(metric, computed) or f"gate one of {', '.join(computed)}"
