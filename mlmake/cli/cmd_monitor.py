"""`mlmake monitor [NAME]`: the monitors brought up to date (a build of their nodes, its progress on
stderr) and their reports printed: drift per column, prediction drift, live quality."""

from __future__ import annotations

import contextlib
import json
import os
import sys

import click

from mlmake.cli import cli, env_option, load
from mlmake.core.errors import MlmakeError
from mlmake.outputs import report


@cli.command()
@click.argument("name", required=False, metavar="[NAME]")
@click.option("--json", "as_json", is_flag=True, help="The reports as JSON (a list, one per monitor).")
@env_option
@click.pass_context
def monitor(ctx: click.Context, name: str | None, as_json: bool, env: str | None) -> None:
    """Run the monitors (or the one NAME) on their current data and print their state.

    \b
    Examples:
      mlmake monitor
      mlmake monitor churn_live --json
    """
    from mlmake.building.options import Options
    from mlmake.building.runners import make_runner
    from mlmake.building.session import run_build
    from mlmake.outputs.monitoring import describe

    project, graph = load(ctx, env)
    names = sorted(a for a in graph.nodes if a.startswith("monitors."))
    if name is not None:
        wanted = f"monitors.{name.removeprefix('monitors.')}"
        if wanted not in names:
            known = ", ".join(n.split(".", 1)[1] for n in names) or "none"
            raise MlmakeError(f"no monitor '{name}' in mlproject.yaml (monitors: {known})")
        names = [wanted]
    if not names:
        raise MlmakeError("no monitors in mlproject.yaml: declare one under `monitors:` (see the README)")
    runner = make_runner(1, os.cpu_count() or 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # the build's progress; the reports go to stdout
            run_build(project, graph, Options(targets=tuple(names), env=env), runner, report.make_reporter())
    finally:
        runner.shutdown(cancel=False)
    reports = [_read(str(project.root), n) for n in names]
    if as_json:
        report.out(json.dumps(reports, indent=2, sort_keys=True))
        return
    for r in reports:
        for line in describe(r):
            report.out(line)


def _read(root: str, address: str) -> dict[str, object]:
    path = os.path.join(root, "build", *address.split(".", 1), "report.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise MlmakeError(f"cannot read the report of {address} at {os.path.relpath(path, root)}: {exc}") from None
    return data if isinstance(data, dict) else {}
