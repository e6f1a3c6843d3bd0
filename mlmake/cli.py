"""Thin click commands; the one place errors become exit codes."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from mlmake import __version__, report
from mlmake.errors import MlmakeError

EXIT_INTERNAL = 3


class _Group(click.Group):
    """Turns MlmakeError into a message and an exit code; a bug into exit 3."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MlmakeError as exc:
            report.err(exc.render(), "red")
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            report.err("interrupted")
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            report.err(f"mlmake {__version__}: internal error: {type(exc).__name__}: {exc}", "red")
            if os.environ.get("MLMAKE_DEBUG"):
                traceback.print_exc()
            else:
                report.err("this is a bug in mlmake; rerun with MLMAKE_DEBUG=1 for the traceback and report it")
            sys.exit(EXIT_INTERNAL)


def project_root(ctx: click.Context) -> Path:
    return Path(ctx.obj["root"]).resolve()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-C", "directory", type=click.Path(file_okay=False), default=".",
              help="Run as if mlmake was started in DIR.", metavar="DIR")
@click.version_option(__version__, "--version", prog_name="mlmake")
@click.pass_context
def cli(ctx: click.Context, directory: str) -> None:
    """mlmake: make for machine learning.

    Reads mlproject.yaml, builds the dependency graph of datasets, feature sets,
    models, steps and deploy targets, and rebuilds only what is stale.

    \b
    Exit codes: 0 success, 1 user error (bad file, failed node, gate),
    2 changes pending (plan --detailed-exitcode), 3 internal error, 130 interrupted.
    """
    if not Path(directory).is_dir():
        raise MlmakeError(f"-C {directory}: no such directory")
    ctx.obj = {"root": directory}


def env_option(f: Any) -> Any:
    return click.option("--env", "env", metavar="NAME", help="Apply the environment overlay NAME.")(f)


def param_option(f: Any) -> Any:
    return click.option("-P", "params", multiple=True, metavar="KEY=VALUE",
                        help="Override a param (seed=7) or any key (models.m.params.max_depth=8).")(f)


def load(ctx: click.Context, env: str | None = None, params: tuple[str, ...] = ()) -> Any:
    """The project and its graph, every problem reported at once."""
    from mlmake.graph import build_graph
    from mlmake.resolve import parse_override
    from mlmake.spec import load_project

    overrides = tuple(parse_override(p) for p in params)
    project = load_project(project_root(ctx), env, overrides)
    return project, build_graph(project)


@cli.command()
@env_option
@param_option
@click.pass_context
def validate(ctx: click.Context, env: str | None, params: tuple[str, ...]) -> None:
    """Check mlproject.yaml and its references; print every error.

    \b
    Example:
      mlmake validate
      mlmake -C examples/churn validate --env prod
    """
    project, graph = load(ctx, env, params)
    counts: dict[str, int] = {}
    for address in graph.nodes:
        section = address.split(".", 1)[0]
        counts[section] = counts.get(section, 0) + 1
    detail = ", ".join(f"{n} {s}" for s, n in counts.items())
    report.out(f"{project.file} is valid: {len(graph.nodes)} nodes ({detail or 'none'})", "green")


@cli.command()
def schema() -> None:
    """Print the JSON Schema of mlproject.yaml.

    \b
    Example:
      mlmake schema > mlproject.schema.json
    """
    from mlmake.schema import data_dir

    sys.stdout.write((data_dir() / "schemas" / "mlproject.schema.json").read_text(encoding="utf-8"))


@cli.command()
@click.argument("directory", required=False, default=".", metavar="[DIR]")
@click.option("--template", "-t", default="binary", show_default=True, help="Template name.")
@click.option("--list", "list_", is_flag=True, help="List the templates and exit.")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@click.pass_context
def init(ctx: click.Context, directory: str, template: str, list_: bool, force: bool) -> None:
    """Create a new project in DIR from a template.

    \b
    Example:
      mlmake init my-project --template regression
    """
    from mlmake import init as init_mod

    if list_:
        for name, summary in init_mod.templates().items():
            report.out(f"{name:12} {summary}")
        return
    from mlmake.spec import load_project

    target = (project_root(ctx) / directory).resolve()
    written = init_mod.create(target, template, force=force)
    report.out(f"created {len(written)} files in {target} from template '{template}'", "green")
    if init_mod.ensure_git(target):
        report.out("initialized a git repository")
    project = load_project(target)
    store = _store(project)
    try:
        store.ensure()
    finally:
        store.close()
    report.out(f"DVC is set up: remote 'mlmake' at {project.remote.url}")
    report.out(f"next: {_command_in(target)} build")


