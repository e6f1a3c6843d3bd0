"""A monitor's report (build/monitors/NAME/report.json) as lines of text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def describe(report: Mapping[str, Any]) -> list[str]:
    """The report's state: where its rows came from, drift per column, prediction drift, live quality."""
    current = report.get("current") or {}
    source = current.get("log") or current.get("table") or "?"
    fingerprint = str(current.get("fingerprint") or "")[:8]
    model = str(report.get("model", "")) + (f" (fingerprint {fingerprint})" if fingerprint else "")
    columns = report.get("columns") or []
    drifted = report.get("drifted") or []
    lines = [f"{report.get('monitor')}: {model}, {current.get('rows', 0)} rows from {source} "
             f"at {report.get('time')}",
             f"  drift share {_num(report.get('drift_share'))} ({len(drifted)} of {len(columns)} columns)"
             + (f": {', '.join(drifted)}" if drifted else "") if columns else "  no rows yet: no drift measured"]
    prediction = report.get("prediction") or {}
    if prediction:
        lines.append(f"  prediction drift: {prediction['test']} {_num(prediction['value'])}"
                     + (" (drifted)" if prediction.get("drifted") else ""))
    live = dict(report.get("live") or {})
    if live:
        labels = live.pop("labels", 0)
        lines.append(f"  live quality on {labels} fed-back labels"
                     + (": " + ", ".join(f"{k} {_num(v)}" for k, v in live.items()) if live else "")
                     if labels else "  live quality: no labels fed back yet")
    if not columns:
        return lines
    width = max([len(str(c["column"])) for c in columns] + [6])
    lines.append(f"  {'column':<{width}}  {'test':<13}  {'value':>8}  {'psi':>8}  drift")
    for c in columns:
        lines.append(f"  {c['column']:<{width}}  {c['test']:<13}  {_num(c['value']):>8}  {_num(c['psi']):>8}  "
                     + ("drifted" if c["drifted"] else "-"))
    return lines


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
