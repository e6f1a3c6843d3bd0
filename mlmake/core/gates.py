"""Quality gates: `METRIC: "OP NUMBER"` or, against a baseline (the lock at a git
revision), `METRIC: "OP baseline - 0.01"` ("auc may not drop by more than 0.01")."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq,
    "!=": operator.ne, ">": operator.gt, "<": operator.lt,
}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_GATE = re.compile(rf"^\s*(>=|<=|==|!=|>|<)\s*(?:({_NUMBER})|baseline\s*(?:([-+])\s*({_NUMBER}))?)\s*$")


@dataclass(frozen=True, slots=True)
class Gate:
    """One gate; with `relative`, the threshold is the baseline's value plus `value`."""

    metric: str
    op: str
    value: float
    relative: bool = False

    @property
    def rule(self) -> str:
        if not self.relative:
            return f"{self.op} {show_number(self.value)}"
        if self.value == 0:
            return f"{self.op} baseline"
        sign = "-" if self.value < 0 else "+"
        return f"{self.op} baseline {sign} {show_number(abs(self.value))}"

    def __str__(self) -> str:
        return f"{self.metric} {self.rule}"


@dataclass(frozen=True, slots=True)
class Verdict:
    gate: Gate
    value: float | None
    baseline: float | None
    threshold: float | None
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.gate.op, "rule": self.gate.rule, "threshold": self.threshold, "value": self.value,
                "baseline": self.baseline, "passed": self.passed, "note": self.message}


def parse_gate(metric: str, text: str) -> Gate:
    """Parse `">= 0.8"` or `">= baseline - 0.01"`; ValueError says what is expected."""
    match = _GATE.match(text)
    if not match:
        raise ValueError(f"gate on '{metric}': '{text}' is not a comparison like '>= 0.8' or '>= baseline - 0.01'")
    op, absolute, sign, offset = match.groups()
    if absolute is not None:
        return Gate(metric, op, float(absolute))
    delta = float(offset) if offset else 0.0
    return Gate(metric, op, -delta if sign == "-" else delta, relative=True)


def judge(gate: Gate, value: float | None, baseline: float | None) -> Verdict:
    """Whether the gate holds; a relative gate with no baseline value passes, saying so."""
    if gate.relative and baseline is None:
        return Verdict(gate, value, None, None, True, f"gate {gate}: no baseline value; not checked")
    threshold = gate.value + baseline if gate.relative and baseline is not None else gate.value
    if value is None:
        return Verdict(gate, None, baseline, threshold, False,
                       f"gate {gate} failed: {gate.metric} is undefined on the held-out rows")
    passed = OPERATORS[gate.op](value, threshold)
    where = f", baseline {baseline:.4f} (threshold {threshold:.4f})" if gate.relative else ""
    text = "" if passed else f"gate {gate} failed: {gate.metric} = {_shown(value, gate.op, threshold)}{where}"
    return Verdict(gate, value, baseline, threshold, passed, text)


def _shown(value: float, op: str, threshold: float) -> str:
    """Four decimals, or as many more as it takes for the shown value to break the gate too."""
    for places in range(4, 17):
        text = f"{value:.{places}f}"
        if OPERATORS[op](float(text), threshold) == OPERATORS[op](value, threshold):
            return text
    return repr(value)


def show_number(value: float) -> str:
    """A number as the user wrote it: 1000 not 1000.0."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def verdicts(rules: Mapping[str, str], metrics: Mapping[str, Any],
             baseline: Mapping[str, Any] | None) -> list[Verdict | str]:
    """Judge a node's gates (metric → rule) on its metrics; a rule that cannot be read is its error."""
    out: list[Verdict | str] = []
    for metric, rule in sorted(rules.items()):
        try:
            gate = parse_gate(metric, rule)
        except ValueError as exc:
            out.append(str(exc))
            continue
        out.append(judge(gate, _number(metrics.get(metric)), _number((baseline or {}).get(metric))))
    return out


def failures(rules: Mapping[str, str], metrics: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[str]:
    """A line for each gate that fails or cannot be read."""
    return [v if isinstance(v, str) else v.message for v in verdicts(rules, metrics, baseline)
            if isinstance(v, str) or not v.passed]


def notes(rules: Mapping[str, str], metrics: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[str]:
    """What passing gates have to say (a relative gate with no baseline value was not checked)."""
    return [v.message for v in verdicts(rules, metrics, baseline) if not isinstance(v, str) and v.passed
            and v.message]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