def _command_in(target: Path) -> str:
    """`mlmake` with the -C that reaches target from the user's working directory."""
    import shlex

    here = Path.cwd().resolve()
    if target == here:
        return "mlmake"
    where = target.relative_to(here) if target.is_relative_to(here) else target
    return f"mlmake -C {shlex.quote(str(where))}"


def main() -> None:
    cli(prog_name="mlmake")


def planning(ctx: click.Context, env: str | None, params: tuple[str, ...], targets: tuple[str, ...],
             force: bool = False, downstream: bool = False) -> Any:
    """Load the project and plan it against the lock and the workspace."""
    from mlmake.fingerprint import Hasher
    from mlmake.lock import read_lock
    from mlmake.plan import make_plan
    from mlmake.restore import LocalCache

    project, graph = load(ctx, env, params)
    lock = read_lock(project.root)
    hasher = Hasher(project.root)
    plan = make_plan(graph, lock, hasher, targets, force=force, downstream=downstream,
                     cache=LocalCache(project.root))
    hasher.save()
    return project, graph, lock, plan


def targets_argument(f: Any) -> Any:
    return click.argument("targets", nargs=-1, metavar="[TARGET]...")(f)


def downstream_option(f: Any) -> Any:
    return click.option("--downstream", is_flag=True, help="Also every node downstream of the targets.")(f)


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
    from mlmake import render

    project, graph, lock, result = planning(ctx, env, params, targets, force, downstream)
    if base and fmt != "markdown":
        raise MlmakeError("--base goes with --format markdown (a pull-request comment)")
    if base:
        sys.stdout.write(_pr_comment(project, graph, lock, result, base))
    elif fmt == "json":
        sys.stdout.write(render.plan_json(result, project.project))
    elif fmt == "markdown":
        sys.stdout.write(render.plan_markdown(result, graph, project.project))
    else:
        for line, style in render.plan_lines(result):
            report.out(line, style)
    if detailed_exitcode and result.has_changes:
        sys.exit(2)


def _pr_comment(project: Any, graph: Any, lock: Any, result: Any, base: str) -> str:
    from mlmake import diff, history, runs
    from mlmake.plan import RESTORE
    from mlmake.prreport import pr_markdown
    from mlmake.restore import LocalCache

    cache = LocalCache(project.root)
    current = diff.Snapshot("this branch")
    for step in result.steps:
        entry = lock.get(step.address)
        if step.action in ("fresh", "absent") and entry:
            current.metrics[step.address] = entry.metrics
        elif step.action == RESTORE and (hit := cache.hit(step.fingerprint)):
            current.metrics[step.address] = hit.metrics
        if step.components:
            current.configs[step.address] = dict(step.components.get("config") or {})
    durations: dict[str, float] = {}
    for rec in reversed(runs.history(project.root, limit=100_000)):
        if rec.status == "built":
            durations[rec.node] = rec.duration
    baseline = history.from_lock(history.lock_at(project.root, base), base)
    return pr_markdown(result, graph, project.project, baseline, current, durations)


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
    from mlmake import render

    _, graph, lock, result = planning(ctx, env, params, ())
    address = graph.resolve_target(node)
    step = next(s for s in result.steps if s.address == address)
    entry = lock.get(address)
    recorded = {"fingerprint": entry.fingerprint, "components": entry.components} if entry else None
    for line in render.why_lines(step, recorded):
        report.out(line)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid", "dot"]), default="text",
              show_default=True, help="Output format.")
@env_option
@param_option
@click.pass_context
def graph(ctx: click.Context, fmt: str, env: str | None, params: tuple[str, ...]) -> None:
    """Print the dependency graph.

    \b
    Examples:
      mlmake graph
      mlmake graph --format dot | dot -Tsvg > graph.svg
    """
    from mlmake import render

    _, g = load(ctx, env, params)
    text = {"text": render.graph_text, "mermaid": render.mermaid, "dot": render.dot}[fmt](g)
    sys.stdout.write(text)


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

    from mlmake import runs

    project, _, _, result = planning(ctx, env, params, ())
    last = {r.node: r for r in reversed(runs.history(project.root, limit=100_000))}
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

    from mlmake import runs

    records = runs.history(project_root(ctx), node, limit if not sort_by else 100_000)
    if sort_by:
        scored = [r for r in records if isinstance(r.metrics.get(sort_by), (int, float))]
        scored.sort(key=lambda r: float(r.metrics[sort_by]), reverse=not ascending)
        records = scored[:limit]
    if as_json:
        sys.stdout.write(json.dumps([dataclasses.asdict(r) for r in records], indent=2) + "\n")
        return
    if not records:
        report.out("no runs recorded yet (run `mlmake build`)" if not sort_by else f"no run has the metric {sort_by}")
        return
    for r in records:
        report.out(_run_line(r))


