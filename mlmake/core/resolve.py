"""Turns the raw file into the effective configuration: environment overlays,
-P overrides and ${params.x} interpolation, each error located."""

from __future__ import annotations

import copy
import re
import shlex
from dataclasses import dataclass, replace
from typing import Any

from mlmake.core.errors import Diagnostic, Span, SpecError, did_you_mean
from mlmake.core.source import Document, Path, format_path, load_text

FIXED = ("params", "remote")  # the sections that are not node sections (those come from the kinds)


def sections() -> tuple[str, ...]:
    """Every section a -P override may name, and interpolation walks (after params)."""
    from mlmake.core.registry import registry

    return FIXED + registry().sections()
_REF = re.compile(r"\$\{([^}]*)\}")
_WHOLE = re.compile(r"^\$\{([^}]*)\}$")


@dataclass(frozen=True, slots=True)
class Override:
    """One -P KEY=VALUE from the command line, already split."""

    path: Path
    value: Any
    text: str


def parse_override(text: str) -> Override:
    """Parse `KEY=VALUE`; a KEY that is not a section path is a parameter name."""
    key, sep, raw = text.partition("=")
    where = Span(f"-P {text}", 0, 0)
    if not sep or not key.strip():
        raise SpecError([Diagnostic(where, "", "expected KEY=VALUE", "for example -P seed=7")])
    parts: list[str | int] = [p for p in key.strip().split(".")]
    if parts[0] not in sections():
        parts.insert(0, "params")
    try:
        value = load_text(raw, f"-P {text}").data if raw.strip() else ""
    except SpecError:
        value = raw
    return Override(tuple(parts), value, text)


def resolve(
    doc: Document, env: str | None = None, overrides: tuple[Override, ...] = ()
) -> tuple[Document, list[Diagnostic]]:
    """The document as it applies (overlays, overrides, interpolation) and its errors."""
    data = copy.deepcopy(doc.data) if isinstance(doc.data, dict) else doc.data
    if not isinstance(data, dict):
        return doc, []
    errors: list[Diagnostic] = []
    spans = dict(doc.value_spans)
    key_spans = dict(doc.key_spans)
    if env is not None:
        _apply_env(data, env, errors, (spans, key_spans))
    for ov in overrides:
        if ov.path[0] == "params" and _is_param(data, ov, errors):
            _set(data, ov, errors, spans, create=False)
    params = data.get("params") if isinstance(data.get("params"), dict) else {}
    resolver = _Interpolator(doc, params or {}, errors)
    for section in sections()[1:]:
        if section in data:
            data[section] = resolver.walk(data[section], (section,))
    for ov in overrides:
        if ov.path[0] != "params":
            _set(data, ov, errors, spans, create=False)
    return replace(doc, data=data, value_spans=spans, key_spans=key_spans, uses=resolver.uses), errors


def _apply_env(data: dict[str, Any], env: str, errors: list[Diagnostic],
               spans: tuple[dict[Path, Span], dict[Path, Span]]) -> None:
    envs = data.get("environments") if isinstance(data.get("environments"), dict) else {}
    overlay = envs.get(env) if envs else None
    if envs and env in envs and not isinstance(overlay, dict):
        return  # the schema reports the malformed overlay where it is
    if not isinstance(overlay, dict):
        hint = did_you_mean(env, list(envs or {})) or (
            f"known: {', '.join(sorted(envs))}" if envs else "the file declares no environments")
        errors.append(Diagnostic(Span(f"--env {env}", 0, 0), "environments",
                                 f"unknown environment '{env}'", hint))
        return
    if isinstance(overlay.get("params"), dict):
        base = data.get("params")
        data["params"] = {**(base if isinstance(base, dict) else {}), **overlay["params"]}
        for key in overlay["params"]:
            _move_spans(spans, ("environments", env, "params", key), ("params", key))
    if "remote" in overlay:
        data["remote"] = overlay["remote"]
        _move_spans(spans, ("environments", env, "remote"), ("remote",))


def _move_spans(spans: tuple[dict[Path, Span], dict[Path, Span]], src: Path, dest: Path) -> None:
    """Errors in an overlaid value point at the overlay, where the value was written."""
    for table in spans:
        for path in [p for p in table if p[: len(dest)] == dest]:
            del table[path]
        for path, span in list(table.items()):
            if path[: len(src)] == src:
                table[dest + path[len(src):]] = span


