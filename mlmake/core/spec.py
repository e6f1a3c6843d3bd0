"""The project as frozen dataclasses, each item carrying its Span; `load_project`
runs source → resolve → schema → spec and reports every problem at once."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mlmake.core import paths, schema
from mlmake.core.checks import check_project
from mlmake.core.errors import Diagnostic, MlmakeError, Span, SpecError
from mlmake.core.resolve import Override, resolve
from mlmake.core.source import Document, decode, load_text_cached

PROJECT_FILE = "mlproject.yaml"
CACHE_DIR = ".mlmake/cache"
SUPPORTED_VERSIONS = (1,)
INTERNAL = {"internal": True}      # not a key of the file
NOT_FINGERPRINTED = {"fingerprint": False}


@dataclass(frozen=True, slots=True)
class Column:
    type: str
    nullable: bool = True
    unique: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[Any, ...] | None = None
    regex: str | None = None
    allow_non_finite: bool = False


@dataclass(frozen=True, slots=True)
class Check:
    rows: str | None = None


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str = field(metadata=INTERNAL)
    span: Span | None = field(metadata=INTERNAL, compare=False)
    path: str
    format: str = ""
    null_values: tuple[str, ...] = ()
    schema: dict[str, Column] = field(default_factory=dict)
    checks: tuple[Check, ...] = ()
    description: str = field(default="", metadata=NOT_FINGERPRINTED)
    allow_outside: bool = field(default=False, metadata=NOT_FINGERPRINTED)  # read through a link out
    deps: tuple[str, ...] = field(default=(), metadata=NOT_FINGERPRINTED)  # files no analysis sees; hashed as code


@dataclass(frozen=True, slots=True)
class Feature:
    name: str = field(metadata=INTERNAL)
    span: Span | None = field(metadata=INTERNAL, compare=False)
    inputs: tuple[str, ...] = field(metadata={"key": "from"})
    key: tuple[str, ...] = ()
    sql: str | None = None
    python: str | None = None
    description: str = field(default="", metadata=NOT_FINGERPRINTED)
    deps: tuple[str, ...] = field(default=(), metadata=NOT_FINGERPRINTED)  # files no analysis sees; hashed as code


@dataclass(frozen=True, slots=True)
class Split:
    test_size: float = 0.2
    seed: int = 0
    stratify: bool = False


@dataclass(frozen=True, slots=True)
class Model:
    name: str = field(metadata=INTERNAL)
    span: Span | None = field(metadata=INTERNAL, compare=False)
    features: str
    target: str
    task: str
    drop: tuple[str, ...] = ()
    split: Split = Split()
    params: dict[str, Any] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()
    gates: dict[str, str] = field(default_factory=dict)
    slices: tuple[str, ...] = ()
    description: str = field(default="", metadata=NOT_FINGERPRINTED)
    deps: tuple[str, ...] = field(default=(), metadata=NOT_FINGERPRINTED)  # files no analysis sees; hashed as code


@dataclass(frozen=True, slots=True)
class Step:
    name: str = field(metadata=INTERNAL)
    span: Span | None = field(metadata=INTERNAL, compare=False)
    cmd: tuple[str, ...]
    deps: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()
    description: str = field(default="", metadata=NOT_FINGERPRINTED)


@dataclass(frozen=True, slots=True)
class Deploy:
    name: str = field(metadata=INTERNAL)
    span: Span | None = field(metadata=INTERNAL, compare=False)
    model: str
    kind: str
    input: str | None = None
    output: str | None = None
    description: str = field(default="", metadata=NOT_FINGERPRINTED)
    deps: tuple[str, ...] = field(default=(), metadata=NOT_FINGERPRINTED)  # files no analysis sees; hashed as code


@dataclass(frozen=True, slots=True)
class Remote:
    url: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Environment:
    params: dict[str, Any] = field(default_factory=dict)
    remote: Remote | None = None


@dataclass(frozen=True, slots=True)
class Project:
    root: Path = field(metadata=INTERNAL)
    file: str = field(metadata=INTERNAL)
    version: int
    project: str
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    environments: dict[str, Environment] = field(default_factory=dict)
    remote: Remote | None = None  # None: the default remote shared by the clones on this machine
    datasets: dict[str, Dataset] = field(default_factory=dict)
    features: dict[str, Feature] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)
    steps: dict[str, Step] = field(default_factory=dict)
    deploy: dict[str, Deploy] = field(default_factory=dict)
    doc: Document | None = field(default=None, metadata=INTERNAL, compare=False, repr=False)


def key_of(f: Any) -> str:
    """The file's key for a dataclass field."""
    return str(f.metadata.get("key", f.name))


def file_fields(cls: type) -> list[Any]:
    """The fields of a dataclass that are keys of the file."""
    return [f for f in fields(cls) if not f.metadata.get("internal")]


