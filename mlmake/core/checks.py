"""The checks `validate` runs once the file has the schema's shape: paths (inside the project,
through symlinks; outputs that would delete what nothing rebuilds), models against their task
(metrics, gates) and data contracts that contradict themselves. Works on the resolved data."""

from __future__ import annotations

import os
import shlex
from pathlib import Path as FsPath
from typing import Any

from mlmake.core.errors import Diagnostic
from mlmake.core.gates import DEFAULT_METRICS, TASK_METRICS
from mlmake.core.paths import Protected, Resolver, is_address, syntax_problem
from mlmake.core.schema import published_schema
from mlmake.core.source import Document, Path

HINT = "paths are relative to the project folder"
CODE_SUFFIXES = (".py", ".sh", ".r", ".jl", ".js", ".ts", ".rb", ".pl", ".ipynb")
SECTIONS = ("datasets", "features", "models", "steps", "deploy")
Deps = dict[tuple[str, str], list[tuple[int, str]]]  # (section, name) → its deps that are files
NUMBER_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64")


def check_project(root: FsPath, doc: Document) -> list[Diagnostic]:
    """Every problem of these kinds, located."""
    data = doc.data
    resolver = Resolver(root)
    deps = {(section, name): _file_deps(resolver.root, item) for section in SECTIONS
            for name, item in _items(data, section)}
    found = _inputs(resolver, doc, deps) + _outputs(resolver, doc, deps) + _commands(doc)
    for name, model in _items(data, "models"):
        found += _model(doc, name, model)
    for name, dataset in _items(data, "datasets"):
        for column, spec in (dataset.get("schema") or {}).items():
            found += _column(doc, ("datasets", name, "schema", column), spec)
    return found


def _items(data: Any, section: str) -> list[tuple[str, dict[str, Any]]]:
    items = data.get(section) if isinstance(data, dict) else None
    return [(n, v) for n, v in items.items() if isinstance(v, dict)] if isinstance(items, dict) else []


# --- paths ---------------------------------------------------------------------------


def _file_deps(root: str, item: dict[str, Any]) -> list[tuple[int, str]]:
    return [(i, d) for i, d in enumerate(item.get("deps") or []) if not is_address(d, root)]


def _inputs(resolver: Resolver, doc: Document, deps: Deps) -> list[Diagnostic]:
    """Inputs written as paths: inside the project, also where their symlinks lead (a dataset may
    opt out with allow_outside: true)."""
    found: list[Diagnostic] = []

    def check(path: str, where: Path, outside_ok: bool = False) -> None:
        problem = syntax_problem(path) or ("" if outside_ok else resolver.escape_problem(path))
        if problem:
            hint = HINT if syntax_problem(path) else "set allow_outside: true on the dataset to read it there" \
                if where[0] == "datasets" else "copy it into the project"
            found.append(doc.diagnostic(where, problem, hint))

    for section in SECTIONS:
        for name, item in _items(doc.data, section):
            if section == "datasets" and isinstance(item.get("path"), str):
                check(item["path"], (section, name, "path"), bool(item.get("allow_outside")))
            if section == "features" and isinstance(item.get("python"), str):
                check(item["python"].rsplit(":", 1)[0], (section, name, "python"))
            for i, dep in deps[section, name]:
                check(dep, (section, name, "deps", i))
    return found


def _outputs(resolver: Resolver, doc: Document, deps: Deps) -> list[Diagnostic]:
    """Declared outputs (cleared before their node runs) may not be or hold what nothing rebuilds."""
    outputs = _declared_outputs(doc.data)
    if not outputs:
        return []
    protected = Protected(resolver, _sources(resolver.root, doc, deps))
    found: list[Diagnostic] = []
    for section, name, key, out in outputs:
        own = {d: f"an input of {section}.{name}" for _, d in deps[section, name]}
        problem = protected.output_problem(out, own)
        if problem:
            hint = HINT if syntax_problem(out) else "name a new file or folder, such as one under build/"
            found.append(doc.diagnostic((section, name) + key, problem, hint))
    return found


def _declared_outputs(data: Any) -> list[tuple[str, str, Path, str]]:
    outs: list[tuple[str, str, Path, str]] = []
    for name, step in _items(data, "steps"):
        outs += [("steps", name, ("outs", i), o) for i, o in enumerate(step.get("outs") or []) if isinstance(o, str)]
    for name, target in _items(data, "deploy"):
        if isinstance(target.get("output"), str):
            outs.append(("deploy", name, ("output",), target["output"]))
    return outs


def _sources(root: str, doc: Document, deps: Deps) -> dict[str, str]:
    """What no node rebuilds: hooks, code the commands run or declare, DVC-tracked data."""
    sources: dict[str, str] = {}
    for name, item in _items(doc.data, "features"):
        if isinstance(item.get("python"), str):
            sources[item["python"].rsplit(":", 1)[0]] = f"the hook of features.{name}"
    for (section, name), files in deps.items():
        for _, dep in files:
            if dep.lower().endswith(CODE_SUFFIXES):
                sources.setdefault(dep, f"source code read by {section}.{name}")
    for name, step in _items(doc.data, "steps"):
        for arg in _args(step.get("cmd")):
            script = arg not in sources and arg.lower().endswith(CODE_SUFFIXES) and not syntax_problem(arg)
            if script and os.path.isfile(os.path.join(root, arg)):
                sources[arg] = f"the script steps.{name} runs"
    for name, item in _items(doc.data, "datasets"):
        path = str(item.get("path"))
        if not syntax_problem(path) and os.path.isfile(os.path.join(root, f"{path}.dvc")):
            sources.setdefault(path, f"DVC-tracked data of datasets.{name}")
    return sources


