"""The dataset item: a table file and its data contract."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlmake.core.errors import Span
from mlmake.core.spec import INTERNAL, NOT_FINGERPRINTED, deps_of, names


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
class Leakage:
    """No feature timestamp after the label's (ml/pointintime.py)."""

    label: str
    features: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Check:
    rows: str | None = None
    leakage: Leakage | None = None


def parse_check(d: Mapping[str, Any]) -> Check:
    leak = d.get("leakage")
    return Check(d.get("rows"), Leakage(leak["label"], tuple(leak["features"])) if leak else None)


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str = field(metadata=INTERNAL)
    span: Span | None = field(metadata=INTERNAL, compare=False)
    path: str
    format: str = ""
    null_values: tuple[str, ...] = ()
    schema: dict[str, Column] = field(default_factory=dict)
    checks: tuple[Check, ...] = ()
    timestamp: str | None = None  # the column of each row's event time (what `as_of` joins on)
    description: str = field(default="", metadata=NOT_FINGERPRINTED)
    allow_outside: bool = field(default=False, metadata=NOT_FINGERPRINTED)  # read through a link out
    deps: tuple[str, ...] = field(default=(), metadata=NOT_FINGERPRINTED)  # files no analysis sees; hashed as code
    partitions: int | None = None  # unset: one data.parquet, and out of the fingerprint (ml/parts.py)
    partition_by: tuple[str, ...] | None = None  # the columns that pick a row's part; unset: all


def parse(name: str, span: Span | None, d: Mapping[str, Any]) -> Dataset:
    fmt = d.get("format") or format_of(d["path"])
    columns = {c: _column(spec) for c, spec in d.get("schema", {}).items()}
    checks = tuple(parse_check(c) for c in d.get("checks", []))
    return Dataset(name, span, d["path"], fmt, tuple(d.get("null_values", ())), columns, checks, d.get("timestamp"),
                   d.get("description", ""), bool(d.get("allow_outside", False)), deps_of(d),
                   partitions=d.get("partitions"),
                   partition_by=names(d["partition_by"]) if "partition_by" in d else None)


def _column(d: Mapping[str, Any]) -> Column:
    allowed = d.get("allowed")
    return Column(d["type"], d.get("nullable", True), d.get("unique", False), d.get("min"), d.get("max"),
                  tuple(allowed) if allowed is not None else None, d.get("regex"), d.get("allow_non_finite", False))


def format_of(path: str) -> str:
    """The table format a file name implies."""
    suffix = Path(path).suffix.lower().lstrip(".")
    return {"jsonl": "ndjson", "pq": "parquet"}.get(suffix, suffix or "csv")
