"""What validate checks in a dataset beyond the schema: data contracts that contradict themselves."""

from __future__ import annotations

from typing import Any

from mlmake.core.errors import Diagnostic
from mlmake.core.kind import ItemCheck
from mlmake.core.source import Path

NUMBER_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64")


def check(item: ItemCheck) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for column, spec in (item.data.get("schema") or {}).items():
        found += _column(item, ("schema", column), spec)
    if item.data.get("partition_by") is not None and item.data.get("partitions") is None:
        found.append(item.problem(("partition_by",), "partition_by without partitions: the table is one file",
                                  "add partitions: N, or remove partition_by"))
    return found


def _column(item: ItemCheck, where: Path, spec: dict[str, Any]) -> list[Diagnostic]:
    kind = spec.get("type")
    found = []
    low: Any = spec.get("min")
    high: Any = spec.get("max")
    for bound in ("min", "max"):
        if spec.get(bound) is not None and kind not in NUMBER_TYPES:
            found.append(item.problem(where + (bound,), f"a {bound} needs a numeric column, not {kind}",
                                        "remove it, or give the column a number type"))
    if _number(low) and _number(high) and low > high:
        found.append(item.problem(where + ("max",), f"max {_show(high)} is below min {_show(low)}: "
                                    "no value can hold both", "swap them, or fix one"))
    for i, value in enumerate(spec.get("allowed") or []):
        problem = _allowed_problem(value, str(kind))
        if problem:
            found.append(item.problem(where + ("allowed", i), problem, f"list {_words(str(kind))} only"))
    if spec.get("regex") is not None and kind not in ("str", "category"):
        found.append(item.problem(where + ("regex",), f"a regex needs a str or category column, not {kind}"))
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

