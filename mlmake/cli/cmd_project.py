"""Commands about the file itself: validate, schema, init, graph."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mlmake.cli import (
    cli,
    env_option,
    load,
    open_store,
    param_option,
    project_root,
)
from mlmake.outputs import report


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
    """Print the JSON Schema of mlproject.yaml, with the kinds installed here (plugins included).

    \b
    Example:
      mlmake schema > mlproject.schema.json
    """
    from mlmake.core.schema import published_schema, schema_text

    sys.stdout.write(schema_text(published_schema()))


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
    from mlmake.core import init as init_mod

    if list_:
        for name, summary in init_mod.templates().items():
            report.out(f"{name:12} {summary}")
        return
    from mlmake.core.spec import load_project

    target = (project_root(ctx) / directory).resolve()
    written = init_mod.create(target, template, force=force)
    report.out(f"created {len(written)} files in {target} from template '{template}'", "green")
    if init_mod.ensure_git(target):
        report.out("initialized a git repository")
    project = load_project(target)
    store = open_store(project)
    try:
        store.ensure()
    finally:
        store.close()
    report.out(f"DVC is set up: remote 'mlmake' at {store.url}")
    report.out(f"next: {_command_in(target)} build")


def _command_in(target: Path) -> str:
    """`mlmake` with the -C that reaches target from the user's working directory."""
    import shlex

    here = Path.cwd().resolve()
    if target == here:
        return "mlmake"
    where = target.relative_to(here) if target.is_relative_to(here) else target
    return f"mlmake -C {shlex.quote(str(where))}"


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
    from mlmake.outputs import render

    _, g = load(ctx, env, params)
    text = {"text": render.graph_text, "mermaid": render.mermaid, "dot": render.dot}[fmt](g)
    sys.stdout.write(text)
