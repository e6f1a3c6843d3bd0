"""The report command: one offline HTML file with the plots reviewers read."""

from __future__ import annotations

import click

from mlmake.cli import cli, env_option, param_option, plan_project, remote_cache, targets_argument
from mlmake.outputs import report as out


@cli.command("report")
@targets_argument
@click.option("-o", "--output", default="build/mlmake-report.html", show_default=True, metavar="FILE",
              help="The HTML file to write (relative to the project).")
@click.option("--base", metavar="REV", help="Overlay the curves and compare the gates with the build committed "
              "at this git revision.")
@env_option
@param_option
@click.pass_context
def report(ctx: click.Context, targets: tuple[str, ...], output: str, base: str | None, env: str | None,
           params: tuple[str, ...]) -> None:
    """Write an offline HTML report of what is built, with its plots.

    Per model its curves, confusion matrix or residuals, calibration, feature importance,
    metrics per slice and over the run history, and its gates; the graph with each node's
    state; the data contracts. The file opens offline (no request leaves the page) and draws
    what the build recorded: nothing retrains. Needs pip install 'mlmake[report]'.

    \b
    Examples:
      mlmake report
      mlmake report models.churn_xgb -o churn.html
      mlmake report --base origin/main     # the base branch's curves overlaid
    """
    from mlmake.reporting.compose import make_report

    project, graph, lock, plan = plan_project(ctx, env, params, ())
    stores = tuple(dict.fromkeys(remote_cache(project).stores))
    written = make_report(project.root, project.project, graph, lock, plan, targets, output, base, stores)
    models = len(written.report.models)
    out.out(f"wrote {output} ({models} model{'s' if models != 1 else ''}, {len(written.specs)} charts, "
            f"{written.size / 1e6:.1f} MB)")