def _is_param(data: dict[str, Any], ov: Override, errors: list[Diagnostic]) -> bool:
    """Whether -P names a param the file declares (a misspelt name would be recorded and do nothing)."""
    node: Any = data.get("params")
    for i, part in enumerate(ov.path[1:], start=1):
        if i > 1 and not isinstance(node, dict):
            return True  # _set says it cannot override inside a value that is not a mapping
        if not isinstance(node, dict) or part not in node:
            known = [str(k) for k in node] if isinstance(node, dict) else []
            name = ".".join(str(p) for p in ov.path[1 : i + 1])
            hint = did_you_mean(str(part), known) or (f"known params: {', '.join(sorted(known))}" if known
                                                      else "declare it under params: in the project file")
            errors.append(Diagnostic(Span(f"-P {ov.text}", 0, 0), format_path(ov.path[: i + 1]),
                                     f"unknown param '{name}'", hint))
            return False
        node = node[part]
    return True


def _set(data: dict[str, Any], ov: Override, errors: list[Diagnostic],
         spans: dict[Path, Span], *, create: bool) -> None:
    node: Any = data
    for i, part in enumerate(ov.path[:-1]):
        if not isinstance(node, dict):
            break
        if part not in node and create:
            node[part] = {}
        if part not in node:
            hint = did_you_mean(str(part), list(node))
            errors.append(Diagnostic(Span(f"-P {ov.text}", 0, 0), format_path(ov.path[: i + 1]),
                                     f"no such key '{part}' to override", hint))
            return
        node = node[part]
    if not isinstance(node, dict):
        errors.append(Diagnostic(Span(f"-P {ov.text}", 0, 0), format_path(ov.path),
                                 "cannot override inside a value that is not a mapping"))
        return
    node[ov.path[-1]] = ov.value
    spans[ov.path] = Span(f"-P {ov.text}", 0, 0)


class _Interpolator:
    def __init__(self, doc: Document, params: dict[str, Any], errors: list[Diagnostic]) -> None:
        self.doc = doc
        self.params = params
        self.errors = errors
        # node address → param name → its value and the node's keys it was written into;
        # under the name "" the node's templates by key path (`cmd.3` → "--rows=${params.rows}")
        self.uses: dict[str, dict[str, Any]] = {}

    def walk(self, value: Any, path: Path) -> Any:
        if _is_command(value, path):
            # split the template, then fill each argument: a param is one argument, whatever it holds
            return [_to_text(self.walk(arg, path + (i,))) for i, arg in enumerate(shlex.split(value))]
        if isinstance(value, dict):
            return {k: self.walk(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, path + (i,)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            if len(path) > 2:  # the template, to explain later which changes a param made
                templates = self.uses.setdefault(f"{path[0]}.{path[1]}", {}).setdefault("", {})
                templates[".".join(str(p) for p in path[2:])] = value
            return self.interpolate(value, path)
        return value

    def interpolate(self, text: str, path: Path) -> Any:
        whole = _WHOLE.match(text)
        if whole:
            return self.lookup(whole.group(1), path)
        escaped = text.replace("$${", "\0")
        out = _REF.sub(lambda m: _to_text(self.lookup(m.group(1), path)), escaped)
        return out.replace("\0", "${")

    def lookup(self, ref: str, path: Path) -> Any:
        parts = ref.strip().split(".")
        if parts[0] != "params" or len(parts) < 2:
            self.errors.append(self.doc.diagnostic(
                path, f"cannot interpolate '${{{ref}}}'", "only ${params.NAME} references are supported"))
            return "${" + ref + "}"
        node: Any = self.params
        for i, part in enumerate(parts[1:], start=1):
            if not isinstance(node, dict) or part not in node:
                known = list(node) if isinstance(node, dict) else []
                name = ".".join(parts[1 : i + 1])
                hint = did_you_mean(part, known) or "declare it under params:"
                self.errors.append(self.doc.diagnostic(path, f"'${{{ref}}}' refers to a missing param '{name}'", hint))
                return "${" + ref + "}"
            node = node[part]
        self._note(path, ".".join(parts[1:]), node)
        return node

    def _note(self, path: Path, name: str, value: Any) -> None:
        if len(path) < 3:
            return
        address = f"{path[0]}.{path[1]}"
        key = ".".join(str(p) for p in path[2:] if not isinstance(p, int))
        use = self.uses.setdefault(address, {}).setdefault(name, {"value": value, "keys": []})
        if key not in use["keys"]:
            use["keys"].append(key)


def _is_command(value: Any, path: Path) -> bool:
    """A string `cmd` of a step that holds a reference and splits (else spec reports it as it is)."""
    if not (len(path) == 3 and path[0] == "steps" and path[2] == "cmd" and isinstance(value, str) and "${" in value):
        return False
    try:
        return bool(shlex.split(value))
    except ValueError:
        return False


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
