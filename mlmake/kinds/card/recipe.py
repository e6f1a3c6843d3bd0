"""The model card recipe: what the lock, the model's metrics.json and signature.json and the
card's configuration say, as card.json and card.md. Nothing in it depends on the time or the
machine, so the same sources give the same bytes."""

from __future__ import annotations

import os
from typing import Any

from mlmake.core import gates
from mlmake.core.kind import Result, Task
from mlmake.ml.bundle import lineage, lock_nodes
from mlmake.ml.supervised import METRICS_FILE, SIGNATURE_FILE
from mlmake.ml.tables import output_dir, read_json, upstream_folder, write_json

CARD_FORMAT = 1
JSON_FILE, MARKDOWN_FILE = "card.json", "card.md"


def run(task: Task) -> Result:
    model = next(a for a in task.upstream if a.startswith("models."))
    folder = upstream_folder(task, model)
    card = make_card(task, model, lock_nodes(task.root), read_json(os.path.join(folder, METRICS_FILE)),
                     read_json(os.path.join(folder, SIGNATURE_FILE)))
    out = output_dir(task)
    write_json(os.path.join(out, JSON_FILE), card)
    from mlmake.kinds.card.markdown import card_markdown

    with open(os.path.join(out, MARKDOWN_FILE), "w", encoding="utf-8", newline="\n") as fh:
        fh.write(card_markdown(card))
    return Result()


def make_card(task: Task, model: str, nodes: dict[str, dict[str, Any]], summary: dict[str, Any],
              signature: dict[str, Any]) -> dict[str, Any]:
    """The card as plain data (card.json)."""
    config, entry = task.config, nodes.get(model) or {}
    trained = entry.get("config") or {}
    ancestry = lineage(nodes, [model])
    return {
        "format": CARD_FORMAT,
        "card": task.address,
        "model": {"address": model, "kind": entry.get("kind"), "task": summary.get("task"),
                  "fingerprint": entry.get("fingerprint"), "description": config.get("model_description", "")},
        "intended_use": config.get("intended_use", ""),
        "limitations": config.get("limitations", ""),
        "data": _data(nodes, ancestry),
        "features": {"source": signature.get("features"), "key": signature.get("key") or [],
                     "inputs": signature.get("inputs") or [], "target": signature.get("target"),
                     "classes": signature.get("classes")},
        "training": {"params": trained.get("params") or {}, "split": trained.get("split") or {},
                     "n_train": summary.get("n_train"), "n_test": summary.get("n_test")},
        "metrics": summary.get("metrics") or {},
        "slices": _slices(summary.get("slices") or {}),
        "gates": _gates(config.get("model_gates") or {}, summary),
        "registry": _registry(config.get("model_registry") or {}, str(entry.get("fingerprint") or "")),
        "approvals": _approvals(task, model, str(entry.get("fingerprint") or "")),
        "lineage": {a: n["fingerprint"] for a, n in ancestry["nodes"].items()},
    }


def _approvals(task: Task, model: str, fingerprint: str) -> list[dict[str, Any]]:
    """Every approval of this model for a deploy target; valid while it is of the fingerprint built."""
    from pathlib import Path

    from mlmake.core.errors import MlmakeError, NodeError
    from mlmake.state.approvals import read_approvals

    try:
        approvals = read_approvals(Path(task.root))
    except MlmakeError as exc:
        raise NodeError(str(exc)) from None
    out = []
    for target, given in sorted(approvals.items()):
        out += [{"target": target, "by": a.by, "at": a.at, "fingerprint": a.fingerprint, "plan_hash": a.plan,
                 "valid": a.fingerprint == fingerprint} for a in given if a.model == model]
    return out


def _registry(told: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    """The registry's versions of this build (same fingerprint) and the stages they hold, beside every
    stage of the model and the version holding it."""
    versions = told.get("versions") or {}
    stages = told.get("stages") or {}
    mine = sorted(v for v, fp in versions.items() if fp and fp == fingerprint)
    return {"versions": mine, "stages": sorted(s for s, v in stages.items() if v in mine),
            "model_stages": dict(sorted(stages.items()))}


def _data(nodes: dict[str, dict[str, Any]], ancestry: dict[str, Any]) -> list[dict[str, Any]]:
    """Each dataset upstream of the model: the files it read with their hashes, and its contract."""
    out = []
    for address in ancestry["nodes"]:
        if not address.startswith("datasets."):
            continue
        entry = nodes[address]
        config = entry.get("config") or {}
        files = dict(entry.get("inputs") or {})
        for produced in (entry.get("upstream") or {}).values():
            files.update(produced if isinstance(produced, dict) else {})
        out.append({"address": address, "path": config.get("path"), "files": dict(sorted(files.items())),
                    "schema": config.get("schema") or {}, "checks": config.get("checks") or []})
    return out


def _slices(columns: dict[str, Any]) -> dict[str, Any]:
    """Each slice column: its values' metrics, and per metric the gap between the best and worst value."""
    out: dict[str, Any] = {}
    for column, by_value in sorted(columns.items()):
        metrics = sorted({m for values in by_value.values() for m in values if m != "rows"})
        gaps = {}
        for metric in metrics:
            found = gates.measure(f"{metric}.slice_gap", {gates.SLICES: {column: by_value}})
            if found.value is not None:
                gaps[metric] = {"gap": found.value, "between": found.where.partition(": ")[2]}
        out[column] = {"values": by_value, "gaps": gaps}
    return out


def _gates(rules: dict[str, str], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each gate judged on the model's metrics (a relative gate has no baseline here: not checked)."""
    metrics = {**(summary.get("metrics") or {}), gates.SLICES: summary.get("slices") or {}}
    out = []
    for verdict in gates.verdicts(rules, metrics, None):
        if isinstance(verdict, str):
            continue  # validate refuses a gate it cannot read
        result = "pass" if verdict.passed and verdict.threshold is not None else (
            "not checked (no baseline)" if verdict.passed else "fail")
        out.append({"gate": str(verdict.gate), "value": verdict.value, "slice": verdict.where, "result": result})
    return out
