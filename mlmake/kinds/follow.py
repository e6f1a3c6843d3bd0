"""Deploy targets that follow the registry (`model: churn_xgb@production`, or a pinned
`churn_xgb@v1.2.0`) instead of the model built in the workspace: the version is looked up in the
git tags (mlmake.registry) when the target is declared, and its name, fingerprint and outputs
are the target's configuration, so a promotion is what rebuilds it; the recipe reads the
version's outputs from the folder the build brought them back into (mlmake.remote.versions)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlmake.core.errors import Diagnostic, NodeError
from mlmake.core.kind import NodeDecl, Task
from mlmake.core.spec import Project


def split_model(model: str) -> tuple[str, str | None]:
    """`churn_xgb@production` → ('churn_xgb', 'production'); a plain name has no selector."""
    name, at, selector = model.partition("@")
    return name, selector if at else None


def _resolve(root: Path, name: str, selector: str) -> tuple[Any, str]:
    """The registered version a selector names, or None with why."""
    from mlmake.registry import read_registry

    registry = read_registry(root)
    if registry.repo is None:
        return None, f"{root} is not in a git repository: versions and stages are git tags"
    if selector.startswith("v") and selector[1:2].isdigit():
        found = registry.find(name, selector)
        known = ", ".join(v.version for v in registry.versions_of(name)) or "none"
        return found, f"{name} has no registered version {selector} (registered: {known})"
    found = registry.stage_version(name, selector)
    stages = ", ".join(registry.known_stages(name)) or "none"
    return found, f"no version of {name} holds the stage {selector!r} (stages used: {stages})"


def follow_problems(project: Project, nodes: Mapping[str, NodeDecl], addresses: Iterable[str]) -> list[Diagnostic]:
    """Located errors for the targets among `addresses` that follow a version the registry does
    not have (`plan` and `build` refuse them; the rest of the project still plans and builds)."""
    found = []
    for address in addresses:
        registry = nodes[address].config.get("registry") if address in nodes else None
        if not registry or not registry.get("problem"):
            continue
        key = (*address.split(".", 1), "model")
        if project.doc is not None:
            found.append(project.doc.diagnostic(key, registry["problem"], registry["hint"]))
        else:
            found.append(Diagnostic(None, ".".join(key), registry["problem"], registry["hint"]))
    return found


def followed_version(root: Path, name: str, selector: str) -> dict[str, Any]:
    """What a target following the registry fingerprints of its version."""
    from mlmake.registry import version_folder

    found, why = _resolve(root, name, selector)
    pinned = selector.startswith("v") and selector[1:2].isdigit()
    if found is None:
        hint = (f"see `mlmake registry {name}`" if pinned
                else f"promote one: mlmake promote {name} VERSION --to {selector}")
        return {"stage": None if pinned else selector, "version": None, "problem": why, "hint": hint}
    if found.record is None:
        return {"stage": None if pinned else selector, "version": found.version, "hint": f"mlmake register {name}",
                "problem": f"{name} {found.version} was not registered by mlmake: its tag {found.tag} records no build"}
    record = found.record
    outputs = {p: {"hash": o.get("hash"), "md5": o.get("md5")} for p, o in sorted(record.outputs.items())}
    first = next(iter(record.outputs), "")
    return {"stage": None if pinned else selector, "version": found.version, "fingerprint": record.fingerprint,
            "outputs": outputs, "folder": version_folder(record.fingerprint, first)}


def followed(task: Task) -> Task:
    """The task with its model read from the version's folder instead of the workspace."""
    registry = task.config.get("registry")
    if not registry:
        return task
    name = split_model(str(task.config["model"]))[0]
    if registry.get("problem"):  # plan and build refuse it first
        raise NodeError(str(registry["problem"]))
    if not os.path.isdir(os.path.join(task.root, str(registry["folder"]))):
        raise NodeError(f"{name} {registry['version']} (fingerprint {str(registry['fingerprint'])[:8]}) could not be "
                        "brought back (the warning above says why)")
    return replace(task, config={**task.config, "model": name},
                   upstream={**task.upstream, f"models.{name}": [str(registry["folder"])]})