def _args(cmd: Any) -> list[str]:
    if isinstance(cmd, list):
        return [a for a in cmd if isinstance(a, str)]
    try:
        return shlex.split(cmd) if isinstance(cmd, str) else []
    except ValueError:
        return []


def _commands(doc: Document) -> list[Diagnostic]:
    found = []
    for name, step in _items(doc.data, "steps"):
        cmd = step.get("cmd")
        if isinstance(cmd, str) and not _args(cmd):
            found.append(doc.diagnostic(("steps", name, "cmd"), "cannot split the command: no closing quotation",
                                        "write cmd as a list: [python, script.py, ARG]"))
    return found


# --- models --------------------------------------------------------------------------


def _model(doc: Document, name: str, model: dict[str, Any]) -> list[Diagnostic]:
    task = model.get("task")
    if task not in TASK_METRICS:
        return []
    found = []
    applies = TASK_METRICS[task]
    for i, metric in enumerate(model.get("metrics") or []):
        if metric not in applies:
            found.append(doc.diagnostic(("models", name, "metrics", i), f"'{metric}' is not a metric of a {task} "
                                        f"model", f"a {task} model computes {', '.join(applies)}"))
    typed = published_schema()["$defs"]["xgboost_params"]["properties"]
    for key in (model.get("params") or {}).get("extra") or {}:
        if key in typed:
            found.append(doc.diagnostic(("models", name, "params", "extra", key), f"'{key}' has its own key, "
                                        "checked by mlmake", f"write it as params.{key}", key=True))
    computed = [m for m in (model.get("metrics") or DEFAULT_METRICS[task]) if m in applies]
    for metric in model.get("gates") or {}:
        if metric not in computed:
            found.append(doc.diagnostic(("models", name, "gates", metric), _gate_message(metric, task, computed),
                                        _gate_hint(metric, task, applies, computed), key=True))
    return found


def _gate_message(metric: str, task: str, computed: list[str]) -> str:
    if metric not in TASK_METRICS[task]:
        return f"a gate on '{metric}', which a {task} model does not compute"
    return f"a gate on '{metric}', which this model does not compute (metrics: {', '.join(computed)})"


def _gate_hint(metric: str, task: str, applies: tuple[str, ...], computed: list[str]) -> str:
    from mlmake.core.errors import did_you_mean

    if metric in applies:
        return f"add '{metric}' to metrics"
    return did_you_mean(metric, computed) or f"gate one of {', '.join(computed)}"


# --- data contracts ------------------------------------------------------------------


def _column(doc: Document, where: Path, spec: dict[str, Any]) -> list[Diagnostic]:
    kind = spec.get("type")
    found = []
    low: Any = spec.get("min")
    high: Any = spec.get("max")
    for bound in ("min", "max"):
        if spec.get(bound) is not None and kind not in NUMBER_TYPES:
            found.append(doc.diagnostic(where + (bound,), f"a {bound} needs a numeric column, not {kind}",
                                        "remove it, or give the column a number type"))
    if _number(low) and _number(high) and low > high:
        found.append(doc.diagnostic(where + ("max",), f"max {_show(high)} is below min {_show(low)}: "
                                    "no value can hold both", "swap them, or fix one"))
    for i, value in enumerate(spec.get("allowed") or []):
        problem = _allowed_problem(value, str(kind))
        if problem:
            found.append(doc.diagnostic(where + ("allowed", i), problem, f"list {_words(str(kind))} only"))
    if spec.get("regex") is not None and kind not in ("str", "category"):
        found.append(doc.diagnostic(where + ("regex",), f"a regex needs a str or category column, not {kind}"))
    return found


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _allowed_problem(value: Any, kind: str) -> str:
    if value is None:
        return ""  # missing values are governed by nullable
    fits = {
        "bool": isinstance(value, bool),
        "str": isinstance(value, str), "category": isinstance(value, str),
    }.get(kind)
    if kind in NUMBER_TYPES:
        fits = _number(value) and (kind.startswith("float") or float(value).is_integer())
    elif kind in ("date", "datetime"):
        fits = isinstance(value, str)
    if fits:
        return ""
    return f"{_show(value)} is not {_word(kind)}, so the {kind} column can never hold it"


def _word(kind: str) -> str:
    if kind in NUMBER_TYPES:
        return "an integer" if not kind.startswith("float") else "a number"
    return {"bool": "true or false", "str": "a string", "category": "a string"}.get(kind, "a string")


def _words(kind: str) -> str:
    return {"an integer": "integers", "a number": "numbers", "true or false": "true and false"}.get(
        _word(kind), "strings")


def _show(value: Any) -> str:
    """A value as JSON and YAML spell it."""
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e16 else str(value)
    return str(value)

