"""Quality gates: `METRIC: "OP NUMBER"` or, against a baseline (the lock at a git
revision), `METRIC: "OP baseline - 0.01"` ("auc may not drop by more than 0.01").

A fairness gate judges a metric over the model's slices (`slices: [plan]`): `auc.min_slice`
(the worst slice, for a metric where higher is better), `logloss.max_slice` (the worst, where
lower is better) and `auc.slice_gap` (the largest difference between two values of one slice
column). They are read from the slice metrics a model records under its metrics' `slices` key
(column → value → metric → number), and a verdict names the slice it is about."""

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


SLICES = "slices"  # the metrics key under which a model records its slice metrics
AGGREGATES = ("min_slice", "max_slice", "slice_gap")


@dataclass(frozen=True, slots=True)
class Measure:
    """A gated metric's value in a node's metrics, and for a slice gate the slice it comes from."""

    value: float | None
    where: str = ""  # "slice plan=basic", or "plan: basic 0.7100, pro 0.7900" for a gap


@dataclass(frozen=True, slots=True)
class Verdict:
    gate: Gate
    value: float | None
    baseline: float | None
    threshold: float | None
    passed: bool
    message: str
    where: str = ""

    def to_dict(self) -> dict[str, Any]:
        where = {"slice": self.where} if self.where else {}
        return {"op": self.gate.op, "rule": self.gate.rule, "threshold": self.threshold, "value": self.value,
                "baseline": self.baseline, "passed": self.passed, "note": self.message, **where}


def slice_gate(metric: str) -> tuple[str, str] | None:
    """`auc.min_slice` → ("auc", "min_slice"); None for a plain metric."""
    base, _, aggregate = metric.rpartition(".")
    return (base, aggregate) if base and aggregate in AGGREGATES else None


def measure(metric: str, metrics: Mapping[str, Any]) -> Measure:
    """The value a gate on `metric` judges: the metric itself, or its worst slice or largest gap."""
    split = slice_gate(metric)
    if split is None:
        return Measure(_number(metrics.get(metric)))
    base, aggregate = split
    columns = metrics.get(SLICES)
    values = _slice_values(base, columns if isinstance(columns, Mapping) else {})
    if aggregate == "slice_gap":
        return _largest_gap(values)
    pick = min if aggregate == "min_slice" else max
    found = [(v, c, s) for c, by_slice in values.items() for s, v in by_slice.items()]
    if not found:
        return Measure(None)
    value, column, label = pick(found, key=lambda t: t[0])
    return Measure(value, f"slice {column}={label}")


def _slice_values(metric: str, columns: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Column → slice value → the metric, where it is defined on that slice."""
    out: dict[str, dict[str, float]] = {}
    for column, by_slice in sorted(columns.items()):
        if not isinstance(by_slice, Mapping):
            continue
        numbers = {str(s): _number(m.get(metric)) for s, m in sorted(by_slice.items()) if isinstance(m, Mapping)}
        out[str(column)] = {s: v for s, v in numbers.items() if v is not None}
    return out


def _largest_gap(values: dict[str, dict[str, float]]) -> Measure:
    """The largest difference between two slices of one column, naming both."""
    best: Measure = Measure(None)
    for column, by_slice in values.items():
        if len(by_slice) < 2:
            continue
        low, high = min(by_slice, key=lambda s: by_slice[s]), max(by_slice, key=lambda s: by_slice[s])
        gap = by_slice[high] - by_slice[low]
        if best.value is None or gap > best.value:
            best = Measure(gap, f"{column}: {low} {by_slice[low]:.4f}, {high} {by_slice[high]:.4f}")
    return best


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


def judge(gate: Gate, value: float | None, baseline: float | None, where: str = "") -> Verdict:
    """Whether the gate holds; a relative gate with no baseline value passes, saying so.
    `where` names the slice a slice gate's value comes from."""
    if gate.relative and baseline is None:
        return Verdict(gate, value, None, None, True, f"gate {gate}: no baseline value; not checked", where)
    threshold = gate.value + baseline if gate.relative and baseline is not None else gate.value
    if value is None:
        return Verdict(gate, None, baseline, threshold, False, f"gate {gate} failed: {_undefined(gate.metric)}")
    passed = OPERATORS[gate.op](value, threshold)
    against = f", baseline {baseline:.4f} (threshold {threshold:.4f})" if gate.relative else ""
    at = f" ({where})" if where else ""
    text = "" if passed else f"gate {gate} failed: {gate.metric} = {_shown(value, gate.op, threshold)}{at}{against}"
    return Verdict(gate, value, baseline, threshold, passed, text, where)


def _undefined(metric: str) -> str:
    split = slice_gate(metric)
    if split is None:
        return f"{metric} is undefined on the held-out rows"
    if split[1] == "slice_gap":
        return f"{metric} needs {split[0]} on two values of a slice column, and the held-out rows have fewer"
    return f"{split[0]} is undefined on every slice of the held-out rows"


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
        found = measure(metric, metrics)
        out.append(judge(gate, found.value, measure(metric, baseline or {}).value, found.where))
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
