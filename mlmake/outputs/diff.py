"""Metric and parameter deltas between two snapshots of what was built (the
workspace's lock, a git revision's lock, a recorded run), as text, JSON or markdown."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeGuard

from mlmake.core.plain import Json

DIFF_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Snapshot:
    """Per node: the metrics and the configuration recorded at some point."""

    label: str
    metrics: dict[str, dict[str, Json]] = field(default_factory=dict)
    configs: dict[str, dict[str, Json]] = field(default_factory=dict)
    partial: bool = False  # a run: it knows only the nodes it built, so compare only those
    note: str = ""  # why it holds nothing (a revision without a lock), said beside the table


@dataclass(frozen=True, slots=True)
class Delta:
    node: str
    key: str
    old: Json
    new: Json

    @property
    def change(self) -> float | None:
        if _is_number(self.old) and _is_number(self.new):
            return float(self.new) - float(self.old)
        return None

    @property
    def relative(self) -> float | None:
        change = self.change
        return change / abs(float(self.old)) if change is not None and _is_number(self.old) and self.old else None

    def to_dict(self) -> dict[str, Json]:
        return {"node": self.node, "key": self.key, "old": self.old, "new": self.new,
                "change": self.change, "relative": self.relative}


def _is_number(value: Json) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metric_deltas(old: Snapshot, new: Snapshot, *, every: bool = False) -> list[Delta]:
    """Metrics that differ (every metric with `every`), node by node."""
    out = []
    for node in _nodes(old, new, old.metrics, new.metrics):
        # slice metrics (a model's `slices` key) compare value by value: slices.plan.basic.auc
        before, after = flatten(old.metrics.get(node, {})), flatten(new.metrics.get(node, {}))
        for key in sorted(set(before) | set(after)):
            if every or before.get(key) != after.get(key):
                out.append(Delta(node, key, before.get(key), after.get(key)))
    return out


def param_deltas(old: Snapshot, new: Snapshot, *, every: bool = False) -> list[Delta]:
    """Configuration keys that differ, flattened (`params.max_depth`)."""
    out = []
    for node in _nodes(old, new, old.configs, new.configs):
        before, after = flatten(old.configs.get(node, {})), flatten(new.configs.get(node, {}))
        for key in sorted(set(before) | set(after)):
            if every or before.get(key) != after.get(key):
                out.append(Delta(node, key, before.get(key), after.get(key)))
    return out


def _nodes(old: Snapshot, new: Snapshot, a: Mapping[str, object], b: Mapping[str, object]) -> list[str]:
    if old.partial:
        return sorted(a)
    if new.partial:
        return sorted(b)
    return sorted(set(a) | set(b))


def flatten(config: Mapping[str, Json], prefix: str = "") -> dict[str, Json]:
    """A nested configuration as dotted keys (`params.max_depth`); an empty mapping stays one value."""
    out: dict[str, Json] = {}
    for key, value in config.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def show(value: Json) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value if "\n" not in value and len(value) <= 60 else "(text)"
    return json.dumps(value, default=str)


def _change(d: Delta) -> tuple[str, str]:
    change, rel = d.change, d.relative
    if change is None:
        return ("", "")
    return (f"{change:+.6g}", f"{rel:+.2%}" if rel is not None else "")


def as_text(deltas: list[Delta], old_label: str, new_label: str, what: str) -> str:
    if not deltas:
        return f"No {what} changed between {old_label} and {new_label}.\n"
    rows = [("node", "key", old_label, new_label, "change", "%")]
    rows += [(d.node, d.key, show(d.old), show(d.new), *_change(d)) for d in deltas]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in rows)


def as_markdown(deltas: list[Delta], old_label: str, new_label: str, what: str) -> str:
    if not deltas:
        return f"No {what} changed between `{old_label}` and `{new_label}`.\n"
    lines = [f"| node | {what[:-1] if what.endswith('s') else what} | `{old_label}` | `{new_label}` | change |",
             "|---|---|---|---|---|"]
    for d in deltas:
        change, rel = _change(d)
        cell = f"{change} ({rel})" if rel else change
        lines.append(f"| `{d.node}` | `{d.key}` | {md_cell(show(d.old))} | {md_cell(show(d.new))} | {cell} |")
    return "\n".join(lines) + "\n"


def md_cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def as_json(deltas: list[Delta], old_label: str, new_label: str) -> str:
    body = {"format_version": DIFF_FORMAT_VERSION, "old": old_label, "new": new_label,
            "changes": [d.to_dict() for d in deltas]}
    return json.dumps(body, indent=2, default=str) + "\n"
