"""`mlmake build`."""

from __future__ import annotations

import os

import click

from mlmake import report
from mlmake.cli import (
    cli,
    downstream_option,
    env_option,
    load,
    param_option,
    targets_argument,
)


@cli.command()
@targets_argument
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Nodes to run in parallel (each gets cores/N threads).")
@click.option("--force", is_flag=True, help="Rebuild the targets even if up to date.")
@click.option("--keep-going", "-k", is_flag=True, help="Go on with independent nodes after a failure.")
@downstream_option
@click.option("--pull", "pull", is_flag=True, help="Fetch what the DVC remote has; build the rest.")
@click.option("--baseline", metavar="REV", help="Git revision whose lock relative gates compare against "
              "(default: HEAD).")
@env_option
@param_option
@click.pass_context
def build(ctx: click.Context, targets: tuple[str, ...], jobs: int, force: bool, keep_going: bool,
          downstream: bool, pull: bool, baseline: str | None, env: str | None, params: tuple[str, ...]) -> None:
    """Build what is stale: the targets (default: everything) and what they need.

    \b
    Examples:
      mlmake build
      mlmake build models.churn -j 2
      mlmake build -P models.churn.params.max_depth=8 --env dev
    """
    from mlmake.execute import Builder, Options
    from mlmake.runners import make_runner

    project, graph = load(ctx, env, params)
    options = Options(targets, jobs, force, keep_going, downstream, env, params, pull, baseline)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    runner = make_runner(jobs, threads)
    try:
        Builder(project, graph, options, runner, report.make_reporter()).build()
    finally:
        runner.shutdown(cancel=False)
