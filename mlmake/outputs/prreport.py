"""The pull-request comment: what will rebuild and why, the graph coloured by
action, metric and param deltas against the base branch, gate results and an
estimated build time from the run history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mlmake.core import gates
from mlmake.core.graph import Graph
from mlmake.outputs import diff, xychart
from mlmake.outputs.render import plan_markdown
from mlmake.planning.approval import Standing
from mlmake.planning.plan import ABSENT, BUILD, FRESH, MAYBE, NEW, REMOVE, Plan

MARKER = "<!-- mlmake-plan -->"


def pr_markdown(plan: Plan, graph: Graph, project: str, base: diff.Snapshot, current: diff.Snapshot,
                durations: dict[str, float], history: Mapping[str, xychart.Runs] | None = None,
                approvals: Sequence[Standing] = ()) -> str:
    """One comment, ready to post; the hidden marker lets CI update it in place."""
    head = plan_markdown(plan, graph, project, approvals).rstrip("\n").split("\n")
    parts = [MARKER, *head[:4], _estimate(plan, durations), "", *head[4:], ""]
    metric_rows = diff.metric_deltas(base, current)
    param_rows = diff.param_deltas(base, current)
    parts += [f"#### Metrics against `{base.label}`", "",
              diff.as_markdown(metric_rows, base.label, "this branch", "metrics").rstrip("\n"), ""]
    # every kind in the models section computes metrics (the built-in one and plugins alike)
    pending = [s.address for s in plan.steps if s.action in (NEW, BUILD, MAYBE) and s.address.startswith("models.")]
    if pending:
        parts += ["Not built yet (metrics known after the build): " + ", ".join(f"`{a}`" for a in pending), ""]
    parts += [f"#### Params against `{base.label}`", "",
              diff.as_markdown(param_rows, base.label, "this branch", "params").rstrip("\n"), ""]
    parts += _gate_section(graph, base, current)
    parts += xychart.history_section(_changed_models(plan, base, current), history or {})
    parts += _approval_section(approvals)
    return "\n".join(parts).rstrip("\n") + "\n"


def _changed_models(plan: Plan, base: diff.Snapshot, current: diff.Snapshot) -> list[str]:
    """The models this branch rebuilds, or whose configuration or metrics differ from the base's."""
    return [s.address for s in plan.steps if s.address.startswith("models.") and s.action != REMOVE and (
        s.action not in (FRESH, ABSENT) or base.configs.get(s.address) != current.configs.get(s.address)
        or base.metrics.get(s.address) != current.metrics.get(s.address))]


def _approval_section(approvals: Sequence[Standing]) -> list[str]:
    """The approvals each target needs and has (a void one: given for another model fingerprint)."""
    if not approvals:
        return []
    rows = ["#### Approvals", "", "| target | model | needed | given | void |", "|---|---|---|---|---|"]
    for a in approvals:
        model = f"`{a.model}` `{a.fingerprint[:8]}`" if a.fingerprint else f"`{a.model}`"
        model += f" ({diff.md_cell(a.change)})" if a.change else ""
        given = ", ".join(diff.md_cell(g.by) for g in a.given) or "none"
        void = ", ".join(f"{diff.md_cell(v.by)} (`{v.fingerprint[:8]}`)" for v in a.void) or "-"
        status = "" if a.approved else " **missing**"
        rows.append(f"| `{a.target}` | {model} | {a.required} | {len(a.given)}{status}: {given} | {void} |")
    return [*rows, ""]


def _estimate(plan: Plan, durations: dict[str, float]) -> str:
    todo = [s.address for s in plan.steps if s.action in (NEW, BUILD, MAYBE)]
    if not todo:
        return "Estimated build time: nothing to build."
    known = [durations[a] for a in todo if a in durations]
    unknown = len(todo) - len(known)
    if not known:
        return f"Estimated build time: unknown ({unknown} node(s) never built here)."
    text = f"Estimated build time: {_duration(sum(known))} (from the run history)"
    return text + (f", plus {unknown} node(s) never built here." if unknown else ".")


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _gate_section(graph: Graph, base: diff.Snapshot, current: diff.Snapshot) -> list[str]:
    rows = []
    for address, decl in graph.nodes.items():
        for metric, text in sorted(decl.gates.items()):
            rows.append(_gate_row(address, metric, str(text), base, current))
    if not rows:
        return []
    return ["#### Gates", "", "| node | gate | value | baseline | result |", "|---|---|---|---|---|", *rows, ""]


def _gate_row(address: str, metric: str, text: str, base: diff.Snapshot, current: diff.Snapshot) -> str:
    try:
        gate = gates.parse_gate(metric, text)
    except ValueError:
        return f"| `{address}` | `{metric} {text}` | | | invalid |"
    found = gates.measure(metric, current.metrics.get(address, {}))
    value, baseline = found.value, gates.measure(metric, base.metrics.get(address, {})).value
    if value is None:
        verdict_text = "after the build"
    else:
        verdict = gates.judge(gate, value, baseline, found.where)
        verdict_text = "pass" if verdict.passed and verdict.threshold is not None else (
            "not checked (no baseline)" if verdict.passed else "**FAIL**")
        verdict_text += f" ({diff.md_cell(found.where)})" if found.where and not verdict.passed else ""
    return (f"| `{address}` | `{gate}` | {diff.show(value)} | {diff.show(baseline)} | {verdict_text} |")
