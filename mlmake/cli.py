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
    counts = {}
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
    target = (project_root(ctx) / directory).resolve()
    written = init_mod.create(target, template, force=force)
    report.out(f"created {len(written)} files in {target} from template '{template}'", "green")
    report.out(f"next: mlmake -C {directory} build" if directory != "." else "next: mlmake build")


def main() -> None:
    cli(prog_name="mlmake")
