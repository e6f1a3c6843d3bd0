"""Commands that move data and artifacts: push, pull, data add."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mlmake.cli import (
    cli,
    env_option,
    load,
    open_store,
    project_root,
    targets_argument,
)
from mlmake.core import terminal
from mlmake.core.errors import MlmakeError
from mlmake.core.workdir import BuildLock
from mlmake.outputs import report

if TYPE_CHECKING:
    from mlmake.core.spec import Project
    from mlmake.remote.dvcstore import Store


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
    from mlmake.remote import transfer

    project, graph = load(ctx, env)
    store = open_store(project)
    try:
        with BuildLock(project.root):  # it may write pointers and run-cache entries
            files, nodes = transfer.push(project.root, graph, targets, store, terminal.warn_line)
    finally:
        store.close()
    report.out(f"pushed {files} file(s) for {nodes} node(s) to remote 'mlmake' ({store.url})", "green")


@cli.command()
@targets_argument
@env_option
@click.pass_context
def pull(ctx: click.Context, targets: tuple[str, ...], env: str | None) -> None:
    """Download the artifacts mlproject.lock names (and run-cache entries) from the DVC remote.

    MODEL@STAGE or MODEL@vX.Y.Z brings back a registered version's outputs instead (by the
    hashes its git tag records) into .mlmake/registry/, where deploy targets following it read them.

    \b
    Examples:
      mlmake pull
      mlmake pull models.churn
      mlmake pull churn@production
    """
    from mlmake.remote import transfer

    versions = tuple(t for t in targets if "@" in t)
    project, graph = load(ctx, env)
    store = open_store(project)
    try:
        with BuildLock(project.root):  # it writes the workspace: never beside a build
            if versions:
                _pull_versions(project, versions, store)
            if versions and len(versions) == len(targets):
                return
            restored, missing = transfer.pull(project.root, graph, tuple(t for t in targets if "@" not in t),
                                              store, terminal.warn_line)
    finally:
        store.close()
    report.out(f"pulled {len(restored)} node(s) from remote 'mlmake' ({store.url})", "green")
    if missing:
        report.out(f"not restored (build them): {', '.join(missing)}", "yellow")


def _pull_versions(project: Project, versions: tuple[str, ...], store: Store) -> None:
    """Each registered version named brought back into .mlmake/registry/ (from the remote where needed)."""
    from mlmake.kinds.follow import followed_version, split_model
    from mlmake.remote.versions import bring_back

    for wanted in versions:
        name, selector = split_model(wanted.removeprefix("models."))
        config = followed_version(project.root, name, selector or "")
        if config.get("problem"):
            raise MlmakeError(f"{wanted}: {config['problem']}; {config['hint']}")
        brought = bring_back(project.root, config, store, terminal.warn_line)
        where = str(config["folder"])
        state = "pulled" if brought else "already here:"
        report.out(f"{state} {name} {config['version']} (fingerprint {str(config['fingerprint'])[:8]}) in {where}",
                   "green")


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
    from mlmake.core.spec import load_project, path_problem

    root = project_root(ctx)
    for p in paths:
        problem = path_problem(p)
        if problem:
            raise MlmakeError(problem)
        if not (root / p).exists():
            raise MlmakeError(f"{p}: no such file or folder in {root}")
    store = open_store(load_project(root))
    try:
        with BuildLock(root):  # a build reading the data must not see it change under it
            written = store.add_data(paths)
    finally:
        store.close()
    report.out(f"tracking {len(written)} path(s) with DVC: {', '.join(written)} (commit them)", "green")
