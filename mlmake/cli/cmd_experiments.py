"""Experiment records: runs, metrics diff, params diff."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from mlmake.cli import (
    cli,
    project_root,
)
from mlmake.core import terminal
from mlmake.core.errors import MlmakeError
from mlmake.outputs import report

if TYPE_CHECKING:
    from mlmake.state.records import Record


@cli.group(name="runs", invoke_without_command=True)
@click.option("--node", help="Only the runs of this node.")
@click.option("--sort", "sort_by", metavar="METRIC", help="Sort by a metric, best (highest) first.")
@click.option("--ascending", is_flag=True, help="With --sort: lowest first (for losses).")
@click.option("--limit", default=20, show_default=True, help="How many records to show.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def runs_cmd(ctx: click.Context, node: str | None, sort_by: str | None, ascending: bool, limit: int,
             as_json: bool) -> None:
    """The history of node runs: status, duration, params and metrics.

    \b
    Examples:
      mlmake runs
      mlmake runs --node models.churn --sort auc
      mlmake runs show 20261126-1947
    """
    if ctx.invoked_subcommand is not None:
        return
    import dataclasses
    import json

    from mlmake.state import records

    found = records.history(project_root(ctx), node, limit if not sort_by else 100_000)
    if sort_by:
        scored = [r for r in found if isinstance(r.metrics.get(sort_by), (int, float))]
        scored.sort(key=lambda r: float(r.metrics[sort_by]), reverse=not ascending)
        found = scored[:limit]
    if as_json:
        sys.stdout.write(json.dumps([dataclasses.asdict(r) for r in found], indent=2) + "\n")
        return
    if not found:
        report.out("no runs recorded yet (run `mlmake build`)" if not sort_by else f"no run has the metric {sort_by}")
        return
    for r in found:
        report.out(_run_line(r))


def _run_line(r: Record) -> str:
    import time as _time

    when = _time.strftime("%Y-%m-%d %H:%M:%S", _time.localtime(r.started))
    metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.metrics.items()
                        if not isinstance(v, dict))  # slice metrics: `runs show`
    return f"{when}  {r.run_id}  {r.status:<8} {r.node:<28} {r.duration:7.2f}s  {metrics}"


@runs_cmd.command("show")
@click.argument("run_id", metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def runs_show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Every node of one run: params, metrics, data hashes, timings, commit.

    \b
    Example:
      mlmake runs show 20261126-194754
    """
    import dataclasses
    import json

    from mlmake.state import records

    found = records.by_run(project_root(ctx), run_id)
    if not found:
        raise MlmakeError(f"no run '{run_id}' (or the prefix is ambiguous); see `mlmake runs`")
    if as_json:
        sys.stdout.write(json.dumps([dataclasses.asdict(r) for r in found], indent=2) + "\n")
        return
    first = found[0]
    report.out(f"run {first.run_id}  commit {first.git_commit or '-'}  env {first.env or '-'}  "
               f"overrides {' '.join(first.overrides) or '-'}")
    for r in found:
        report.out(_run_line(r))
        for key, value in sorted(r.params.items()):
            report.out(f"    param  {key} = {value}")
        for path, digest in sorted(r.inputs.items()):
            report.out(f"    input  {path} {digest if isinstance(digest, str) else json.dumps(digest)}")
        if r.message:
            report.out(f"    error  {r.message.splitlines()[0]}")


def _diff_command(what: str) -> click.Command:
    @click.command("diff")
    @click.argument("ref", default="HEAD", metavar="[REV|RUN]")
    @click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
                  show_default=True)
    @click.option("--all", "every", is_flag=True, help="Include unchanged values.")
    @click.pass_context
    def command(ctx: click.Context, ref: str, fmt: str, every: bool) -> None:
        from mlmake.core.spec import find_project_file
        from mlmake.outputs import diff, history

        root = project_root(ctx)
        find_project_file(root)
        old = history.snapshot(root, ref)
        new = history.workspace(root)
        for note in (old.note, new.note):
            if note:
                terminal.warn_line(note)
        pick = diff.metric_deltas if what == "metrics" else diff.param_deltas
        deltas = pick(old, new, every=every)
        if fmt == "json":
            sys.stdout.write(diff.as_json(deltas, old.label, new.label))
        elif fmt == "markdown":
            sys.stdout.write(diff.as_markdown(deltas, old.label, new.label, what))
        else:
            sys.stdout.write(diff.as_text(deltas, old.label, new.label, what))

    command.help = (f"Compare the workspace's {what} with a git revision's mlproject.lock or a recorded run."
                    f"\n\n\b\nExamples:\n  mlmake {what} diff main\n  mlmake {what} diff HEAD~1 --format markdown"
                    f"\n  mlmake {what} diff 20261126-194754")
    return command


@cli.group()
def metrics() -> None:
    """Metrics of what was built."""


@cli.group()
def params() -> None:
    """Parameters (resolved node configuration) of what was built."""


metrics.add_command(_diff_command("metrics"))


params.add_command(_diff_command("params"))
