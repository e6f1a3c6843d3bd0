"""What the report shows, read from what the build left: each node's state from the plan, and
per model its metrics.json, curves.json and importance.json, its run history and its gates;
per dataset its contract.json (or the failure its last run recorded). Nothing is recomputed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlmake.core import gates
from mlmake.core.graph import Graph
from mlmake.planning.plan import Plan
from mlmake.reporting.base import Base
from mlmake.state import records
from mlmake.state.lock import Lock

STATES = {"fresh": "built", "absent": "missing", "remove": "removed"}  # every other action: stale
# documents a node downstream of a model may write about it (a model card, a drift report), shown
# with the model as their text: whichever kind writes them, by the file's name in its output folder
DOCUMENTS = {"card.md": "Model card", "drift.md": "Drift"}
HISTORY_RUNS = 30  # the last runs of each model drawn over time


@dataclass(frozen=True, slots=True)
class NodeView:
    address: str
    kind: str
    state: str  # built | stale | missing | failed | removed
    reason: str
    upstream: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GateRow:
    rule: str
    value: float | None
    baseline: float | None
    result: str  # pass | FAIL | not checked (no baseline) | after the build | invalid


@dataclass(frozen=True, slots=True)
class Document:
    title: str  # "Model card"
    source: str  # the file, relative to the project
    text: str


@dataclass(frozen=True, slots=True)
class ModelView:
    address: str
    state: str
    task: str
    metrics: dict[str, Any]
    curves: dict[str, Any]
    importance: list[dict[str, Any]]
    slices: dict[str, dict[str, dict[str, float]]]
    history: list[dict[str, Any]]  # {"run", "run_id", "metric", "value"}, oldest run first
    gates: list[GateRow]
    base_curves: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    documents: tuple[Document, ...] = ()


@dataclass(frozen=True, slots=True)
class ContractView:
    address: str
    state: str
    contract: dict[str, Any]  # contract.json as the dataset's build wrote it ({} when absent)
    failure: str  # the message of its last run when that run failed


@dataclass(frozen=True, slots=True)
class Report:
    project: str
    base: str | None
    nodes: list[NodeView]
    models: list[ModelView]
    contracts: list[ContractView]


def gather(root: Path, project: str, graph: Graph, lock: Lock, plan: Plan, targets: tuple[str, ...],
           base: Base | None) -> Report:
    """The report's content for the targets (every node when none) and what they need."""
    chosen = set(graph.select(targets))
    last = {r.node: r for r in reversed(records.history(root, limit=100_000))}
    nodes = [_node(graph, step.address, step.kind, step.action, step.reasons, last.get(step.address),
                   step.fingerprint) for step in plan.steps if step.address in graph.nodes]
    states = {n.address: n.state for n in nodes}
    models = [_model(root, graph, lock, a, states.get(a, "stale"), base) for a in graph.nodes
              if a in chosen and a.startswith("models.")]
    contracts = [_contract(root, graph, a, states.get(a, "stale"), last.get(a)) for a in graph.nodes
                 if a in chosen and graph.nodes[a].kind == "dataset"]
    return Report(project, base.rev if base else None, nodes, models, contracts)


def _node(graph: Graph, address: str, kind: str, action: str, reasons: tuple[Any, ...],
          last: records.Record | None, fingerprint: str) -> NodeView:
    state = STATES.get(action, "stale")
    if state == "stale" and last is not None and last.status == "failed" and last.fingerprint == fingerprint:
        state = "failed"
    reason = reasons[0].text() if reasons else ""
    return NodeView(address, kind, state, reason, graph.upstream(address))


def _model(root: Path, graph: Graph, lock: Lock, address: str, state: str, base: Base | None) -> ModelView:
    decl = graph.nodes[address]
    folder = root / decl.outputs[0] if decl.outputs else root
    summary = _read(folder / "metrics.json")
    curves = _read(folder / "curves.json")
    notes = []
    if not summary:
        notes.append("not built in this workspace: run `mlmake build` (or `mlmake pull`) first")
    elif state != "built":
        notes.append(f"{state}: these are the results of its last build")
    if summary and not curves:
        notes.append("no curves recorded (curves.json): a model built by an earlier mlmake, or a kind that "
                     "does not record them; rebuild it to draw them")
    entry = lock.get(address)
    metrics = dict(summary.get("metrics") or (entry.metrics if entry else {}))
    base_metrics = base.metrics(address) if base else {}
    base_curves, missing = base.curves(address) if base else ({}, "")
    if missing:
        notes.append(missing)
    return ModelView(address, state, str(summary.get("task") or decl.config.get("task") or ""), metrics, curves,
                     list(_read(folder / "importance.json").get("importance") or []),
                     dict(summary.get("slices") or {}), _history(root, address),
                     _gates(decl.gates, metrics, base_metrics), base_curves, tuple(notes),
                     _documents(root, graph, address))


def _documents(root: Path, graph: Graph, address: str) -> tuple[Document, ...]:
    """What the nodes reading the model wrote about it (DOCUMENTS), in build order."""
    found = []
    for reader in graph.downstream(address):
        for out in graph.nodes[reader].outputs:
            for name, title in DOCUMENTS.items():
                path = root / out / name
                try:
                    text = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue
                found.append(Document(title, f"{out}/{name}", text))
    return tuple(found)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _history(root: Path, address: str) -> list[dict[str, Any]]:
    """The numeric metrics of the model's last built runs, oldest first (restores repeat a build)."""
    runs = [r for r in records.history(root, address, limit=100_000) if r.status == "built"][:HISTORY_RUNS]
    rows = []
    for number, rec in enumerate(reversed(runs), start=1):
        for metric, value in sorted(rec.metrics.items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append({"run": number, "run_id": rec.run_id, "metric": metric, "value": float(value)})
    return rows


def _gates(declared: dict[str, str], metrics: dict[str, Any], base: dict[str, Any]) -> list[GateRow]:
    rows = []
    for metric, text in sorted(declared.items()):
        value, baseline = _number(metrics.get(metric)), _number(base.get(metric))
        try:
            gate = gates.parse_gate(metric, str(text))
        except ValueError:
            rows.append(GateRow(f"{metric} {text}", value, baseline, "invalid"))
            continue
        if value is None:
            rows.append(GateRow(str(gate), None, baseline, "after the build"))
            continue
        verdict = gates.judge(gate, value, baseline)
        result = "pass" if verdict.passed and verdict.threshold is not None else (
            "not checked (no baseline)" if verdict.passed else "FAIL")
        rows.append(GateRow(str(gate), value, baseline, result))
    return rows


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _contract(root: Path, graph: Graph, address: str, state: str, last: records.Record | None) -> ContractView:
    decl = graph.nodes[address]
    contract = _read(root / decl.outputs[0] / "contract.json") if decl.outputs else {}
    failure = last.message if last is not None and last.status == "failed" else ""
    return ContractView(address, state, contract, failure)
