"""Plans and graphs as text, JSON, markdown and mermaid/dot. Pure string building."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from mlmake.core.graph import Graph
from mlmake.core.plain import Json
from mlmake.planning.approval import Standing, plan_hash
from mlmake.planning.plan import ABSENT, BUILD, CHECK, FRESH, MAYBE, NEW, REMOVE, RESTORE, Action, Decision, Plan
from mlmake.state.approvals import Approval
from mlmake.state.lock import Entry

PLAN_FORMAT_VERSION = 1
SYMBOLS: dict[Action, str] = {NEW: "+", BUILD: "~", MAYBE: "~?", RESTORE: "<", CHECK: "*", FRESH: "=",
                               ABSENT: "=", REMOVE: "-"}
_COLOURS: dict[Action, str] = {NEW: "green", BUILD: "yellow", MAYBE: "cyan", RESTORE: "blue", CHECK: "magenta",
                               FRESH: "", ABSENT: "dim", REMOVE: "red"}


def step_note(step: Decision) -> list[str]:
    """The reasons of a step as lines (empty for an up-to-date node)."""
    if step.action == ABSENT:
        where = "restorable from the DVC remote" if step.restorable else "not in this workspace"
        return [f"up to date; {where}: {', '.join(step.missing)}"] + [r.text() for r in step.reasons]
    return [r.text() for r in step.reasons]


def plan_lines(plan: Plan, approvals: Sequence[Standing] = ()) -> list[tuple[str, str]]:
    """(line, style) pairs for the text plan; the style is a rich colour or ''."""
    width = max((len(s.address) for s in plan.steps), default=0)
    out: list[tuple[str, str]] = []
    for step in plan.steps:
        notes = step_note(step)
        head = f"{SYMBOLS[step.action]:>2} {step.address:<{width}}"
        out.append((f"{head}  {notes[0]}".rstrip() if notes else head.rstrip(), _COLOURS[step.action]))
        out += [(" " * (len(head) + 2) + n, _COLOURS[step.action]) for n in notes[1:]]
    out.append(("", ""))
    out.append((plan.summary(), "bold"))
    if approvals:
        out.append(("Approvals:", "bold"))
        out += [(f"  {line}", "" if a.approved else "yellow") for a in approvals for line in a.lines()]
    return out


def plan_json(plan: Plan, project: str, approvals: Sequence[Standing] = ()) -> str:
    """The plan in the documented format of schemas/plan.schema.json."""
    counts: dict[str, Json] = {a: plan.count(a) for a in SYMBOLS}
    body = {
        "format_version": PLAN_FORMAT_VERSION,
        "project": project,
        "has_changes": plan.has_changes,
        "plan_hash": plan_hash(plan),
        "summary": {**counts, "text": plan.summary()},
        "nodes": [_step_json(s) for s in plan.steps],
        "approvals": [_approval_json(a) for a in approvals],
    }
    return json.dumps(body, indent=2, ensure_ascii=False, default=str) + "\n"


def _step_json(step: Decision) -> dict[str, Json]:
    return {
        "address": step.address,
        "kind": step.kind,
        "action": step.action,
        "symbol": SYMBOLS[step.action],
        "fingerprint": step.fingerprint,
        "reasons": [r.to_dict() for r in step.reasons],
        "missing_outputs": list(step.missing),
        "restorable": step.restorable,
    }


def _approval_json(standing: Standing) -> dict[str, Json]:
    def person(a: Approval) -> Json:
        return {"by": a.by, "at": a.at, "fingerprint": a.fingerprint, "plan_hash": a.plan}

    return {"target": standing.target, "model": standing.model, "fingerprint": standing.fingerprint,
            "change": standing.change, "required": standing.required, "approved": standing.approved,
            "given": [person(a) for a in standing.given], "void": [person(a) for a in standing.void]}


def plan_markdown(plan: Plan, graph: Graph, project: str, approvals: Sequence[Standing] = ()) -> str:
    """A pull-request comment: a table of what changes and why, and a mermaid graph."""
    lines = [f"### mlmake plan: `{project}`", "", f"**{plan.summary()}**", ""]
    changed = [s for s in plan.steps if s.action not in (FRESH, ABSENT)]
    noted = [s for s in plan.steps if s.action not in (FRESH, ABSENT) or s.reasons]  # a reformat says so
    if not changed:
        lines += ["Nothing to build: every node is up to date."] + ([""] if noted else [])
    if noted:
        lines += ["| | node | kind | why |", "|---|---|---|---|"]
        for s in noted:
            why = "<br>".join(_md_escape(n) for n in step_note(s))
            lines.append(f"| `{SYMBOLS[s.action]}` | `{s.address}` | {s.kind} | {why} |")
    if approvals:
        lines += ["", "Approvals:", "", *(f"- {_md_escape(a.lines()[0])}" for a in approvals),
                  *(f"  - {_md_escape(line.strip())}" for a in approvals for line in a.lines()[1:])]
    actions = {s.address: s.action for s in plan.steps}
    lines += ["", "<details><summary>Graph</summary>", "", "```mermaid",
              *mermaid(graph, actions).splitlines(), "```", "", "</details>", ""]
    return "\n".join(lines)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")


_CLASSDEFS: dict[Action, str] = {
    NEW: "fill:#dafbe1,stroke:#1a7f37,color:#1a7f37",
    BUILD: "fill:#fff8c5,stroke:#9a6700,color:#9a6700",
    RESTORE: "fill:#fbefff,stroke:#8250df,color:#8250df",
    CHECK: "fill:#ffeff7,stroke:#bf3989,color:#bf3989",
    MAYBE: "fill:#ddf4ff,stroke:#0969da,color:#0969da,stroke-dasharray:4 2",
    FRESH: "fill:#f6f8fa,stroke:#8c959f,color:#57606a",
    ABSENT: "fill:#f6f8fa,stroke:#8c959f,color:#57606a,stroke-dasharray:2 2",
}


def mermaid(graph: Graph, actions: Mapping[str, str] | None = None) -> str:
    """A mermaid flowchart, nodes coloured by action when actions are given."""
    ids = {a: f"n{i}" for i, a in enumerate(graph.nodes)}
    lines = ["flowchart LR"]
    for address, decl in graph.nodes.items():
        action = (actions or {}).get(address)
        cls = f":::{action}" if action in _CLASSDEFS else ""
        lines.append(f'  {ids[address]}["{address}<br/><small>{decl.kind}</small>"]{cls}')
    for address, ups in graph.uses.items():
        lines += [f"  {ids[u]} --> {ids[address]}" for u in ups]
    if actions:
        used = {a for a in actions.values() if a in _CLASSDEFS}
        lines += [f"  classDef {a} {style}" for a, style in _CLASSDEFS.items() if a in used]
    return "\n".join(lines) + "\n"


def dot(graph: Graph) -> str:
    """The graph in Graphviz dot."""
    lines = ["digraph mlmake {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    lines += [f'  "{a}" [label="{a}\\n({d.kind})"];' for a, d in graph.nodes.items()]
    lines += [f'  "{u}" -> "{a}";' for a, ups in graph.uses.items() for u in ups]
    return "\n".join(lines + ["}"]) + "\n"


def graph_text(graph: Graph) -> str:
    """One line per node with what it reads, in build order."""
    width = max((len(a) for a in graph.nodes), default=0)
    out = []
    for address, decl in graph.nodes.items():
        ups = ", ".join(graph.uses[address]) or "-"
        out.append(f"{address:<{width}}  {decl.kind:<8}  <- {ups}")
    return "\n".join(out) + "\n"


def why_lines(step: Decision, recorded: Entry | None) -> list[str]:
    """Every fingerprint component, recorded and current, marking those that differ."""
    lines = [f"{step.address} ({step.kind}): {step.action}"]
    lines.append(f"  fingerprint  recorded {recorded.fingerprint if recorded else '-'}  current {step.fingerprint}")
    for name, current in step.components.items():
        before = recorded.components.value(name) if recorded else None
        mark = "=" if before == current else "~"
        lines.append(f"{mark} {name}")
        lines += _component_lines(before, current)
    gates: dict[str, Json] = dict(recorded.gates) if recorded else {}
    if gates or step.gates:  # judged on the metrics, not part of the fingerprint
        lines.append(f"{'=' if gates == step.gates else '~'} gates (judged on the metrics, not fingerprinted)")
        lines += _component_lines(gates, dict(step.gates))
    if step.missing:
        lines.append(f"  outputs not in this workspace: {', '.join(step.missing)}")
    lines += [f"  reason: {r.text()}" for r in step.reasons]
    return lines


def _component_lines(before: Json, current: Json) -> list[str]:
    if isinstance(current, dict) and (before is None or isinstance(before, dict)):
        keys = sorted(set(current) | set(before or {}), key=str)
        out = []
        for k in keys:
            a, b = (before or {}).get(k, "-"), current.get(k, "-")
            mark = "=" if a == b else "~"
            out.append(f"    {mark} {k}: {_short(b)}" if a == b else f"    {mark} {k}: {_short(a)} → {_short(b)}")
        return out
    if before == current:
        return [f"    = {_short(current)}"]
    return [f"    ~ {_short(before)} → {_short(current)}"]


def _short(value: Json) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 100 else text[:97] + "..."
