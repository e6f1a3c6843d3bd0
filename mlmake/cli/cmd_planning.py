"""Commands that decide without building: plan, why, status."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from mlmake.cli import (
    cli,
    downstream_option,
    env_option,
    param_option,
    plan_project,
    refuse_unresolved,
    remote_cache,
    targets_argument,
)
from mlmake.core import memo, terminal
from mlmake.core.errors import MlmakeError
from mlmake.outputs import report

if TYPE_CHECKING:
    from mlmake.core.graph import Graph
    from mlmake.core.spec import Project
    from mlmake.planning.approval import Standing
    from mlmake.planning.plan import Plan
    from mlmake.state.lock import Lock


@cli.command()
@targets_argument
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="Output format (json: schemas/plan.schema.json).")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when nothing to do, 2 when changes are pending.")
@click.option("--base", metavar="REV", help="With --format markdown: metric and param deltas, gates and an "
              "estimated build time against this git revision (a pull-request comment).")
@click.option("--force", is_flag=True, help="Plan the targets as forced rebuilds.")
@downstream_option
@env_option
@param_option
@click.pass_context
def plan(ctx: click.Context, targets: tuple[str, ...], fmt: str, detailed_exitcode: bool, base: str | None,
         force: bool, downstream: bool, env: str | None, params: tuple[str, ...]) -> None:
    """Show what a build would do and why. Needs no data: works in CI on a fresh clone.

    \b
    Symbols: + new, ~ rebuild, ~? rebuild if upstream output changes,
             = up to date, - in the lock but no longer in the file.
    \b
    Examples:
      mlmake plan
      mlmake plan models.churn -P models.churn.params.max_depth=8
      mlmake plan --format markdown --base origin/main > comment.md
      mlmake plan --detailed-exitcode   # 0 nothing to do, 2 changes, 1 error
    """
    from mlmake.outputs import render

    warned = terminal.warnings_written()
    project, graph, lock, result = plan_project(ctx, env, params, targets, force, downstream)
    refuse_unresolved(project, graph, targets, downstream)
    if base and fmt != "markdown":
        raise MlmakeError("--base goes with --format markdown (a pull-request comment)")
    code = 2 if detailed_exitcode and result.has_changes else 0
    approvals = _standings(project, graph, lock, result)
    if fmt == "text" and terminal.is_terminal(sys.stdout):
        for line, style in render.plan_lines(result, approvals):
            report.out(line, style)
        if note := _unchecked_note(project, result):
            report.out(note.rstrip("\n"), "dim")
    else:
        if base:
            text = _pr_comment(project, graph, lock, result, base, approvals)
        elif fmt == "json":
            text = render.plan_json(result, project.project, approvals)
        elif fmt == "markdown":
            text = render.plan_markdown(result, graph, project.project, approvals)
        else:
            text = "".join(f"{line}\n" for line, _ in render.plan_lines(result, approvals)) + _unchecked_note(
                project, result)
        sys.stdout.write(text)
        if not base and terminal.warnings_written() == warned:  # --base reads git history: never kept
            memo.save(str(project.root), ctx.obj["seen"], code, text)
    if code:
        sys.exit(code)


def _standings(project: Project, graph: Graph, lock: Lock, result: Plan) -> list[Standing]:
    """Where the plan's targets that need approvals stand (approvals.yaml read only for them)."""
    from mlmake.planning.approval import standings
    from mlmake.state.approvals import read_approvals

    if not any(graph.nodes[s.address].approvals for s in result.steps if s.address in graph.nodes):
        return []
    return standings(graph, result, lock, read_approvals(project.root))


def _unchecked_note(project: Project, result: Plan) -> str:
    """A cloud remote is not read by plan: "restorable" is the pointers' word, and it says so."""
    cache = remote_cache(project)
    if cache.checked or not any(s.restorable for s in result.steps):
        return ""
    return f"(restorable: not checked offline against remote 'mlmake' ({cache.location.url}); `mlmake pull` tells)\n"


def _pr_comment(project: Project, graph: Graph, lock: Lock, result: Plan, base: str,
                approvals: list[Standing]) -> str:
    from mlmake.outputs import diff, history
    from mlmake.outputs.prreport import pr_markdown
    from mlmake.planning.plan import ABSENT, CHECK, FRESH, REMOVE, RESTORE
    from mlmake.state import records

    current = diff.Snapshot("this branch")
    for step in result.steps:
        entry = lock.get(step.address)
        if step.action in (FRESH, ABSENT, CHECK) and entry:
            current.metrics[step.address] = entry.metrics
        elif step.action == RESTORE and step.cached is not None:
            current.metrics[step.address] = step.cached.metrics
        if step.action != REMOVE:  # a node to remove has no components
            current.configs[step.address] = history.configured(step.components, step.gates)
    durations: dict[str, float] = {}
    runs: dict[str, list[dict[str, float]]] = {}  # each node's built runs' numeric metrics, oldest first
    for rec in reversed(records.history(project.root, limit=100_000)):
        if rec.status == "built":
            durations[rec.node] = rec.duration
            runs.setdefault(rec.node, []).append({m: float(v) for m, v in rec.metrics.items()
                                                  if isinstance(v, (int, float)) and not isinstance(v, bool)})
    baseline = history.from_lock(history.lock_at(project.root, base), base)
    return pr_markdown(result, graph, project.project, baseline, current, durations, runs, approvals)


@cli.command()
@click.argument("node")
@env_option
@param_option
@click.pass_context
def why(ctx: click.Context, node: str, env: str | None, params: tuple[str, ...]) -> None:
    """Explain one node: every fingerprint component, recorded and current.

    \b
    Example:
      mlmake why models.churn_xgb
    """
    from mlmake.outputs import render

    _, graph, lock, result = plan_project(ctx, env, params, ())
    address = graph.resolve_target(node)
    step = next(s for s in result.steps if s.address == address)
    for line in render.why_lines(step, lock.get(address)):
        report.out(line)


@cli.command()
@env_option
@param_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, env: str | None, params: tuple[str, ...], as_json: bool) -> None:
    """Show each node as built, stale, missing (not in this workspace) or failed.

    \b
    Example:
      mlmake status
    """
    import json

    from mlmake.state import records

    project, _, _, result = plan_project(ctx, env, params, ())
    last = {r.node: r for r in reversed(records.history(project.root, limit=100_000))}
    rows = []
    for step in result.steps:
        state = {"fresh": "built", "absent": "missing", "remove": "removed"}.get(step.action, "stale")
        if state == "stale" and step.address in last and last[step.address].status == "failed" \
                and last[step.address].fingerprint == step.fingerprint:
            state = "failed"
        rows.append({"node": step.address, "kind": step.kind, "state": state,
                     "reasons": [r.text() for r in step.reasons]})
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    width = max((len(r["node"]) for r in rows), default=0)
    for r in rows:
        why = f"  {r['reasons'][0]}" if r["reasons"] else ""
        report.out(f"{r['state']:<8} {r['node']:<{width}}{why}")
