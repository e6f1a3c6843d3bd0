"""dvc.yaml read as DVC reads it: `vars` and params.yaml make the templating context,
`foreach` and `matrix` expand into stages named `GROUP@KEY` (DVC's own naming rules,
from dvc/parsing/__init__.py), and `${...}` fills from the item. References into the
context are kept as references (`${params.NAME}`), so the imported project keeps them
editable and each step's fingerprint takes exactly the values it uses."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlmake.core.errors import Diagnostic, MlmakeError, Span, SpecError
from mlmake.core.source import Document, decode, format_path, load_text

DVC_FILE = "dvc.yaml"
PARAMS_FILE = "params.yaml"  # DVC's default params file, loaded into the context when present
JOIN = "@"
_REF = re.compile(r"(?<!\\)\$\{(?P<inner>.*?)\}")
_WHOLE = re.compile(r"^\$\{(?P<inner>[^}]*)\}$")
_INDEX = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class Note:
    """Something of dvc.yaml that was not converted, or converted with a difference."""

    span: Span | None
    path: str
    message: str

    def render(self) -> str:
        where = f"{self.span}: " if self.span else ""
        return f"{where}{self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage as DVC names it, its definition with the item's references filled in."""

    name: str
    group: str  # the key under `stages:` it was written as
    base: tuple[str | int, ...]  # where its definition is in dvc.yaml (stages.G, or stages.G.do)
    data: dict[str, Any]
    params_used: tuple[str, ...] = ()  # context references kept as ${params.NAME}


@dataclass
class Reading:
    """What dvc.yaml holds: its stages, the templating context and what could not be read."""

    doc: Document
    context: dict[str, Any]
    stages: list[Stage] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def note(self, path: tuple[str | int, ...], message: str) -> None:
        span = self.doc.span(path, key=True)
        self.notes.append(Note(span, format_path(path), message))


class Unresolved(Exception):
    """A `${...}` that cannot be converted; the message says why."""


def read_dvc(root: Path) -> Reading:
    """dvc.yaml in ROOT with its params.yaml and vars, its stages expanded."""
    doc = _load(root / DVC_FILE, DVC_FILE)
    if not isinstance(doc.data, dict) or not isinstance(doc.data.get("stages"), dict):
        span = doc.span(("stages",)) or Span(DVC_FILE, 1, 1)
        raise SpecError([Diagnostic(span, "stages", "expected a mapping of stages", "", doc.line(span))])
    reading = Reading(doc, {})
    reading.context = _context(root, doc, reading)
    for key in doc.data:
        if key not in ("stages", "vars"):
            reading.note((key,), f"top-level `{key}` is not converted (mlmake has no equivalent section)")
    for group, definition in doc.data["stages"].items():
        if not isinstance(definition, dict):
            raise SpecError([doc.diagnostic(("stages", group), "expected a mapping")])
        reading.stages += _expand(reading, str(group), definition)
    return reading


def _load(path: Path, name: str) -> Document:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise MlmakeError(f"no {name} in {path.parent}") from None
    except OSError as exc:
        raise MlmakeError(f"cannot read {path}: {exc}") from None
    return load_text(decode(raw, name), name)


def _context(root: Path, doc: Document, reading: Reading) -> dict[str, Any]:
    """params.yaml (when present), then each of the top-level `vars` in order, as DVC merges them."""
    context: dict[str, Any] = {}
    if (root / PARAMS_FILE).is_file():
        context.update(_mapping(_load(root / PARAMS_FILE, PARAMS_FILE).data))
    for i, entry in enumerate(doc.data.get("vars") or []):
        if isinstance(entry, dict):
            context.update(entry)
            continue
        file, _, keys = str(entry).partition(":")
        if not file.endswith((".yaml", ".yml", ".json")) or not (root / file).is_file():
            reading.note(("vars", i), f"vars file '{file}' is not a YAML or JSON file here; not loaded")
            continue
        data = _mapping(_load(root / file, file).data)
        wanted = [k.strip() for k in keys.split(",") if k.strip()]
        context.update({k: v for k, v in data.items() if not wanted or k in wanted})
    return context


def _mapping(data: Any) -> dict[str, Any]:
    return dict(data) if isinstance(data, dict) else {}


def _expand(reading: Reading, group: str, definition: dict[str, Any]) -> list[Stage]:
    where: tuple[str | int, ...] = ("stages", group)
    try:
        if "foreach" in definition:
            items = _foreach_items(reading.context, definition["foreach"])
            template = definition.get("do")
            if not isinstance(template, dict):
                raise Unresolved("`foreach` needs a `do` mapping")
            return [_stage(reading, f"{group}{JOIN}{k}", where + ("do",), template, local) for k, local in items]
        if "matrix" in definition:
            template = {k: v for k, v in definition.items() if k != "matrix"}
            return [_stage(reading, f"{group}{JOIN}{k}", where, template, local)
                    for k, local in _matrix_items(reading.context, definition["matrix"])]
        return [_stage(reading, group, where, definition, {})]
    except Unresolved as exc:
        reading.note(where, f"stage {group} not converted: {exc}")
        return []