def _run_line(r: Any) -> str:
    import time as _time

    when = _time.strftime("%Y-%m-%d %H:%M:%S", _time.localtime(r.started))
    metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.metrics.items())
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

    from mlmake import runs

    records = runs.by_run(project_root(ctx), run_id)
    if not records:
        raise MlmakeError(f"no run '{run_id}' (or the prefix is ambiguous); see `mlmake runs`")
    if as_json:
        sys.stdout.write(json.dumps([dataclasses.asdict(r) for r in records], indent=2) + "\n")
        return
    first = records[0]
    report.out(f"run {first.run_id}  commit {first.git_commit or '-'}  env {first.env or '-'}  "
               f"overrides {' '.join(first.overrides) or '-'}")
    for r in records:
        report.out(_run_line(r))
        for key, value in sorted(r.params.items()):
            report.out(f"    param  {key} = {value}")
        for path, digest in sorted(r.inputs.items()):
            report.out(f"    input  {path} {digest if isinstance(digest, str) else json.dumps(digest)}")
        if r.message:
            report.out(f"    error  {r.message.splitlines()[0]}")


def _diff_command(what: str) -> Any:
    @click.command("diff")
    @click.argument("ref", default="HEAD", metavar="[REV|RUN]")
    @click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
                  show_default=True)
    @click.option("--all", "every", is_flag=True, help="Include unchanged values.")
    @click.pass_context
    def command(ctx: click.Context, ref: str, fmt: str, every: bool) -> None:
        from mlmake import diff, history
        from mlmake.lock import read_lock
        from mlmake.spec import find_project_file

        root = project_root(ctx)
        find_project_file(root)
        old = history.snapshot(root, ref)
        new = history.from_lock(read_lock(root), "workspace")
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



@cli.command()
@targets_argument
@env_option
@click.pass_context
def push(ctx: click.Context, targets: tuple[str, ...], env: str | None) -> None:
    """Upload built artifacts and their run-cache entries to the DVC remote.

    \b
    Examples:
      mlmake push
      mlmake push models.churn --env prod
    """
    from mlmake import transfer

    project, graph = load(ctx, env)
    store = _store(project)
    try:
        files, nodes = transfer.push(project.root, graph, targets, store, report.warn_line)
    finally:
        store.close()
    report.out(f"pushed {files} file(s) for {nodes} node(s) to remote 'mlmake' ({project.remote.url})", "green")


@cli.command()
@targets_argument
@env_option
@click.pass_context
def pull(ctx: click.Context, targets: tuple[str, ...], env: str | None) -> None:
    """Download the artifacts mlproject.lock names (and run-cache entries) from the DVC remote.

    \b
    Examples:
      mlmake pull
      mlmake pull models.churn
    """
    from mlmake import transfer

    project, graph = load(ctx, env)
    store = _store(project)
    try:
        restored, missing = transfer.pull(project.root, graph, targets, store, report.warn_line)
    finally:
        store.close()
    report.out(f"pulled {len(restored)} node(s) from remote 'mlmake' ({project.remote.url})", "green")
    if missing:
        report.out(f"not restored (build them): {', '.join(missing)}", "yellow")


def _store(project: Any) -> Any:
    from mlmake.remote import Store

    return Store(project.root, project.remote.url, project.remote.options)


@cli.group()
def data() -> None:
    """Raw data under DVC."""


@data.command("add")
@click.argument("paths", nargs=-1, required=True)
@click.pass_context
def data_add(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Track raw data with DVC: writes PATH.dvc beside it and git-ignores the data.

    \b
    Example:
      mlmake data add data/customers.csv data/events.csv
    """
    from mlmake.spec import load_project, path_problem

    root = project_root(ctx)
    for p in paths:
        problem = path_problem(p)
        if problem:
            raise MlmakeError(problem)
        if not (root / p).exists():
            raise MlmakeError(f"{p}: no such file or folder in {root}")
    store = _store(load_project(root))
    try:
        written = store.add_data(paths)
    finally:
        store.close()
    report.out(f"tracking {len(written)} path(s) with DVC: {', '.join(written)} (commit them)", "green")
