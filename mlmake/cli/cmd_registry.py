"""The model registry: register, promote, registry (versions and stages as GTO git tags)."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING

import click

from mlmake.cli import cli, env_option, plan_project, project_root
from mlmake.core.errors import MlmakeError
from mlmake.outputs import report

if TYPE_CHECKING:
    from mlmake.registry.versions import Registry, StageEvent, Version


def _model_name(model: str) -> str:
    return model.removeprefix("models.")


@cli.command()
@click.argument("model")
@click.option("--version", "version", metavar="vX.Y.Z", help="The version's name (default: the next patch).")
@click.option("--bump", type=click.Choice(["major", "minor", "patch"]), default="patch", show_default=True,
              help="Without --version: which part of the latest version to increase.")
@env_option
@click.pass_context
def register(ctx: click.Context, model: str, version: str | None, bump: str, env: str | None) -> None:
    """Register the model as built and committed at HEAD: a GTO tag MODEL@vX.Y.Z.

    The model must be up to date and its build committed (mlproject.lock and
    .mlmake-artifacts/): a version is a commit. The tag's message records its
    fingerprint, outputs, metrics, data hashes and commit.

    \b
    Examples:
      mlmake register churn_xgb
      mlmake register churn_xgb --version v1.0.0
    """
    from mlmake.planning.plan import ABSENT, FRESH
    from mlmake.registry.actions import register as register_version

    name = _model_name(model)
    address = f"models.{name}"
    project, graph, lock, plan = plan_project(ctx, env, (), ())
    if address not in graph.nodes:
        raise MlmakeError(f"{address}: no such model in mlproject.yaml")
    step = next(s for s in plan.steps if s.address == address)
    if step.action not in (FRESH, ABSENT):
        why = step.reasons[0].text() if step.reasons else step.action
        raise MlmakeError(f"{address} is not up to date ({why}): build it, commit, then register it")
    found = register_version(project.root, name, lock, version=version, bump=bump)  # type: ignore[arg-type]
    report.out(f"registered {name} {found.version}: tag {found.tag} on {found.commit[:7]}", "green")
    report.out(f"share it: git push origin {found.tag}")


@cli.command()
@click.argument("model")
@click.argument("version")
@click.option("--to", "stage", required=True, metavar="STAGE", help="The stage (staging, production, …).")
@click.pass_context
def promote(ctx: click.Context, model: str, version: str, stage: str) -> None:
    """Give a registered version a stage: a GTO tag MODEL#STAGE#N on its commit.

    Deploy targets with `model: MODEL@STAGE` follow it; promoting an older version
    rolls back. Nothing is retrained.

    \b
    Examples:
      mlmake promote churn_xgb v0.0.2 --to production
      mlmake promote churn_xgb v0.0.1 --to production    # a rollback
    """
    from mlmake.registry.actions import promote as promote_version
    from mlmake.registry.versions import read_registry

    name = _model_name(model)
    before = read_registry(project_root(ctx), fresh=True).stage_version(name, stage)
    event = promote_version(project_root(ctx), name, version, stage)
    was = f"; was {before.version}" if before is not None else ""
    report.out(f"{name} {version} is now {stage}: tag {event.tag}{was}", "green")
    report.out(f"share it: git push origin {event.tag}")


@cli.command(name="registry")
@click.argument("model", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output, with each version's record.")
@click.pass_context
def registry_cmd(ctx: click.Context, model: str | None, as_json: bool) -> None:
    """The registered versions of each model, the stages they hold, who and when.

    \b
    Examples:
      mlmake registry
      mlmake registry churn_xgb --json
    """
    from mlmake.registry.versions import read_registry

    registry = read_registry(project_root(ctx))
    models = [_model_name(model)] if model else registry.models()
    if model and _model_name(model) not in registry.models():
        raise MlmakeError(f"{_model_name(model)} has no registered version (register one with "
                          f"`mlmake register {_model_name(model)}`)")
    if as_json:
        sys.stdout.write(json.dumps({m: _as_json(registry, m) for m in models}, indent=2, sort_keys=True) + "\n")
        return
    if not models:
        report.out("no model is registered yet (run `mlmake register MODEL`)")
    for name in models:
        for line in _text(registry, name):
            report.out(line)


def _text(registry: Registry, model: str) -> list[str]:
    holds = _holders(registry, model)
    lines = [f"models.{model}"]
    for v in reversed(registry.versions_of(model)):
        stages = ", ".join(holds.get(v.version, [])) or "-"
        gone = " (deregistered)" if not v.active else ""
        lines.append(f"  {v.version:<10} {stages:<16} {v.commit[:7]}  {_when(v.time)}  {v.author} <{v.email}>{gone}")
    for e in registry.history(model):
        what = f"{e.version or e.commit[:7]} → {e.stage}" if e.assigned else f"{e.stage} unassigned"
        lines.append(f"  {_when(e.time)}  {what}  by {e.author} <{e.email}>  ({e.tag})")
    return lines


def _holders(registry: Registry, model: str) -> dict[str, list[str]]:
    holds: dict[str, list[str]] = {}
    for stage, event in registry.stages(model).items():
        holds.setdefault(event.version or "", []).append(stage)
    return holds


def _when(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + " UTC"


def _as_json(registry: Registry, model: str) -> dict[str, object]:
    holds = _holders(registry, model)
    return {
        "versions": [_version_json(v, holds.get(v.version, [])) for v in registry.versions_of(model)],
        "stages": {s: e.version for s, e in registry.stages(model).items()},
        "history": [_event_json(e) for e in registry.history(model)],
    }


def _version_json(v: Version, stages: list[str]) -> dict[str, object]:
    return {"version": v.version, "artifact": v.artifact, "tag": v.tag, "commit": v.commit, "stages": stages,
            "author": v.author, "author_email": v.email, "created_at": _iso(v.time), "active": v.active,
            "record": v.record.to_dict() if v.record is not None else None}


def _event_json(e: StageEvent) -> dict[str, object]:
    return {"stage": e.stage, "version": e.version, "assigned": e.assigned, "tag": e.tag, "commit": e.commit,
            "author": e.author, "author_email": e.email, "created_at": _iso(e.time)}


def _iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
