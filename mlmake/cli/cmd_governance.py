"""Governance: `mlmake approve`, an approval of a deploy target's model as built."""

from __future__ import annotations

import time

import click

from mlmake.cli import cli, env_option, load, param_option, plan_project
from mlmake.outputs import report


@cli.command()
@click.argument("target", metavar="TARGET")
@env_option
@param_option
@click.pass_context
def approve(ctx: click.Context, target: str, env: str | None, params: tuple[str, ...]) -> None:
    """Approve a deploy target's model as built: records who (git config user.name and
    user.email), when, the model's fingerprint and metrics, and the plan's hash in
    approvals.yaml (commit it). A rebuilt model needs a new approval.

    \b
    Example:
      mlmake build models.churn_xgb && mlmake approve deploy.churn_api
    """
    from mlmake.planning.approval import approve as record
    from mlmake.state.approvals import APPROVALS_FILE, git_identity

    address = load(ctx, env, params)[1].resolve_target(target)
    project, graph, lock, plan = plan_project(ctx, env, params, (address,))
    found = record(project.root, graph, plan, lock, address, git_identity(project.root),
                   time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    mine = found.given[-1]
    metrics = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in mine.metrics.items())
    report.out(f"approved {address}: {found.model} {found.fingerprint[:8]}" + (f" ({metrics})" if metrics else "")
               + f" by {mine.by}")
    report.out(f"{len(found.given)} of {found.required} approval(s) given; commit {APPROVALS_FILE}")
