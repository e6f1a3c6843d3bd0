"""Checks the effective configuration against the project's JSON Schema (the base and every
registered kind's fragment, core/fragments.py) and turns each error into a located Diagnostic
that says the fix."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path as FsPath
from typing import Any

from mlmake.core.errors import Diagnostic, did_you_mean
from mlmake.core.source import Document, Path

_INTERP_REF = "#/$defs/interpolation"
_TYPE_WORDS = {
    "integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
    "object": "a mapping", "array": "a list", "null": "null",
}
_PATTERN_WORDS = {
    "^[A-Za-z_][A-Za-z0-9_-]*$": "a name of letters, digits, '_' and '-' that does not start with a digit",
    "^[A-Za-z_][A-Za-z0-9_]*$": "an environment variable's name (letters, digits and '_', not starting with a digit)",
}


def data_dir() -> FsPath:
    """Where schemas/ and templates/ live: inside the wheel, or at the repository root."""
    package = FsPath(__file__).resolve().parent.parent
    packaged = package / "_data"
    return packaged if packaged.is_dir() else package.parent


PUBLISHED = ("schemas", "mlproject.schema.json")  # the built-in kinds' schema, for editors


@cache
def published_schema() -> dict[str, Any]:
    """The JSON Schema of this installation's kinds, as `mlmake schema` prints it for editors
    (it allows ${params.x} strings)."""
    from mlmake.core.fragments import project_schema
    from mlmake.core.registry import registry

    return project_schema(registry().kinds)


def builtin_schema() -> dict[str, Any]:
    """The schema of the built-in kinds alone: what schemas/mlproject.schema.json holds."""
    from mlmake.core.fragments import project_schema
    from mlmake.core.registry import builtin

    return project_schema(builtin().kinds)


def schema_text(schema: dict[str, Any]) -> str:
    """A schema as the published file spells it."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    # mlmake validates after interpolation, so the ${...} alternatives only blur messages
    return Draft202012Validator(_strip_interpolation(published_schema()))


def _strip_interpolation(node: Any) -> Any:
    if isinstance(node, list):
        return [_strip_interpolation(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strip_interpolation(v) for k, v in node.items()}
    options = out.get("anyOf")
    if isinstance(options, list) and {"$ref": _INTERP_REF} in options:
        rest = [o for o in options if o != {"$ref": _INTERP_REF}]
        del out["anyOf"]
        if len(rest) == 1:
            out.update(rest[0])
        else:
            out["anyOf"] = rest
    return out


def check(doc: Document) -> list[Diagnostic]:
    """Every structural problem of the document, located, in file order."""
    found: list[Diagnostic] = []
    for error in _validator().iter_errors(doc.data):
        found.extend(_explain(doc, error))
    return sorted(found, key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))


def _explain(doc: Document, error: Any) -> list[Diagnostic]:
    path: Path = tuple(error.absolute_path)
    kind, value, schema = error.validator, error.instance, error.schema
    if kind == "additionalProperties" and isinstance(value, dict):
        known = list(schema.get("properties", {}))
        return [_unknown_key(doc, path + (k,), k, known) for k in value if k not in known]
    if kind == "required":
        missing = [k for k in error.validator_value if k not in value]
        return [doc.diagnostic(path, f"missing required key '{k}'", "", key=True) for k in missing]
    if kind == "propertyNames":
        bad = error.context[0].instance if error.context else ""
        return [doc.diagnostic(path + (bad,), f"'{bad}' is not a valid name: expected "
                               + _PATTERN_WORDS.get(schema["propertyNames"].get("pattern", ""), "a valid name"),
                               key=True)]
    if kind in ("anyOf", "oneOf"):
        return _explain_choice(doc, error, path)
    return [doc.diagnostic(path, _message(kind, value, error.validator_value, path), _hint(kind, value, error))]


def _unknown_key(doc: Document, path: Path, key: str, known: list[str]) -> Diagnostic:
    if "extra" in known and "num_boost_round" in known:  # a model's params
        hint = did_you_mean(key, known) or "another xgboost parameter goes under params.extra, as written"
        return doc.diagnostic(path, f"unknown xgboost parameter '{key}'", hint, key=True)
    hint = did_you_mean(key, known) or (f"allowed keys: {', '.join(known)}" if known else "")
    if key == "kind" and len(path) == 3:  # an item naming a kind its section does not hold here
        hint = _kind_hint(str(path[0])) or hint
    return doc.diagnostic(path, f"unknown key '{key}'", hint, key=True)