def node_config(item: Any) -> dict[str, Any]:
    """The normalized configuration of an item, as it enters the fingerprint."""
    out: dict[str, Any] = {}
    for f in file_fields(type(item)):
        value = getattr(item, f.name)
        # unset optional keys stay out, so the lock shows what the user wrote
        if f.metadata.get("fingerprint", True) and value is not None:
            out[key_of(f)] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return node_config(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


# --- loading -----------------------------------------------------------------


def find_project_file(root: Path) -> Path:
    path = root / PROJECT_FILE
    if not path.is_file():
        raise MlmakeError(f"no {PROJECT_FILE} in {root} (run `mlmake init` to create one, or pass -C DIR)")
    return path


def load_document(root: Path) -> Document:
    """Read and parse the project file, checking its version before anything else."""
    path = find_project_file(root)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MlmakeError(f"cannot read {path}: {exc}") from None
    doc = load_text_cached(decode(raw, PROJECT_FILE), PROJECT_FILE, root / CACHE_DIR / "spec.json")
    if not isinstance(doc.data, dict):
        span = doc.span(()) or Span(PROJECT_FILE, 1, 1)
        raise SpecError([Diagnostic(span, "", "expected a mapping at the top of the file",
                                    "start with `version: 1` and `project: NAME`", doc.line(span))])
    version = doc.data.get("version")
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        msg = "missing required key 'version'" if version is None else \
            f"this mlmake reads version 1 of the file, got {version!r}"
        raise SpecError([doc.diagnostic(("version",), msg, "write `version: 1`, or upgrade mlmake")])
    return doc


def load_project(root: Path, env: str | None = None, overrides: tuple[Override, ...] = ()) -> Project:
    """Load, resolve and check the project in ROOT; raise SpecError with every problem."""
    doc = load_document(root)
    resolved, errors = resolve(doc, env, overrides)
    bad_paths = {d.path for d in errors}
    errors += [d for d in schema.check_cached(resolved, root / CACHE_DIR / "valid.json") if d.path not in bad_paths]
    if errors:
        unique = {(str(d.span), d.path, d.message): d for d in errors}
        raise SpecError(sorted(unique.values(), key=_order))
    errors = check_project(root, resolved)
    if errors:
        raise SpecError(sorted(errors, key=_order))
    return _build_project(root, resolved)


def _order(d: Diagnostic) -> tuple[int, int]:
    return (d.span.line, d.span.col) if d.span else (0, 0)


def _build_project(root: Path, doc: Document) -> Project:
    data = doc.data

    def spans(section: str) -> dict[str, Span | None]:
        return {n: doc.span((section, n), key=True) for n in data.get(section, {})}

    def build(section: str, make: Any) -> dict[str, Any]:
        sp = spans(section)
        return {n: make(n, sp[n], v) for n, v in data.get(section, {}).items()}

    return Project(
        root=root, file=doc.file, version=data["version"], project=data["project"],
        description=data.get("description", ""), params=data.get("params", {}),
        environments={n: _environment(v) for n, v in data.get("environments", {}).items()},
        remote=_remote(data.get("remote")),
        datasets=build("datasets", _dataset), features=build("features", _feature),
        models=build("models", _model), steps=build("steps", _step), deploy=build("deploy", _deploy),
        doc=doc,
    )


def _remote(data: dict[str, Any] | None) -> Remote | None:
    return Remote(data["url"], dict(data.get("options", {}))) if data else None


def _environment(data: dict[str, Any]) -> Environment:
    return Environment(dict(data.get("params", {})), _remote(data.get("remote")))


def _dataset(name: str, span: Span | None, d: dict[str, Any]) -> Dataset:
    fmt = d.get("format") or _format_of(d["path"])
    columns = {c: _column(spec) for c, spec in d.get("schema", {}).items()}
    checks = tuple(Check(**c) for c in d.get("checks", []))
    return Dataset(name, span, d["path"], fmt, tuple(d.get("null_values", ())), columns, checks,
                   d.get("description", ""), bool(d.get("allow_outside", False)), _deps(d))


def _column(d: dict[str, Any]) -> Column:
    allowed = d.get("allowed")
    return Column(d["type"], d.get("nullable", True), d.get("unique", False), d.get("min"), d.get("max"),
                  tuple(allowed) if allowed is not None else None, d.get("regex"), d.get("allow_non_finite", False))


def _format_of(path: str) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    return {"jsonl": "ndjson", "pq": "parquet"}.get(suffix, suffix or "csv")


def _names(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _feature(name: str, span: Span | None, d: dict[str, Any]) -> Feature:
    return Feature(name, span, _names(d["from"]), _names(d.get("key")), d.get("sql"), d.get("python"),
                   d.get("description", ""), _deps(d))


def _model(name: str, span: Span | None, d: dict[str, Any]) -> Model:
    return Model(
        name, span, d["features"], d["target"], d["task"], tuple(d.get("drop", ())),
        Split(**d.get("split", {})), dict(d.get("params", {})), tuple(d.get("metrics", ())),
        dict(d.get("gates", {})), tuple(d.get("slices", ())), d.get("description", ""), _deps(d),
    )


def _step(name: str, span: Span | None, d: dict[str, Any]) -> Step:
    cmd = d["cmd"]
    args = _split(cmd) if isinstance(cmd, str) else tuple(_arg(a) for a in cmd)
    return Step(name, span, args, tuple(d.get("deps", ())), tuple(d.get("outs", ())), d.get("description", ""))


def _split(cmd: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(cmd))
    except ValueError:
        return ()  # reported by checks' command check with its location


def _arg(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _deploy(name: str, span: Span | None, d: dict[str, Any]) -> Deploy:
    return Deploy(name, span, d["model"], d["kind"], d.get("input"), d.get("output"), d.get("description", ""),
                  _deps(d))


def _deps(d: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(p) for p in d.get("deps", ()))


# --- paths -------------------------------------------------------------------

NODE_SECTIONS = paths.NODE_SECTIONS
is_address = paths.is_address
path_problem = paths.syntax_problem
