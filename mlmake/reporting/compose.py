"""The report from a planned project: gather what the build left, draw it, write one file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlmake.core.errors import MlmakeError
from mlmake.core.graph import Graph
from mlmake.core.spec import PROJECT_FILE
from mlmake.core.workdir import write_atomic
from mlmake.planning.plan import Plan
from mlmake.reporting import bundle, charts, page
from mlmake.reporting.base import open_base
from mlmake.reporting.gather import Report, gather
from mlmake.state.lock import LOCK_FILE, Lock


@dataclass(frozen=True)
class Written:
    path: Path
    report: Report
    specs: dict[str, charts.Spec]
    size: int


def make_report(root: Path, project: str, graph: Graph, lock: Lock, plan: Plan, targets: tuple[str, ...],
                output: str, base: str | None, stores: tuple[Path, ...]) -> Written:
    """Write the report to `output` (relative to the project) and say what it holds."""
    path = _output_path(root, graph, output)
    report = gather(root, project, graph, lock, plan, targets, open_base(root, base, stores) if base else None)
    html, specs = page.render(report, bundle.javascript())
    try:
        write_atomic(path, html)
    except OSError as exc:
        raise MlmakeError(f"cannot write the report to {output}: {exc.strerror or exc}") from None
    return Written(path, report, specs, len(html.encode("utf-8")))


def _output_path(root: Path, graph: Graph, output: str) -> Path:
    """Where to write; never over the project's file, its lock, or what a node builds."""
    path = (root / output).resolve()
    if path.is_dir():
        raise MlmakeError(f"-o {output}: is a folder; name the HTML file to write")
    for name in (PROJECT_FILE, LOCK_FILE):
        if path == (root / name).resolve():
            raise MlmakeError(f"-o {output}: would overwrite {name}; choose another file")
    for address, decl in graph.nodes.items():
        for out in decl.outputs:
            owned = (root / out).resolve()
            if path == owned or owned in path.parents:
                raise MlmakeError(f"-o {output}: is an output of {address} ({out}), which its build replaces; "
                                  "choose another file")
    return path
