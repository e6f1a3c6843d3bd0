"""`mlmake build` and `mlmake serve`: making things and running what was made."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mlmake.cli import (
    cli,
    downstream_option,
    env_option,
    load,
    param_option,
    project_root,
    refuse_unresolved,
    targets_argument,
)
from mlmake.outputs import report


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
@click.option("--check-determinism", is_flag=True, help="Compute each feature set twice and fail where the "
              "two tables differ (a python hook that is not deterministic); implies --force.")
@click.option("--scheduler", metavar="ADDRESS", envvar="MLMAKE_SCHEDULER",
              help="Run the nodes on a Dask cluster, its scheduler at ADDRESS (tcp://HOST:8786); also "
              "$MLMAKE_SCHEDULER, or `runner:` in the --env environment. Needs pip install 'mlmake[dask]'.")
@click.option("--shared-fs", is_flag=True, help="With --scheduler: the workers see the project at this same "
              "path (a shared file system), so nothing goes through the remote.")
@env_option
@param_option
@click.pass_context
def build(ctx: click.Context, targets: tuple[str, ...], jobs: int, force: bool, keep_going: bool,
          downstream: bool, pull: bool, baseline: str | None, check_determinism: bool, scheduler: str | None,
          shared_fs: bool, env: str | None, params: tuple[str, ...]) -> None:
    """Build what is stale: the targets (default: everything) and what they need.

    \b
    Examples:
      mlmake build
      mlmake build models.churn -j 2
      mlmake build -P models.churn.params.max_depth=8 --env dev
      mlmake build --check-determinism features.customer_features
      mlmake build --scheduler tcp://dask-scheduler:8786
    """
    from mlmake.building import cluster
    from mlmake.building.options import Options
    from mlmake.building.runners import make_runner
    from mlmake.building.seams import Runner
    from mlmake.building.session import run_build
    from mlmake.core.init import ensure_gitignore
    from mlmake.ml.tables import checking_determinism

    project, graph = load(ctx, env, params)
    refuse_unresolved(project, graph, targets, downstream)
    setting = cluster.setting(project, env, scheduler, shared_fs)
    if setting is not None and check_determinism:
        raise click.UsageError("--check-determinism runs on this machine only: leave out the scheduler")
    if ensure_gitignore(project.root):
        report.out("wrote .gitignore: build/ and .mlmake/ are never committed (commit mlproject.lock and "
                   ".mlmake-artifacts/)")
    reporter = report.make_reporter(project.root / ".mlmake" / "logs")
    runner: Runner
    if setting is not None:
        runner = dask = cluster.make_runner(project.root, graph, setting, cluster.remote_url(project),
                                            reporter.node_placed)
        if ctx.get_parameter_source("jobs") != click.core.ParameterSource.COMMANDLINE:
            jobs = dask.slots()
    else:
        runner = make_runner(jobs, max(1, (os.cpu_count() or 1) // jobs))
    options = Options(targets=targets, jobs=jobs, force=force or check_determinism, keep_going=keep_going,
                      downstream=downstream, env=env, overrides=params, pull=pull, baseline=baseline)
    with checking_determinism(check_determinism):
        try:
            run_build(project, graph, options, runner, reporter)
        finally:
            runner.shutdown(cancel=False)


@cli.command()
@click.argument("deploy", metavar="DEPLOY")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; loopback unless you mean to expose it.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--token-env", default="MLMAKE_SERVE_TOKEN", show_default=True, metavar="VAR",
              help="When this environment variable is set, every request (but GET /health) needs "
                   "'Authorization: Bearer <its value>'.")
@click.option("--log", "log_file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="JSONL log of predictions and feedback [default: .mlmake/serve/DEPLOY/predictions.jsonl].")
@click.option("--log-max-bytes", type=click.IntRange(min=1), default=100 * 1024 * 1024, show_default=True,
              metavar="BYTES", help="Rotate the log to FILE.1 (… FILE.10) before it grows past this.")
@click.option("--max-body", "max_body", type=click.IntRange(min=1), default=16 * 1024 * 1024, show_default=True,
              metavar="BYTES", help="Refuse larger request bodies (413).")
@click.option("--private-health", is_flag=True,
              help="GET /health needs the token too (by default it answers load balancers without it).")
@click.pass_context
def serve(ctx: click.Context, deploy: str, host: str, port: int, token_env: str, log_file: str | None,
          log_max_bytes: int, max_body: int, private_health: bool) -> None:
    """Serve an http deploy target as a web service until Ctrl-C.

    \b
    POST /predict   one row {"col": value, ...}, a batch {"rows": [...]} or [...],
                    or an entity key {"customer_id": 17} / {"key": 17}
    POST /feedback  {"prediction_id": "...", "label": ...}
    GET  /health, GET /metadata
    A rebuilt bundle (`mlmake build`) is picked up while serving.

    \b
    Example:
      mlmake build deploy.churn_api && mlmake serve churn_api
      curl -s localhost:8000/predict -d '{"customer_id": 17}'
    """
    from mlmake.serve.server import serve as run_service

    run_service(project_root(ctx), deploy, host, port, token_env=token_env,
                log=Path(log_file) if log_file else None, max_body_bytes=max_body, public_health=not private_health,
                log_max_bytes=log_max_bytes)
