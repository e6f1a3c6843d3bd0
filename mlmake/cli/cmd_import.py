"""`mlmake import dvc`: bring an existing DVC pipeline in."""

from __future__ import annotations

from pathlib import Path

import click

from mlmake.cli import cli, project_root
from mlmake.core.errors import MlmakeError
from mlmake.outputs import report


@cli.group("import")
def import_() -> None:
    """Write an mlproject.yaml from another tool's pipeline."""


@import_.command("dvc")
@click.argument("directory", required=False, default=".", metavar="[DIR]")
@click.option("--force", is_flag=True, help="Overwrite an existing mlproject.yaml (and mlproject.lock).")
@click.pass_context
def dvc(ctx: click.Context, directory: str, force: bool) -> None:
    """Convert DIR's dvc.yaml (and params.yaml) into DIR/mlproject.yaml of steps.

    Stages `dvc status` calls up to date are recorded in mlproject.lock without
    running them, so `mlmake plan` calls stale what DVC did. What cannot be
    converted is listed with its place in dvc.yaml.

    \b
    Example:
      mlmake import dvc
      mlmake import dvc path/to/dvc-project --force
    """
    from mlmake.importing import import_dvc

    root = (project_root(ctx) / directory).resolve()
    if not root.is_dir():
        raise MlmakeError(f"{directory}: no such directory")
    done = import_dvc(Path(root), force=force)
    conv = done.conversion
    for stage, step in conv.names.items():
        report.out(f"  {stage} → steps.{step}")
    if conv.changed:
        report.out("converted with a difference:")
        for note in conv.changed:
            report.out(f"  {note.render()}")
    if conv.skipped:
        report.out("not converted:")
        for note in conv.skipped:
            report.out(f"  {note.render()}")
    if done.status_problem:
        report.out(f"DVC's state not adopted ({done.status_problem}): every step is new")
    adoption = done.adoption
    steps = f"{len(conv.names)} step{'s' if len(conv.names) != 1 else ''}"
    report.out(f"wrote mlproject.yaml: {steps}; recorded {len(adoption.fresh)} up to date as "
               f"DVC sees them, {len(adoption.stale)} stale", "green")
