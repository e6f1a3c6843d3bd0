"""The project's JSON Schema, put together from the base (the keys every project has) and the
fragment of each registered kind: one section per kind's `section`; where a section holds
several kinds, an item's `kind:` key picks the fragment it answers to."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path as FsPath
from typing import Any

from mlmake.core.errors import MlmakeError
from mlmake.core.kind import Kind

NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_-]*$"
SECTION_NOTE = "x-section"  # a fragment's description of its whole section (not JSON Schema)
COMMON_KEYS = {"env": {"$ref": "#/$defs/env"}}  # keys every node has, whatever its kind


def base_schema() -> dict[str, Any]:
    """The schema of the keys that are not node sections."""
    with open(FsPath(__file__).parent / "project.schema.json", encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]


def project_schema(kinds: Sequence[Kind[Any]]) -> dict[str, Any]:
    """The whole schema for these kinds, in their order."""
    schema = base_schema()
    defs, properties = schema["$defs"], schema["properties"]
    sections: dict[str, list[Kind[Any]]] = {}
    for kind in kinds:
        sections.setdefault(kind.section, []).append(kind)
    for section, members in sections.items():
        shared = len(members) > 1 or not members[0].default
        notes = [_add_fragment(defs, kind, shared) for kind in members]
        item = _dispatch(members) if shared else {"$ref": f"#/$defs/{members[0].name}"}
        properties[section] = {
            "type": "object", "description": next((n for n in notes if n), f"The {section} of the project."),
            "propertyNames": {"pattern": NAME_PATTERN}, "additionalProperties": item,
        }
    return schema


def _add_fragment(defs: dict[str, Any], kind: Kind[Any], shared: bool) -> str:
    """Put a kind's fragment (and its own $defs) into defs; returns its section note."""
    fragment = copy.deepcopy(kind.item_schema())
    note = str(fragment.pop(SECTION_NOTE, ""))
    for name, definition in dict(fragment.pop("$defs", {})).items():
        _define(defs, name, definition, kind)
    for key, definition in COMMON_KEYS.items():
        if key in fragment.get("properties", {}):
            raise MlmakeError(f"the kind '{kind.name}' defines the item key '{key}', which every node has "
                              "(the environment variables it reads); rename the kind's key")
        fragment.setdefault("properties", {})[key] = definition
    if shared:
        own = {"const": kind.name, "description": str(fragment.get("description", ""))}
        fragment["properties"] = {"kind": own, **fragment.get("properties", {})}
    _define(defs, kind.name, fragment, kind)
    return note


def _define(defs: dict[str, Any], name: str, definition: Any, kind: Kind[Any]) -> None:
    if name in defs and defs[name] != definition:
        raise MlmakeError(f"the kind '{kind.name}' defines '$defs/{name}', which another part of the schema "
                          "defines differently; prefix the kind's own definitions with its name")
    defs[name] = definition


def _dispatch(members: list[Kind[Any]]) -> dict[str, Any]:
    """An item of a shared section: its `kind:` picks the fragment; without one, the default kind's."""
    names = [k.name for k in members]
    default = next((k for k in members if k.default), None)
    rules: list[dict[str, Any]] = [
        {"if": {"properties": {"kind": {"const": k.name}}, "required": ["kind"]}, "then": {"$ref": f"#/$defs/{k.name}"}}
        for k in members
    ]
    if default is not None:
        rules.append({"if": {"not": {"required": ["kind"]}}, "then": {"$ref": f"#/$defs/{default.name}"}})
    described = "; ".join(f"{k.name}: {_first_sentence(k)}" for k in members)
    item: dict[str, Any] = {
        "type": "object",
        "properties": {"kind": {"enum": names, "description": f"Which kind of item this is. {described}"
                                + (f" Default: {default.name}." if default else "")}},
        "allOf": rules,
    }
    if default is None:
        item["required"] = ["kind"]
    return item


def _first_sentence(kind: Kind[Any]) -> str:
    text = str(kind.item_schema().get("description", kind.word))
    return text.split(": ", 1)[-1].rstrip(".")
