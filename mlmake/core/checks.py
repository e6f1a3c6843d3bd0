"""The checks `validate` runs once the file has the schema's shape: the paths every item names
(inside the project, through symlinks; outputs that would delete what nothing rebuilds), then
each kind's own checks (Kind.check: models against their task, contracts that contradict
themselves, …). Works on the resolved data."""

from __future__ import annotations

import os
from pathlib import Path as FsPath
from typing import Any

from mlmake.core.errors import Diagnostic
from mlmake.core.kind import ItemCheck, ItemPaths, Kind
from mlmake.core.paths import Protected, Resolver, syntax_problem
from mlmake.core.registry import registry
from mlmake.core.source import Document

HINT = "paths are relative to the project folder"
CODE_SUFFIXES = (".py", ".sh", ".r", ".jl", ".js", ".ts", ".rb", ".pl", ".ipynb")
Checked = list[tuple[Kind[Any], ItemCheck, ItemPaths]]


def check_project(root: FsPath, doc: Document) -> list[Diagnostic]:
    """Every problem of these kinds, located."""
    resolver = Resolver(root)
    items = _items(root, doc)
    found = _inputs(resolver, items) + _outputs(resolver, items)
    for kind, item, _ in items:
        found += kind.check(item)
    return found


def _items(root: FsPath, doc: Document) -> Checked:
    data = doc.data if isinstance(doc.data, dict) else {}
    known = registry()
    items: Checked = []
    for section in known.sections():
        values = data.get(section)
        for name, value in (values.items() if isinstance(values, dict) else []):
            kind = known.for_item(section, value)
            if kind is not None and isinstance(value, dict):
                item = ItemCheck(doc, section, name, value, root)
                items.append((kind, item, kind.paths(item)))
    return items


def _inputs(resolver: Resolver, items: Checked) -> list[Diagnostic]:
    """Inputs written as paths: inside the project, also where their symlinks lead (unless the
    item allows reading it outside, as a dataset with allow_outside: true does)."""
    found: list[Diagnostic] = []
    for _, item, paths in items:
        for use in paths.inputs:
            problem = syntax_problem(use.path) or ("" if use.outside_ok else resolver.escape_problem(use.path))
            if problem:
                hint = HINT if syntax_problem(use.path) else \
                    "set allow_outside: true on the dataset to read it there" if item.section == "datasets" \
                    else "copy it into the project"
                found.append(item.problem(use.key, problem, hint))
    return found


def _outputs(resolver: Resolver, items: Checked) -> list[Diagnostic]:
    """Declared outputs (cleared before their node runs) may not be or hold what nothing rebuilds."""
    if not any(paths.outputs for _, _, paths in items):
        return []
    protected = Protected(resolver, _sources(resolver.root, items))
    found: list[Diagnostic] = []
    for _, item, paths in items:
        own = {use.path: f"an input of {item.section}.{item.name}" for use in paths.inputs}
        for use in paths.outputs:
            problem = protected.output_problem(use.path, own)
            if problem:
                hint = HINT if syntax_problem(use.path) else "name a new file or folder, such as one under build/"
                found.append(item.problem(use.key, problem, hint))
    return found


def _sources(root: str, items: Checked) -> dict[str, str]:
    """What no node rebuilds: hooks and scripts the items run, code they read, DVC-tracked data."""
    sources: dict[str, str] = {}
    for _, item, paths in items:
        address = f"{item.section}.{item.name}"
        for use in paths.sources:
            if not syntax_problem(use.path):
                sources.setdefault(use.path, use.what.format(address=address))
        for use in paths.inputs:
            if syntax_problem(use.path):
                continue
            if use.path.lower().endswith(CODE_SUFFIXES):
                sources.setdefault(use.path, f"source code read by {address}")
            elif os.path.isfile(os.path.join(root, f"{use.path}.dvc")):
                sources.setdefault(use.path, f"DVC-tracked data of {address}")
    return sources
