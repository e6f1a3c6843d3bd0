"""The project as frozen dataclasses, each item carrying its Span; `load_project`
runs source → resolve → schema → spec and reports every problem at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mlmake.core import paths, schema
from mlmake.core.checks import check_project
from mlmake.core.errors import Diagnostic, MlmakeError, Span, SpecError
from mlmake.core.registry import registry
from mlmake.core.resolve import Override, resolve
from mlmake.core.source import Document, decode, load_text_cached

PROJECT_FILE = "mlproject.yaml"
CACHE_DIR = ".mlmake/cache"
SUPPORTED_VERSIONS = (1,)
INTERNAL = {"internal": True}      # not a key of the file
NOT_FINGERPRINTED = {"fingerprint": False}


@dataclass(frozen=True, slots=True)
class Remote:
    url: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Cluster:
    """Where an environment's builds run: a Dask scheduler (building.cluster)."""

    scheduler: str
    shared_fs: bool = False


@dataclass(frozen=True, slots=True)
class Environment:
    params: dict[str, Any] = field(default_factory=dict)
    remote: Remote | None = None
    runner: Cluster | None = None


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
    items: dict[str, dict[str, Any]] = field(default_factory=dict, metadata=INTERNAL)  # section → name → item
    kinds: dict[str, str] = field(default_factory=dict, metadata=INTERNAL)  # address → its kind's name
    doc: Document | None = field(default=None, metadata=INTERNAL, compare=False, repr=False)

    def section(self, section: str) -> dict[str, Any]:
        """The items of a node section, by name (empty when the file has none)."""
        return self.items.get(section, {})


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
    items: dict[str, dict[str, Any]] = {}
    kinds: dict[str, str] = {}
    known = registry()
    for section in known.sections():
        items[section] = {}
        for name, value in (data.get(section) or {}).items():
            kind = known.for_item(section, value)
            if kind is None:  # the schema names the kinds a section holds
                raise MlmakeError(f"{section}.{name}: no kind for this item")
            items[section][name] = kind.parse(name, doc.span((section, name), key=True), value)
            kinds[f"{section}.{name}"] = kind.name
    return Project(
        root=root, file=doc.file, version=data["version"], project=data["project"],
        description=data.get("description", ""), params=data.get("params", {}),
        environments={n: _environment(v) for n, v in data.get("environments", {}).items()},
        remote=_remote(data.get("remote")), items=items, kinds=kinds, doc=doc,
    )


def _remote(data: dict[str, Any] | None) -> Remote | None:
    return Remote(data["url"], dict(data.get("options", {}))) if data else None


def _environment(data: dict[str, Any]) -> Environment:
    runner = data.get("runner")
    cluster = Cluster(runner["scheduler"], bool(runner.get("shared_fs", False))) if runner else None
    return Environment(dict(data.get("params", {})), _remote(data.get("remote")), cluster)


def names(value: str | list[str] | None) -> tuple[str, ...]:
    """A key that takes one name or a list of them, as a tuple."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def deps_of(d: Mapping[str, Any]) -> tuple[str, ...]:
    """An item's `deps:` (files no analysis sees)."""
    return tuple(str(p) for p in d.get("deps", ()))


# --- paths -------------------------------------------------------------------

is_address = paths.is_address
path_problem = paths.syntax_problem