def _foreach_items(context: Mapping[str, Any], value: Any) -> list[tuple[str, dict[str, Any]]]:
    """DVC's keys: a dict's keys; a list of scalars, the values; a list with mappings or lists, the indices."""
    data = _referenced(context, value)
    if isinstance(data, dict):
        return [(_text(k), {"item": v, "key": k}) for k, v in data.items()]
    if isinstance(data, list):
        if any(isinstance(v, (dict, list)) for v in data):
            return [(str(i), {"item": v}) for i, v in enumerate(data)]
        return [(_text(v), {"item": v}) for v in data]
    raise Unresolved(f"`foreach` expects a list or a mapping, got {type(data).__name__}")


def _referenced(context: Mapping[str, Any], value: Any) -> Any:
    """A value that is one `${NAME}` is NAME's value in the context (a list or mapping to iterate)."""
    whole = _WHOLE.match(value) if isinstance(value, str) else None
    return _lookup(context, whole.group("inner")) if whole else value


def _matrix_items(context: Mapping[str, Any], matrix: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every combination, named by its values joined with '-' (a mapping or list value by KEY+index)."""
    if not isinstance(matrix, dict):
        raise Unresolved("`matrix` expects a mapping of lists")
    axes: dict[str, list[Any]] = {}
    for axis, values in matrix.items():
        values = _referenced(context, values)
        if not isinstance(values, list):
            raise Unresolved(f"matrix.{axis} expects a list")
        axes[str(axis)] = values
    out = []
    for combo in itertools.product(*(list(enumerate(v)) for v in axes.values())):
        item = {axis: v for axis, (_, v) in zip(axes, combo, strict=True)}
        key = "-".join(f"{axis}{i}" if isinstance(v, (dict, list)) else _text(v)
                       for axis, (i, v) in zip(axes, combo, strict=True))
        out.append((key, {"item": item, "key": key}))
    return out


def _stage(reading: Reading, name: str, base: tuple[str | int, ...], template: dict[str, Any],
           local: dict[str, Any]) -> Stage:
    used: list[str] = []
    data = {k: _fill(v, local, reading.context, used) for k, v in template.items()}
    return Stage(name, str(base[1]), base, data, tuple(dict.fromkeys(used)))


def _fill(value: Any, local: Mapping[str, Any], context: Mapping[str, Any], used: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, local, context, used) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, local, context, used) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _WHOLE.match(value)
    if whole and _head(whole.group("inner")) in local:
        return _lookup(local, whole.group("inner"))  # a whole value keeps its type, as in DVC
    out = _REF.sub(lambda m: _reference(m.group("inner"), local, context, used), value)
    return out.replace("\\${", "$${")  # DVC's escape; mlmake writes a literal ${ as $${


def _reference(inner: str, local: Mapping[str, Any], context: Mapping[str, Any], used: list[str]) -> str:
    ref = inner.strip()
    if _head(ref) in local:
        return _scalar_text(_lookup(local, ref), ref)
    if _head(ref) not in context:
        raise Unresolved(f"'${{{ref}}}' is not defined (not in params.yaml nor in vars)")
    value = _lookup(context, ref)
    if "[" in ref:  # mlmake's references have no indexing: the value is written in
        return _scalar_text(value, ref)
    text = _scalar_text(value, ref)
    if isinstance(value, str) and (text != text.strip() or any(c in text for c in " \t\n'\"")):
        raise Unresolved(f"'${{{ref}}}' holds spaces or quotes: DVC's shell splits it into several arguments, "
                         "mlmake passes a param as one")
    used.append(ref)
    return "${params." + ref + "}"


def _head(ref: str) -> str:
    return ref.strip().split(".", 1)[0].split("[", 1)[0]


def _lookup(data: Mapping[str, Any], ref: str) -> Any:
    node: Any = data
    for part in ref.strip().split("."):
        name = part.split("[", 1)[0]
        if name:
            if not isinstance(node, dict) or name not in node:
                raise Unresolved(f"'${{{ref.strip()}}}' is not defined")
            node = node[name]
        for index in _INDEX.findall(part):
            if not isinstance(node, list) or int(index) >= len(node):
                raise Unresolved(f"'${{{ref.strip()}}}' is not defined")
            node = node[int(index)]
    return node


def _scalar_text(value: Any, ref: str) -> str:
    if isinstance(value, (dict, list)):
        raise Unresolved(f"'${{{ref}}}' is a {'mapping' if isinstance(value, dict) else 'list'}; "
                         "DVC writes it out as several arguments, mlmake has no equivalent")
    return _text(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
