"""Retraining triggers (`retrain: {when: [...]}` on a model), judged when the plan finds the model
up to date: a monitor's figure past a threshold in its last report on this build of the model,
the model older than an age (the clock: mlmake.core.clock, MLMAKE_NOW in tests), or new data
(what always rebuilds a model; listed so the file says it). A fired trigger rebuilds the model;
one that has not fired is shown as watching, with its current value.

A report names the build of the model it judged (the time the model's files were written), so a
retrained model is not triggered again by the report that fired before: it waits for the
monitor's next report."""

from __future__ import annotations

import json
import operator
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from mlmake.core.clock import now
from mlmake.planning.reasons import Reason

SIGNATURE = "signature.json"  # written by every model kind; its time is the model's build time
REPORT = "report.json"
UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
OPS: dict[str, Callable[[float, float], bool]] = {">": operator.gt, ">=": operator.ge, "<": operator.lt,
                                                  "<=": operator.le}
RULE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+))\s*$")


def judge(triggers: tuple[Mapping[str, Any], ...]) -> tuple[list[Reason], list[Reason]]:
    """The triggers that fired and those watching, as reasons."""
    fired: list[Reason] = []
    watching: list[Reason] = []
    for trigger in triggers:
        reason = _one(trigger)
        if reason is not None:
            (fired if reason.code == "trigger" else watching).append(reason)
    return fired, watching


def _one(t: Mapping[str, Any]) -> Reason | None:
    if "monitor" in t:
        return _monitor(t)
    if "older_than" in t:
        return _age(t)
    return None  # new_data: the fingerprint already rebuilds the model when its data changes


def built_ns(folder: str) -> int | None:
    try:
        return os.stat(os.path.join(folder, SIGNATURE)).st_mtime_ns
    except OSError:
        return None


def _age(t: Mapping[str, Any]) -> Reason:
    text = str(t["older_than"])
    limit = int(text[:-1]) * UNITS[text[-1]]
    built = built_ns(t["folder"])
    if built is None:
        return Reason("watching", f"older than {text}", note="not built in this workspace")
    age = now() - built / 1e9
    shown = _duration(age)
    if age > limit:
        return Reason("trigger", f"older than {text}", note=f"built {shown} ago")
    return Reason("watching", f"older than {text}", note=f"built {shown} ago")


def _monitor(t: Mapping[str, Any]) -> Reason:
    subject = f"monitor {t['monitor']}"
    match = RULE.match(str(t["if"]))
    if match is None:
        return Reason("watching", subject, note=f"cannot read the condition {t['if']!r}")
    figure, op, limit = match.group(1), match.group(2), float(match.group(3))
    report = _report(t["report"])
    if report is None:
        return Reason("watching", subject, note=f"{_name(figure)} {op} {match.group(3)}: no report yet "
                                                f"(mlmake build monitors.{t['monitor']})")
    if report.get("model_built") != built_ns(t["folder"]):
        return Reason("watching", subject, note=f"{_name(figure)} {op} {match.group(3)}: "
                                                "no report on this build of the model yet")
    value = _figure(report, figure)
    if value is None:
        return Reason("watching", subject, note=f"{_name(figure)} {op} {match.group(3)}: no value yet")
    held = OPS[op](value, limit)
    if held:
        drifted = report.get("drifted") or []
        columns = f" ({', '.join(map(str, drifted))})" if figure == "drift_share" and drifted else ""
        return Reason("trigger", subject, note=f"{_name(figure)} {value:.3g} {op} {match.group(3)}{columns}")
    return Reason("watching", subject, note=f"{_name(figure)} {value:.3g}, fires when {op} {match.group(3)}")


def _report(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _figure(report: Mapping[str, Any], figure: str) -> float | None:
    """drift_share, prediction_drift (its test's value), or a dotted path (live.auc)."""
    if figure == "prediction_drift":
        figure = "prediction.value"
    value: Any = report
    for part in figure.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _name(figure: str) -> str:
    return figure.replace("_", " ") if figure in ("drift_share", "prediction_drift") else figure


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}".replace(".0" + unit, unit)
    return f"{max(seconds, 0):.0f}s"