def _kind_hint(section: str) -> str:
    from mlmake.core.registry import registry

    kinds = registry().in_section(section)
    if not kinds:
        return ""
    return (f"{section} holds only the {', '.join(k.name for k in kinds)} kind here; a kind from a plugin "
            "needs its distribution installed (`mlmake schema` shows the kinds)")


def _explain_choice(doc: Document, error: Any, path: Path) -> list[Diagnostic]:
    options = error.validator_value
    if all(set(o) == {"required"} for o in options):
        if not isinstance(error.instance, dict):
            return []  # the `type` keyword reports a value that is not a mapping
        names = [o["required"][0] for o in options]
        present = [n for n in names if n in error.instance]
        what = " or ".join(f"'{n}'" for n in names)
        msg = f"give only one of {what}" if present else f"missing one of {what}"
        return [doc.diagnostic(path, msg, "", key=True)]
    # a value of the right type that is wrong inside: report the inner problem
    deeper = [e for e in error.context if len(e.absolute_path) > len(error.absolute_path)]
    if deeper:
        return _explain(doc, min(deeper, key=lambda e: len(e.schema_path)))
    # the branch whose type fits the value says what is wrong with it (`cmd: []`: too few items)
    for i, option in enumerate(options):
        if "type" in option and _validator().is_type(error.instance, option["type"]):
            inner = [e for e in error.context if e.relative_schema_path[0] == i and e.validator != "type"]
            if inner:
                return [d for e in inner for d in _explain(doc, e)]
    types = [_TYPE_WORDS.get(str(o["type"]), str(o["type"])) for o in options if "type" in o]
    if len(types) == len(options):
        expected = " or ".join(str(t) for t in types)
        return [doc.diagnostic(path, f"expected {expected}, got {_show(error.instance)}")]
    return _explain(doc, error.context[0])


def _message(kind: str, value: Any, expected: Any, path: Path) -> str:
    got = _show(value)
    if kind == "type":
        names = [str(n) for n in (expected if isinstance(expected, list) else [expected])]
        return f"expected {' or '.join(_TYPE_WORDS.get(n, n) for n in names)}, got {got}"
    if kind == "const" and path == ("version",):
        return f"this mlmake reads version {expected} of the file, got {got}"
    if kind in ("const", "enum"):
        options = [expected] if kind == "const" else expected
        return f"expected one of {', '.join(_show(o) for o in options)}; got {got}"
    if kind == "pattern":
        return f"expected {_pattern_words(expected)}, got {got}"
    bounds = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if kind in bounds:
        return f"must be {bounds[kind]} {expected}, got {got}"
    sizes = {"minItems": "at least {} item(s)", "minLength": "at least {} character(s)",
             "minProperties": "at least {} key(s)"}
    if kind in sizes:
        return "must have " + sizes[kind].format(expected)
    if kind == "uniqueItems":
        return "must not repeat an item"
    return f"{got} is not valid ({kind})"


def _pattern_words(pattern: str) -> str:
    if pattern in _PATTERN_WORDS:
        return _PATTERN_WORDS[pattern]
    if "(>=|<=|==|!=|>|<)" in pattern:
        relative = " or '>= baseline - 0.01'" if "baseline" in pattern else ""
        return f"a comparison such as '>= 0.8'{relative}"
    if ".py:" in pattern:
        return "FILE.py:FUNCTION"
    return f"a value matching {pattern}"


def _hint(kind: str, value: Any, error: Any) -> str:
    if kind == "enum" and isinstance(value, str):
        return did_you_mean(value, [str(o) for o in error.validator_value])
    if kind == "const" and tuple(error.absolute_path) == ("version",):
        return "upgrade mlmake, or write version: 1"
    return ""


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def check_cached(doc: Document, cache: FsPath) -> list[Diagnostic]:
    """check(), skipped when this exact data already passed against this exact schema."""
    import hashlib

    payload = json.dumps([doc.data, published_schema()], sort_keys=True, default=str)
    key = hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = []
    if isinstance(known, list) and key in known:
        return []
    found = check(doc)
    if not found:
        _remember(cache, key, known if isinstance(known, list) else [])
    return found


def _remember(cache: FsPath, key: str, known: list[Any]) -> None:
    from mlmake.core.workdir import write_cache

    write_cache(cache, json.dumps((known + [key])[-20:]))
