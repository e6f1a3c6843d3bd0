"""Thin click commands; the one place errors become exit codes."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from mlmake import __version__
from mlmake.core import terminal
from mlmake.core.errors import MlmakeError
from mlmake.outputs import report

if TYPE_CHECKING:  # imported where used: a command loads only what it needs
    from mlmake.core.graph import Graph
    from mlmake.core.spec import Project
    from mlmake.planning.plan import Plan
    from mlmake.remote.dvcstore import Store
    from mlmake.state.lock import Lock
    from mlmake.state.remotecache import RemoteCache

Command = TypeVar("Command", bound=Callable[..., Any])  # a click command function, as a decorator returns it

EXIT_INTERNAL = 3
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `git log | head`


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
            if isinstance(exc, BrokenPipeError) and terminal.is_closed(sys.stdout):
                stop_quietly()

            from mlmake.core.workdir import environment_failure

            message = environment_failure(exc)  # the machine's state, not a bug: exit 1 with a fix
            if message is not None:
                report.err(message, "red")
                sys.exit(1)
            report.err(f"mlmake {__version__}: internal error: {type(exc).__name__}: {exc}", "red")
            if os.environ.get("MLMAKE_DEBUG"):
                import traceback

                traceback.print_exc()
            else:
                report.err("this is a bug in mlmake; rerun with MLMAKE_DEBUG=1 for the traceback and report it")
            sys.exit(EXIT_INTERNAL)


def stop_quietly() -> NoReturn:
    """The reader of our output went away (`mlmake plan | head -1`): stop as git does, saying nothing.

    Exit 141 (a shell's code for a pipe writer ended by SIGPIPE), not 0: the command did not
    finish, and a `build | head` may have stopped mid-build."""
    terminal.discard(sys.stdout)
    if terminal.is_closed(sys.stderr):  # `mlmake build 2>&1 | head -1`
        terminal.discard(sys.stderr)
    sys.exit(EXIT_CLOSED_PIPE)


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
    2 changes pending (plan --detailed-exitcode), 3 internal error, 130 interrupted,
    141 output closed early (`mlmake plan | head -1`).
    """
    if not Path(directory).is_dir():
        raise MlmakeError(f"-C {directory}: no such directory")
    ctx.obj = {"root": directory}


def env_option(f: Command) -> Command:
    return click.option("--env", "env", metavar="NAME", help="Apply the environment overlay NAME.")(f)


def param_option(f: Command) -> Command:
    return click.option("-P", "params", multiple=True, metavar="KEY=VALUE",
                        help="Override a param (seed=7) or any key (models.m.params.max_depth=8).")(f)


def targets_argument(f: Command) -> Command:
    return click.argument("targets", nargs=-1, metavar="[TARGET]...")(f)


def downstream_option(f: Command) -> Command:
    return click.option("--downstream", is_flag=True, help="Also every node downstream of the targets.")(f)


def load(ctx: click.Context, env: str | None = None, params: tuple[str, ...] = ()) -> tuple[Project, Graph]:
    """The project and its graph, every problem reported at once."""
    from mlmake.core.graph import build_graph
    from mlmake.core.resolve import parse_override
    from mlmake.core.spec import load_project

    overrides = tuple(parse_override(p) for p in params)
    project = load_project(project_root(ctx), env, overrides)
    return project, build_graph(project)


def plan_project(ctx: click.Context, env: str | None, params: tuple[str, ...], targets: tuple[str, ...],
             force: bool = False, downstream: bool = False) -> tuple[Project, Graph, Lock, Plan]:
    """Load the project and plan it against the lock and the workspace. What the plan read is
    left in ctx.obj["seen"] (see mlmake.core.memo): each file is noted before it is read."""
    from mlmake.core import memo
    from mlmake.core.memo import Seen
    from mlmake.core.spec import PROJECT_FILE
    from mlmake.planning.plan import make_plan
    from mlmake.state.approvals import APPROVALS_FILE
    from mlmake.state.hashing import Hasher
    from mlmake.state.lock import LOCK_FILE, read_lock

    seen = Seen()
    root = project_root(ctx)
    seen.note(root / PROJECT_FILE)
    seen.note(root / LOCK_FILE)
    seen.note(root / APPROVALS_FILE)  # plan says where targets that need approvals stand
    memo.collect(seen)  # the import analysis of code files notes what it reads while the graph is built
    try:
        project, graph = load(ctx, env, params)
    finally:
        memo.collect(None)
    lock = read_lock(project.root)
    hasher = Hasher(project.root)
    plan = make_plan(graph, lock, hasher, targets, force=force, downstream=downstream,
                     cache=remote_cache(project, seen.note))
    hasher.save()
    seen.update(hasher.seen)
    ctx.obj["seen"] = seen
    for note in hasher.unrecorded_notes():  # a plan that warns is not kept (see mlmake.core.memo)
        terminal.warn_line(note)
    return project, graph, lock, plan


def refuse_unresolved(project: Project, graph: Graph, targets: tuple[str, ...], downstream: bool = False) -> None:
    """A deploy target to plan or build that follows a registry version that does not exist
    (a stage never assigned, an unknown version) is a located error."""
    from mlmake.core.errors import SpecError
    from mlmake.kinds.follow import follow_problems

    problems = follow_problems(project, graph.nodes, graph.select(targets, downstream=downstream))
    if problems:
        raise SpecError(problems)


def remote_cache(project: Project, note: Callable[[Path], None] | None = None) -> RemoteCache:
    """What plan may promise about restoring: checked by stat on a local remote; each path it
    reads or stats is handed to note first (the plan memo's Seen.note)."""
    from mlmake.state.remotecache import RemoteCache, locate

    remote = project.remote
    location = locate(project.root, remote.url if remote else None, remote.options if remote else None)
    return RemoteCache(project.root, location, note)


def open_store(project: Project) -> Store:
    from mlmake.remote.dvcstore import Store

    return Store.of(project, terminal.warn_line)


def _terminate(signum: int, frame: object) -> None:
    # a CI cancel or `kill PID`: stop like Ctrl-C, so a running command is stopped too
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    import gc
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    # a short-lived process that builds many small objects: collecting them costs more
    # than it frees (a third of a 10 000-node plan's time)
    gc.set_threshold(100_000, 50, 100)
    cli(args=argv, prog_name="mlmake")


# the commands register themselves on `cli` when imported
from mlmake.cli import (  # noqa: E402,F401
    cmd_building,
    cmd_experiments,
    cmd_governance,
    cmd_import,
    cmd_planning,
    cmd_project,
    cmd_registry,
    cmd_remote,
    cmd_report,
)
