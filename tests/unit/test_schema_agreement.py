"""The published JSON Schema, the kinds that generate it and their item dataclasses describe the
same language."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from mlmake.core import spec
from mlmake.core.fragments import COMMON_KEYS
from mlmake.core.registry import builtin
from mlmake.core.schema import builtin_schema, schema_text
from mlmake.kinds.dataset.item import Check, Column
from mlmake.kinds.model.item import Split

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "mlproject.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))

KINDS = {kind.name: kind for kind in builtin().kinds}
# schema `$defs` name (None: the top level) → the dataclass it becomes: one per kind, and their parts
PAIRS: dict[str | None, type] = {
    None: spec.Project, "remote": spec.Remote, "environment": spec.Environment,
    **{name: kind.item_type for name, kind in KINDS.items()},
    "column": Column, "check": Check, "split": Split,
}
SHARED = {"deploy"}  # sections whose items name their kind (`kind: http`)
# section of the file → the `$defs` entry of one of its items
SECTIONS = {"datasets": "dataset", "features": "features", "models": "model", "steps": "cmd",
            "environments": "environment"}

REQUIRED_MISMATCH: dict[str, str] = {}  # pairs known to disagree (none)
UNDESCRIBED: set[tuple[str, str]] = set()  # properties known to lack a description (none)


def definition(name: str | None) -> dict[str, Any]:
    return SCHEMA if name is None else SCHEMA["$defs"][name]


def target(node: dict[str, Any]) -> dict[str, Any]:
    """A property's schema, following one local $ref."""
    ref = node.get("$ref")
    if ref is None:
        return node
    assert ref.startswith("#/$defs/"), ref
    return SCHEMA["$defs"][ref.removeprefix("#/$defs/")]


def has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def pair_id(name: str | None) -> str:
    return name or "project"


def marked(name: str | None, reasons: dict[str, str]) -> Any:
    reason = reasons.get(name or "")
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(name, id=pair_id(name), marks=marks)


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_published_file_is_what_the_builtin_kinds_generate() -> None:
    # regenerate with: python -c "from mlmake.core.schema import *; open('schemas/mlproject.schema.json', 'w')
    # .write(schema_text(builtin_schema()))"
    assert schema_text(builtin_schema()) == SCHEMA_FILE.read_text(encoding="utf-8")


def test_a_shared_section_picks_the_fragment_by_kind() -> None:
    item = SCHEMA["properties"]["deploy"]["additionalProperties"]
    assert item["required"] == ["kind"] and item["properties"]["kind"]["enum"] == ["http", "batch", "docker", "store"]
    assert [rule["then"] for rule in item["allOf"]] == [
        {"$ref": "#/$defs/http"}, {"$ref": "#/$defs/batch"}, {"$ref": "#/$defs/docker"}, {"$ref": "#/$defs/store"}]
    for name in ("http", "batch", "docker", "store"):
        assert SCHEMA["$defs"][name]["properties"]["kind"]["const"] == name


def test_every_ref_resolves() -> None:
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(SCHEMA)
    assert refs
    for ref in refs:
        target({"$ref": ref})


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_each_section_maps_names_to_its_item(section: str) -> None:
    assert SCHEMA["properties"][section]["additionalProperties"] == {"$ref": f"#/$defs/{SECTIONS[section]}"}


def own_keys(name: str | None) -> set[str]:
    """A definition's keys, less the `kind` the registry adds in a shared section and the keys
    every node has (`env`), which the graph reads, not the kind."""
    kind = KINDS.get(name or "")
    keys = set(definition(name)["properties"]) - (set(COMMON_KEYS) if kind is not None else set())
    return keys - {"kind"} if kind is not None and kind.section in SHARED else keys


@pytest.mark.parametrize("name", list(PAIRS), ids=pair_id)
def test_properties_equal_the_dataclass_keys(name: str | None) -> None:
    keys = {spec.key_of(f) for f in spec.file_fields(PAIRS[name])}
    if name is None:  # the node sections are the kinds' (Project.items)
        keys |= set(builtin().sections())
    assert own_keys(name) == keys


@pytest.mark.parametrize("name", [marked(n, REQUIRED_MISMATCH) for n in PAIRS])
def test_required_equals_the_fields_without_defaults(name: str | None) -> None:
    fields = [f for f in spec.file_fields(PAIRS[name]) if not has_default(f)]
    assert set(definition(name).get("required", [])) - {"kind"} == {spec.key_of(f) for f in fields}


@pytest.mark.parametrize("name", list(PAIRS), ids=pair_id)
def test_unknown_keys_are_refused(name: str | None) -> None:
    assert definition(name).get("additionalProperties") is False


@pytest.mark.parametrize("name", list(PAIRS), ids=pair_id)
def test_schema_defaults_equal_dataclass_defaults(name: str | None) -> None:
    fields = {spec.key_of(f): f for f in spec.file_fields(PAIRS[name])}
    for key, prop in definition(name)["properties"].items():
        if "default" in prop:
            assert fields[key].default == prop["default"], key


def _described() -> list[Any]:
    out = []
    for name in PAIRS:
        for key in definition(name)["properties"]:
            marks = [pytest.mark.xfail(strict=True, reason="no description: editors show nothing on hover")] \
                if (name, key) in UNDESCRIBED else []
            out.append(pytest.param(name, key, id=f"{pair_id(name)}.{key}", marks=marks))
    return out


@pytest.mark.parametrize(("name", "key"), _described())
def test_every_property_has_a_description(name: str | None, key: str) -> None:
    prop = definition(name)["properties"][key]
    assert (prop.get("description") or target(prop).get("description", "")).strip()


@pytest.mark.parametrize("name", [n for n in PAIRS if n], ids=pair_id)
def test_every_definition_has_a_description(name: str) -> None:
    assert definition(name).get("description", "").strip()
